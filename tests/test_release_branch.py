"""Only composes of a commit on one of its release's branches move latest good (issue 22, item 1).

The decision is pure (`pipeline.core.branches`); `pipeline.engine.release_branch` reads it off
real repositories (a clone with remote-tracking branches, a detached HEAD, GitLab's variables).
GitLab's predefined variables, as https://docs.gitlab.com/ci/variables/predefined_variables/
describes them: CI_COMMIT_BRANCH is "available in branch pipelines, including pipelines for the
default branch. Not available in merge request pipelines or tag pipelines"; CI_DEFAULT_BRANCH is
the project's default branch; CI_MERGE_REQUEST_IID is set in merge request pipelines, and (as
https://docs.gitlab.com/ci/pipelines/downstream_pipelines/ says of child pipelines of merge
request pipelines) in their child pipelines, whose CI_PIPELINE_SOURCE is `parent_pipeline`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core import branches
from pipeline.core.branches import DEFAULT_BRANCHES, Pipeline, decide, default_branch, names
from pipeline.core.config import Release
from pipeline.engine.release_branch import on_release_branch
from pipeline.git.repo import open_repo
from pipeline.run import run

A, B = "a" * 40, "b" * 40
NAMES = ("main", "release/42")


# -- the pure decision ------------------------------------------------------------------------------


def test_the_release_branches_are_the_default_branch_and_release_version_unless_configured() -> None:
    assert names(DEFAULT_BRANCHES, "42", "main") == ("main", "release/42")
    assert names(DEFAULT_BRANCHES, "42", "master") == ("master", "release/42")
    assert names(DEFAULT_BRANCHES, "42", None) == ("release/42",)  # no default branch known
    assert names(("{default}", "stable/{version}", "main"), "9.4", "main") == ("main", "stable/9.4")


def test_the_default_branch_is_gitlabs_for_the_pipelines_commit_else_origins_head_else_main() -> None:
    ci = Pipeline(commit=A, default_branch="trunk")
    assert default_branch(ci, A, "main", ["main"]) == "trunk"
    assert default_branch(ci, B, "develop", ["main"]) == "develop"  # another commit: the clone says
    assert default_branch(Pipeline(), A, None, ["master", "main"]) == "main"
    assert default_branch(Pipeline(), A, None, ["master", "topic"]) == "master"
    assert default_branch(Pipeline(), A, None, ["topic"]) is None


def test_a_commit_on_a_release_branch_tip_or_ancestor_moves_latest_good() -> None:
    found = decide(A, NAMES, {"main"}, Pipeline())
    assert (found.branch, found.moves_latest, found.why) == ("main", True, "on main")
    assert decide(A, NAMES, {"release/42"}, Pipeline()).branch == "release/42"
    assert decide(A, NAMES, {"main", "release/42"}, Pipeline()).branch == "main"  # the first listed


def test_any_other_commit_is_off_the_release_branches() -> None:
    found = decide(A, NAMES, set(), Pipeline())
    assert (found.branch, found.moves_latest) == ("", False)
    assert found.why == "on none of the release's branches (main, release/42)"
    assert decide(A, NAMES, {"scratch"}, Pipeline()).branch == ""  # only the release's branches count


@pytest.mark.parametrize(
    "env",
    [
        {"CI_COMMIT_SHA": A, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"},
        # the child pipeline of a merge request pipeline: its source is parent_pipeline
        {"CI_COMMIT_SHA": A, "CI_PIPELINE_SOURCE": "parent_pipeline", "CI_MERGE_REQUEST_IID": "7"},
        {"CI_COMMIT_SHA": A.upper(), "CI_PIPELINE_SOURCE": "merge_request_event"},
    ],
)
def test_a_merge_request_pipeline_never_moves_latest_good(env: dict[str, str]) -> None:
    """Even when its commit is on main already (a merge request with nothing new on it)."""
    found = decide(A, NAMES, {"main"}, Pipeline.from_env(env))
    assert found.branch == "" and not found.moves_latest
    assert "merge request pipeline" in found.why


def test_gitlabs_variables_speak_of_the_pipelines_own_commit_only() -> None:
    mr = Pipeline.from_env({"CI_COMMIT_SHA": B, "CI_MERGE_REQUEST_IID": "7"})
    assert decide(A, NAMES, {"main"}, mr).branch == "main"  # composing another commit: refs decide
    push = Pipeline.from_env({"CI_COMMIT_SHA": B, "CI_COMMIT_BRANCH": "main"})
    assert decide(A, NAMES, set(), push).branch == ""


def test_a_push_pipeline_of_a_release_branch_is_on_it_without_the_branch_in_the_clone() -> None:
    """A runner's clone may be shallow and hold only the pipeline's ref: GitLab's word suffices."""
    env = {"CI_COMMIT_SHA": A, "CI_COMMIT_BRANCH": "release/42", "CI_PIPELINE_SOURCE": "parent_pipeline"}
    found = decide(A, NAMES, set(), Pipeline.from_env(env))
    assert found.branch == "release/42" and found.why == "the pipeline of a push to release/42"
    scratch = Pipeline.from_env({"CI_COMMIT_SHA": A, "CI_COMMIT_BRANCH": "scratch"})
    assert decide(A, NAMES, set(), scratch).branch == ""
    assert decide(A, NAMES, {"main"}, scratch).branch == "main"  # pushed to scratch, but on main too


# -- on real repositories ---------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return run(
        ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@example.invalid", *args]
    ).strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """main (two commits), release/42 at the first, scratch one commit past main."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for n in (1, 2):
        (repo / "f").write_text(f"{n}\n")
        git(repo, "add", "f")
        git(repo, "commit", "-q", "-m", f"main {n}")
    git(repo, "branch", "release/42", "HEAD~1")
    git(repo, "checkout", "-q", "-b", "scratch")
    (repo / "f").write_text("scratch\n")
    git(repo, "commit", "-q", "-am", "scratch")
    git(repo, "checkout", "-q", "main")
    return repo


RELEASE = Release("Factory Linux", "FL", "42")


def branch_of(repo: Path, rev: str, env: dict[str, str] | None = None) -> str:
    return on_release_branch(open_repo(repo), git(repo, "rev-parse", rev), RELEASE, env or {}).branch


def test_local_branches_decide_in_a_repository_without_a_remote(origin: Path) -> None:
    assert branch_of(origin, "main") == "main"
    assert branch_of(origin, "main~1") == "main"  # an ancestor of main (and the tip of release/42)
    assert branch_of(origin, "scratch") == ""
    git(origin, "branch", "-m", "main", "trunk")  # no main, no master, no origin: only release/42
    assert branch_of(origin, "trunk") == ""
    assert branch_of(origin, "trunk~1") == "release/42"


def test_a_fresh_clone_on_a_detached_head_reads_the_remote_tracking_branches(
    origin: Path, tmp_path: Path
) -> None:
    """A CI runner's checkout: HEAD detached at the commit, branches only under refs/remotes/."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    scratch = git(clone, "rev-parse", "origin/scratch")
    git(clone, "checkout", "-q", "--detach", scratch)
    git(clone, "branch", "-q", "-D", "main")  # nothing local: refs/remotes/origin/* only
    assert git(clone, "for-each-ref", "--format=%(refname)", "refs/heads") == ""
    assert branch_of(clone, "HEAD") == ""
    assert branch_of(clone, "origin/main") == "main"  # origin's HEAD names the default branch
    assert branch_of(clone, "origin/release/42") == "main"  # the first listed that holds it
    mr = {"CI_COMMIT_SHA": git(clone, "rev-parse", "origin/main"), "CI_MERGE_REQUEST_IID": "3"}
    assert branch_of(clone, "origin/main", mr) == ""


def test_gitlabs_default_branch_and_pipeline_branch_count_for_the_pipelines_commit(origin: Path) -> None:
    head = git(origin, "rev-parse", "scratch")
    push = {"CI_COMMIT_SHA": head, "CI_COMMIT_BRANCH": "scratch", "CI_DEFAULT_BRANCH": "scratch"}
    assert branch_of(origin, "scratch", push) == "scratch"  # scratch is the project's default branch
    assert branch_of(origin, "scratch", {**push, "CI_DEFAULT_BRANCH": "main"}) == ""


def test_the_branches_factory_yaml_names_are_the_ones_that_count(origin: Path) -> None:
    own = Release("Factory Linux", "FL", "42", branches=("scratch", "stable/{version}"))
    head = open_repo(origin)
    assert on_release_branch(head, git(origin, "rev-parse", "scratch"), own, {}).branch == "scratch"
    # scratch is main plus one commit: main's tip is an ancestor of scratch, so on it
    assert on_release_branch(head, git(origin, "rev-parse", "main"), own, {}).branch == "scratch"
    git(origin, "branch", "-q", "stable/42", "main~1")
    off = Release("Factory Linux", "FL", "42", branches=("stable/{version}",))
    assert on_release_branch(head, git(origin, "rev-parse", "main"), off, {}).branch == ""
    assert on_release_branch(head, git(origin, "rev-parse", "main~1"), off, {}).branch == "stable/42"
    assert branches.names(off.branches, off.version, "main") == ("stable/42",)
