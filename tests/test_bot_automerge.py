"""`automerge: security` (or `all`) on a source: the bot's build bump merges itself once its
pipeline passes. On GitLab (the loopback stand-in) through python-gitlab's
`mr.merge(merge_when_pipeline_succeeds=True)`; on the local forge, after composing the MR's
commit with every check and the gate passing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import cli
from pipeline.bot.forge_gitlab import gitlab_forge
from pipeline.bot.forge_local import LocalForge
from pipeline.bot.reconcile import reconcile
from pipeline.git.repo import open_repo
from pipeline.records.lineage import Lineage
from pipeline.workspace import Workspace
from tests import source_world as world
from tests.gitlab_server import GitLabServer

TOKEN = "glpat-loopback-automerge"
PROJECT = "group/distribution"
GLIBC = "binary:glibc-2.41-11.fc42"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[world.Sources]:
    sources = world.Sources(tmp_path_factory.mktemp("sources"))
    sources.build_all()
    yield sources


@pytest.fixture
def sources(built: world.Sources) -> world.Sources:
    built.day0()
    return built


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def test_the_local_forge_merges_a_security_bump_once_its_compose_passes(
    sources: world.Sources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = world.make_dist(tmp_path / "dist", sources.top, automerge="all")
    code, out, err = factory(capsys, "compose", "--repo", str(dist), "--json")
    assert code == 0, err
    sources.security_day()
    # Bodhi's tzdata RPM is damaged on the mirror: its compose fails, so its MR is not merged.
    tzdata = next(sources.top.glob("f42-updates/x86_64/tzdata-2025b-*.rpm"))
    tzdata.write_bytes(tzdata.read_bytes()[:-100] + b"\0" * 100)

    code, out, _ = factory(capsys, "bot", "reconcile", "--repo", str(dist), "--json")
    report: dict[str, Any] = json.loads(out)
    assert [(a["action"], a["component"], a["state"]) for a in report["actions"]] == [
        ("open", "glibc", "merged"),
        ("open", "tzdata", "opened"),
    ]
    assert code == 1 and len(report["errors"]) == 1
    assert report["errors"][0].startswith("tzdata (f42-updates): !2 is not merged: its pipeline failed: ")
    forge = LocalForge(open_repo(dist))
    assert forge.get("1").state == "merged" and forge.get("2").state == "opened"
    assert "Not merged: its pipeline failed: binary:tzdata-2025b-1.fc42 FAILED" in "\n".join(
        forge.record("2")["notes"]
    )
    assert "glibc-2.41-11.fc42" in (dist / "modules/base/f42.yaml").read_text()  # the checked-out branch
    # The MR's composes were made off the release's branches: latest good waited for the merge ...
    lineage = Lineage(dist, "42")
    assert GLIBC not in lineage.latest()
    # ... and composing the merged branch reuses them by their keys.
    code, out, err = factory(capsys, "compose", "--repo", str(dist), "--json")
    nodes = {n["node"]: n["status"] for n in json.loads(out)["nodes"]}
    assert code == 0, err
    assert nodes[GLIBC] == nodes["module:base:f42"] == nodes["repo:Base"] == "SKIPPED"
    assert GLIBC in Lineage(dist, "42").latest()

    # Rerun: the merged MR stays merged; the failed one is tried again (its source is still bad).
    code, out, _ = factory(capsys, "bot", "reconcile", "--repo", str(dist), "--json")
    again = json.loads(out)
    assert [(a["action"], a["component"]) for a in again["actions"]] == [("merge", "tzdata")]
    assert "!2 is not merged" in again["errors"][0]
    code, out, _ = factory(capsys, "bot", "reconcile", "--repo", str(dist))
    assert code == 1 and "error: tzdata (f42-updates): !2 is not merged" in out


@pytest.fixture
def gitlab(sources: world.Sources) -> Iterator[GitLabServer]:
    tree = world.definitions(sources.top, automerge="security")
    files = {path: data.decode() for path, data in tree.items()} | {".gitlab-ci.yml": "stages: [compose]\n"}
    with GitLabServer(token=TOKEN, project=PROJECT, default_branch="master", files=files) as server:
        yield server


def test_gitlab_merges_a_security_bump_when_its_pipeline_succeeds(
    sources: world.Sources, gitlab: GitLabServer, tmp_path: Path
) -> None:
    tree = world.definitions(sources.top, automerge="security")
    dist = world.make_dist(tmp_path / "dist", sources.top, automerge="security")
    forge = gitlab_forge(gitlab.url, PROJECT, TOKEN, timeout=5)
    ws = Workspace.open(str(dist))
    sources.security_day()

    report = reconcile(ws, forge, target="master", env={})
    assert report.errors == []
    glibc, tzdata = report.results
    assert glibc is not None and tzdata is not None
    assert (glibc.state, glibc.auto_merge, "security" in glibc.labels) == ("opened", True, True)
    assert (tzdata.state, tzdata.auto_merge) == ("opened", False)  # `security`: only security bumps
    assert gitlab.count("PUT", r"/merge_requests/1/merge$") == 1
    assert gitlab.count("PUT", r"/merge_requests/2/merge$") == 0
    assert reconcile(ws, forge, target="master", env={}).actions == ()  # already set: nothing to do

    head = gitlab.project().branches["factory/bump-build/glibc/f42-updates"]
    assert gitlab.files("master")["modules/base/f42.yaml"] == tree["modules/base/f42.yaml"].decode()
    gitlab.finish_pipeline(head, "success")
    merged = forge.find("factory/bump-build/glibc/f42-updates")[0]
    assert merged.state == "merged"
    assert "build: glibc-2.41-11.fc42" in gitlab.files("master")["modules/base/f42.yaml"]
    assert "build: glibc-2.41-11.fc42" in gitlab.files("master")["modules/extras/1.yaml"]
    assert reconcile(ws, forge, target="master", env={}).actions == ()  # merged for this build


def test_gitlab_leaves_an_mr_whose_pipeline_failed_open(
    sources: world.Sources, gitlab: GitLabServer, tmp_path: Path
) -> None:
    dist = world.make_dist(tmp_path / "dist", sources.top, automerge="security")
    forge = gitlab_forge(gitlab.url, PROJECT, TOKEN, timeout=5)
    ws = Workspace.open(str(dist))
    sources.security_day()
    reconcile(ws, forge, target="master", env={}, component="glibc")
    head = gitlab.project().branches["factory/bump-build/glibc/f42-updates"]
    gitlab.finish_pipeline(head, "failed")
    mr = forge.find("factory/bump-build/glibc/f42-updates")[0]
    assert (mr.state, mr.auto_merge) == ("opened", True)  # GitLab keeps it set; it never merges
    assert "build: glibc-2.41-9.fc42" in gitlab.files("master")["modules/base/f42.yaml"]
    gitlab.set_state(1, "opened")
    gitlab.project().merge_requests[1]["merge_when_pipeline_succeeds"] = False  # a person cancelled it
    report = reconcile(ws, forge, target="master", env={}, component="glibc")
    assert [type(a).__name__ for a in report.actions] == ["Merge"]
    assert len(report.errors) == 1 and "will not merge !1 (405)" in report.errors[0]
