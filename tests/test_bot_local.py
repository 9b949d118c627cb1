"""The bump bot end to end on the example distribution, with the local forge."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pygit2
import pytest

from pipeline import cli
from pipeline.bot.forge_local import LocalForge
from pipeline.git.repo import open_repo
from pipeline.records.history import BranchHistory
from tests.conftest import commit_tree, example_tree, materialize_example

OPENSSL_PIN = "795545287474bedd5e207f70c50a64a10fc7632e"
CVE_FIX = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"
BASE = "modules/base-runtime/f42.yaml"


@pytest.fixture
def repo(example_repo: Path) -> Path:
    materialize_example(example_repo)
    return example_repo


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def reconcile(capsys: pytest.CaptureFixture[str], repo: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, "bot", "reconcile", "--repo", str(repo), "--json")
    assert "Traceback" not in err
    return code, json.loads(out)


def distgit(repo: Path, component: str) -> pygit2.Repository:
    return pygit2.Repository(str(repo / ".factory" / "distgit" / f"{component}.git"))


def add_commit(repo: Path, component: str, message: str, *, orphan: bool = False) -> str:
    """A new commit on the component's f42 branch (or, orphan, the branch reset to a new root)."""
    git = distgit(repo, component)
    parent = git.branches.local["f42"].peel(pygit2.Commit)
    builder = git.TreeBuilder(parent.tree)
    builder.insert("NOTE", git.create_blob(message.encode()), pygit2.GIT_FILEMODE_BLOB)
    sig = pygit2.Signature("Packager", "packager@example.invalid", 1_800_000_000, 0)
    oid = git.create_commit(None, sig, sig, message, builder.write(), [] if orphan else [parent.id])
    git.references.create("refs/heads/f42", oid, force=True)
    return str(oid)


def changed_lines(repo: Path, mr_id: str) -> list[tuple[str, str, str]]:
    """(path, old line, new line) of the MR's commit against its parent."""
    git = pygit2.Repository(str(repo))
    commit = git[LocalForge(open_repo(repo)).record(mr_id)["commit"]].peel(pygit2.Commit)
    found = []
    for patch in git.diff(commit.parents[0], commit):
        assert patch is not None
        removed = [ln.content for h in patch.hunks for ln in h.lines if ln.origin == "-"]
        added = [ln.content for h in patch.hunks for ln in h.lines if ln.origin == "+"]
        assert len(removed) == len(added) == 1
        found.append((patch.delta.new_file.path, removed[0], added[0]))
    return found


def planned_in(description: str) -> set[str]:
    return set(re.findall(r"^\| \d+ \| `([^`]+)` \|", description, re.MULTILINE))


def test_reconcile_opens_one_security_mr_first_and_is_idempotent(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = reconcile(capsys, repo)
    assert code == 0 and report["errors"] == []
    history = BranchHistory(open_repo(repo))
    assert history.latest("openssl", "f42").head == CVE_FIX  # type: ignore[union-attr]
    assert [(a["action"], a["component"], a["labels"]) for a in report["actions"]] == [
        ("open", "openssl", ["bump", "security"]),
        ("open", "ca-certificates", ["bump"]),
    ]
    assert report["actions"][0]["title"] == "Bump openssl (f42) to 9d0324eb — CVE-2026-1234"
    assert changed_lines(repo, "1") == [(BASE, f"      ref: {OPENSSL_PIN}\n", f"      ref: {CVE_FIX}\n")]
    assert [path for path, _, _ in changed_lines(repo, "2")] == [BASE]
    mr = LocalForge(open_repo(repo)).get("1")
    assert mr.head == CVE_FIX and "| `base-runtime:f42` |" in mr.description
    assert "- `9d0324eb8729` Backport fix for CVE-2026-1234" in mr.description
    assert "`build:openssl@9d0324eb`" in mr.description and "`iso:AtomicHost/installer`" in mr.description

    code, again = reconcile(capsys, repo)
    assert code == 0 and again["actions"] == [] and again["recorded"] == []
    code, out, _ = run(capsys, "mr", "list", "--repo", str(repo))
    assert code == 0 and out.splitlines()[1].startswith("!1  opened  Bump openssl (f42)")


def test_a_moved_branch_updates_the_mr_in_place_and_a_closed_one_stays_closed(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reconcile(capsys, repo)
    newer = add_commit(repo, "openssl", "Fix a regression of the CVE-2026-1234 backport\n")
    code, report = reconcile(capsys, repo)
    assert code == 0
    assert [(a["action"], a["component"], a["merge_request"]) for a in report["actions"]] == [
        ("update", "openssl", "1")
    ]
    forge = LocalForge(open_repo(repo))
    mr = forge.get("1")
    assert (
        mr.head == newer
        and mr.state == "opened"
        and mr.title.startswith(f"Bump openssl (f42) to {newer[:8]}")
    )
    assert "(2)" in mr.description and CVE_FIX[:12] in mr.description and newer[:12] in mr.description
    assert len(forge.find("factory/bump/openssl/f42")) == 1
    assert reconcile(capsys, repo)[1]["actions"] == []

    code, out, _ = run(capsys, "mr", "close", "1", "--repo", str(repo))
    assert code == 0 and "closed !1" in out
    assert reconcile(capsys, repo)[1]["actions"] == []  # not reopened for the same head
    assert forge.get("1").state == "closed"

    add_commit(repo, "openssl", "Rewritten history\n", orphan=True)
    code, report = reconcile(capsys, repo)
    assert code == 1
    assert [a["action"] for a in report["actions"]] == ["error"]
    assert "force-pushed" in report["errors"][0] and "openssl" in report["errors"][0]
    assert [m.id for m in forge.all()] == ["2", "1"]
    code, out, _ = run(capsys, "bot", "reconcile", "--repo", str(repo))
    assert code == 1 and "error: openssl (f42) head" in out


def test_merging_the_mr_composes_what_it_announced(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reconcile(capsys, repo)
    forge = LocalForge(open_repo(repo))
    announced = planned_in(forge.get("1").description)
    assert len(announced) == 11

    code, out, _ = run(capsys, "mr", "merge", "!1", "--repo", str(repo))
    assert code == 0 and "merged !1 into master" in out
    assert CVE_FIX in (repo / BASE).read_text()  # the checked-out branch's files follow
    code, out, _ = run(capsys, "plan", "--repo", str(repo), "--base", "HEAD~1", "--head", "HEAD", "--json")
    assert code == 0
    assert {n["node"] for tier in json.loads(out)["tiers"] for n in tier} == announced
    assert forge.get("1").state == "merged"
    assert reconcile(capsys, repo)[1]["actions"] == []

    # the ca-certificates MR was made on the old main: merging it now needs a merge commit
    code, _, _ = run(capsys, "mr", "merge", "2", "--repo", str(repo))
    assert code == 0
    head = pygit2.Repository(str(repo)).head.peel(pygit2.Commit)
    assert len(head.parents) == 2
    text = (repo / BASE).read_text()
    assert CVE_FIX in text and "d15c3d96c93c327f526e121b67e016580bbe1837" not in text


def test_merge_refuses_conflicts_and_a_dirty_working_tree(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reconcile(capsys, repo)
    tree = example_tree()
    tree[BASE] = tree[BASE].replace(OPENSSL_PIN.encode(), b"0" * 40)
    commit_tree(repo, tree, "Someone else moved the pin\n")
    code, _, err = run(capsys, "mr", "merge", "1", "--repo", str(repo))
    assert code == 1 and "conflicts with master" in err

    (repo / "factory.yaml").write_text("# dirty\n")
    code, _, err = run(capsys, "mr", "merge", "2", "--repo", str(repo))
    assert code == 1 and "uncommitted changes" in err
    assert LocalForge(open_repo(repo)).get("2").state == "opened"


def test_dry_run_changes_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "bot", "reconcile", "--repo", str(repo), "--dry-run")
    assert code == 0 and "would open: Bump openssl (f42) to 9d0324eb — CVE-2026-1234 [bump, security]" in out
    git = pygit2.Repository(str(repo))
    assert [r for r in git.references if r.startswith(("refs/history/", "refs/factory/"))] == []


def test_gitlab_forge_needs_configuration(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "bot", "reconcile", "--repo", str(repo), "--forge", "gitlab")
    assert code == 2 and "forge.gitlab.url" in err and "Traceback" not in err
