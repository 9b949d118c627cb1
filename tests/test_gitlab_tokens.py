"""Which token goes to GitLab: FACTORY_GITLAB_TOKEN writes; CI_JOB_TOKEN is never sent in its place.

The commands run as a user runs them (`cli.main`), against the loopback GitLab, which records the
headers of every request it receives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.bot.forge_choice import JOB_TOKEN, WRITE_TOKEN
from pipeline.commands.ci import PLAN_MARKER
from tests.conftest import commit_tree, example_tree, materialize_example
from tests.gitlab_server import GitLabServer

PROJECT = "group/distribution"
SECRET = "glpat-Wr1teT0kenFromTheProject"
JOB_SECRET = "job-0nlyForTheRegistry"
BRANCH = "master"  # the branch commit_tree commits to, and the bump merge requests' target


@pytest.fixture
def server() -> Iterator[GitLabServer]:
    # The loopback server accepts either token: the test checks which one factory sends.
    with GitLabServer(token=SECRET, job_token=JOB_SECRET, project=PROJECT, default_branch=BRANCH) as gl:
        yield gl


@pytest.fixture
def in_gitlab_ci(monkeypatch: pytest.MonkeyPatch, server: GitLabServer) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_SERVER_URL", server.url)
    monkeypatch.setenv("CI_PROJECT_PATH", PROJECT)
    monkeypatch.setenv(JOB_TOKEN, JOB_SECRET)  # GitLab sets it in every job
    monkeypatch.delenv(WRITE_TOKEN, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def open_merge_request(server: GitLabServer) -> str:
    """A merge request in the loopback project, opened by a person."""
    from pipeline.bot.forge import MergeRequestSpec
    from pipeline.bot.forge_gitlab import gitlab_forge

    spec = MergeRequestSpec("feature", BRANCH, "A change", "Changes things.", ())
    mr = gitlab_forge(server.url, PROJECT, SECRET).open(spec)
    server.requests.clear()
    return mr.id


@pytest.mark.usefixtures("in_gitlab_ci")
def test_post_plan_writes_the_note_with_the_project_token_only(
    server: GitLabServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mr = open_merge_request(server)
    monkeypatch.setenv(WRITE_TOKEN, SECRET)
    plan_md = tmp_path / "plan.md"
    for body in ("### plan v1\n", "### plan v2\n"):
        plan_md.write_text(body)
        code, out, err = run(capsys, "ci", "post-plan", "--mr", mr, "--file", str(plan_md))
        assert (code, err) == (0, "")
        assert out == f"posted the plan on !{mr} of {PROJECT}\n"
    notes = server.project(PROJECT).notes[int(mr)]
    assert [n["body"] for n in notes] == [f"### plan v2\n\n{PLAN_MARKER}\n"]
    assert server.requests
    assert {r.headers.get("PRIVATE-TOKEN") for r in server.requests} == {SECRET}
    assert all("JOB-TOKEN" not in r.headers for r in server.requests)


@pytest.mark.usefixtures("in_gitlab_ci")
def test_post_plan_with_only_the_job_token_fails_naming_the_variable(
    server: GitLabServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_md = tmp_path / "plan.md"
    plan_md.write_text("### plan\n")
    code, out, err = run(capsys, "ci", "post-plan", "--mr", "1", "--file", str(plan_md))
    assert code == 1 and out == ""
    assert f"error[no-gitlab-token]: no GitLab token: {WRITE_TOKEN} is not set" in err
    assert f"({JOB_TOKEN} is set, but GitLab lets a job token neither open merge requests" in err
    assert JOB_SECRET not in err and "Traceback" not in err
    assert server.requests == []  # refused before any request: the job token went nowhere


@pytest.fixture
def gitlab_repo(tmp_path: Path, server: GitLabServer) -> Path:
    """The example distribution whose factory.yaml names the loopback GitLab as its forge."""
    tree = example_tree()
    tree["factory.yaml"] = tree["factory.yaml"].replace(
        b"forge:\n  kind: local\n",
        f"forge:\n  kind: gitlab\n  gitlab:\n    url: {server.url}\n    project: {PROJECT}\n".encode(),
    )
    commit_tree(tmp_path, tree, "Example definitions, GitLab forge\n")
    materialize_example(tmp_path)
    return tmp_path


@pytest.mark.usefixtures("in_gitlab_ci")
def test_the_bot_opens_merge_requests_with_the_project_token(
    server: GitLabServer,
    gitlab_repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(WRITE_TOKEN, SECRET)
    code, out, err = run(capsys, "bot", "reconcile", "--repo", str(gitlab_repo), "--target", BRANCH, "--json")
    assert code == 0, err
    opened = [a for a in json.loads(out)["actions"] if a["action"] == "open"]
    assert opened and all(a["merge_request"] for a in opened)
    titles = {mr["title"] for mr in server.project(PROJECT).merge_requests.values()}
    assert {a["title"] for a in opened} == titles
    assert {r.headers.get("PRIVATE-TOKEN") for r in server.requests} == {SECRET}
    assert all("JOB-TOKEN" not in r.headers for r in server.requests)


@pytest.mark.usefixtures("in_gitlab_ci")
def test_the_bot_with_only_the_job_token_fails_before_any_request(
    server: GitLabServer, gitlab_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "bot", "reconcile", "--repo", str(gitlab_repo), "--target", BRANCH)
    assert code == 1 and out == ""
    assert f"{WRITE_TOKEN} is not set" in err and JOB_SECRET not in err
    assert server.requests == []
