#!/usr/bin/env python3
"""Lineage at scale: write many compose records into a fresh repository, then query them.

The records are shaped like a real distribution's (deterministic for a seed): in every wave of
--batch records, 80% are builds (one pin, two RPMs), 15% modules (8 builds of the wave as inputs,
their 8 pins) and 5% variant repos (10 modules of the last waves as inputs). Every wave is one
`Lineage.finish` call; compose IDs come from `Lineage.reserve`.

Measured:

- write_per_s     records per second through `finish` (tags, notes, one notes commit per batch)
- reserve_per_s   compose IDs per second through `reserve` (one ref file each: filesystem-bound)
- end_to_end_per_s  records per second through reserve + finish
- why_cold_ms     first `why` in a fresh process state: builds the SQLite index from the notes
- why_warm_ms     `why` with the index up to date (median of --repeat queries)
- why_incr_ms     `why` after one more batch was finished: the index reads only the new notes
- tree_warm_ms    `tree` of a variant repo compose (median)
- get_ms, latest_ms  one `get` from the notes, `latest()` over every latest-good ref (median)

Progress goes to stderr; the last line on stdout is one JSON object with the figures.

    .venv/bin/python bench/lineage_scale.py                  # 100,000 records
    .venv/bin/python bench/lineage_scale.py --records 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygit2

from pipeline.core.records import InputRef, OutputFile, Record, outputs_digest
from pipeline.core.states import ComposeStatus
from pipeline.records.lineage import Lineage

TARGETS = {"write_per_s": 2000.0, "why_warm_ms": 100.0}
START = dt.date(2026, 1, 1)
TOOLS = {
    "build": (("rpmbuild", "4.18.0"),),
    "module": (("createrepo_c", "0.17.3"), ("libmodulemd", "2.14.0")),
    "repo": (("createrepo_c", "0.17.3"), ("dnf", "4.14.0")),
}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sha(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


class Generator:
    """Deterministic records: builds, modules made of builds, repos made of modules."""

    def __init__(self, lineage: Lineage, commit: str, seed: int, components: int) -> None:
        self.lineage = lineage
        self.commit = commit
        self.random = random.Random(seed)
        self.components = [f"pkg{n:05d}" for n in range(components)]
        self.modules: list[InputRef] = []
        self.pins: list[tuple[str, str]] = []  # every (component, commit) pinned, in order
        self.reserve_s = 0.0
        self.last_repo = ""

    def wave(self, number: int, size: int) -> list[Record]:
        date = (START + dt.timedelta(days=number)).strftime("%Y%m%d")
        stamp = f"{START + dt.timedelta(days=number)}T12:00:00Z"
        n_repos = max(1, size // 20)
        n_modules = max(1, size * 3 // 20)
        n_builds = size - n_modules - n_repos
        records, builds = [], []
        for component in self.random.sample(self.components, n_builds):
            commit = sha("commit", component, number)[:40]
            node = f"build:{component}@{commit[:8]}"
            outputs = tuple(
                OutputFile(f"builds/{component}-{number}.{arch}.rpm", 4096 + number, sha(node, arch))
                for arch in ("noarch", "src")
            )
            record = self.record(
                node, f"{component}-{commit[:8]}", date, stamp, (), ((component, commit),), outputs
            )
            records.append(record)
            builds.append((record, component, commit))
            self.pins.append((component, commit))
        for m in range(n_modules):
            chosen = builds[m * 8 % len(builds) : m * 8 % len(builds) + 8] or builds[:8]
            node = f"module:mod{number:04d}x{m:03d}:f42"
            inputs = tuple(InputRef(r.node, r.compose_id, r.outputs_digest) for r, _, _ in chosen)
            pins = tuple(sorted((c, commit) for _, c, commit in chosen))
            outputs = (OutputFile(f"composes/{node}/repodata/repomd.xml", 3000, sha(node)),)
            record = self.record(node, f"mod{number:04d}x{m:03d}-f42", date, stamp, inputs, pins, outputs)
            records.append(record)
            self.modules.append(InputRef(node, record.compose_id, record.outputs_digest))
        for v in range(n_repos):
            node = f"repo:Variant{v:03d}"
            inputs = tuple(self.random.sample(self.modules[-200:], min(10, len(self.modules[-200:]))))
            outputs = (OutputFile(f"composes/{node}/repodata/repomd.xml", 5000, sha(node, number)),)
            records.append(self.record(node, f"Variant{v:03d}", date, stamp, inputs, (), outputs))
            self.last_repo = records[-1].compose_id
        return records

    def record(
        self,
        node: str,
        name: str,
        date: str,
        stamp: str,
        inputs: tuple[InputRef, ...],
        pins: tuple[tuple[str, str], ...],
        outputs: tuple[OutputFile, ...],
    ) -> Record:
        start = time.perf_counter()
        cid = self.lineage.reserve("FL", "42", name, date, "nightly", self.commit)
        self.reserve_s += time.perf_counter() - start
        return Record(
            compose_id=cid,
            node=node,
            input_digest=sha("input", node, date),
            key=sha("key", node, date),
            commit=self.commit,
            inputs=inputs,
            pins=pins,
            outputs=outputs,
            outputs_digest=outputs_digest(outputs),
            tools=TOOLS[node.split(":", 1)[0]],
            started=stamp,
            finished=stamp,
            status=ComposeStatus.FINISHED,
        )


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return (time.perf_counter() - start) * 1000, result


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    return statistics.median(timed(action)[0] for _ in range(repeat))


def why_ms(lineage: Lineage, component: str, commit: str) -> float:
    return timed(lambda: lineage.why(component, commit))[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--components", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="lineage-scale-"))
    try:
        repo = pygit2.init_repository(str(work / "defs"))
        signature = pygit2.Signature("Bench", "bench@example.invalid", 1_767_225_600, 0)
        tree = repo.TreeBuilder().write()
        commit = str(repo.create_commit("HEAD", signature, signature, "Definitions\n", tree, []))
        lineage = Lineage(work / "defs", "42")  # the release its latest good is kept under
        generator = Generator(lineage, commit, args.seed, args.components)

        written, write_s, number = 0, 0.0, 0
        while written < args.records:
            records = generator.wave(number, min(args.batch, args.records - written))
            start = time.perf_counter()
            lineage.finish(records)
            write_s += time.perf_counter() - start
            written += len(records)
            number += 1
            if number % 10 == 0 or written == args.records:
                say(f"  {written:>7} records  {written / write_s:,.0f}/s through finish")
        for ref in generator.modules[-50:]:
            lineage.promote(ref.node, ref.compose_id)
        lineage.close()

        component, pinned = generator.pins[len(generator.pins) // 10]
        cold_ms, found = timed(lambda: Lineage(work / "defs", "42").why(component, pinned[:8]))
        say(f"  why {component}@{pinned[:8]}: {len(found)} composes, cold {cold_ms:.0f} ms (index built)")
        lineage = Lineage(work / "defs", "42")
        samples = generator.random.sample(generator.pins, args.repeat)
        warm = [why_ms(lineage, c, p[:8]) for c, p in samples]
        assert not lineage.reserved_unfinished()
        tree_ms = median_ms(lambda: lineage.tree(generator.last_repo), args.repeat)
        size = len(lineage.tree(generator.last_repo))
        get_ms = median_ms(lambda: lineage.get(generator.last_repo), args.repeat)
        latest_ms = median_ms(lineage.latest, 5)

        extra = generator.wave(number, args.batch)
        lineage.finish(extra)
        incr_ms, _ = timed(lambda: lineage.why(component, pinned[:8]))
        figures: dict[str, float] = {
            "records": written,
            "write_per_s": round(written / write_s),
            "reserve_per_s": round((written + len(extra)) / generator.reserve_s),
            "end_to_end_per_s": round(
                written / (write_s + generator.reserve_s * written / (written + len(extra)))
            ),
            "why_cold_ms": round(cold_ms, 1),
            "why_warm_ms": round(statistics.median(warm), 2),
            "why_incr_ms": round(incr_ms, 1),
            "tree_warm_ms": round(tree_ms, 2),
            "tree_size": size,
            "why_results": len(found),
            "get_ms": round(get_ms, 2),
            "latest_ms": round(latest_ms, 1),
            "git_dir_mib": round(
                sum(f.stat().st_size for f in (work / "defs" / ".git").rglob("*") if f.is_file()) / 2**20
            ),
        }
        say(f"  why warm {figures['why_warm_ms']} ms, tree of {size} composes {figures['tree_warm_ms']} ms")
        misses = [
            k
            for k, limit in TARGETS.items()
            if (figures[k] < limit if k.endswith("_per_s") else figures[k] > limit)
        ]
        if misses:
            say("  target missed: " + ", ".join(misses))
        print(json.dumps(figures, sort_keys=True))
        return 0
    finally:
        if args.keep:
            say(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
