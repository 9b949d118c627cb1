#!/usr/bin/env python3
"""The build pipeline overview at Fedora scale: `factory site` and `factory status` on the tree of
bench/plan_scale.py (its generator, same seed) with synthesized lineage.

Commit 1 is plan_scale's tree (about 24,000 nodes); every node gets one FINISHED compose of it,
written the way bench/lineage_scale.py writes records (`Lineage.finish` in batches, tier by
tier, each input the latest good of its node; builds with two RPMs, modules and repos with
repodata files) and promoted to latest good; module and repo composes get check results, the
variant repos a live release. Then: three modules fail a recompose, the head of 100 dist-git
branches moves (branch history), two compose IDs are reserved and not finished (running), and
commit 2 moves one pin whose new build fails (what it feeds is blocked). HEAD is commit 2.

Measured (fresh `factory` subprocesses):

- site_cold_s   `factory site DIR`, lineage index removed first (it is rebuilt from the notes)
- site_warm_s   the same with the index up to date (median of --repeat runs); each run writes
                a new directory, as the pages job does in a fresh clone
- site_replace_s  once more into the directory of a warm run: the old site is removed whole
- site_files / site_mib   what the site holds; largest_page_kib: its largest file; parts_mb:
                its MB by top directory and file type
- status_s      `factory status base-runtime` (warm)
- *_cpu_s       the user + system time of those commands: on a machine shared with other work
                the wall time grows with its load, the CPU time hardly
- peak_rss_mib  peak RSS of the warm site run

Progress goes to stderr; the last line on stdout is one JSON object with the figures.

    .venv/bin/python bench/site_scale.py
    .venv/bin/python bench/site_scale.py --components 600 --modules 40 --variants 6 --images 12
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

sys.path.insert(0, str(Path(__file__).resolve().parent))

import plan_scale  # the generator of the Fedora-scale tree, beside this file

from pipeline.core.graph import Graph
from pipeline.core.records import InputRef, OutputFile, Record, compose_name, outputs_digest
from pipeline.core.states import CheckState, ComposeStatus, ReleaseStatus
from pipeline.git import repo as gitrepo
from pipeline.records import checks as results
from pipeline.records import releases as release_notes
from pipeline.records.history import BranchHistory
from pipeline.records.lineage import Lineage
from pipeline.workspace import Workspace

DATE = "20261121"
BATCH = 2000


def log(message: str) -> None:
    sys.stderr.write(f"[site_scale] {message}\n")
    sys.stderr.flush()


def sha(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def stamp(serial: int) -> str:
    return f"2026-11-21T{10 + serial // 3600 % 10:02d}:{serial // 60 % 60:02d}:{serial % 60:02d}Z"


class Synth:
    """Records made the executor's way, with compose IDs of their own (respin = serial)."""

    def __init__(self, lineage: Lineage, graph: Graph, commit: str) -> None:
        self.lineage, self.graph, self.commit = lineage, graph, commit
        self.latest: dict[str, Record] = {}
        self.serial = 0

    def record(
        self, node_id: str, status: ComposeStatus = ComposeStatus.FINISHED, message: str = ""
    ) -> Record:
        node = self.graph.nodes[node_id]
        self.serial += 1
        cid = f"FL-42-{compose_name(node.id)}-{DATE}.n.{self.serial}"
        inputs = tuple(
            InputRef(i, self.latest[i].compose_id, self.latest[i].outputs_digest)
            for i in node.inputs
            if i in self.latest
        )
        if node.kind == "build":
            definition = node.definition
            pins: tuple[tuple[str, str], ...] = ((str(definition["component"]), str(definition["ref"])),)
            names = [
                f"{definition['component']}-1.0-1.fl42.noarch.rpm",
                f"{definition['component']}-1.0-1.fl42.src.rpm",
            ]
        else:
            pins = (
                tuple(sorted({p for i in inputs for p in self.latest[i.node].pins}))
                if node.kind == "module"
                else ()
            )
            names = ["repo/repodata/repomd.xml", "repo/repodata/primary.xml.gz", "modules.yaml"]
        outputs = tuple(
            OutputFile(f"composes/{cid}/{name}", 1000 + len(name), sha(cid, name)) for name in names
        )
        return Record(
            cid, node_id, node.digest, sha("key", cid), self.commit, inputs, pins, outputs, outputs_digest(outputs),
            (("factory", "0.1.0"), ("rpmbuild", "4.18.0")), stamp(self.serial), stamp(self.serial), status, message,
        )  # fmt: skip

    def finish(self, records: Sequence[Record], promote: bool = True) -> None:
        for start in range(0, len(records), BATCH):
            self.lineage.finish(records[start : start + BATCH])
        for record in records:
            if promote and record.status == ComposeStatus.FINISHED:
                self.lineage.promote(record.node, record.compose_id)
                self.latest[record.node] = record


def synthesize(
    root: Path, graph: Graph, commit: str, dist: plan_scale.Distribution, rng: random.Random
) -> dict[str, Any]:
    lineage = Lineage(root)
    synth = Synth(lineage, graph, commit)
    for tier in graph.tiers(graph.nodes):
        synth.finish([synth.record(n) for n in tier])
    log(f"{synth.serial} composes finished and promoted")
    checked = {
        r.compose_id: [
            results.TestResult(check, CheckState.PASSED, "", r.started, r.finished) for check in checks
        ]
        for r in synth.latest.values()
        for checks in [
            {"module": ["repoclosure"], "repo": ["repoclosure", "install"]}.get(r.node.split(":")[0], [])
        ]
        if checks
    }
    results.record(lineage, checked)
    releases: dict[str, list[release_notes.ReleaseEntry]] = {}
    for variant in dist.variants:
        record = synth.latest[f"repo:{variant.uid}"]
        where = root / "releases" / variant.uid / record.compose_id
        where.mkdir(parents=True)
        (where.parent / "latest").symlink_to(record.compose_id)
        path = release_notes.recorded_path(lineage, where)
        releases[record.compose_id] = [
            release_notes.ReleaseEntry(ReleaseStatus.RELEASED, path, record.finished, signed_by="BENCH")
        ]
    release_notes.append(lineage, releases)
    modules = sorted(n for n in graph.nodes if n.startswith("module:"))
    failing = rng.sample(modules[1:], 3)
    synth.finish(
        [
            synth.record(n, ComposeStatus.FAILED, f"gate fail: repoclosure FAILED; owners: {n}")
            for n in failing
        ],
        promote=False,
    )
    running = []
    for node in rng.sample(modules, 2):
        running.append(lineage.reserve("FL", "42", compose_name(node), "20261122", "nightly", commit))
    history = BranchHistory(gitrepo.open_repo(root))
    moved = rng.sample([(c, m) for m in dist.modules for c in m.refs], 100)
    for component, _ in moved:
        history.record(component, plan_scale.BRANCH, plan_scale.new_ref(rng), 1_790_000_000)
    lineage.close()
    return {"composes": synth.serial, "failing": failing, "running": running, "moved": len(moved)}


@dataclass(frozen=True)
class Timed:
    seconds: float  # wall time
    cpu: float  # user + system time of the command itself: what the machine's other load does not change
    maxrss_mib: float
    stdout: str


def run(args: Sequence[str]) -> Timed:
    """Run a command; its wall and CPU time, peak RSS (wait4: its own, not its children's) and stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(args), stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{stderr[-4000:]}")
    return Timed(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout)


def fail_new_build(root: Path, graph: Graph, commit: str) -> str:
    """Record a failed compose of the one build node commit 2 adds."""
    new = sorted(set(graph.nodes) - set(Lineage(root).latest()))
    build = next(n for n in new if n.startswith("build:"))
    lineage = Lineage(root)
    synth = Synth(lineage, graph, commit)
    synth.serial = 10**6
    synth.finish([synth.record(build, ComposeStatus.FAILED, "rpmbuild failed")], promote=False)
    lineage.close()
    return build


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--components", type=int, default=23_000)
    parser.add_argument("--modules", type=int, default=1_000)
    parser.add_argument("--variants", type=int, default=40)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR (new or empty) and keep it")
    args = parser.parse_args(argv)
    root = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="factory-site-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        return bench(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def bench(args: argparse.Namespace, root: Path) -> int:
    start = time.perf_counter()
    rng = random.Random(args.seed)
    dist = plan_scale.generate(args.components, args.modules, args.variants, args.images, args.seed)
    files = plan_scale.render(dist)
    plan_scale.write_files(root, files)
    repo = pygit2.init_repository(str(root), initial_head="main")
    first = plan_scale.commit(
        repo, sorted(files), "Fedora-scale benchmark definitions", plan_scale.COMMIT_TIME
    )
    graph = Workspace.open(root).graph("HEAD")
    log(f"generated {len(graph.nodes)} nodes in {time.perf_counter() - start:.1f}s")
    start = time.perf_counter()
    made = synthesize(root, graph, first, dist, rng)
    changed = dist.modules[1]
    component = next(iter(changed.refs))
    changed.refs[component] = plan_scale.new_ref(random.Random(args.seed + 1))
    files[changed.path] = plan_scale.module_yaml(changed, dist.modules).encode()
    plan_scale.write_files(root, {changed.path: files[changed.path]})
    second = plan_scale.commit(
        repo, [changed.path], f"{changed.name}: move {component}", plan_scale.COMMIT_TIME + 60
    )
    blocked_by = fail_new_build(root, Workspace.open(root).graph("HEAD"), second)
    lineage_s = time.perf_counter() - start
    log(f"lineage synthesized in {lineage_s:.1f}s: {made['composes']} composes; {blocked_by} failed at HEAD")

    factory = plan_scale.factory_command()
    index = root / ".git" / "factory" / "lineage.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    # Into a new directory each time, as the pages job does in a fresh clone.
    cold = run([*factory, "site", str(root / "public-cold"), "--repo", str(root), "--json"])
    log(f"site cold (index rebuilt from the notes): {cold.seconds:.2f}s")
    warm = [
        run([*factory, "site", str(root / f"public-{n}"), "--repo", str(root), "--json"])
        for n in range(args.repeat)
    ]
    log(f"site warm: {', '.join(f'{r.seconds:.2f} ({r.cpu:.2f} CPU)' for r in warm)} s")
    site = root / "public-0"
    replace = run([*factory, "site", str(site), "--repo", str(root), "--json"])
    log(f"site replacing the one made before: {replace.seconds:.2f}s")
    written = json.loads(warm[-1].stdout)
    status = [run([*factory, "status", "base-runtime", "--repo", str(root)]) for _ in range(args.repeat)]
    log(f"status base-runtime: {', '.join(f'{r.seconds:.2f}' for r in status)} s")

    overview = json.loads((site / "status.json").read_text())
    counts = overview["counts"]
    if counts["failed"] != 4 or counts["running"] != 2 or not counts["blocked"] or not counts["out-of-date"]:
        raise SystemExit(f"unexpected counts: {counts}")
    if overview["failures"][0] != blocked_by:
        raise SystemExit(f"the most blocking failure should come first: {overview['failures']}")
    sizes = [p.stat().st_size for p in site.rglob("*") if p.is_file()]
    parts: dict[str, int] = {}  # bytes by top directory (builds, components, lists, nodes, ...) and kind
    for path in site.rglob("*"):
        if path.is_file():
            top = path.relative_to(site).parts[0] if len(path.relative_to(site).parts) > 1 else "root"
            key = f"{top} {path.suffix.lstrip('.') or 'other'}"
            parts[key] = parts.get(key, 0) + path.stat().st_size
    figures = {
        "site_cold_s": round(cold.seconds, 2),
        "site_warm_s": round(statistics.median(r.seconds for r in warm), 2),
        "site_files": written["files"],
        "site_mib": round(written["bytes"] / 2**20, 1),
        "largest_page_kib": round(max(sizes) / 1024, 1),
        "parts_mb": {k: round(v / 1e6, 1) for k, v in sorted(parts.items())},
        "site_warm_cpu_s": round(statistics.median(r.cpu for r in warm), 2),
        "site_cold_cpu_s": round(cold.cpu, 2),
        "site_replace_s": round(replace.seconds, 2),
        "status_s": round(statistics.median(r.seconds for r in status), 2),
        "status_cpu_s": round(statistics.median(r.cpu for r in status), 2),
        "peak_rss_mib": round(max(r.maxrss_mib for r in warm), 1),
        "nodes": written["nodes"],
        "composes": made["composes"] + 4,
        "counts": counts,
        "lineage_synth_s": round(lineage_s, 1),
        "site_warm_runs": [round(r.seconds, 2) for r in warm],
        "repo": str(root) if args.keep else None,
    }
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
