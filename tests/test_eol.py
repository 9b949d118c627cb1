"""`factory eol`: one merge request retiring (or scheduling) a module stream or a variant.

On real Git repositories of the example definitions with the local forge, and through the real
python-gitlab client against the loopback GitLab; dates that matter are passed in, never read
from the clock, except where the command's own "today" is what is tested.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from pipeline import cli
from pipeline.bot import eol
from pipeline.bot.forge_gitlab import gitlab_forge
from pipeline.bot.forge_local import LocalForge
from pipeline.core.errors import InvalidDefinitions
from pipeline.git.repo import open_repo
from pipeline.workspace import Workspace
from tests.conftest import commit_tree, example_tree
from tests.gitlab_server import GitLabServer

WORKSTATION = "variants/Workstation.yaml"
TOKEN = "glpat-eol-Secret"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def changed(repo: Path, mr_id: str) -> list[tuple[str, str, str]]:
    """(path, '-' or '+', line) of every line the merge request's commit changes."""
    git = pygit2.Repository(str(repo))
    commit = git[LocalForge(open_repo(repo)).record(mr_id)["commit"]].peel(pygit2.Commit)
    return [
        (patch.delta.new_file.path, line.origin, line.content)
        for patch in git.diff(commit.parents[0], commit)
        if patch is not None
        for hunk in patch.hunks
        for line in hunk.lines
        if line.origin in "+-"
    ]


def test_eol_of_a_variant_is_one_merge_request_of_two_lines(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(example_repo)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    code, out, _ = run(capsys, "eol", "variant:Workstation", "--repo", repo, "--json")
    assert code == 0
    done = json.loads(out)
    assert (done["action"], done["merge_request"], done["leaving"]) == ("opened", "1", ["repo:Workstation"])
    assert done["source_branch"] == "factory/eol/variant/Workstation"
    assert changed(example_repo, "1") == [
        (WORKSTATION, "-", "eol: 2027-05-31\n"),
        (WORKSTATION, "+", f"eol: {today}\n"),
        (WORKSTATION, "+", "retired: true\n"),
    ]
    # Run again: the same merge request, untouched.
    code, out, _ = run(capsys, "eol", "variant:Workstation", "--repo", repo, "--json")
    assert (json.loads(out)["action"], json.loads(out)["merge_request"]) == ("unchanged", "1")
    assert len(LocalForge(open_repo(example_repo)).all()) == 1
    # Merged: validation passes, the variant's repo leaves the graph, and nothing composes.
    assert run(capsys, "mr", "merge", "1", "--repo", repo)[0] == 0
    assert run(capsys, "validate", "--rev", "HEAD", "--repo", repo)[0] == 0
    code, out, _ = run(capsys, "plan", "--base", "HEAD~1", "--head", "HEAD", "--json", "--repo", repo)
    plan = json.loads(out)
    assert (plan["tiers"], plan["removed"]) == ([], ["repo:Workstation"])
    code, out, _ = run(capsys, "eol", "variant:Workstation", "--repo", repo)
    assert (code, out.startswith("nothing to do")) == (0, True)


def test_a_module_still_needed_is_refused_naming_what_needs_it(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "eol", "module:gtk:3", "--repo", str(example_repo))
    assert code == 2
    assert "error[eol-refused]" in err
    assert "variant Workstation (EOL 2027-05-31, ships it)" in err
    assert "module gnome:47 (EOL 2027-06-30, requires it)" in err
    assert LocalForge(open_repo(example_repo)).all() == []
    assert "factory/eol/module/gtk/3" not in pygit2.Repository(str(example_repo)).branches.local


def test_a_schedule_that_validation_would_refuse_is_refused_with_file_and_line(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace.open(example_repo)
    # Cloud's EOL moved past base-runtime's: validation's eol-conflict, before anything is opened.
    with pytest.raises(InvalidDefinitions) as caught:
        eol.propose(
            ws,
            target_branch="master",
            today=dt.date(2026, 11, 26),
            target="variant:Cloud",
            date=dt.date(2099, 1, 1),
        )
    assert next((d.path, d.code) for d in caught.value.diagnostics) == ("variants/Cloud.yaml", "eol-conflict")


def test_a_date_to_come_schedules_and_eol_due_retires_on_that_day(example_repo: Path) -> None:
    ws = Workspace.open(example_repo)
    forge = LocalForge(ws.repo)
    scheduled = eol.eol(
        ws, forge, target_branch="master", today=dt.date(2026, 11, 26), target="variant:Workstation",
        date=dt.date(2027, 1, 31),
    )  # fmt: skip
    assert scheduled.action == "opened" and scheduled.proposal is not None
    assert scheduled.proposal.spec.title == "Schedule the End Of Life of variant Workstation on 2027-01-31"
    assert scheduled.proposal.leaving == ()
    assert changed(example_repo, "1") == [
        (WORKSTATION, "-", "eol: 2027-05-31\n"),
        (WORKSTATION, "+", "eol: 2027-01-31\n"),
    ]
    forge.merge("1")
    assert (
        eol.eol(ws, forge, target_branch="master", today=dt.date(2027, 1, 30), due=True).action == "nothing"
    )
    due = eol.eol(ws, forge, target_branch="master", today=dt.date(2027, 1, 31), due=True)
    assert due.action == "opened" and due.proposal is not None
    assert due.proposal.spec.source_branch == "factory/eol/due"
    assert due.proposal.spec.title == "Retire what reached its End Of Life by 2027-01-31: variant Workstation"
    assert changed(example_repo, "2") == [(WORKSTATION, "+", "retired: true\n")]
    # A merge request the release engineers closed without merging is not opened again...
    forge.close("2")
    again = eol.eol(ws, forge, target_branch="master", today=dt.date(2027, 2, 1), due=True)
    assert again.action == "kept-closed"
    assert len(forge.all()) == 2
    # ...but more reaching its EOL is a new change.
    later = eol.eol(ws, forge, target_branch="master", today=dt.date(2027, 6, 30), due=True)
    assert later.action == "opened" and later.merge_request is not None and later.merge_request.id == "3"
    assert {c.target.id for c in later.proposal.changes} == {  # type: ignore[union-attr]
        "variant:Workstation",
        "module:gnome:47",
        "module:gtk:3",
    }
    forge.merge("3")
    defs = ws.load("master", check_distgit=False)
    assert defs.variants["Workstation"].retired and defs.modules["gnome:47"].retired
    assert defs.modules["gtk:3"].retired and not defs.modules["base-runtime:f42"].retired


def test_dry_run_shows_the_diff_and_opens_nothing(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "eol", "variant:Server", "--dry-run", "--repo", str(example_repo))
    assert code == 0
    assert out.startswith("would open: Retire variant Server (End Of Life ")
    assert "--- a/variants/Server.yaml\n+++ b/variants/Server.yaml\n" in out
    assert "\n+retired: true\n" in out
    assert LocalForge(open_repo(example_repo)).all() == []


@pytest.fixture
def gitlab(example_repo: Path) -> Iterator[GitLabServer]:
    files = {path: data.decode() for path, data in example_tree().items()}
    with GitLabServer(token=TOKEN, project="dist/factory", default_branch="main", files=files) as server:
        yield server


def test_eol_through_gitlab(example_repo: Path, gitlab: GitLabServer) -> None:
    commit_tree(example_repo, example_tree(), "Again on main\n")
    repo = pygit2.Repository(str(example_repo))
    repo.branches.local.create("main", repo.head.peel(pygit2.Commit))
    ws = Workspace.open(example_repo)
    forge = gitlab_forge(gitlab.url, "dist/factory", TOKEN, sleep=lambda _: None)
    done = eol.eol(ws, forge, target_branch="main", today=dt.date(2026, 11, 26), target="variant:Workstation")
    assert done.action == "opened" and done.merge_request is not None
    assert done.merge_request.labels == ("eol",)
    files = gitlab.files("factory/eol/variant/Workstation", "dist/factory")
    assert "eol: 2026-11-26\nretired: true\n" in files[WORKSTATION]
    assert {p: t for p, t in files.items() if p != WORKSTATION} == {
        p: t for p, t in gitlab.files("main", "dist/factory").items() if p != WORKSTATION
    }
    again = eol.eol(
        ws, forge, target_branch="main", today=dt.date(2026, 11, 26), target="variant:Workstation"
    )
    assert (again.action, gitlab.count("POST", r"/merge_requests$")) == ("unchanged", 1)


def test_validation_warns_of_what_reached_its_eol_unretired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = example_tree()
    tree["variants/Server.yaml"] = tree["variants/Server.yaml"].replace(
        b"eol: 2027-10-31", b"eol: 2026-01-31"
    )
    commit_tree(tmp_path, tree, "Server's EOL has passed\n")
    code, _, err = run(capsys, "validate", "--repo", str(tmp_path))
    assert code == 0  # valid: a warning, not an error
    assert (
        "variants/Server.yaml:7:6: warning[eol-reached]: variant Server reached its End Of Life on "
        "2026-01-31 and is not retired: `factory eol --due` opens the merge request that retires it"
    ) in err


def test_validation_counts_the_rest_past_ten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = {
        path: re.sub(rb"(?m)^eol: \S+$", b"eol: 2026-01-01", data) if path != "factory.yaml" else data
        for path, data in example_tree().items()
    }
    commit_tree(tmp_path, tree, "Everything reached its EOL\n")
    code, out, err = run(capsys, "validate", "--repo", str(tmp_path), "--json")
    assert code == 0
    assert len([w for w in json.loads(out)["warnings"] if ": eol-reached: " in w]) == 12
    printed = [line for line in err.splitlines() if "warning[eol-reached]" in line]
    assert (
        len(printed) == 11
        and printed[-1] == "warning[eol-reached]: 2 more reached their End Of Life unretired"
    )
