#!/usr/bin/env python3
"""CI at Fedora scale: the pipelines `factory ci generate` writes, and how long it takes.

The tree is bench/plan_scale.py's (deterministic for a seed): by default 23,000 components in
1,000 modules, 40 variants and 100 images. Commit 1 is that tree, commit 2 moves one pin. Two
plans are generated in fresh `factory` subprocesses, each with its parse cache removed first
(a fresh runner's clone) and then warm:

- full   `factory ci generate --base none --head HEAD~1 --out DIR`: everything planned;
- bump   `factory ci generate --base HEAD~1 --head HEAD --out DIR`: the one-pin move.

For each: the number of pipeline files, of compose jobs and of all jobs (the coordinator's too),
the most jobs in one pipeline, the largest `needs:`, the largest file in bytes of text and as
GitLab measures it (`parsed`: Ruby's ObjectSpace.memsize_of of the loaded YAML, when `ruby` is
installed; factory's own upper bound otherwise and beside it), and the seconds `ci generate` took
(median of --repeat runs). Every file is checked against GitLab's CI schema (check-jsonschema)
and factory's own checks of what the schema cannot see; the bench exits if one fails.
Goals: full <= 10 s, bump <= 2 s (cold). Progress goes to stderr; the last line on stdout is one
JSON object with the figures.

    .venv/bin/python bench/ci_scale.py
    .venv/bin/python bench/ci_scale.py --components 600 --modules 40 --variants 6 --images 12
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plan_scale
import pygit2
import yaml

from pipeline.core.batches import Limits
from pipeline.formats import gitlab_ci as ci
from pipeline.formats import gitlab_ci_limits as limits_of

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' helpers: GitLab's schema, Ruby's measure
from tests.gitlab_ci_tools import RUBY, ruby_parsed_bytes, schema_errors  # noqa: E402

TARGETS = {"full_s": 10.0, "bump_s": 2.0}


def log(message: str) -> None:
    sys.stderr.write(f"[ci_scale] {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--components", type=int, default=23_000)
    parser.add_argument("--modules", type=int, default=1_000)
    parser.add_argument("--variants", type=int, default=40)
    parser.add_argument("--images", type=int, default=100, help="image outputs in total across variants")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-jobs", type=int, default=Limits().max_jobs, help="ci generate --max-jobs")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed command (median)")
    parser.add_argument("--keep", metavar="DIR", help="generate into DIR (new or empty) and keep it")
    args = parser.parse_args(argv)
    if args.keep:
        root = Path(args.keep).resolve()
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"{root} is not empty")
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="factory-ci-scale-"))
    try:
        return bench(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def make_repository(args: argparse.Namespace, root: Path) -> str:
    """plan_scale's tree as commit 1, a one-pin move as commit 2; what moved."""
    dist = plan_scale.generate(args.components, args.modules, args.variants, args.images, args.seed)
    files = plan_scale.render(dist)
    plan_scale.write_files(root, files)
    repo = pygit2.init_repository(str(root), initial_head="main")
    plan_scale.commit(repo, sorted(files), "Fedora-scale benchmark definitions", plan_scale.COMMIT_TIME)
    changed, component, old_ref = plan_scale.move_one_pin(dist, files, args.seed)
    plan_scale.write_files(root, {changed.path: files[changed.path]})
    plan_scale.commit(repo, [changed.path], f"{changed.name}: move {component}", plan_scale.COMMIT_TIME + 60)
    (root / ".gitignore").write_text("pipelines-*/\n")
    components = sum(len(m.refs) for m in dist.modules)
    images = sum(len(v.images) for v in dist.variants)
    log(
        f"{components} components, {len(dist.modules)} modules, {len(dist.variants)} variants, {images} images"
    )
    return f"{changed.nsid} {component} {old_ref[:8]} -> {changed.refs[component][:8]}"


def generate(root: Path, name: str, base: str, head: str, args: argparse.Namespace) -> dict[str, Any]:
    """Time `ci generate` cold and warm, then measure and check the files it wrote."""
    out = root / f"pipelines-{name}"
    command = [
        *plan_scale.factory_command(),
        *("ci", "generate", "--repo", str(root), "--base", base, "--head", head),
        *("--max-jobs", str(args.max_jobs), "--out", str(out)),
    ]
    cold, warm = [], []
    for _ in range(max(1, args.repeat)):
        plan_scale.drop_cache(root)
        cold.append(plan_scale.run(command).seconds)
    for _ in range(max(1, args.repeat)):
        warm.append(plan_scale.run(command).seconds)
    log(
        f"{name}: ci generate cold {', '.join(f'{s:.2f}' for s in cold)} s, warm {', '.join(f'{s:.2f}' for s in warm)} s"
    )
    paths = sorted(out.iterdir())
    texts = {p.name: p.read_text() for p in paths}
    problems = limits_of.problems(texts, Limits(max_jobs=args.max_jobs), ci.CHILD)
    if problems:
        raise SystemExit(f"{name}: GitLab would refuse the files:\n" + "\n".join(problems[:20]))
    start = time.perf_counter()
    errors = schema_errors(paths)
    if errors:
        raise SystemExit(f"{name}: the files do not follow GitLab's CI schema:\n{errors[-4000:]}")
    log(f"{name}: {len(paths)} files valid for GitLab's CI schema ({time.perf_counter() - start:.1f} s)")
    loaded = {p.name: yaml.load(p.read_text(), Loader=limits_of.LOADER) for p in paths}
    jobs = {name: limits_of.jobs_of(data) for name, data in loaded.items()}
    compose = [
        j for found in jobs.values() for n, j in found.items() if "trigger" not in j and n != ci.FILES_JOB
    ]
    measured = ruby_parsed_bytes(paths) if RUBY else {}
    figures: dict[str, Any] = {
        "seconds": round(statistics.median(cold), 3),
        "seconds_warm": round(statistics.median(warm), 3),
        "files": len(paths),
        "compose_jobs": len(compose),
        "jobs": sum(len(found) for found in jobs.values()),
        "most_jobs_in_a_pipeline": max(len(found) for found in jobs.values()),
        "largest_needs": max(len(limits_of.need_names(j)) for found in jobs.values() for j in found.values()),
        "largest_file_bytes": max(len(t.encode()) for t in texts.values()),
        "largest_parsed_bytes_estimate": max(limits_of.parsed_bytes(d) for d in loaded.values()),
        "largest_parsed_bytes_ruby": max(measured.values()) if measured else None,
        "cold_runs": [round(s, 3) for s in cold],
        "warm_runs": [round(s, 3) for s in warm],
    }
    log(f"{name}: " + ", ".join(f"{k} {v}" for k, v in figures.items() if not k.endswith("_runs")))
    return figures


def bench(args: argparse.Namespace, root: Path) -> int:
    start = time.perf_counter()
    moved = make_repository(args, root)
    log(f"repository in {root} in {time.perf_counter() - start:.1f} s; commit 2 moves {moved}")
    if RUBY is None:
        log("ruby is not installed: parsed sizes are factory's own upper bound only")
    full = generate(root, "full", "none", "HEAD~1", args)
    bump = generate(root, "bump", "HEAD~1", "HEAD", args)
    result: dict[str, Any] = {
        "full": full,
        "bump": bump,
        "meets_targets": {
            "full_s": full["seconds"] <= TARGETS["full_s"],
            "bump_s": bump["seconds"] <= TARGETS["bump_s"],
        },
        "targets": TARGETS,
        "max_jobs": args.max_jobs,
        "changed": moved,
        "repo": str(root) if args.keep else None,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
