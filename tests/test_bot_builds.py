"""The bot follows sources: one merge request per (component, source) whose source (with what it
inherits) holds a newer build than a pin, security first, idempotent; a source that went back is
reported, never bumped. On the local forge, with sources made by rpmbuild and createrepo_c."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest

from pipeline import cli
from pipeline.bot.forge_local import LocalForge
from pipeline.git.repo import open_repo
from pipeline.records.source_history import SourceHistory
from tests import source_world as world

BASE, EXTRAS = "modules/base/f42.yaml", "modules/extras/1.yaml"


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


def reconcile(capsys: pytest.CaptureFixture[str], dist: Path, *more: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = factory(capsys, "bot", "reconcile", "--repo", str(dist), "--json", *more)
    return code, json.loads(out)


def changed_lines(dist: Path, mr_id: str) -> list[tuple[str, str, str]]:
    """(path, old line, new line) of every line the MR's commit changes against its parent."""
    git = pygit2.Repository(str(dist))
    commit = git[LocalForge(open_repo(dist)).record(mr_id)["commit"]].peel(pygit2.Commit)
    found = []
    for patch in git.diff(commit.parents[0], commit):
        assert patch is not None
        removed = [ln.content for h in patch.hunks for ln in h.lines if ln.origin == "-"]
        added = [ln.content for h in patch.hunks for ln in h.lines if ln.origin == "+"]
        assert len(removed) == len(added)
        found += [(patch.delta.new_file.path, r, a) for r, a in zip(removed, added, strict=True)]
    return found


def test_a_newer_build_opens_one_mr_per_component_and_source_security_first(
    dist: Path, sources: world.Sources, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = reconcile(capsys, dist)
    assert code == 0 and report["actions"] == [] and report["errors"] == []
    assert [s["source"] for s in report["sources"]] == ["f42", "f42-updates"]

    sources.security_day()
    code, report = reconcile(capsys, dist)
    assert code == 0, report["errors"]
    assert [(a["action"], a["component"], a["source"], a["labels"]) for a in report["actions"]] == [
        ("open", "glibc", "f42-updates", ["bump", "security"]),
        ("open", "tzdata", "f42-updates", ["bump"]),
    ]
    assert report["actions"][0]["title"] == f"Bump glibc (f42-updates) to 2.41-11.fc42 — {world.SECURITY}"
    assert report["actions"][0]["source_branch"] == "factory/bump-build/glibc/f42-updates"
    # Every module pinning glibc from f42-updates moves; only its build: line changes.
    assert changed_lines(dist, "1") == [
        (BASE, "      build: glibc-2.41-9.fc42  # pinned\n", "      build: glibc-2.41-11.fc42  # pinned\n"),
        (EXTRAS, "      build: glibc-2.41-9.fc42  # pinned\n", "      build: glibc-2.41-11.fc42  # pinned\n"),
    ]
    # tzdata: the pin's build is in f42 (inherited); the newer one in f42-updates.
    assert changed_lines(dist, "2") == [
        (BASE, "      build: tzdata-2025a-1.fc42  # pinned\n", "      build: tzdata-2025b-1.fc42  # pinned\n")
    ]
    mr = LocalForge(open_repo(dist)).get("1")
    assert mr.head == "glibc-2.41-11.fc42" and mr.labels == ("bump", "security")
    text = mr.description
    assert "| `base:f42` | `modules/base/f42.yaml` | `glibc-2.41-9.fc42` | `glibc-2.41-11.fc42` |" in text
    assert "a security update (Important) for CVE-2026-5678" in text
    # Every advisory between the pin and the new build, most urgent first; not the pin's own.
    rows = [line for line in text.splitlines() if line.startswith("| **FEDORA")]
    assert [r.split("**")[1] for r in rows] == [world.SECURITY, world.REGRESSION]
    assert rows[0].endswith(
        "| security | Important | `glibc-2.41-11.fc42` | CVE-2026-5678 "
        "| [2345678](https://bugzilla.redhat.com/show_bug.cgi?id=2345678) |"
    )
    assert "| bugfix | - | `glibc-2.41-10.fc42` | - |" in rows[1]
    assert world.BUGFIX not in text
    # What will be rebuilt: the planner's tiers.
    for node in (
        "binary:glibc-2.41-11.fc42",
        "module:base:f42",
        "module:extras:1",
        "repo:Base",
        "repo:Extras",
    ):
        assert f"`{node}`" in text
    tz = LocalForge(open_repo(dist)).get("2").description
    assert "`repo:Base`" in tz and "`repo:Extras`" not in tz and world.TZDATA in tz

    # Rerun: nothing changes; the source history holds the new state.
    code, again = reconcile(capsys, dist)
    assert code == 0 and again["actions"] == [] and again["sources"] == []
    assert [m.id for m in LocalForge(open_repo(dist)).all()] == ["2", "1"]
    held = SourceHistory(open_repo(dist)).latest("f42-updates", "glibc")
    assert held is not None and held.held is not None and held.held.build.nvr == "glibc-2.41-11.fc42"
    code, out, _ = factory(capsys, "bot", "reconcile", "--repo", str(dist))
    assert code == 0 and "nothing to do" in out


def test_a_newer_build_updates_the_open_mr_and_a_source_that_went_back_is_never_bumped(
    dist: Path, sources: world.Sources, capsys: pytest.CaptureFixture[str]
) -> None:
    sources.publish("f42-updates", ["glibc-2.41-9.fc42", "glibc-2.41-10.fc42"])
    code, report = reconcile(capsys, dist)
    assert [(a["action"], a["component"]) for a in report["actions"]] == [("open", "glibc")]
    assert report["actions"][0]["labels"] == ["bump"]
    sources.security_day()
    code, report = reconcile(capsys, dist, "--component", "glibc")
    assert code == 0
    assert [(a["action"], a["merge_request"], a["labels"]) for a in report["actions"]] == [
        ("update", "1", ["bump", "security"])
    ]
    forge = LocalForge(open_repo(dist))
    assert (
        forge.get("1").head == "glibc-2.41-11.fc42"
        and len(forge.find("factory/bump-build/glibc/f42-updates")) == 1
    )

    code, out, _ = factory(capsys, "mr", "merge", "1", "--repo", str(dist))
    assert code == 0
    assert "glibc-2.41-11.fc42" in (dist / BASE).read_text()
    # Koji untags glibc-2.41-11.fc42: the source went back below the pin.
    sources.publish("f42-updates", ["glibc-2.41-9.fc42", "glibc-2.41-10.fc42"])
    code, report = reconcile(capsys, dist, "--component", "glibc")
    assert code == 1
    assert [a["action"] for a in report["actions"]] == ["error"]
    assert "glibc (f42-updates) went back: its newest build is glibc-2.41-10.fc42" in report["errors"][0]
    assert [m.id for m in forge.all()] == ["1"]
    code, out, _ = factory(capsys, "bot", "reconcile", "--repo", str(dist), "--component", "glibc")
    assert code == 1 and "error: glibc (f42-updates) went back" in out


def test_dry_run_records_and_opens_nothing(
    dist: Path, sources: world.Sources, capsys: pytest.CaptureFixture[str]
) -> None:
    sources.security_day()
    code, out, _ = factory(capsys, "bot", "reconcile", "--repo", str(dist), "--dry-run")
    assert code == 0
    assert f"would open: Bump glibc (f42-updates) to 2.41-11.fc42 — {world.SECURITY} [bump, security]" in out
    git = pygit2.Repository(str(dist))
    assert [r for r in git.references if r.startswith(("refs/history/", "refs/factory/"))] == []
