#!/usr/bin/env python3
"""The artifact store at scale: put and fetch a compose of many files of mixed sizes, on both
backends (a file:// directory, and Debian's docker-registry on 127.0.0.1 through oras).

The compose (deterministic for a seed): --files files, 75% small (0.5-16 KB, like repodata and
metadata), 23% medium (32-256 KB, like RPMs), 2% large (1-4 MB), a tenth of the small ones
duplicated at a second path. Per backend:

- put_s, put_mb_per_s, put_files_per_s    first put: every blob is new
- reput_s, reput_uploaded                 a second compose with the same files: every blob is
                                          already stored, nothing is uploaded (HEAD per blob)
- fetch_s, fetch_mb_per_s                 a fresh runner: everything downloaded (oci) or
                                          read from the store's directory (file)
- fetch_cached_s                          a second runner on the same machine (oci: from the
                                          local blob cache; file: from the store again)
- fetch_present_s                         fetching again into the same output: every file is
                                          hashed and kept
- registry_blob_uploads                   (oci) blob uploads the registry itself served, from
                                          its access log: the first put's distinct blobs only

Progress goes to stderr; the last line on stdout is one JSON object with the figures.

    .venv/bin/python bench/store_scale.py                 # 2,000 files (2,137 paths), about 220 MB
    .venv/bin/python bench/store_scale.py --files 500
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.registry

from pipeline.artifacts.store import StoreReporter, open_store
from pipeline.compose.base import describe_tree
from pipeline.core.records import OutputFile
from tests import registry as oci_registry

FIRST = "FL-42-bench-20261121.n.0"
SECOND = "FL-42-bench-20261122.n.0"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Counting(StoreReporter):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.uploaded_blobs = 0

    def uploaded(self, sha256: str, size: int) -> None:
        with self.lock:
            self.uploaded_blobs += 1


def make_files(output_dir: Path, count: int, seed: int) -> tuple[list[OutputFile], list[OutputFile]]:
    """Two composes' worth of files with the same bytes (the second one: a rebuild, unchanged)."""
    rng = random.Random(seed)
    for compose_id in (FIRST, SECOND):
        root = output_dir / "composes" / compose_id
        rng = random.Random(seed)
        for n in range(count):
            roll = rng.random()
            size = (
                rng.randint(512, 16 << 10)
                if roll < 0.75
                else rng.randint(32 << 10, 256 << 10)
                if roll < 0.98
                else rng.randint(1 << 20, 4 << 20)
            )
            path = root / f"d{n % 40:02d}" / f"f{n:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = rng.randbytes(size)
            path.write_bytes(data)
            if roll < 0.075:
                (path.parent / f"f{n:05d}.copy").write_bytes(data)
    return (
        describe_tree(output_dir, output_dir / "composes" / FIRST),
        describe_tree(output_dir, output_dir / "composes" / SECOND),
    )


def timed(action: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def measure(
    kind: str,
    url: str,
    work: Path,
    builder: Path,
    first: list[OutputFile],
    second: list[OutputFile],
    registry: oci_registry.Registry | None,
) -> dict[str, float | int]:
    total = sum(o.size for o in first)
    counting = Counting()
    store = open_store(url, root=work, env={}, cache=work / f"{kind}-cache-builder", reporter=counting)
    put_s, manifest = timed(lambda: store.put(FIRST, builder, first))
    say(f"  {kind}: put {len(first)} files, {total / 1e6:.1f} MB in {put_s:.2f} s")
    uploads_before = counting.uploaded_blobs
    reput_s, _ = timed(lambda: store.put(SECOND, builder, second))
    reput_uploaded = counting.uploaded_blobs - uploads_before
    say(f"  {kind}: second compose, same files: {reput_s:.2f} s, {reput_uploaded} blobs uploaded")

    cache = work / f"{kind}-cache-runner"
    runner = work / f"{kind}-runner-1"
    fetch_s, report = timed(lambda: open_store(url, root=work, env={}, cache=cache).fetch(manifest, runner))
    say(f"  {kind}: fresh runner fetch {fetch_s:.2f} s: {report.summary()}")
    cached_s, cached = timed(
        lambda: open_store(url, root=work, env={}, cache=cache).fetch(manifest, work / f"{kind}-runner-2")
    )
    say(f"  {kind}: second runner, same machine {cached_s:.2f} s: {cached.summary()}")
    present_s, _ = timed(lambda: open_store(url, root=work, env={}, cache=cache).fetch(manifest, runner))
    say(f"  {kind}: everything present {present_s:.2f} s")
    figures: dict[str, float | int] = {
        "put_s": round(put_s, 3),
        "put_mb_per_s": round(total / 1e6 / put_s, 1),
        "put_files_per_s": round(len(first) / put_s),
        "reput_s": round(reput_s, 3),
        "reput_uploaded": reput_uploaded,
        "fetch_s": round(fetch_s, 3),
        "fetch_mb_per_s": round(total / 1e6 / fetch_s, 1),
        "fetch_files_per_s": round(len(first) / fetch_s),
        "fetch_cached_s": round(cached_s, 3),
        "fetch_present_s": round(present_s, 3),
    }
    if registry is not None:
        figures["registry_blob_uploads"] = registry.requests("PUT", r"/blobs/uploads/", 201)
        figures["distinct_blobs"] = len(manifest.blobs())
    return {f"{kind}_{k}": v for k, v in figures.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="factory-store-bench-"))
    registry = None
    try:
        builder = work / "builder"
        first, second = make_files(builder, args.files, args.seed)
        say(f"compose of {len(first)} files, {sum(o.size for o in first) / 1e6:.1f} MB")
        figures: dict[str, Any] = {"files": len(first), "bytes": sum(o.size for o in first)}
        figures |= measure("file", (work / "store").as_uri(), work, builder, first, second, None)
        registry = oci_registry.start(work / "registry")
        url = f"oci://{registry.address}/factory/bench"
        figures |= measure("oci", url, work, builder, first, second, registry)
        print(json.dumps(figures, sort_keys=True))
        return 0
    finally:
        if registry is not None:
            registry.stop()
        if args.keep:
            say(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
