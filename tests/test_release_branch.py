"""Only composes of a commit on one of its release's branches move latest good (issue 22, item 1).

The decision is pure (`pipeline.core.branches`); `pipeline.git.release_branch` reads it off
real repositories (a clone with remote-tracking branches, a detached HEAD, GitLab's variables).
GitLab's predefined variables, as https://docs.gitlab.com/ci/variables/predefined_variables/
describes them: CI_COMMIT_BRANCH is "available in branch pipelines, including pipelines for the
default branch. Not available in merge request pipelines or tag pipelines"; CI_DEFAULT_BRANCH is
the project's default branch; CI_MERGE_REQUEST_IID is set in merge request pipelines, and (as
https://docs.gitlab.com/ci/pipelines/downstream_pipelines/ says of child pipelines of merge
request pipelines) in their child pipelines, whose CI_PIPELINE_SOURCE is `parent_pipeline`.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.core import branches, definitions, gate, graph
from pipeline.core.branches import DEFAULT_BRANCHES, Pipeline, decide, default_branch, names
from pipeline.core.config import Release
from pipeline.core.errors import InvalidInput
from pipeline.core.records import OutputFile, Record, load_record, outputs_digest
from pipeline.core.states import ComposeStatus, RunStatus
from pipeline.engine.compose import compose
from pipeline.git.release_branch import on_release_branch
from pipeline.git.repo import open_repo
from pipeline.records.lineage import Lineage
from pipeline.run import run
from pipeline.workspace import Workspace
from tests.conftest import commit_tree, example_tree, example_upstream, materialize_example, sources
from tests.test_executor import Setup, Writer
from tests.test_gate import Gated
from tests.test_gate import gated as gated  # the fixture
from tests.test_pending import GTK, require_openqa

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


# -- the executor off the release's branches --------------------------------------------------------

SSL_PROFILE = (
    b"  minimal:\n    rpms: [httpd]\n",
    b"  minimal:\n    rpms: [httpd]\n  ssl:\n    rpms: [mod_ssl]\n",
)


def with_ssl_profile() -> dict[str, bytes]:
    """The example with a profile added to httpd:2.4 (issue 22's scratch branch)."""
    tree = example_tree()
    path = "modules/httpd/2.4.yaml"
    assert SSL_PROFILE[0] in tree[path]
    tree[path] = tree[path].replace(*SSL_PROFILE)
    return tree


@pytest.fixture
def writers(tmp_path: Path) -> Setup:
    """The example composed once on master (a release branch) by the executor's own composers."""
    commit_tree(tmp_path, example_tree(), "definitions\n")
    example_upstream(tmp_path / ".factory" / "upstream")  # python3-idna's source (binary pin)
    defs = definitions.load(sources(example_tree()))
    setup = Setup(tmp_path, defs, graph.build(defs), Lineage(tmp_path), {k: Writer(k) for k in ("binary", "build", "module", "repo")})  # fmt: skip
    assert setup.run().status == RunStatus.FINISHED
    setup.ran()
    return setup


def side_commit(setup: Setup) -> str:
    """Commit the changed module (its composed bytes change too) and point the setup at it."""
    tree = with_ssl_profile()
    commit = commit_tree(setup.root, tree, "scratch: add a profile\n")
    setup.defs = definitions.load(sources(tree))
    setup.graph = graph.build(setup.defs)
    setup.composers["module"].content = {"module:httpd:2.4": "with the ssl profile"}
    return commit


def test_an_off_branch_run_composes_through_its_own_composes_and_moves_no_latest_good(
    writers: Setup,
) -> None:
    before = writers.lineage.latest()
    commit = side_commit(writers)
    writers.branch = ""
    result = writers.run()
    assert result.status == RunStatus.FINISHED
    made = {r.node: r.compose_id for r in result.results if r.status == "COMPOSED"}
    assert sorted(made) == writers.ran() == ["module:httpd:2.4", "repo:Cloud", "repo:Server"]  # ship httpd
    assert writers.lineage.latest() == before  # not one latest-good ref moved
    server = writers.lineage.get(made["repo:Server"])
    # its dependants consumed this run's compose of httpd, not the release's latest good
    assert {i.node: i.compose_id for i in server.inputs}["module:httpd:2.4"] == made["module:httpd:2.4"]
    assert {i.node: i.compose_id for i in server.inputs}["module:base-runtime:f42"] == before["module:base-runtime:f42"]  # fmt: skip
    recorded = {r.node: r for r in writers.lineage.made_from(commit)}
    assert {n: r.compose_id for n, r in recorded.items()} == made
    assert all(r.branch == "" and r.off_branch and r.status == "FINISHED" for r in recorded.values())
    assert all(writers.lineage.get(cid).branch == "master" for cid in before.values())
    # the same commit composed again off the branches: nothing to do, still nothing moved
    again = writers.run()
    assert again.count("SKIPPED") == len(again.results) and writers.ran() == []
    assert writers.lineage.latest() == before


def test_composing_the_merged_commit_on_the_branch_reuses_the_off_branch_composes_as_latest_good(
    writers: Setup,
) -> None:
    """The compose key decides the bytes: the merge (here a fast-forward) composes nothing new,
    and the composes made off the branch become latest good."""
    side_commit(writers)
    writers.branch = ""
    made = {r.node: r.compose_id for r in writers.run().results if r.status == "COMPOSED"}
    writers.ran()
    writers.branch = "master"
    merged = writers.run()
    assert merged.count("SKIPPED") == len(merged.results) and writers.ran() == []
    latest = writers.lineage.latest()
    assert {n: latest[n] for n in made} == made
    assert writers.lineage.get(made["repo:Server"]).off_branch  # the record still says how it was made


def test_the_record_says_which_branch_and_a_record_from_before_says_nothing() -> None:
    outputs = (OutputFile("composes/x/a", 1, "0" * 64),)
    old = Record(
        "FL-42-Server-20261121.n.0", "repo:Server", "d" * 64, "k" * 64, A, (), (), outputs,
        outputs_digest(outputs), (("tool", "1"),), "2026-11-21T10:00:00Z", "2026-11-21T10:00:01Z",
        ComposeStatus.FINISHED, manifest="e" * 64,
    )  # fmt: skip
    assert "branch" not in old.to_json() and old.branch is None and not old.off_branch
    assert load_record(old.note(), "x") == old  # an old note keeps its bytes and reads back
    for branch in ("main", ""):
        record = replace(old, branch=branch)
        assert record.to_json()["branch"] == branch
        again = load_record(record.note(), "x")
        assert again == record and again.note() == record.note()
        assert again.off_branch == (branch == "")
    with pytest.raises(InvalidInput):
        load_record(old.note().replace(b'"manifest"', b'"branch":7,"manifest"'), "x")


def test_a_pending_compose_of_a_side_branch_promoted_moves_no_latest_good_until_a_branch_reuses_it(
    gated: Gated, capsys: pytest.CaptureFixture[str]
) -> None:
    """`factory gate ID --promote` of a compose made off the release's branches records it
    FINISHED and leaves latest good alone while its commit is on none of them."""
    assert gated.run(gate.Policy()).status == RunStatus.FINISHED
    before = gated.lineage.latest()
    git(gated.root, "checkout", "-q", "-b", "scratch")
    policy = require_openqa(gated)  # committed on scratch
    gated.branch = ""
    [pending] = [r.compose_id for r in gated.run(policy).results if r.status == "PENDING"]
    assert gated.lineage.get(pending).off_branch
    root = str(gated.root)
    assert (
        cli.main(["check", "record", pending, "openqa.install", "--outcome", "PASSED", "--repo", root]) == 0
    )
    capsys.readouterr()
    assert cli.main(["gate", pending, "--promote", "--repo", root, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["status"], answer["promoted"], answer["latest_good"], answer["off_branch"]) == (
        "FINISHED", True, False, True,
    )  # fmt: skip
    assert gated.lineage.latest() == before
    # Merged (a fast-forward): main's run reuses the compose by its key and makes it latest good.
    git(gated.root, "checkout", "-q", "master")
    git(gated.root, "merge", "-q", "--ff-only", "scratch")
    gated.branch = "master"
    result = gated.run(policy)
    assert {r.node: r.status for r in result.results}[GTK] == "SKIPPED"
    assert gated.lineage.latest()[GTK] == pending


# -- the day, with the real composers and the CLI -------------------------------------------

_STAMP = re.compile(rb'Made [0-9T:-]+Z|"made": ?"[^"]*"')


def site_files(where: Path) -> dict[str, bytes]:
    """Every file of a built site, its build time taken out (the only thing a rebuild changes)."""
    return {
        str(p.relative_to(where)): _STAMP.sub(b"", p.read_bytes()) for p in where.rglob("*") if p.is_file()
    }


def say(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out


def test_composing_a_side_branch_leaves_mains_latest_status_release_and_site_as_they_were(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22's day: a profile added on a scratch branch and composed; back on the release's
    branch (here `master`: this repository has no `main`), nothing the release reads changed;
    the side branch's composes are in lineage, marked; merged, they become latest good."""
    root = tmp_path / "dist"
    commit_tree(root, example_tree(), "Example definitions\n")
    materialize_example(root)
    repo = ("--repo", str(root))
    assert say(capsys, "compose", "repo:Server", *repo, "--type", "test")[0] == 0
    latest = say(capsys, "latest", *repo, "--json")
    server = json.loads(latest[1])["repo:Server"]
    released = say(capsys, "release", server, "--to", str(tmp_path / "releases"), "--unsigned", *repo)
    assert released[0] == 0 and f"released {server} to " in released[1]
    status = say(capsys, "status", *repo)
    assert f"released {server} to " in status[1]
    assert say(capsys, "site", str(tmp_path / "site-before"), *repo)[0] == 0

    git(root, "checkout", "-q", "-b", "scratch")
    side = commit_tree(root, with_ssl_profile(), "scratch: add an ssl profile\n")
    code, out = say(capsys, "compose", "repo:Server", *repo, "--type", "test")
    assert code == 0
    assert "latest good did not move: HEAD is on none of the release's branches (master, release/42)" in out
    git(root, "checkout", "-q", "master")

    assert say(capsys, "latest", *repo, "--json") == latest
    assert say(capsys, "status", *repo) == status
    assert say(capsys, "site", str(tmp_path / "site-after"), *repo)[0] == 0
    assert site_files(tmp_path / "site-after") == site_files(tmp_path / "site-before")
    code, out = say(capsys, "latest", "repo:Server", *repo)
    assert (code, out.split()) == (0, ["repo:Server", server])  # what the mirror job releases
    again = say(capsys, "release", server, "--to", str(tmp_path / "releases"), "--unsigned", *repo)
    assert again[0] == 0 and (tmp_path / "releases" / "latest").resolve().name == server

    # What exists for the side commit: its composes, in lineage, marked off-branch.
    code, out = say(capsys, "latest", "--rev", "scratch", *repo)
    made = {line.split()[0]: line.split()[1] for line in out.splitlines()}
    assert code == 0 and sorted(made) == ["module:httpd:2.4", "repo:Server"]
    assert all(line.endswith("[off-branch]") for line in out.splitlines())
    assert made["repo:Server"] != server
    code, out = say(capsys, "lineage", made["repo:Server"], *repo)
    assert f"commit    {side}" in out
    assert "branch    none of the release's branches (off-branch): composing it moved no latest good" in out
    record = json.loads(say(capsys, "lineage", made["module:httpd:2.4"], *repo, "--json")[1])
    assert (record["branch"], record["commit"]) == ("", side)
    assert json.loads(say(capsys, "lineage", server, *repo, "--json")[1])["branch"] == "master"
    code, out = say(capsys, "latest", "--rev", "master", "repo:Server", *repo)
    assert out.split() == ["repo:Server", server, "[latest", "good]"]

    # Merged: composing master reuses the side branch's composes (same keys) as latest good.
    git(root, "merge", "-q", "--ff-only", "scratch")
    code, out = say(capsys, "compose", "repo:Server", *repo, "--type", "test", "--json")
    assert code == 0 and {n["status"] for n in json.loads(out)["nodes"]} == {"SKIPPED"}
    assert json.loads(out)["branch"] == "master"
    moved = json.loads(say(capsys, "latest", *repo, "--json")[1])
    assert {n: moved[n] for n in made} == made
    code, out = say(capsys, "latest", "--rev", "HEAD", "repo:Server", *repo)
    assert out.split()[1:] == [made["repo:Server"], "[latest", "good,", "off-branch]"]


def test_a_merge_request_pipeline_composes_but_moves_no_latest_good(tmp_path: Path) -> None:
    """The compose use-case in a job of a merge request pipeline's child pipeline, composing
    the release branch's own tip: recorded, not latest good; the push pipeline's job then
    reuses it by its key and makes it latest good."""
    root = tmp_path / "dist"
    head = commit_tree(root, example_tree(), "Example definitions\n")
    materialize_example(root)
    node = "build:bash@78022c3d"
    mr = {"CI_COMMIT_SHA": head, "CI_MERGE_REQUEST_IID": "12", "CI_PIPELINE_SOURCE": "parent_pipeline"}
    composed = compose(Workspace.open(root), nodes=[node], compose_type="ci", env=mr)
    assert composed.finished and not composed.on_branch.moves_latest
    assert composed.to_json()["branch"] == "" and "merge request pipeline !12" in composed.on_branch.why
    [made] = [r.compose_id for r in composed.run.results]
    assert Lineage(root).latest() == {} and Lineage(root).get(made).off_branch
    push = {"CI_COMMIT_SHA": head, "CI_COMMIT_BRANCH": "master", "CI_PIPELINE_SOURCE": "parent_pipeline"}
    again = compose(Workspace.open(root), nodes=[node], compose_type="ci", env=push)
    assert again.on_branch.branch == "master" and again.run.results[0].status == "SKIPPED"
    assert Lineage(root).latest() == {node: made}
