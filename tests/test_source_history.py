"""Source history in Git: what each binary package source held (the newest build of every
package, and the advisories naming it), recorded by `factory history record`, read back by
`factory history show --source`, and plain Git for `git log`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import cli
from pipeline.bot import source_state
from pipeline.git.repo import open_repo
from pipeline.records.history import BranchHistory
from pipeline.records.source_history import SourceHistory, package_path
from pipeline.workspace import Workspace
from tests import source_world as world


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[world.Sources]:
    sources = world.Sources(tmp_path_factory.mktemp("sources"))
    sources.build_all()
    yield sources


@pytest.fixture
def sources(built: world.Sources) -> world.Sources:
    built.day0()
    return built


@pytest.fixture
def dist(sources: world.Sources, tmp_path: Path) -> Path:
    return world.make_dist(tmp_path / "dist", sources.top)


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def record(capsys: pytest.CaptureFixture[str], dist: Path) -> dict[str, Any]:
    code, out, err = factory(capsys, "history", "record", "--repo", str(dist), "--json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def git(dist: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(dist), *argv], capture_output=True, text=True, check=True).stdout


def test_record_keeps_the_newest_build_of_each_package_and_only_what_changed(
    dist: Path, sources: world.Sources, capsys: pytest.CaptureFixture[str]
) -> None:
    first = record(capsys, dist)
    assert [(s["source"], s["packages"]) for s in first["sources"]] == [("f42", 3), ("f42-updates", 1)]
    assert record(capsys, dist)["sources"] == []  # nothing changed: nothing recorded
    sources.security_day()
    second = record(capsys, dist)
    (updates,) = second["sources"]
    assert updates["changes"] == [
        {
            "package": "glibc",
            "old": "glibc-2.41-9.fc42",
            "new": "glibc-2.41-11.fc42",
            "advisories": [world.SECURITY],
        },
        {"package": "tzdata", "old": None, "new": "tzdata-2025b-1.fc42", "advisories": [world.TZDATA]},
    ]
    code, out, _ = factory(capsys, "history", "record", "--repo", str(dist))
    assert code == 0 and "0 of 2 sources changed" in out

    # Plain Git: one commit per change, the message names it, a file per package.
    log = git(dist, "log", "--format=%s", "refs/history/sources/f42-updates").splitlines()
    assert log == [
        "f42-updates: 2 packages changed",
        f"f42-updates: glibc new at 2.41-9.fc42 ({world.BUGFIX})",
    ]
    # One package's history, as the README tells it: `git log -p REF -- '*/glibc.json'`.
    glibc_log = git(
        dist, "log", "-p", "--format=%s", "refs/history/sources/f42-updates", "--", "*/glibc.json"
    )
    assert '+{"build":"glibc-2.41-11.fc42"' in glibc_log and '-{"build":"glibc-2.41-9.fc42"' in glibc_log
    assert "tzdata" not in glibc_log.split("\n", 1)[1]  # the diff holds glibc's file alone
    body = git(dist, "log", "-1", "--format=%b", "refs/history/sources/f42-updates")
    assert f"glibc 2.41-9.fc42 -> 2.41-11.fc42 ({world.SECURITY})" in body
    changed = git(dist, "show", "--name-only", "--format=", "refs/history/sources/f42-updates").split()
    assert changed == sorted([package_path("glibc"), package_path("tzdata"), "source.json"])
    glibc = json.loads(git(dist, "show", f"refs/history/sources/f42-updates:{package_path('glibc')}"))
    assert glibc["build"] == "glibc-2.41-11.fc42"
    assert [(a["id"], a["type"], a["severity"]) for a in glibc["advisories"]] == [
        (world.SECURITY, "security", "Important")
    ]
    # The advisory's package list is cut to the build's RPMs.
    assert {p[6] for c in glibc["advisories"][0]["collections"] for p in c["packages"]} == {
        "glibc-2.41-11.fc42.src.rpm"
    }
    state = json.loads(git(dist, "show", "refs/history/sources/f42-updates:source.json"))
    assert [r["arch"] for r in state["repositories"]] == ["x86_64"]
    assert str(dist) not in json.dumps(state)  # no path of this machine beyond factory.yaml's URL
    # Branch history does not take the sources for branches.
    assert BranchHistory(open_repo(dist)).tracked() == []


def record_at(dist: Path, when: int) -> None:
    """What `factory history record` records of the sources, at a time of the test's choosing."""
    ws = Workspace.open(str(dist))
    read = source_state.observe(ws.load("HEAD", check_distgit=False), dist, {})
    source_state.record(SourceHistory(ws.repo), read, when)


def test_show_answers_which_build_a_source_held_at_a_time(
    dist: Path, sources: world.Sources, capsys: pytest.CaptureFixture[str]
) -> None:
    then = 1_700_000_000
    record_at(dist, then)
    sources.security_day()
    record_at(dist, then + 3600)

    code, out, _ = factory(capsys, "history", "show", "--repo", str(dist), "--source", "f42-updates", "glibc",
                           "--at", f"@{then + 10}")  # fmt: skip
    assert code == 0 and out.startswith("glibc-2.41-9.fc42  (observed ") and world.BUGFIX in out
    code, out, _ = factory(
        capsys, "history", "show", "--repo", str(dist), "--source", "f42-updates", "glibc", "--json"
    )
    shown = json.loads(out)
    assert code == 0 and shown["build"] == "glibc-2.41-11.fc42"
    assert shown["advisories"] == [
        {"id": world.SECURITY, "type": "security", "severity": "Important", "cves": [world.CVE]}
    ]
    code, out, _ = factory(
        capsys, "history", "show", "--repo", str(dist), "--source", "f42-updates", "glibc", "--all"
    )
    assert code == 0 and [line.split()[1] for line in out.splitlines()] == [
        "glibc-2.41-11.fc42",
        "glibc-2.41-9.fc42",
    ]
    code, out, _ = factory(capsys, "history", "show", "--repo", str(dist), "--source", "f42-updates", "tzdata",
                           "--at", f"@{then + 10}")  # fmt: skip
    assert code == 0 and out.startswith("f42-updates held no build of tzdata")

    code, _, err = factory(
        capsys, "history", "show", "--repo", str(dist), "--source", "f42-updates", "glibcc"
    )
    assert code == 2 and "glibcc" in err and "glibc" in err
    code, _, err = factory(capsys, "history", "show", "--repo", str(dist), "--source", "f42-update", "glibc")
    assert code == 2 and "f42-updates" in err
    code, _, err = factory(
        capsys, "history", "show", "--repo", str(dist), "--source", "f42", "glibc", "--at", "@1"
    )
    assert code == 2 and "not observed" in err


def test_a_package_record_is_canonical_json_a_line_for_the_build_and_each_advisory() -> None:
    from pipeline.core import advisories
    from pipeline.core.canonical import canonical_json
    from pipeline.core.packages import Build, Held
    from pipeline.records.source_history import package_file, parse_package

    package = advisories.AdvisoryPackage(
        "gl\u00e9bc", 1, "2.41", "11.fc42", "x86_64", "f.rpm", "gl\u00e9bc-2.41-11.fc42.src.rpm"
    )
    other = advisories.AdvisoryPackage("other", 0, "1", "1", "noarch", "o.rpm", "other-1-1.src.rpm")
    note = advisories.Advisory(
        'FEDORA-"1"', "security", severity="Important",
        collections=(advisories.PackageList("F42", "Fedora 42", (package, other)),),
    )  # fmt: skip
    held = Held(Build("gl\u00e9bc", 1, "2.41", "11.fc42"), (note,))
    data = package_file(held)
    lines = data.decode().splitlines()
    value = json.loads(data)
    assert lines[0] == canonical_json({k: v for k, v in value.items() if k != "advisories"})[:-1] + ","
    assert lines[2] == canonical_json(value["advisories"][0]) and len(lines) == 4
    assert [p[0] for c in value["advisories"][0]["collections"] for p in c["packages"]] == ["gl\u00e9bc"]
    assert parse_package(data).build == held.build
    assert package_file(parse_package(data)) == data  # written, read, written: the same bytes
