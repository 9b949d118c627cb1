"""The loopback GitLab holds the rules GitLab's documentation states (each cited in
`tests/gitlab_server.py`), asked through the real python-gitlab client and plain requests, so
the tests that trust it to stand in for GitLab rest on something checked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gitlab
import gitlab.exceptions as glexc
import pytest
import requests

from tests.gitlab_server import EPOCH, GitLabServer

TOKEN = "glpat-Acc3ssT0kenOfTheProject"
JOB = "job-0nlyForWhatJobsMayRead"
PROJECT = "group/distribution"
FILES = {"modules/base/bash.yaml": "ref: 0000\n"}


@pytest.fixture
def server() -> Iterator[GitLabServer]:
    with GitLabServer(token=TOKEN, job_token=JOB, project=PROJECT, files=FILES) as gl:
        yield gl


def client(
    server: GitLabServer, *, private_token: str | None = None, job_token: str | None = None
) -> gitlab.Gitlab:
    return gitlab.Gitlab(
        server.url, private_token=private_token, job_token=job_token, timeout=5, retry_transient_errors=False
    )


def status_of(call: Any) -> int:
    """The HTTP status python-gitlab raised for a call (200 when it did not raise)."""
    try:
        call()
    except glexc.GitlabError as exc:
        assert exc.response_code is not None
        return exc.response_code
    return 200


def an_open_merge_request(server: GitLabServer) -> None:
    project = client(server, private_token=TOKEN).projects.get(PROJECT)
    project.branches.create({"branch": "feature", "ref": "main"})
    mr = project.mergerequests.create({"source_branch": "feature", "target_branch": "main", "title": "A"})
    mr.notes.create({"body": "a note"})


def test_a_job_token_reads_merge_requests_and_notes_and_nothing_it_may_not(server: GitLabServer) -> None:
    """https://docs.gitlab.com/ci/jobs/ci_job_token/#job-token-access: a job token may read merge
    requests and notes (and branches, commits, raw files); on every other endpoint GitLab does
    not look at it, and the private project answers an anonymous request 401 (write) or 404
    (read)."""
    an_open_merge_request(server)
    project = client(server, job_token=JOB).projects.get(PROJECT, lazy=True)
    mr = project.mergerequests.get(1, lazy=True)
    head = server.project().branches["main"]
    allowed = {
        "list merge requests": lambda: project.mergerequests.list(get_all=True),
        "get a merge request": lambda: project.mergerequests.get(1),
        "list notes": lambda: mr.notes.list(get_all=True),
        "get a note": lambda: mr.notes.get(server.project().notes[1][0]["id"]),
        "list branches": lambda: project.branches.list(get_all=True),
        "get a commit": lambda: project.commits.get(head),
        "read a raw file": lambda: project.files.raw("modules/base/bash.yaml", ref="main"),
    }
    refused = {
        "open a merge request": (
            lambda: project.mergerequests.create(
                {"source_branch": "x", "target_branch": "main", "title": "B"}
            ),
            401,
        ),
        "update a merge request": (lambda: project.mergerequests.update(1, {"title": "C"}), 401),
        "write a note": (lambda: mr.notes.create({"body": "n"}), 401),
        "create a branch": (lambda: project.branches.create({"branch": "y", "ref": "main"}), 401),
        "commit": (
            lambda: project.commits.create(
                {"branch": "main", "commit_message": "m", "actions": [{"action": "delete", "file_path": "x"}]}
            ),
            401,
        ),
        "get the project": (lambda: client(server, job_token=JOB).projects.get(PROJECT), 404),
        "get one branch": (lambda: project.branches.get("main"), 404),
        "read a file's metadata": (lambda: project.files.head("modules/base/bash.yaml", ref="main"), 404),
    }
    assert {what: status_of(call) for what, call in allowed.items()} == dict.fromkeys(allowed, 200)
    assert {what: status_of(call) for what, (call, _) in refused.items()} == {
        what: status for what, (_, status) in refused.items()
    }
    assert list(server.project().merge_requests) == [1]  # nothing it was refused was carried out
    assert server.project().merge_requests[1]["title"] == "A" and len(server.project().notes[1]) == 1
    # The same calls with the project's access token are allowed: the rule is the job token's.
    owner = client(server, private_token=TOKEN).projects.get(PROJECT)
    assert owner.branches.get("main").name == "main"
    assert status_of(lambda: owner.files.head("modules/base/bash.yaml", ref="main")) == 200


def test_tokens_are_checked_as_gitlab_checks_them(server: GitLabServer) -> None:
    """https://docs.gitlab.com/api/rest/authentication/ and the status codes of
    https://docs.gitlab.com/api/rest/troubleshooting/#status-codes."""
    url = f"{server.url}/api/v4/projects/{PROJECT.replace('/', '%2F')}"
    assert requests.get(url, headers={"PRIVATE-TOKEN": "glpat-wrong"}, timeout=5).status_code == 401
    assert (
        requests.get(f"{url}/merge_requests", headers={"JOB-TOKEN": "job-wrong"}, timeout=5).status_code
        == 401
    )
    assert requests.get(url, timeout=5).status_code == 404  # anonymous: a private project is not found
    assert requests.post(f"{url}/merge_requests", json={}, timeout=5).status_code == 401
    assert (
        requests.get(url, headers={"PRIVATE-TOKEN": TOKEN}, timeout=5).json()["path_with_namespace"]
        == PROJECT
    )


def test_a_second_open_merge_request_from_one_branch_is_a_409(server: GitLabServer) -> None:
    an_open_merge_request(server)
    project = client(server, private_token=TOKEN).projects.get(PROJECT, lazy=True)
    with pytest.raises(glexc.GitlabCreateError) as caught:
        project.mergerequests.create({"source_branch": "feature", "target_branch": "main", "title": "again"})
    assert caught.value.response_code == 409
    assert "Another open merge request already exists for this source branch: !1" in str(caught.value)


def test_lists_are_paged_with_gitlabs_headers(server: GitLabServer) -> None:
    """https://docs.gitlab.com/api/rest/#pagination."""
    project = server.project()
    for n in range(25):
        project.branches[f"b{n:02}"] = project.branches["main"]
    url = f"{server.url}/api/v4/projects/{project.id}/repository/branches"
    first = requests.get(url, params={"per_page": 10}, headers={"PRIVATE-TOKEN": TOKEN}, timeout=5)
    assert [first.headers[h] for h in ("X-Page", "X-Per-Page", "X-Total", "X-Total-Pages", "X-Next-Page")] == [
        "1", "10", "26", "3", "2",
    ]  # fmt: skip
    assert first.links["next"]["url"].endswith("&page=2&per_page=10") and len(first.json()) == 10
    capped = requests.get(url, params={"per_page": 1000}, headers={"PRIVATE-TOKEN": TOKEN}, timeout=5)
    assert capped.headers["X-Per-Page"] == "100"  # at most 100 a page


def test_the_rate_limit_answers_429_with_retry_after_and_carries_nothing_out(server: GitLabServer) -> None:
    """https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/#response-headers:
    headers on every answer; over the limit, 429 with a plain-text body, RateLimit-ResetTime and
    Retry-After (seconds until the quota resets); the request is not carried out."""
    server.throttle(2, period=60)
    url = f"{server.url}/api/v4/projects/{server.project().id}"
    auth = {"PRIVATE-TOKEN": TOKEN}
    server.advance(15)  # a quarter into the window
    ok = requests.get(url, headers=auth, timeout=5)
    assert ok.status_code == 200
    assert {h: ok.headers[h] for h in ("RateLimit-Limit", "RateLimit-Name", "RateLimit-Observed", "RateLimit-Remaining", "RateLimit-Reset")} == {
        "RateLimit-Limit": "2", "RateLimit-Name": "throttle_authenticated_api", "RateLimit-Observed": "1",
        "RateLimit-Remaining": "1", "RateLimit-Reset": str(int(EPOCH) + 60),
    }  # fmt: skip
    assert requests.get(url, headers=auth, timeout=5).status_code == 200
    body = {"source_branch": "main", "target_branch": "main", "title": "over the limit"}
    over = requests.post(f"{url}/merge_requests", json=body, headers=auth, timeout=5)
    assert (over.status_code, over.text, over.headers["Content-Type"]) == (
        429, "Retry later\n", "text/plain",
    )  # fmt: skip
    assert over.headers["Retry-After"] == "45" and over.headers["RateLimit-Remaining"] == "0"
    assert over.headers["RateLimit-ResetTime"].endswith(" GMT")
    assert server.project().merge_requests == {}  # refused before it reached the project
    server.advance(44)
    assert requests.get(url, headers=auth, timeout=5).headers.get("Retry-After") == "1"
    server.advance(1)  # the quota is reset
    assert requests.get(url, headers=auth, timeout=5).status_code == 200
    with pytest.raises(ValueError, match="use throttle"):
        server.fail("GET", ".", status=429)  # a 429 always comes with the rate limit's headers


def test_merging_follows_the_merge_api_and_pipelines() -> None:
    """https://docs.gitlab.com/api/merge_requests/#merge-a-merge-request: 405 when it cannot be
    merged (not open; a failed pipeline or none when told to wait for one), 409 for another sha,
    422 for a conflict; merge_when_pipeline_succeeds waits for a running pipeline, whose success
    merges it (a merge commit of the target's tip and the MR's head)."""
    files = {"a.txt": "a\n", ".gitlab-ci.yml": "stages: [test]\n"}
    with GitLabServer(token=TOKEN, project=PROJECT, files=files) as server:
        project = client(server, private_token=TOKEN).projects.get(PROJECT)

        def change(branch: str, path: str, text: str) -> str:
            commit = project.commits.create(
                {"branch": branch, "start_branch": "main", "commit_message": f"{path}",
                 "actions": [{"action": "update" if path == "a.txt" else "create", "file_path": path, "content": text}]}
            )  # fmt: skip
            return str(commit.id)

        head = change("one", "b.txt", "b\n")
        mr = project.mergerequests.create({"source_branch": "one", "target_branch": "main", "title": "One"})
        assert status_of(lambda: mr.merge(merge_when_pipeline_succeeds=True, sha="0" * 40)) == 409
        mr.merge(merge_when_pipeline_succeeds=True)
        assert (mr.state, mr.merge_when_pipeline_succeeds) == ("opened", True)
        server.finish_pipeline(head, "success")
        done = project.mergerequests.get(mr.iid)
        assert done.state == "merged"
        main = project.commits.get("main")
        assert main.parent_ids == [server.project().commits[main.id]["parent_ids"][0], head]
        assert server.files("main") == {**files, "b.txt": "b\n"}
        assert status_of(lambda: done.merge()) == 405  # merged already

        head = change("two", "c.txt", "c\n")
        two = project.mergerequests.create({"source_branch": "two", "target_branch": "main", "title": "Two"})
        server.finish_pipeline(head, "failed")
        assert status_of(lambda: two.merge(merge_when_pipeline_succeeds=True)) == 405
        two.merge()  # without waiting: merged at once
        assert project.mergerequests.get(two.iid).state == "merged"

        change("three", "a.txt", "three\n")
        change("four", "a.txt", "four\n")
        three = project.mergerequests.create(
            {"source_branch": "three", "target_branch": "main", "title": "3"}
        )
        four = project.mergerequests.create({"source_branch": "four", "target_branch": "main", "title": "4"})
        three.merge()
        assert status_of(lambda: four.merge()) == 422  # both changed a.txt
