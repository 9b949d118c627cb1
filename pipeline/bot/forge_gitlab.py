"""The GitLab forge: merge requests in one GitLab project, through python-gitlab.

This is the one module that talks to GitLab: merge requests and notes of the definitions project
(`GitLabForge`), and the branches of dist-git projects on the same GitLab (`GitLabDistGit`, for
`factory branch-release`, when factory.yaml's `distgit.url` is under `forge.gitlab.url`). It keeps
the Forge contract's promise of idempotence on a network that loses answers:

- every retried step is "look, then act": a retry after a 5xx, a timeout or a dropped
  connection starts again from the look, so a create whose answer was lost is found instead of
  made twice (merge requests, notes, branches);
- the source branch is written with one commit on top of the target branch (`start_branch` +
  `force`), so writing it again gives the same content, not a second commit on top;
- 5xx answers and timeouts are retried with bounded exponential backoff; 4xx answers are not,
  but for 429 (GitLab's rate limit, answered before the request is carried out): it is retried
  after the seconds its `Retry-After` header asks for (GitLab's "Response headers",
  https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/), and a wait longer
  than `max_retry_after` is an error naming it rather than a silent sleep. python-gitlab's own
  429 handling (sleeping in place, up to ten times) is off, so every wait goes through the one
  loop, its injectable sleep and its log line.

It sends only the access token it is given, as PRIVATE-TOKEN: GitLab lets a CI/CD job token
call none of the writes factory makes (`pipeline.bot.forge_choice`).

Every python-gitlab or requests exception is translated here into a `ForgeError` that keeps
the HTTP status and body. The token never appears in a message, a body or a log line.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import gitlab
import gitlab.exceptions as glexc
import requests
from gitlab.v4.objects import Project

from pipeline import retry
from pipeline.bot.forge import (
    MERGED,
    OPENED,
    ForgeError,
    MergeRequest,
    MergeRequestSpec,
    head_from_description,
)

log = logging.getLogger("factory.forge.gitlab")

T = TypeVar("T")

TOKEN_VARIABLE = "FACTORY_GITLAB_TOKEN"
_BODY_LIMIT = 2000  # characters of an error body kept on a ForgeError
MAX_RETRY_AFTER = 300.0  # the longest Retry-After (seconds) factory waits out


class Client(gitlab.Gitlab):
    """python-gitlab's client, leaving 429 answers to `GitLabCalls`, and remembering (per thread)
    the `Retry-After` of the last one: python-gitlab's exceptions keep status and body only."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._last = threading.local()
        session = requests.Session()
        session.hooks["response"].append(self._seen)
        super().__init__(url, session=session, **kwargs)

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code == 429:
            self._last.retry_after = response.headers.get("Retry-After")

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> requests.Response:
        """python-gitlab's request, its own sleep on 429 off (GitLabCalls waits instead)."""
        kwargs["obey_rate_limit"] = False
        self._last.retry_after = None
        return super().http_request(verb, path, *args, **kwargs)

    def retry_after(self) -> float | None:
        """The seconds the last 429 of this thread asked to wait (delay-seconds or an HTTP date,
        RFC 9110), or None when it said nothing readable."""
        value = str(getattr(self._last, "retry_after", None) or "").strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _redacted(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _transient(exc: BaseException) -> bool:
    """Whether trying again may succeed: timeouts, dropped connections, 5xx and 429 answers."""
    if isinstance(
        exc, requests.Timeout | requests.ConnectionError | requests.exceptions.ChunkedEncodingError
    ):
        return True
    if isinstance(exc, glexc.GitlabError):
        status = exc.response_code
        return status is not None and (status >= 500 or status == 429)
    return False


def _status(exc: BaseException) -> int | None:
    return exc.response_code if isinstance(exc, glexc.GitlabError) else None


def merge_request_from_api(attrs: Mapping[str, Any]) -> MergeRequest:
    """A MergeRequest from GitLab's merge request JSON (the fields python-gitlab hands back)."""
    description = str(attrs.get("description") or "")
    state = str(attrs.get("state") or "")
    if state == "locked":  # GitLab's transient state while merging: still open
        state = OPENED
    raw_labels = attrs.get("labels") or []
    if isinstance(raw_labels, str):
        raw_labels = [label for label in raw_labels.split(",") if label]
    labels = tuple(str(label["name"] if isinstance(label, dict) else label) for label in raw_labels)
    return MergeRequest(
        id=str(attrs["iid"]),
        source_branch=str(attrs.get("source_branch") or ""),
        target_branch=str(attrs.get("target_branch") or ""),
        state=state,
        title=str(attrs.get("title") or ""),
        description=description,
        labels=labels,
        head=head_from_description(description),
        web_url=str(attrs.get("web_url") or ""),
        auto_merge=bool(attrs.get("merge_when_pipeline_succeeds")),
    )


class GitLabCalls:
    """Calls to one GitLab over a python-gitlab client, retried and translated.

    `tries` bounds the attempts of each step (the first one included); between attempts it
    sleeps `backoff`, then twice that, and so on up to `max_backoff`; after a 429, what its
    Retry-After asks (at most `max_retry_after`). `sleep` is injectable so tests do not wait. `secrets` are redacted from every message and body emitted. `project`
    names the project the calls are about (in messages and hints).
    """

    def __init__(
        self,
        client: gitlab.Gitlab,
        project: str,
        *,
        secrets: Sequence[str] = (),
        tries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = MAX_RETRY_AFTER,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._gl = client
        self._max_retry_after = max_retry_after
        self._path = project
        self._secrets = tuple(s for s in secrets if s)
        self._tries = max(1, tries)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._project_cache: Project | None = None

    def _retrying(self, what: str, step: Callable[[], T]) -> T:
        """Run step; retry transient failures with backoff; translate every failure."""
        backoff = retry.Backoff(first=self._backoff, most=self._max_backoff)
        for attempt in retry.attempts(self._tries, backoff, sleep=self._sleep):
            try:
                return step()
            except (glexc.GitlabError, requests.RequestException) as exc:
                error = self._translate(what, exc)
                if not _transient(exc) or attempt.last:
                    # not chained: the raw exception's body is unredacted and may echo the token
                    raise error from None
                delay = backoff.delay(attempt.number - 1)
                asked = self._retry_after() if _status(exc) == 429 else None
                if asked is not None and asked > self._max_retry_after:
                    raise ForgeError(
                        f"{error.message}: its rate limit asks to wait {asked:.0f}s (Retry-After), "
                        f"longer than factory waits ({self._max_retry_after:.0f}s)",
                        code="gitlab-rate-limited",
                        status=429,
                        body=error.body,
                        hint="run it again once GitLab's rate limit has reset",
                    ) from None
                if asked is not None:
                    attempt.wait(asked)
                    delay = asked
                log.warning(
                    "%s; retrying in %.2fs (attempt %d of %d)%s",
                    error.message,
                    delay,
                    attempt.number,
                    self._tries,
                    ", as its Retry-After asks" if asked is not None else "",
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_after(self) -> float | None:
        reader = getattr(self._gl, "retry_after", None)
        return reader() if callable(reader) else None

    def _translate(self, what: str, exc: BaseException) -> ForgeError:
        status = _status(exc)
        body = ""
        detail = ""
        if isinstance(exc, glexc.GitlabError):
            raw = exc.response_body
            body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
            message = exc.error_message
            detail = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        hint = ""
        if status == 401:
            message = f"GitLab refused the token (401) while {what}: check {TOKEN_VARIABLE}"
            hint = "The token must be valid, unexpired and have the api scope."
            code = "gitlab-unauthorized"
        elif status == 403:
            message = f"GitLab denied access (403) while {what}: {detail}"
            hint = f"The token needs at least Developer access to {self._path}."
            code = "gitlab-forbidden"
        elif status is not None:
            message = f"GitLab answered {status} while {what}: {detail}"
            code = "gitlab-http-error"
        elif isinstance(exc, requests.Timeout):
            message = f"GitLab did not answer within {self._gl.timeout}s while {what}"
            code = "gitlab-timeout"
        elif isinstance(exc, requests.ConnectionError):
            message = f"could not reach GitLab at {self._gl.url} while {what}: {type(exc).__name__}"
            code = "gitlab-unreachable"
        else:
            message = f"GitLab request failed while {what}: {type(exc).__name__}: {exc}"
            code = "gitlab-request-failed"
        return ForgeError(
            self._redact(message),
            code=code,
            status=status,
            body=self._redact(body)[:_BODY_LIMIT],
            hint=hint,
        )

    def _redact(self, text: str) -> str:
        return _redacted(text, self._secrets)


class GitLabForge(GitLabCalls):
    """The Forge protocol for one GitLab project (`group/name`), over a python-gitlab client
    (retries and errors: `GitLabCalls`)."""

    # -- the Forge protocol ---------------------------------------------------------------

    def find(self, source_branch: str) -> list[MergeRequest]:
        """Every merge request (any state) from that source branch, newest first."""
        project = self._project()
        return self._retrying(
            f"listing merge requests from {source_branch}", lambda: self._list(project, source_branch)
        )

    def open(self, spec: MergeRequestSpec) -> MergeRequest:
        """Create the source branch with the spec's files committed, and the merge request.

        An open merge request from the same source branch is returned as it is, untouched (the
        bot calls `update` to change it): a rerun never makes a second one.
        """
        project = self._project()
        existing = self._opened(self.find(spec.source_branch))
        if existing is not None:
            log.info("merge request !%s from %s is already open", existing.id, spec.source_branch)
            return existing
        self._retrying(f"creating branch {spec.source_branch}", lambda: self._ensure_branch(project, spec))
        self._write_branch(project, spec)
        created = self._retrying(
            f"opening a merge request from {spec.source_branch}", lambda: self._create_mr(project, spec)
        )
        log.info("opened merge request !%s from %s", created.id, spec.source_branch)
        return created

    def update(self, mr: MergeRequest, spec: MergeRequestSpec) -> MergeRequest:
        """Reset the source branch to a new commit with the spec's files; update text and labels."""
        if spec.source_branch != mr.source_branch:
            raise ForgeError(
                f"cannot move merge request !{mr.id} from branch {mr.source_branch} to {spec.source_branch}",
                hint="GitLab cannot change a merge request's source branch; close it and open another.",
                code="mr-source-branch",
            )
        project = self._project()
        self._write_branch(project, spec)
        changes = {
            "title": spec.title,
            "description": spec.description,
            "labels": ",".join(spec.labels),
            "target_branch": spec.target_branch,
        }
        attrs = self._retrying(
            f"updating merge request !{mr.id}", lambda: project.mergerequests.update(mr.id, changes)
        )
        return merge_request_from_api(attrs)

    def upsert_note(self, mr_id: str, marker: str, body: str) -> None:
        """Post a note on a merge request, or edit the one that contains marker (no duplicates).

        The marker is appended to the body when the body does not already hold it, so the next
        call finds the note again.
        """
        if marker not in body:
            body = f"{body.rstrip()}\n\n{marker}\n"
        project = self._project()
        self._retrying(
            f"writing a note on merge request !{mr_id}", lambda: self._upsert(project, mr_id, marker, body)
        )

    def merge_when_pipeline_succeeds(self, mr: MergeRequest) -> MergeRequest:
        """Set the merge request to merge once its pipeline succeeds (GitLab merges it at once when
        the pipeline already has): `PUT .../merge_requests/:iid/merge` with
        `merge_when_pipeline_succeeds=true`, python-gitlab's `mr.merge(...)`
        (https://docs.gitlab.com/api/merge_requests/#merge-a-merge-request). A 405 (closed, a
        failed pipeline, none to wait for) is a ForgeError, unless the MR turns out merged: an
        answer lost and the call retried."""
        project = self._project()

        def merge() -> MergeRequest:
            attrs = project.mergerequests.get(mr.id, lazy=True).merge(merge_when_pipeline_succeeds=True)
            return merge_request_from_api(attrs)

        try:
            return self._retrying(
                f"setting merge request !{mr.id} to merge when its pipeline succeeds", merge
            )
        except ForgeError as exc:
            if exc.status != 405:
                raise
            now = self._retrying(
                f"reading merge request !{mr.id}",
                lambda: merge_request_from_api(project.mergerequests.get(mr.id).attributes),
            )
            if now.state == MERGED:
                return now
            raise ForgeError(
                f"GitLab will not merge !{mr.id} (405): it is {now.state}, or its pipeline failed or "
                "was never made",
                code="mr-not-mergeable",
                status=405,
                body=exc.body,
                hint="look at the merge request's pipeline; the next reconcile tries again",
            ) from None

    # -- steps (each one "look, then act", so retrying it from the top is safe) ------------

    def _project(self) -> Project:
        if self._project_cache is None:
            try:
                self._project_cache = self._retrying(
                    f"looking up project {self._path}", lambda: self._gl.projects.get(self._path)
                )
            except ForgeError as exc:
                if exc.status != 404:
                    raise
                raise ForgeError(
                    self._redact(f"GitLab has no project {self._path!r} at {self._gl.url} (404)"),
                    code="unknown-project",
                    status=404,
                    body=exc.body,
                    hint="Check the project path (group/name) and that the token can see the project.",
                ) from exc
        return self._project_cache

    @staticmethod
    def _list(project: Project, source_branch: str) -> list[MergeRequest]:
        found = project.mergerequests.list(source_branch=source_branch, state="all", get_all=True)
        mrs = [merge_request_from_api(mr.attributes) for mr in found]
        # GitLab filters by source branch already; keep only exact matches all the same.
        mrs = [mr for mr in mrs if mr.source_branch == source_branch]
        return sorted(mrs, key=lambda mr: int(mr.id), reverse=True)

    @staticmethod
    def _opened(mrs: Sequence[MergeRequest]) -> MergeRequest | None:
        return next((mr for mr in mrs if mr.state == OPENED), None)

    @staticmethod
    def _ensure_branch(project: Project, spec: MergeRequestSpec) -> None:
        try:
            project.branches.get(spec.source_branch)
            return
        except glexc.GitlabGetError as exc:
            if exc.response_code != 404:
                raise
        project.branches.create({"branch": spec.source_branch, "ref": spec.target_branch})

    def _write_branch(self, project: Project, spec: MergeRequestSpec) -> None:
        """Point the source branch at one new commit on top of the target with the spec's files.

        With no files there is nothing to commit and the branch is left as it is.
        """
        if not spec.files and not spec.removed:
            return
        actions = self._retrying(
            f"reading files on {spec.target_branch}", lambda: self._actions(project, spec)
        )
        data = {
            "branch": spec.source_branch,
            "start_branch": spec.target_branch,
            "force": True,
            "commit_message": spec.commit_message or spec.title,
            "actions": actions,
        }
        self._retrying(f"committing to {spec.source_branch}", lambda: project.commits.create(data))

    @staticmethod
    def _actions(project: Project, spec: MergeRequestSpec) -> list[dict[str, str]]:
        actions = [
            {"action": "delete", "file_path": path}
            for path in sorted(spec.removed)
            if path not in spec.files and _exists(project, path, spec.target_branch)
        ]
        for path in sorted(spec.files):
            try:
                project.files.head(path, ref=spec.target_branch)
                action = "update"
            except glexc.GitlabHeadError as exc:
                if exc.response_code != 404:
                    raise
                action = "create"
            actions.append({"action": action, "file_path": path, "content": spec.files[path]})
        return actions

    def create_branch(self, name: str, start: str) -> bool:
        """Create branch `name` at the head of branch `start` unless it exists: True if made.

        Look, then act: a retry after a lost answer finds the branch and says it was not made."""
        project = self._project()

        def make() -> bool:
            try:
                project.branches.get(name)
                return False
            except glexc.GitlabGetError as exc:
                if exc.response_code != 404:
                    raise
            project.branches.create({"branch": name, "ref": start})
            return True

        return self._retrying(f"creating branch {name}", make)

    def _create_mr(self, project: Project, spec: MergeRequestSpec) -> MergeRequest:
        existing = self._opened(self._list(project, spec.source_branch))
        if existing is not None:  # an earlier attempt made it and its answer was lost
            return existing
        data = {
            "source_branch": spec.source_branch,
            "target_branch": spec.target_branch,
            "title": spec.title,
            "description": spec.description,
            "labels": ",".join(spec.labels),
            "remove_source_branch": True,
        }
        try:
            created = project.mergerequests.create(data)
        except glexc.GitlabCreateError as exc:
            if exc.response_code == 409:  # "Another open merge request already exists"
                existing = self._opened(self._list(project, spec.source_branch))
                if existing is not None:
                    return existing
            raise
        return merge_request_from_api(created.attributes)

    @staticmethod
    def _upsert(project: Project, mr_id: str, marker: str, body: str) -> None:
        mr = project.mergerequests.get(mr_id, lazy=True)
        for note in mr.notes.list(get_all=True):
            attrs = note.attributes
            if not attrs.get("system") and marker in str(attrs.get("body") or ""):
                if attrs.get("body") != body:
                    mr.notes.update(attrs["id"], {"body": body})
                return
        mr.notes.create({"body": body})


def _exists(project: Project, path: str, ref: str) -> bool:
    try:
        project.files.head(path, ref=ref)
    except glexc.GitlabHeadError as exc:
        if exc.response_code != 404:
            raise
        return False
    return True


def gitlab_forge(
    url: str,
    project: str,
    token: str,
    *,
    timeout: float = 10,
    tries: int = 4,
    backoff: float = 0.5,
    max_retry_after: float = MAX_RETRY_AFTER,
    sleep: Callable[[float], None] = time.sleep,
) -> GitLabForge:
    """A GitLabForge for `project` (`group/name`) on the GitLab at `url`.

    `token` is a personal, project or group access token, sent as PRIVATE-TOKEN (never as a CI
    job token: GitLab refuses one for every write the forge makes). python-gitlab's own retries
    are off: this forge retries, re-checking before every create.
    """
    if not token:
        raise ForgeError(
            f"no GitLab token: set {TOKEN_VARIABLE}",
            hint="Use a project access token with the api scope.",
            code="no-gitlab-token",
        )
    client = Client(url, private_token=token, timeout=timeout, retry_transient_errors=False)
    return GitLabForge(
        client,
        project,
        secrets=(token,),
        tries=tries,
        backoff=backoff,
        max_retry_after=max_retry_after,
        sleep=sleep,
    )


# -- dist-git projects on the same GitLab (`factory branch-release`) --------------------------------


class GitLabDistGit(GitLabCalls):
    """The dist-git projects under one GitLab instance (`client.url`)."""

    def project_path(self, url: str) -> str | None:
        """`rpms/openssl` for `https://gitlab.example/rpms/openssl.git`; None when url is not a
        project of this GitLab."""
        base = self._gl.url.rstrip("/") + "/"
        if not url.startswith(base):
            return None
        path = url.removeprefix(base).removesuffix("/").removesuffix(".git")
        return path or None

    def head(self, url: str, branch: str) -> str | None:
        """The commit a branch of the component at url points to; None when it has no such branch."""
        path = self._path_of(url)

        def read() -> str | None:
            try:
                found = self._gl.projects.get(path, lazy=True).branches.get(branch)
            except glexc.GitlabGetError as exc:
                if exc.response_code != 404:
                    raise
                return None
            return str(found.attributes["commit"]["id"])

        return self._retrying(f"reading branch {branch} of {path}", read)

    def create_branch(self, url: str, branch: str, start: str) -> bool:
        """Create `branch` at commit `start` in the component at url unless it exists: True if made."""
        path = self._path_of(url)
        project = self._gl.projects.get(path, lazy=True)

        def make() -> bool:
            try:
                project.branches.get(branch)
                return False
            except glexc.GitlabGetError as exc:
                if exc.response_code != 404:
                    raise
            project.branches.create({"branch": branch, "ref": start})
            return True

        return self._retrying(f"creating branch {branch} of {path}", make)

    def _path_of(self, url: str) -> str:
        path = self.project_path(url)
        if path is None:
            raise ForgeError(
                f"{url} is not a project of the GitLab at {self._gl.url}", code="foreign-project"
            )
        return path


def gitlab_distgit(
    url: str,
    token: str,
    *,
    timeout: float = 10,
    tries: int = 4,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> GitLabDistGit:
    """The dist-git projects of the GitLab at url, written with `token` (PRIVATE-TOKEN)."""
    if not token:
        raise ForgeError("no GitLab token: set FACTORY_GITLAB_TOKEN", code="no-gitlab-token")
    client = Client(url, private_token=token, timeout=timeout, retry_transient_errors=False)
    return GitLabDistGit(client, "dist-git", secrets=(token,), tries=tries, backoff=backoff, sleep=sleep)


__all__ = [
    "Client",
    "GitLabDistGit",
    "GitLabForge",
    "gitlab_distgit",
    "gitlab_forge",
    "merge_request_from_api",
]
