"""The GitLab forge, with the real python-gitlab client against the loopback GitLab."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import pytest

from pipeline.bot.forge import ForgeError, MergeRequestSpec, head_marker
from pipeline.bot.forge_gitlab import GitLabForge, gitlab_forge
from tests.gitlab_server import GitLabServer

TOKEN = "glpat-Sup3rS3cretT0ken"
PROJECT = "group/distribution"
HEAD = "a" * 40
BRANCH = "factory/bump/bash/f42"
MRS = r"/projects/[^/]+/merge_requests$"
TIMEOUT = 0.3


def _spec(
    head: str = HEAD, version: str = "5.2.26", labels: tuple[str, ...] = ("bump", "security")
) -> MergeRequestSpec:
    return MergeRequestSpec(
        source_branch=BRANCH,
        target_branch="main",
        title=f"bash: bump f42 to {version}",
        description=f"Moves bash to {version}.\n\n{head_marker('bash', 'f42', head)}",
        labels=labels,
        files={"modules/base/bash.yaml": f"ref: {head}\n", "modules/base/NEW.yaml": f"version: {version}\n"},
        head=head,
        commit_message=f"bash: bump f42 to {version}",
    )


@pytest.fixture
def server() -> Iterator[GitLabServer]:
    files = {"modules/base/bash.yaml": "ref: 0000\n", "factory.yaml": "name: demo\n"}
    with GitLabServer(token=TOKEN, job_token="job-Sup3rS3cret", project=PROJECT, files=files) as gl:
        yield gl


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def forge(server: GitLabServer, sleeps: list[float]) -> GitLabForge:
    return gitlab_forge(server.url, PROJECT, TOKEN, timeout=TIMEOUT, sleep=sleeps.append)


def test_open_creates_branch_commit_and_merge_request(server: GitLabServer, forge: GitLabForge) -> None:
    mr = forge.open(_spec())
    assert (mr.id, mr.state, mr.head) == ("1", "opened", HEAD)
    assert mr.labels == ("bump", "security")
    assert mr.web_url == f"{server.url}/{PROJECT}/-/merge_requests/1"
    assert server.files(BRANCH) == {
        "factory.yaml": "name: demo\n",
        "modules/base/bash.yaml": f"ref: {HEAD}\n",
        "modules/base/NEW.yaml": "version: 5.2.26\n",
    }
    project = server.project()
    tip = project.commits[project.branches[BRANCH]]
    assert tip["parent_ids"] == [project.branches["main"]]
    assert tip["message"] == "bash: bump f42 to 5.2.26"
    created = [r.body for r in server.requests if r.method == "POST" and r.path.endswith("/merge_requests")]
    assert created[0]["remove_source_branch"] is True
    commit = next(r.body for r in server.requests if r.path.endswith("/repository/commits"))
    actions = {a["file_path"]: a["action"] for a in commit["actions"]}
    assert actions == {"modules/base/bash.yaml": "update", "modules/base/NEW.yaml": "create"}
    assert server.count("POST", r"/repository/branches$") == 1
    assert all(r.headers.get("PRIVATE-TOKEN") == TOKEN for r in server.requests)


def test_find_returns_every_state_newest_first(server: GitLabServer, forge: GitLabForge) -> None:
    assert forge.find(BRANCH) == []
    first = forge.open(_spec())
    assert forge.find(BRANCH) == [first]
    server.set_state(1, "closed")
    second = forge.open(_spec(head="b" * 40, version="5.2.37"))
    found = forge.find(BRANCH)
    assert [(m.id, m.state, m.head) for m in found] == [("2", "opened", "b" * 40), ("1", "closed", HEAD)]
    assert found[0] == second
    assert forge.find("factory/bump/other/f42") == []


def test_second_open_does_not_duplicate(server: GitLabServer, forge: GitLabForge) -> None:
    first = forge.open(_spec())
    again = gitlab_forge(server.url, PROJECT, TOKEN, timeout=TIMEOUT).open(_spec())
    assert again == first
    assert server.count("POST", MRS) == 1
    assert server.count("POST", r"/repository/commits$") == 1


def test_update_changes_text_labels_and_resets_branch(server: GitLabServer, forge: GitLabForge) -> None:
    mr = forge.open(_spec())
    old_tip = server.project().branches[BRANCH]
    updated = forge.update(mr, _spec(head="c" * 40, version="5.2.37", labels=("bump",)))
    assert (updated.id, updated.head, updated.title, updated.labels) == (
        "1",
        "c" * 40,
        "bash: bump f42 to 5.2.37",
        ("bump",),
    )
    assert forge.find(BRANCH) == [updated]
    project = server.project()
    tip = project.commits[project.branches[BRANCH]]
    assert tip["id"] != old_tip
    assert tip["parent_ids"] == [project.branches["main"]]  # on top of the target, not of the old tip
    assert server.files(BRANCH)["modules/base/bash.yaml"] == f"ref: {'c' * 40}\n"


def test_update_refuses_another_source_branch(forge: GitLabForge) -> None:
    mr = forge.open(_spec())
    other = MergeRequestSpec("factory/bump/zsh/f42", "main", "t", "d", ())
    with pytest.raises(ForgeError, match="cannot move merge request !1"):
        forge.update(mr, other)


def test_upsert_note_creates_then_edits_one_note(server: GitLabServer, forge: GitLabForge) -> None:
    forge.open(_spec())
    marker = "<!-- factory:check -->"
    forge.upsert_note("1", marker, f"checks: running\n{marker}")
    forge.upsert_note("1", marker, f"checks: passed\n{marker}")
    forge.upsert_note("1", "<!-- factory:other -->", "another note")
    notes = server.project().notes[1]
    assert [n["body"] for n in notes] == [
        f"checks: passed\n{marker}",
        "another note\n\n<!-- factory:other -->\n",
    ]
    assert server.count("PUT", r"/notes/\d+$") == 1


def test_500s_are_retried_with_backoff(server: GitLabServer, forge: GitLabForge, sleeps: list[float]) -> None:
    server.fail("POST", MRS, status=500, times=2)
    server.fail("GET", r"/repository/branches/", status=502)
    mr = forge.open(_spec())
    assert mr.id == "1"
    assert server.count("POST", MRS) == 3
    assert sleeps == [0.5, 0.5, 1.0]  # one for the branch lookup, two for the create
    assert len(server.project().merge_requests) == 1


def test_retries_are_bounded(server: GitLabServer, forge: GitLabForge, sleeps: list[float]) -> None:
    server.fail("GET", MRS, status=503, times=10)
    with pytest.raises(ForgeError) as caught:
        forge.find(BRANCH)
    assert caught.value.status == 503
    assert "503" in caught.value.message and "503 Service Unavailable" in caught.value.body
    assert server.count("GET", MRS) == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_timeout_is_retried(server: GitLabServer, forge: GitLabForge, sleeps: list[float]) -> None:
    server.fail("GET", MRS, "sleep", seconds=TIMEOUT * 2)
    assert forge.find(BRANCH) == []
    assert server.count("GET", MRS) == 2
    assert sleeps == [0.5]


@pytest.mark.parametrize("kind", ["drop", "sleep", "status"])
def test_create_whose_answer_was_lost_makes_one_merge_request(
    server: GitLabServer, forge: GitLabForge, kind: str
) -> None:
    server.fail("POST", MRS, kind, perform=True, seconds=TIMEOUT * 2)
    mr = forge.open(_spec())
    assert len(server.project().merge_requests) == 1
    assert server.count("POST", MRS) == 1  # the re-check found it: no second create
    assert (mr.id, mr.head) == ("1", HEAD)


def test_lost_note_and_commit_answers_do_not_duplicate(server: GitLabServer, forge: GitLabForge) -> None:
    server.fail("POST", r"/repository/commits$", "drop", perform=True)
    server.fail("POST", r"/notes$", "drop", perform=True)
    forge.open(_spec())
    forge.upsert_note("1", "<!-- m -->", "hello <!-- m -->")
    assert len(server.project().notes[1]) == 1
    project = server.project()
    tip = project.commits[project.branches[BRANCH]]
    assert tip["parent_ids"] == [project.branches["main"]]  # the retry replaced the commit
    assert server.count("POST", r"/repository/commits$") == 2


def test_bad_token_is_a_401_forge_error_without_the_token(
    server: GitLabServer, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "glpat-WrongButSecret"
    forge = gitlab_forge(server.url, PROJECT, wrong, timeout=TIMEOUT, sleep=sleeps.append)
    with caplog.at_level(logging.DEBUG), pytest.raises(ForgeError) as caught:
        forge.open(_spec())
    error = caught.value
    assert error.status == 401
    assert error.message.startswith("GitLab refused the token (401)")
    assert "FACTORY_GITLAB_TOKEN" in error.message
    assert error.code == "forge-error" and error.exit_code == 1
    assert "401 Unauthorized" in error.body
    for text in (error.message, error.body, error.hint, str(error), repr(error), caplog.text):
        assert wrong not in text
    assert len(server.requests) == 1 and sleeps == []  # a 4xx is not retried


def test_a_job_token_given_as_the_access_token_is_refused_at_the_first_request(
    server: GitLabServer, sleeps: list[float]
) -> None:
    """FACTORY_GITLAB_TOKEN set to the job's CI_JOB_TOKEN: the forge sends only PRIVATE-TOKEN,
    and GitLab takes no job token as an access token."""
    forge = gitlab_forge(server.url, PROJECT, server.job_token, timeout=TIMEOUT, sleep=sleeps.append)
    with pytest.raises(ForgeError) as caught:
        forge.open(_spec())
    assert caught.value.status == 401 and "FACTORY_GITLAB_TOKEN" in caught.value.message
    assert [r.headers.get("PRIVATE-TOKEN") for r in server.requests] == [server.job_token]
    assert all("JOB-TOKEN" not in r.headers for r in server.requests)
    assert server.project().merge_requests == {} and sleeps == []


def test_a_429_is_retried_after_its_retry_after_and_opens_one_merge_request(
    server: GitLabServer, caplog: pytest.LogCaptureFixture
) -> None:
    """GitLab's rate limit: each 429 is waited out for exactly its Retry-After (the server's
    clock moves only when factory sleeps), so no retry comes early and meets a second 429."""
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        server.advance(seconds)

    # open() asks 8 things before it creates the merge request (project, merge requests,
    # branch, branch create, two file HEADs, commit, merge requests again): the 9th, the create
    # itself, is over the limit.
    server.throttle(8, period=60)
    server.advance(20)
    forge = gitlab_forge(server.url, PROJECT, TOKEN, timeout=TIMEOUT, sleep=sleep)
    with caplog.at_level(logging.WARNING):
        mr = forge.open(_spec())
    assert server.throttled == ["40"]  # the rest of the window it was refused in
    assert waited == [40.0]
    assert server.count("POST", MRS) == 2  # refused once, then made once
    assert len(server.project().merge_requests) == 1 and mr.id == "1"
    assert [a for a, b in itertools.pairwise(server.answered) if a == b == 429] == []
    assert "GitLab answered 429" in caplog.text and "as its Retry-After asks" in caplog.text


def test_a_429_that_asks_for_a_long_wait_is_an_error_naming_it(
    server: GitLabServer, sleeps: list[float]
) -> None:
    server.throttle(1, period=3600)
    forge = gitlab_forge(server.url, PROJECT, TOKEN, timeout=TIMEOUT, sleep=sleeps.append)
    with pytest.raises(ForgeError) as caught:
        forge.find(BRANCH)  # the project lookup takes the one request the hour allows
    assert caught.value.status == 429 and sleeps == []
    assert "asks to wait 3600s (Retry-After), longer than factory waits (300s)" in caught.value.message
    assert "Retry later" in caught.value.body


def test_token_echoed_in_an_error_is_redacted(server: GitLabServer, forge: GitLabForge) -> None:
    server.fail("GET", MRS, status=400, message=f"bad header PRIVATE-TOKEN: {TOKEN}")
    with pytest.raises(ForgeError) as caught:
        forge.find(BRANCH)
    error = caught.value
    assert error.status == 400
    assert "PRIVATE-TOKEN: [redacted]" in error.message and "PRIVATE-TOKEN: [redacted]" in error.body
    assert TOKEN not in error.message + error.body + str(error)
    assert error.__cause__ is None and error.__suppress_context__  # no unredacted raw exception


def test_unknown_project_is_a_clear_404(server: GitLabServer, sleeps: list[float]) -> None:
    forge = gitlab_forge(server.url, "group/nope", TOKEN, timeout=TIMEOUT, sleep=sleeps.append)
    with pytest.raises(ForgeError) as caught:
        forge.find(BRANCH)
    assert caught.value.status == 404
    assert caught.value.message == f"GitLab has no project 'group/nope' at {server.url} (404)"
    assert "404 Project Not Found" in caught.value.body
    assert "project path" in caught.value.hint
    assert sleeps == []


def test_4xx_is_not_retried(server: GitLabServer, forge: GitLabForge, sleeps: list[float]) -> None:
    server.fail("POST", MRS, status=422)
    with pytest.raises(ForgeError) as caught:
        forge.open(_spec())
    assert caught.value.status == 422
    assert server.count("POST", MRS) == 1
    assert sleeps == []
    assert "while opening a merge request from factory/bump/bash/f42" in caught.value.message


def test_unreachable_gitlab_is_retried_then_reported(sleeps: list[float]) -> None:
    with GitLabServer(token=TOKEN) as gone:
        url = gone.url
    forge = gitlab_forge(url, PROJECT, TOKEN, timeout=TIMEOUT, tries=2, sleep=sleeps.append)
    with pytest.raises(ForgeError, match="could not reach GitLab") as caught:
        forge.find(BRANCH)
    assert caught.value.status is None
    assert sleeps == [0.5]


def test_missing_token_is_refused_before_any_request() -> None:
    with pytest.raises(ForgeError, match="FACTORY_GITLAB_TOKEN"):
        gitlab_forge("http://127.0.0.1:9", PROJECT, "")


def test_many_merge_requests_are_paged(server: GitLabServer, forge: GitLabForge) -> None:
    for n in range(25):
        forge.open(_spec(head=f"{n:040x}"))
        server.set_state(n + 1, "merged")
    found = forge.find(BRANCH)
    assert [m.id for m in found] == [str(n) for n in range(25, 0, -1)]
    pages = [r.query.get("page", ["1"]) for r in server.requests[-2:]]
    assert pages == [["1"], ["2"]]  # python-gitlab followed the Link header to the second page
