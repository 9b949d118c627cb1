"""Benchmark: full, no-op and one-pin-bump composes of a synthetic distribution.

Generates a distribution of tiny noarch RPMs (by default 200 modules of 2 components each, and
4 variants shipping 50 to 200 of them; the first variant also makes an OSTree commit and the
second a container image, each of one package) with real dist-git repositories, then times
`factory compose` three ways in fresh processes: everything from nothing, again with nothing
changed, and after one pin moved to a new dist-git commit. The bumped component is in every
variant's repo and in no image. Wall and CPU time (of factory and every process it starts) are
measured: the machine is shared, CPU time is the stable figure. Progress goes to stderr; the
last line on stdout is one JSON object:

    {"full_s": ..., "full_cpu_s": ..., "noop_s": ..., "bump_s": ..., "bump_cpu_s": ...,
     "bump_ratio": ..., "bump_cpu_ratio": ..., "bump_images_composed": ..., "nodes": ..., ...}

Targets: bump_ratio = bump_s / full_s <= 0.05, noop_s <= 2 s, bump_images_composed = 0.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pygit2

from pipeline.git import distgit as distgits

AUTHOR = ("Bench Packager", "bench@example.invalid")
EPOCH = 1767225600
SPEC = """Name:           {name}
Version:        1.{n}
Release:        {release}%{{?dist}}
Summary:        Benchmark package {name}
License:        MIT
BuildArch:      noarch
{requires}
%description
Benchmark package {name}.

%install
mkdir -p %{{buildroot}}%{{_datadir}}/{name}
echo {name} > %{{buildroot}}%{{_datadir}}/{name}/README

%files
%{{_datadir}}/{name}/README
"""


def log(message: str) -> None:
    sys.stderr.write(f"[compose_incremental] {message}\n")
    sys.stderr.flush()


def commit_files(root: Path, files: dict[str, str], message: str) -> str:
    repo = pygit2.Repository(str(root)) if (root / ".git").exists() else pygit2.init_repository(str(root))
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        repo.index.add(path)
    repo.index.write()
    signature = pygit2.Signature(*AUTHOR, EPOCH, 0)
    parents = [] if repo.head_is_unborn else [repo.head.target]
    return str(repo.create_commit("HEAD", signature, signature, message, repo.index.write_tree(), parents))


def generate(root: Path, modules: int, per_module: int, variants: int) -> tuple[str, str]:
    """Write the dist-git repositories and the definitions; the first component's pin and new head."""
    distgit = root / ".factory" / "distgit"
    pins: dict[str, str] = {}
    bumped = ("", "")
    for m in range(modules):
        for c in range(per_module):
            name = f"pkg{m:03d}-{c}"
            requires = f"Requires:       pkg{m - 1:03d}-0\n" if m and c == 0 else ""
            commits = [
                distgits.CommitSpec(
                    "import",
                    "main",
                    f"Import {name}\n",
                    {f"{name}.spec": SPEC.format(name=name, n=m, release=1, requires=requires).encode()},
                    EPOCH,
                )
            ]
            if m == 0 and c == 0:  # the one that moves: a second commit on its branch
                commits.append(
                    distgits.CommitSpec(
                        "fix",
                        "main",
                        f"Fix {name}\n",
                        {f"{name}.spec": SPEC.format(name=name, n=m, release=2, requires="").encode()},
                        EPOCH + 86400,
                    )
                )
            heads = distgits.write_history(distgit / f"{name}.git", commits, {}, AUTHOR)
            repo = pygit2.Repository(str(distgit / f"{name}.git"))
            first = repo.revparse_single("main~1" if len(commits) > 1 else "main").id
            pins[name] = str(first)
            if len(commits) > 1:
                bumped = (str(first), heads["main"])
    files = {
        "factory.yaml": (
            "document: factory-config\nversion: 1\n"
            'release: {name: Bench Linux, short: BL, version: "1"}\n'
            "dist: .bl1\ndistgit: {url: '.factory/distgit/{component}.git'}\noutput: {dir: .factory/output}\n"
        )
    }
    for m in range(modules):
        comps = "".join(
            f"    pkg{m:03d}-{c}:\n      ref: {pins[f'pkg{m:03d}-{c}']}\n      branch: main\n"
            for c in range(per_module)
        )
        requires = f'dependencies:\n  requires:\n    mod{m - 1:03d}: "1"\n' if m else ""
        files[f"modules/mod{m:03d}/1.yaml"] = (
            f'document: factory-module\nversion: 1\nname: mod{m:03d}\nstream: "1"\n'
            f"summary: Benchmark module {m}\ndescription: Benchmark module {m}.\nlicense: MIT\n"
            f"eol: {2030 - m // 100}-01-01\n{requires}components:\n  rpms:\n{comps}"
            f"profiles:\n  default:\n    rpms: [pkg{m:03d}-0]\n"
        )
    for v in range(variants):
        top = modules - 1 - (v * modules) // (2 * variants)  # nested selections, requires pull in the rest
        files[f"variants/V{v}.yaml"] = (
            f'document: factory-variant\nversion: 1\nuid: V{v}\nname: Variant {v}\nrelease: "1"\n'
            f"eol: 2027-01-01\narches: [x86_64]\nmodules:\n  - module: mod{top:03d}:1\n    profiles: [default]\n"
            "outputs:\n  - kind: repo\n    name: os\n" + _image(v, top)
        )
    commit_files(root, files, "Benchmark definitions\n")
    return bumped


def _image(variant: int, top: int) -> str:
    # One image of one package that requires nothing: the bumped pkg000-0 is in none of them.
    if variant == 0:
        return f"  - kind: ostree\n    name: host\n    options:\n      packages: [pkg{top:03d}-1]\n"
    if variant == 1:
        return f"  - kind: container\n    name: base\n    options:\n      packages: [pkg{top:03d}-1]\n"
    return ""


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(root: Path, *argv: str) -> tuple[float, float, dict[str, object]]:
    cpu = _cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *argv, "--repo", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"factory {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    return seconds, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=200)
    parser.add_argument("--per-module", type=int, default=2)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="generate here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compose-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        old, new = generate(root, args.modules, args.per_module, args.variants)
        log(f"generated {args.modules} modules in {time.perf_counter() - start:.1f}s")
        workers = ("--workers", str(args.workers))
        full_s, full_cpu, full = timed(root, "compose", "--json", *workers)
        nodes = full.get("nodes", [])
        assert isinstance(nodes, list)
        log(f"full compose: {full_s:.1f}s ({full_cpu:.1f}s CPU), {len(nodes)} nodes")
        noop_s, noop_cpu, noop = timed(root, "compose", "--json", *workers)
        noop_nodes = noop.get("nodes", [])
        assert isinstance(noop_nodes, list)
        assert all(n["status"] == "SKIPPED" for n in noop_nodes), "a no-op compose composed something"
        log(f"no-op compose: {noop_s:.2f}s ({noop_cpu:.2f}s CPU)")
        path = root / "modules" / "mod000" / "1.yaml"
        path.write_text(path.read_text().replace(old, new))
        commit_files(root, {"modules/mod000/1.yaml": path.read_text()}, "Bump pkg000-0\n")
        bump_s, bump_cpu, bump = timed(root, "compose", "--json", *workers)
        bump_nodes = bump.get("nodes", [])
        assert isinstance(bump_nodes, list)
        ran = sorted(n["node"] for n in bump_nodes if n["status"] == "COMPOSED")
        images = [n for n in ran if n.split(":", 1)[0] in ("ostree", "container", "iso")]
        log(f"one-pin bump: {bump_s:.2f}s ({bump_cpu:.2f}s CPU), composed {len(ran)}: {', '.join(ran)}")
    figures = {
        "full_s": round(full_s, 2),
        "full_cpu_s": round(full_cpu, 2),
        "noop_s": round(noop_s, 2),
        "noop_cpu_s": round(noop_cpu, 2),
        "bump_s": round(bump_s, 2),
        "bump_cpu_s": round(bump_cpu, 2),
        "bump_ratio": round(bump_s / full_s, 4),
        "bump_cpu_ratio": round(bump_cpu / full_cpu, 4),
        "nodes": len(nodes),
        "bump_composed": len(ran),
        "bump_images_composed": len(images),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "meets_targets": bump_s / full_s <= 0.05 and noop_s <= 2.0 and not images,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
