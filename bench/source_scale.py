#!/usr/bin/env python3
"""A binary package source at scale: reading a generated repository of --packages packages.

The repository (deterministic) is metadata only, written with createrepo_c's API: a primary.xml
of --packages binary packages (builds of 4 subpackages, a fifth of the source packages with an
older build beside the newest, each package with requires, provides and files as Fedora's have
them) and an updateinfo.xml of one advisory per 50 builds. Figures, each the median of --runs:

- cr_parse_s        the reference: createrepo_c's own parser reading that primary.xml
                    (`cr.xml_parse_primary`, files skipped, a callback that keeps nothing)
- read_cold_s       factory reading the source as a compose or validate does with an empty
                    cache: librepo fetches repomd.xml, primary.xml and updateinfo.xml (checked
                    against repomd.xml), createrepo_c parses them, the reading is cached
- ratio_cold        read_cold / cr_parse in CPU time, each pair measured back to back, the
                    median of the runs' ratios (target: at most 2); `*_cpu_s` the medians
- read_warm_s       the same repomd.xml again: the cached reading (what every later run pays)
- newest_s          the newest build of each package by rpm.labelCompare, with the advisories
                    naming it: what the history of a source will record (and diff)
- http_cold_s       read_cold_s with the repository served over HTTP on 127.0.0.1 (--http)
- diff_cpu_s        the source moved on (--changed packages have a newer build, with an
                    advisory each): read again with an empty cache, the newest build of every
                    package with its advisories, compared with the source history recorded in
                    Git before and the change recorded (`factory history record`'s work for one
                    source); `ratio_diff` is diff / cr_parse in CPU time, pairs measured back to
                    back, the median of the runs' ratios (target: at most 2)
- bump_plan_s       the plan of a bump against that source: in a definitions repository whose
                    module pins an older build of one of its packages (its reading cached, its
                    history recorded), what `factory bot reconcile` does for it: the source read
                    (repomd.xml asked again, its cached reading loaded), the newest build of
                    every package, the pin found behind, the advisories in between and the plan
                    of the bump; `version_s` is `factory --version` as a process, the reference;
                    `ratio_bump` their ratio (target: at most 2)
- reconcile_s       the whole `factory bot reconcile --dry-run` as a process, for comparison
                    (most of it is starting Python and importing pygit2, librepo, createrepo_c,
                    rpm and jsonschema's compiled validators)

Progress goes to stderr; the last line on stdout is one JSON object with the figures.

    .venv/bin/python bench/source_scale.py                     # 20,000 packages
    .venv/bin/python bench/source_scale.py --packages 2000 --runs 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import createrepo_c as cr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.http_files

from pipeline.core import advisories, packages
from pipeline.tools import rpmlib, updateinfo, yumrepo
from tests.http_files import serve


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def generate(directory: Path, count: int, changed: int = 0) -> None:
    """A yum repository's metadata: primary.xml (and updateinfo.xml) of `count` packages; the
    first `changed` source packages with a newer build (release 9) and an advisory each."""
    repodata = directory / "repodata"
    repodata.mkdir(parents=True)
    primary_path = repodata / "primary.xml.gz"
    primary = cr.PrimaryXmlFile(str(primary_path), cr.GZ_COMPRESSION)
    primary.set_num_of_pkgs(count)
    notes = []
    made = 0
    build = 0
    while made < count:
        name = f"pkg{build:05d}"
        releases = ("1.fc42", "2.fc42") if build % 5 == 0 else ("1.fc42",)
        if build < changed:
            releases = (*releases[:-1], "9.fc42")
        for release in releases:
            srpm = f"{name}-1.{build % 7}-{release}.src.rpm"
            for part in ("", "-libs", "-devel", "-doc"):
                if made == count:
                    break
                arch = "noarch" if part == "-doc" else "x86_64"
                package = cr.Package()
                package.name, package.epoch, package.version, package.release = (
                    name + part,
                    "0",
                    f"1.{build % 7}",
                    release,
                )
                package.arch, package.rpm_sourcerpm = arch, srpm
                package.location_href = (
                    f"Packages/{name[3:5]}/{name}{part}-1.{build % 7}-{release}.{arch}.rpm"
                )
                package.checksum_type = "sha256"
                package.pkgId = hashlib.sha256(package.location_href.encode()).hexdigest()
                package.summary = f"{name}{part}: a package of the bench"
                package.description = "A package whose metadata is as long as a real one's. " * 4
                package.url, package.rpm_license, package.rpm_group = (
                    "https://example.org",
                    "MIT",
                    "Unspecified",
                )
                package.time_file = package.time_build = 1_790_000_000
                package.size_package, package.size_installed, package.size_archive = 123456, 456789, 460000
                package.rpm_header_start, package.rpm_header_end = 4504, 12345
                package.requires = [
                    (f"lib{n}.so.1()(64bit)", None, None, None, None, False) for n in range(8)
                ] + [
                    ("glibc", "GE", "0", "2.41", None, False),
                    (name, "EQ", "0", f"1.{build % 7}", release, False),
                ]
                package.provides = [
                    (name + part, "EQ", "0", f"1.{build % 7}", release, False),
                    (f"lib{name}{part}.so.1()(64bit)", None, None, None, None, False),
                ]
                package.files = [(None, f"/usr/lib64/{name}{part}/", f"file{n}") for n in range(5)]
                primary.add_pkg(package)
                made += 1
            if (build % 50 == 0 or build < changed) and release == releases[-1]:
                notes.append(
                    advisories.Advisory(
                        f"FEDORA-2026-{build:05d}", "security" if build % 100 == 0 else "bugfix",
                        severity="Important" if build % 100 == 0 else "", issued="2026-11-20 10:00:00",
                        references=(advisories.Reference(f"CVE-2026-{build:05d}", "cve"),),
                        collections=(advisories.PackageList("F42", "Fedora 42", (
                            advisories.AdvisoryPackage(name, 0, f"1.{build % 7}", release, "x86_64", src=srpm),)),),
                    )
                )  # fmt: skip
        build += 1
    primary.close()
    info_path = repodata / "updateinfo.xml"
    info_path.write_text(updateinfo.dump(notes), encoding="utf-8")
    repomd = cr.Repomd()
    repomd.set_revision("1790000000")
    for kind, path in (("primary", primary_path), ("updateinfo", info_path)):
        record = cr.RepomdRecord(kind, str(path))
        record.fill(cr.SHA256)
        record.rename_file()
        repomd.set_record(record)
    (repodata / "repomd.xml").write_text(repomd.xml_dump(), encoding="utf-8")


def timed(runs: int, work: Callable[[], Any], *, cpu: bool = False) -> tuple[float, Any]:
    """The median wall (or process CPU) time of `runs` calls, and the last result."""
    clock = time.process_time if cpu else time.perf_counter
    times, result = [], None
    for _ in range(runs):
        start = clock()
        result = work()
        times.append(clock() - start)
    return statistics.median(times), result


def diff_figures(scratch: Path, args: argparse.Namespace) -> dict[str, float]:
    """The source read again after it moved on, and diffed against its recorded history."""
    import pygit2

    from pipeline.git.repo import open_repo
    from pipeline.records.source_history import SourceHistory

    before, after = scratch / "before" / "x86_64", scratch / "after" / "x86_64"
    generate(before, args.packages)
    generate(after, args.packages, args.changed)
    primary = str(next((after / "repodata").glob("*-primary.xml.gz")))
    pairs = []
    for run in range(args.runs):
        git_dir = scratch / f"history-{run}.git"
        pygit2.init_repository(str(git_dir), bare=True)
        history = SourceHistory(open_repo(git_dir))
        cache = scratch / f"cache-{run}"
        old = yumrepo.read(yumrepo.Where("f42", "x86_64", before.as_uri()), root=scratch, cache=cache)
        history.record("f42", packages.newest_with_advisories([old], rpmlib.label_compare), [old.state], 1)

        def cr_parse() -> None:
            cr.xml_parse_primary(primary, pkgcb=lambda p: True, do_files=False)

        def diff(cache: Path = cache, history: SourceHistory = history) -> Any:
            new = yumrepo.read(yumrepo.Where("f42", "x86_64", after.as_uri()), root=scratch, cache=cache)
            held = packages.newest_with_advisories([new], rpmlib.label_compare)
            return history.record("f42", held, [new.state], 2)

        reference, _ = timed(1, cr_parse, cpu=True)
        ours, observed = timed(1, diff, cpu=True)
        assert observed is not None and len(observed.changes) == args.changed, observed
        pairs.append((reference, ours, ours / reference))
    return {
        "diff_cr_parse_cpu_s": statistics.median(p[0] for p in pairs),
        "diff_cpu_s": statistics.median(p[1] for p in pairs),
        "ratio_diff": statistics.median(p[2] for p in pairs),
    }


def bump_figures(scratch: Path, args: argparse.Namespace) -> dict[str, float]:
    """`factory bot reconcile --dry-run` deciding a bump against the source, and its reference."""
    import os
    import subprocess

    factory = str(Path(sys.executable).parent / "factory")
    root = scratch / "dist"
    (root / "modules" / "base").mkdir(parents=True)
    (root / "variants").mkdir()
    (root / "factory.yaml").write_text(
        'document: factory-config\nversion: 1\nrelease: {name: Bench, short: B, version: "42"}\n'
        f'dist: .b42\ndistgit: {{url: "{scratch}/distgit/{{component}}.git"}}\noutput: {{dir: .factory/output}}\n'
        f"sources:\n  f42:\n    baseurl: {scratch / 'after'}/{{arch}}/\n    allow_unsigned: true\n"
    )
    (root / "modules" / "base" / "1.yaml").write_text(
        'document: factory-module\nversion: 1\nname: base\nstream: "1"\nsummary: s\ndescription: d\n'
        "license: MIT\neol: 2030-01-01\ncomponents:\n  rpms:\n    pkg00001:\n      source: f42\n"
        "      build: pkg00001-1.1-1.fc42\n"
    )
    (root / "variants" / "Base.yaml").write_text(
        'document: factory-variant\nversion: 1\nuid: Base\nname: Base\nrelease: "42"\neol: 2030-01-01\n'
        "arches: [x86_64]\nmodules:\n  - module: base:1\noutputs:\n  - kind: repo\n    name: os\n"
    )
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.invalid"}  # fmt: skip
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *argv], cwd=root, env=env, check=True)
    subprocess.run([factory, "history", "record"], cwd=root, check=True, capture_output=True)

    def reconcile() -> Any:
        done = subprocess.run(
            [factory, "bot", "reconcile", "--dry-run", "--json"], cwd=root, check=True, capture_output=True
        )
        return json.loads(done.stdout)

    def version() -> None:
        subprocess.run([factory, "--version"], check=True, capture_output=True)

    report = reconcile()  # warm the caches (the source's reading, the graph cache)
    title = "Bump pkg00001 (f42) to 1.1-9.fc42 — FEDORA-2026-00001"
    assert [a["title"] for a in report["actions"]][:1] == [title], report

    from pipeline.bot import reconcile_builds, source_state
    from pipeline.compose.sources import SourceReader
    from pipeline.records.source_history import SourceHistory
    from pipeline.workspace import Workspace

    ws = Workspace.open(str(root))
    defs, current = ws.load("HEAD", check_distgit=False), ws.graph("HEAD")
    history = SourceHistory(ws.repo)

    def bump() -> Any:
        seen = source_state.read(SourceReader(defs.config, root, {}), ["f42"], ["x86_64"])
        return reconcile_builds.facts(ws.repo, defs, current, "main", seen, history, None, 1_800_000_000)

    (fact,) = bump()
    assert fact.proposal is not None and fact.proposal.title == title
    version()
    pairs = []
    for _ in range(args.runs):
        reference, _ = timed(1, version)
        ours, _ = timed(1, bump)
        whole, _ = timed(1, reconcile)
        pairs.append((reference, ours, ours / reference, whole))
    return {
        "version_s": statistics.median(p[0] for p in pairs),
        "bump_plan_s": statistics.median(p[1] for p in pairs),
        "ratio_bump": statistics.median(p[2] for p in pairs),
        "reconcile_s": statistics.median(p[3] for p in pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--http", action="store_true", help="also read the repository over HTTP")
    parser.add_argument("--changed", type=int, default=20, help="packages with a newer build the second time")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="factory-source-bench-"))
    try:
        repo = scratch / "f42" / "x86_64"
        start = time.perf_counter()
        generate(repo, args.packages)
        say(f"generated {args.packages} packages in {time.perf_counter() - start:.1f}s")
        primary = str(next((repo / "repodata").glob("*-primary.xml.gz")))
        figures: dict[str, Any] = {"packages": args.packages}

        def cr_parse() -> None:
            cr.xml_parse_primary(primary, pkgcb=lambda p: True, do_files=False)

        where = yumrepo.Where("f42", "x86_64", repo.as_uri())

        def cold() -> Any:
            cache = scratch / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            return yumrepo.read(where, root=scratch, cache=cache)

        # Interleaved, each pair measured back to back, in CPU time (the machine is shared).
        pairs = []
        for _ in range(args.runs):
            reference, _ = timed(1, cr_parse, cpu=True)
            ours, read = timed(1, cold, cpu=True)
            pairs.append((reference, ours, ours / reference))
        figures["cr_parse_cpu_s"] = statistics.median(p[0] for p in pairs)
        figures["read_cold_cpu_s"] = statistics.median(p[1] for p in pairs)
        figures["ratio_cold"] = statistics.median(p[2] for p in pairs)
        figures["cr_parse_s"], _ = timed(args.runs, cr_parse)
        figures["read_cold_s"], read = timed(args.runs, cold)
        assert len(read.packages) == args.packages
        figures["read_warm_s"], again = timed(
            args.runs, lambda: yumrepo.read(where, root=scratch, cache=scratch / "cache")
        )
        assert again.packages == read.packages and again.advisories == read.advisories

        def newest() -> int:
            found = packages.newest_builds(read.packages, rpmlib.label_compare)
            by_build: dict[str, list[advisories.Advisory]] = {}
            for note in read.advisories:
                for srpm in {p.src for p in note.packages}:
                    by_build.setdefault(srpm, []).append(note)
            return sum(1 for b in found.values() if by_build.get(b.srpm))

        figures["newest_s"], with_advisories = timed(args.runs, newest)
        figures["builds_with_advisories"] = with_advisories
        figures.update(diff_figures(scratch, args))
        figures.update(bump_figures(scratch, args))
        if args.http:
            with serve(scratch / "f42") as served:
                over = yumrepo.Where("f42", "x86_64", f"{served.url}/x86_64/")

                def http_cold() -> Any:
                    shutil.rmtree(scratch / "cache", ignore_errors=True)
                    return yumrepo.read(over, root=scratch, cache=scratch / "cache")

                figures["http_cold_s"], _ = timed(args.runs, http_cold)
        for key, value in figures.items():
            say(f"{key:>24}: {value:.3f}" if isinstance(value, float) else f"{key:>24}: {value}")
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
