"""A loopback GitLab: the REST v4 endpoints factory uses, with in-memory state.

No GitLab server can run here, so tests speak real HTTP (through the real python-gitlab client)
to this one. It answers as GitLab's documentation says, each rule with the page it comes from:

- every endpoint's request and answer shapes (the fields python-gitlab and factory read), under
  /api/v4/projects/:id, `:id` a number or the URL-encoded `group/name`
  (https://docs.gitlab.com/api/rest/#namespaced-paths):

    GET    /projects/:id                                https://docs.gitlab.com/api/projects/
    GET    /projects/:id/repository/branches            https://docs.gitlab.com/api/branches/
    GET    /projects/:id/repository/branches/:branch      (the same page)
    POST   /projects/:id/repository/branches              (branch, ref; 400 when it exists)
    GET    /projects/:id/repository/files/:file_path?ref=
    HEAD   /projects/:id/repository/files/:file_path?ref=  https://docs.gitlab.com/api/repository_files/
    GET    /projects/:id/repository/files/:file_path/raw?ref=
    GET    /projects/:id/repository/commits/:sha        https://docs.gitlab.com/api/commits/
    POST   /projects/:id/repository/commits               (branch, commit_message, actions,
                                                          start_branch, force)
    GET    /projects/:id/merge_requests                 https://docs.gitlab.com/api/merge_requests/
    POST   /projects/:id/merge_requests                   (409 on a second open one from a source
                                                          branch: "A conflicting resource already
                                                          exists", the status codes below)
    GET    /projects/:id/merge_requests/:iid
    PUT    /projects/:id/merge_requests/:iid              (title, description, labels,
                                                          target_branch, state_event)
    PUT    /projects/:id/merge_requests/:iid/merge        (tests/gitlab_merges.py)
    GET    /projects/:id/merge_requests/:iid/notes      https://docs.gitlab.com/api/notes/
    GET    /projects/:id/merge_requests/:iid/notes/:note_id
    POST   /projects/:id/merge_requests/:iid/notes
    PUT    /projects/:id/merge_requests/:iid/notes/:note_id

- lists are paged (`page`, `per_page` at most 100, default 20; `X-Page`, `X-Per-Page`,
  `X-Total`, `X-Total-Pages`, `X-Next-Page` and a `Link: <...>; rel="next"` header):
  https://docs.gitlab.com/api/rest/#pagination;
- a request is authenticated by a personal, project or group access token in `PRIVATE-TOKEN`
  (https://docs.gitlab.com/api/rest/authentication/); a token that is not valid answers 401;
- a CI/CD job token (`JOB-TOKEN`) authenticates only the endpoints listed under "Job token
  access" in https://docs.gitlab.com/ci/jobs/ci_job_token/#job-token-access (of those served
  here: listing branches, reading a commit, a raw file, merge requests and their notes, all GET;
  `JOB_TOKEN_ENDPOINTS`). Anywhere else GitLab does not look at it, so the request is
  anonymous, and the project is private: a write answers 401 ("The user isn't authenticated"),
  a read 404 ("the user isn't authorized to access the resource"), as the status codes of
  https://docs.gitlab.com/api/rest/troubleshooting/#status-codes say;
- with `throttle(limit, period)`, the authenticated API rate limit of
  https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/: every answer carries
  `RateLimit-Limit`, `RateLimit-Name`, `RateLimit-Observed`, `RateLimit-Remaining` and
  `RateLimit-Reset` ("Response headers"), and a request over the limit in the current period is
  answered 429 with the plain-text body `Retry later`, `RateLimit-ResetTime` and `Retry-After`
  (seconds until the quota is reset), before anything is carried out. The server keeps its own
  clock for it, which only `advance` moves: a test gives factory `sleep=server.advance`, so a
  client that retried before Retry-After would meet 429 again.

- merging and pipelines: the rules of `tests/gitlab_merges.py`, each with its page.

Faults queued with `fail` apply, in order, to the next requests matching a method and a path
pattern: answer a status, sleep past the client's timeout, or drop the connection, each
optionally after carrying the request out ("the create succeeded but its answer was lost").
Every request is recorded.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests import gitlab_merges as merges

JSON = dict[str, Any]
Reply = tuple[int, Any, dict[str, str]]  # status, JSON payload (None: no body), extra headers

USER = {"id": 1, "username": "factory-bot", "name": "Factory Bot", "state": "active"}

# What a CI/CD job token may call, of what this server serves (method, path under
# /projects/:id/): https://docs.gitlab.com/ci/jobs/ci_job_token/#job-token-access. The page
# lists more (registries, packages, releases, deployments, environments, job artifacts,
# pipeline triggers, tags), none of which factory calls.
JOB_TOKEN_ENDPOINTS = (
    ("GET", r"repository/branches"),
    ("GET", r"repository/commits/[^/]+"),
    ("GET", r"repository/commits/[^/]+/merge_requests"),
    ("GET", r"repository/files/[^/]+/raw"),
    ("GET", r"repository/tags"),
    ("GET", r"merge_requests"),
    ("GET", r"merge_requests/[^/]+"),
    ("GET", r"merge_requests/[^/]+/notes"),
    ("GET", r"merge_requests/[^/]+/notes/[^/]+"),
)
EPOCH = 1_800_000_000.0  # where the server's rate-limit clock starts (moved only by `advance`)


def job_token_may(method: str, raw_path: str) -> bool:
    """Whether GitLab takes a JOB-TOKEN for this request (anywhere else it is not looked at)."""
    parts = raw_path.strip("/").split("/")
    if parts[:3] != ["api", "v4", "projects"] or len(parts) < 5:
        return False
    rest = "/".join(parts[4:])
    return any(method == m and re.fullmatch(pattern, rest) for m, pattern in JOB_TOKEN_ENDPOINTS)


@dataclass
class Throttle:
    """The authenticated API rate limit: `limit` requests per user in each `period` seconds
    (Rack::Attack's fixed windows)."""

    limit: int
    period: int
    seen: dict[tuple[str, int], int] = field(default_factory=dict)  # (user, window) -> requests


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do instead of (or after) carrying out one matching request."""

    method: str
    path: str  # regular expression searched in the request path (query excluded)
    kind: str  # "status", "sleep" or "drop"
    status: int = 500
    seconds: float = 0.0
    perform: bool = False  # carry the request out first, then fail to answer it
    message: str = ""  # the error body's message; default "<status> <reason>"


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str  # raw path, URL-encoded segments kept
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


class ApiError(Exception):
    """An error answer: status and GitLab's JSON error body."""

    def __init__(self, status: int, message: Any) -> None:
        super().__init__(status, message)
        self.status = status
        self.payload = {"message": message}


@dataclass
class Project:
    """One project's repository and merge requests."""

    id: int
    path: str
    default_branch: str
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit id
    commits: dict[str, JSON] = field(default_factory=dict)  # id -> commit JSON
    trees: dict[str, dict[str, str]] = field(default_factory=dict)  # commit id -> path -> content
    merge_requests: dict[int, JSON] = field(default_factory=dict)  # iid -> MR JSON
    notes: dict[int, list[JSON]] = field(default_factory=dict)  # iid -> notes, oldest first
    pipelines: dict[str, str] = field(default_factory=dict)  # commit id -> running, success, failed


class GitLabServer:
    """The loopback GitLab; use as a context manager, or start() and stop()."""

    def __init__(
        self,
        *,
        token: str = "glpat-loopback-secret",
        job_token: str = "",
        project: str = "group/distribution",
        default_branch: str = "main",
        files: dict[str, str] | None = None,
    ) -> None:
        self.token = token
        self.job_token = job_token
        self.requests: list[Recorded] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._clock = 0
        self.clock = EPOCH  # seconds, for the rate limit: moved by `advance` only
        self.answered: list[int] = []  # the status of every answer, in order
        self.throttled: list[str] = []  # the Retry-After of every 429 answered
        self._throttle: Throttle | None = None
        self._ids = 100
        self.projects: dict[int, Project] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.gitlab = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self.add_project(project, default_branch, files or {})

    @property
    def url(self) -> str:
        """The base URL to give python-gitlab."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> GitLabServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> GitLabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls --------------------------------------------------------------------

    def add_project(self, path: str, default_branch: str, files: dict[str, str]) -> Project:
        """A project whose default branch holds one commit with files."""
        project = Project(id=len(self.projects) + 42, path=path, default_branch=default_branch)
        self.projects[project.id] = project
        root = self._commit(project, None, dict(files), "Initial commit")
        project.branches[default_branch] = root
        return project

    def project(self, path: str = "group/distribution") -> Project:
        """The project with that path."""
        return next(p for p in self.projects.values() if p.path == path)

    def fail(
        self,
        method: str,
        path: str,
        kind: str = "status",
        *,
        status: int = 500,
        seconds: float = 0.0,
        perform: bool = False,
        message: str = "",
        times: int = 1,
    ) -> None:
        """Queue a fault for the next `times` requests matching method and path pattern."""
        if kind == "status" and status == 429:
            raise ValueError("a 429 comes from the rate limit, with its headers: use throttle()")
        fault = Fault(method.upper(), path, kind, status, seconds, perform, message)
        with self._lock:
            self._faults.extend([fault] * times)

    def throttle(self, limit: int, period: int = 60) -> None:
        """Turn on the authenticated API rate limit: `limit` requests per `period` seconds."""
        with self._lock:
            self._throttle = Throttle(limit, period)

    def advance(self, seconds: float) -> None:
        """Let time pass on the server's clock (give it to factory as its `sleep`)."""
        with self._lock:
            self.clock += seconds

    def rate_limit(self, user: str) -> tuple[bool, dict[str, str]]:
        """Count one request of user against the throttle: whether it is over the limit, and the
        headers GitLab sends (the 429 ones too when it is): "Response headers" of
        https://docs.gitlab.com/administration/settings/user_and_ip_rate_limits/."""
        with self._lock:
            throttle = self._throttle
            if throttle is None:
                return False, {}
            window = int(self.clock // throttle.period)
            observed = throttle.seen.get((user, window), 0) + 1
            throttle.seen[(user, window)] = observed
            reset = (window + 1) * throttle.period
            headers = {
                "RateLimit-Limit": str(round(throttle.limit * 60 / throttle.period)),
                "RateLimit-Name": "throttle_authenticated_api",
                "RateLimit-Observed": str(observed),
                "RateLimit-Remaining": str(max(0, throttle.limit - observed)),
                "RateLimit-Reset": str(reset),
            }
            if observed <= throttle.limit:
                return False, headers
            headers["RateLimit-ResetTime"] = email.utils.formatdate(reset, usegmt=True)
            headers["Retry-After"] = str(max(1, math.ceil(reset - self.clock)))
            self.throttled.append(headers["Retry-After"])
            return True, headers

    def count(self, method: str, path: str) -> int:
        """How many recorded requests match method and the path pattern."""
        return sum(1 for r in self.requests if r.method == method.upper() and re.search(path, r.path))

    def files(self, branch: str, path: str = "group/distribution") -> dict[str, str]:
        """The files at the tip of a branch."""
        project = self.project(path)
        return dict(project.trees[project.branches[branch]])

    def set_state(self, iid: int, state: str, path: str = "group/distribution") -> None:
        """Close or merge a merge request as a person would."""
        self.project(path).merge_requests[iid]["state"] = state

    def finish_pipeline(self, sha: str, status: str, path: str = "group/distribution") -> None:
        """End the pipeline of a commit (`success` or `failed`): tests/gitlab_merges.finish."""
        with self._lock:
            project = self.project(path)
            merges.finish(project.pipelines, project.merge_requests.values(), project.branches, sha, status,
                          lambda mr: self._merge(project, mr))  # fmt: skip

    # -- state changes (called with the lock held) ----------------------------------------

    def _now(self) -> str:
        self._clock += 1
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_700_000_000 + self._clock))

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _commit(self, project: Project, parent: str | None, tree: dict[str, str], message: str) -> str:
        now = self._now()
        digest = hashlib.sha1(json.dumps([parent, tree, message, now], sort_keys=True).encode())
        sha = digest.hexdigest()
        project.trees[sha] = tree
        project.commits[sha] = {
            "id": sha,
            "short_id": sha[:8],
            "title": message.splitlines()[0] if message else "",
            "message": message,
            "author_name": USER["name"],
            "author_email": "bot@example.org",
            "authored_date": now,
            "committer_name": USER["name"],
            "committer_email": "bot@example.org",
            "committed_date": now,
            "created_at": now,
            "parent_ids": [parent] if parent else [],
            "web_url": f"{self.url}/{project.path}/-/commit/{sha}",
        }
        return sha

    def handle(self, method: str, raw_path: str, query: dict[str, list[str]], body: Any) -> Reply:
        """Route one authenticated request; raise ApiError for error answers."""
        parts = raw_path.strip("/").split("/")
        if parts[:2] != ["api", "v4"] or len(parts) < 4 or parts[2] != "projects":
            raise ApiError(404, "404 Not Found")
        segments = [unquote(s) for s in parts[3:]]
        project = self._find_project(segments[0])
        rest = segments[1:]
        params = {k: v[-1] for k, v in query.items()}
        if isinstance(body, dict):
            params.update(body)
        kept = "&".join(
            f"{k}={quote(v[-1])}" for k, v in sorted(query.items()) if k not in ("page", "per_page")
        )
        page_url = f"{self.url}{raw_path}?{kept}"
        with self._lock:
            return self._route(project, method, rest, params, page_url)

    def _find_project(self, key: str) -> Project:
        for project in self.projects.values():
            if key in (str(project.id), project.path):
                return project
        raise ApiError(404, "404 Project Not Found")

    def _route(self, project: Project, method: str, rest: list[str], params: JSON, page_url: str) -> Reply:
        match (method, rest):
            case ("GET", []):
                return 200, self._project_json(project), {}
            case ("GET", ["repository", "branches"]):
                branches = [self._branch_json(project, name) for name in sorted(project.branches)]
                return self._page(branches, params, page_url)
            case ("GET", ["repository", "branches", name]):
                return 200, self._branch_json(project, self._branch(project, name)), {}
            case ("POST", ["repository", "branches"]):
                return 201, self._create_branch(project, params), {}
            case ("GET" | "HEAD", ["repository", "files", path]):
                return self._file(project, path, str(params.get("ref", project.default_branch)), method)
            case ("GET", ["repository", "files", path, "raw"]):
                _, meta, headers = self._file(
                    project, path, str(params.get("ref", project.default_branch)), "GET"
                )
                return 200, base64.b64decode(meta["content"]), headers
            case ("GET", ["repository", "commits", sha]):
                found = project.branches.get(sha, sha)
                if found not in project.commits:
                    raise ApiError(404, "404 Commit Not Found")
                return 200, project.commits[found], {}
            case ("POST", ["repository", "commits"]):
                return 201, self._create_commit(project, params), {}
            case ("GET", ["merge_requests"]):
                return self._page(self._list_mrs(project, params), params, page_url)
            case ("POST", ["merge_requests"]):
                return 201, self._create_mr(project, params), {}
            case ("GET", ["merge_requests", iid]):
                return 200, self._mr(project, iid), {}
            case ("PUT", ["merge_requests", iid]):
                return 200, self._update_mr(project, iid, params), {}
            case ("PUT", ["merge_requests", iid, "merge"]):
                return 200, self._accept_mr(project, iid, params), {}
            case ("GET", ["merge_requests", iid, "notes"]):
                self._mr(project, iid)
                notes = sorted(project.notes.get(int(iid), []), key=lambda n: n["id"])
                return self._page(
                    notes[::-1] if params.get("sort", "desc") == "desc" else notes, params, page_url
                )
            case ("POST", ["merge_requests", iid, "notes"]):
                return 201, self._create_note(project, iid, params), {}
            case ("GET", ["merge_requests", iid, "notes", note_id]):
                self._mr(project, iid)
                note = next((n for n in project.notes.get(int(iid), []) if str(n["id"]) == note_id), None)
                if note is None:
                    raise ApiError(404, "404 Note Not Found")
                return 200, dict(note), {}
            case ("PUT", ["merge_requests", iid, "notes", note_id]):
                return 200, self._update_note(project, iid, note_id, params), {}
        raise ApiError(404, "404 Not Found")

    def _project_json(self, project: Project) -> JSON:
        name = project.path.rsplit("/", 1)[-1]
        return {
            "id": project.id,
            "name": name,
            "path": name,
            "path_with_namespace": project.path,
            "default_branch": project.default_branch,
            "web_url": f"{self.url}/{project.path}",
            "visibility": "private",
        }

    @staticmethod
    def _branch(project: Project, name: str) -> str:
        if name not in project.branches:
            raise ApiError(404, "404 Branch Not Found")
        return name

    def _branch_json(self, project: Project, name: str) -> JSON:
        return {
            "name": name,
            "merged": False,
            "protected": name == project.default_branch,
            "default": name == project.default_branch,
            "developers_can_push": False,
            "developers_can_merge": False,
            "can_push": True,
            "web_url": f"{self.url}/{project.path}/-/tree/{quote(name)}",
            "commit": project.commits[project.branches[name]],
        }

    def _create_branch(self, project: Project, params: JSON) -> JSON:
        name, ref = str(params.get("branch", "")), str(params.get("ref", ""))
        if not name or not ref:
            raise ApiError(400, "400 Bad request - branch, ref are missing")
        if name in project.branches:
            raise ApiError(400, "Branch already exists")
        sha = project.branches.get(ref) or (ref if ref in project.commits else None)
        if sha is None:
            raise ApiError(400, "Invalid reference name: " + ref)
        project.branches[name] = sha
        return self._branch_json(project, name)

    def _file(self, project: Project, path: str, ref: str, method: str) -> Reply:
        sha = project.branches.get(ref) or (ref if ref in project.commits else None)
        if sha is None or path not in project.trees[sha]:
            raise ApiError(404, "404 File Not Found")
        content = project.trees[sha][path].encode()
        meta = {
            "file_name": path.rsplit("/", 1)[-1],
            "file_path": path,
            "size": len(content),
            "encoding": "base64",
            "content_sha256": hashlib.sha256(content).hexdigest(),
            "ref": ref,
            "blob_id": hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest(),
            "commit_id": sha,
            "last_commit_id": sha,
        }
        headers = {f"X-Gitlab-{k.replace('_', '-').title()}": str(v) for k, v in meta.items()}
        if method == "HEAD":
            return 200, None, headers
        return 200, {**meta, "content": base64.b64encode(content).decode()}, headers

    def _create_commit(self, project: Project, params: JSON) -> JSON:
        branch = str(params.get("branch", ""))
        start = params.get("start_branch")
        actions = params.get("actions")
        if not branch or "commit_message" not in params or not actions:
            raise ApiError(400, "400 Bad request - branch, commit_message, actions are missing")
        if start:
            if start not in project.branches:
                raise ApiError(400, f"Cannot find start branch {start}")
            if branch in project.branches and branch != start and not params.get("force"):
                raise ApiError(
                    400,
                    f"A branch called '{branch}' already exists. Switch to that branch in order to make changes",
                )
            parent = project.branches[str(start)]
        elif branch in project.branches:
            parent = project.branches[branch]
        else:
            raise ApiError(400, "You can only create or edit files when you are on a branch")
        tree = dict(project.trees[parent])
        for action in actions:
            kind, path = action.get("action"), str(action.get("file_path", ""))
            content = str(action.get("content", ""))
            if action.get("encoding") == "base64":
                content = base64.b64decode(content).decode()
            if kind == "create" and path in tree:
                raise ApiError(400, "A file with this name already exists")
            if kind in ("update", "delete") and path not in tree:
                raise ApiError(400, "A file with this name doesn't exist")
            if kind in ("create", "update"):
                tree[path] = content
            elif kind == "delete":
                del tree[path]
            else:
                raise ApiError(400, f"Unknown action '{kind}'")
        sha = self._commit(project, parent, tree, str(params["commit_message"]))
        project.branches[branch] = sha
        if merges.CI_FILE in tree:
            project.pipelines[sha] = "running"
        return {**project.commits[sha], "stats": {"additions": 0, "deletions": 0, "total": 0}, "status": None}

    def _list_mrs(self, project: Project, params: JSON) -> list[JSON]:
        state = params.get("state", "all")
        found = [
            mr
            for mr in project.merge_requests.values()
            if (state == "all" or mr["state"] == state)
            and params.get("source_branch") in (None, mr["source_branch"])
            and params.get("target_branch") in (None, mr["target_branch"])
        ]
        found.sort(key=lambda mr: (mr["created_at"], mr["iid"]), reverse=params.get("sort", "desc") == "desc")
        return [self._mr_json(project, mr) for mr in found]

    @staticmethod
    def _page(items: list[JSON], params: JSON, page_url: str) -> Reply:
        """Offset pagination: https://docs.gitlab.com/api/rest/#pagination."""
        per_page = max(1, min(int(params.get("per_page", 20)), 100))
        page = max(1, int(params.get("page", 1)))
        pages = max(1, -(-len(items) // per_page))
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
        }
        if page < pages:
            headers["X-Next-Page"] = str(page + 1)
            headers["Link"] = f'<{page_url}&page={page + 1}&per_page={per_page}>; rel="next"'
        return 200, items[(page - 1) * per_page : page * per_page], headers

    def _labels(self, value: Any) -> list[str]:
        items = value.split(",") if isinstance(value, str) else list(value or [])
        return sorted({str(label).strip() for label in items if str(label).strip()})

    def _create_mr(self, project: Project, params: JSON) -> JSON:
        missing = [k for k in ("source_branch", "target_branch", "title") if not params.get(k)]
        if missing:
            raise ApiError(400, f"400 Bad request - {', '.join(missing)} is missing")
        source, target = str(params["source_branch"]), str(params["target_branch"])
        for key, name in (("source_branch", source), ("target_branch", target)):
            if name not in project.branches:
                raise ApiError(400, {key: [f'"{name}" does not exist']})
        # One open merge request per source branch; a second is a conflict (409: "A conflicting
        # resource already exists", https://docs.gitlab.com/api/rest/troubleshooting/#status-codes).
        for mr in project.merge_requests.values():
            if mr["source_branch"] == source and mr["state"] == "opened":
                raise ApiError(
                    409, [f"Another open merge request already exists for this source branch: !{mr['iid']}"]
                )
        iid = max(project.merge_requests, default=0) + 1
        now = self._now()
        project.merge_requests[iid] = {
            "id": self._next_id(),
            "iid": iid,
            "project_id": project.id,
            "source_project_id": project.id,
            "target_project_id": project.id,
            "title": str(params["title"]),
            "description": str(params.get("description") or ""),
            "state": "opened",
            "created_at": now,
            "updated_at": now,
            "source_branch": source,
            "target_branch": target,
            "labels": self._labels(params.get("labels")),
            "force_remove_source_branch": bool(params.get("remove_source_branch")),
            "merge_when_pipeline_succeeds": False,
        }
        return self._mr_json(project, project.merge_requests[iid])

    def _mr(self, project: Project, iid: str) -> JSON:
        mr = project.merge_requests.get(int(iid)) if iid.isdigit() else None
        if mr is None:
            raise ApiError(404, "404 Not found")
        return self._mr_json(project, mr)

    def _mr_json(self, project: Project, mr: JSON) -> JSON:
        sha = project.branches.get(mr["source_branch"])
        return {
            **mr,
            "author": USER,
            "draft": False,
            "work_in_progress": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable",
            "sha": sha,
            "references": {"short": f"!{mr['iid']}", "full": f"{project.path}!{mr['iid']}"},
            "web_url": f"{self.url}/{project.path}/-/merge_requests/{mr['iid']}",
        }

    def _update_mr(self, project: Project, iid: str, params: JSON) -> JSON:
        self._mr(project, iid)
        mr = project.merge_requests[int(iid)]
        for key in ("title", "description", "target_branch"):
            if key in params:
                mr[key] = str(params[key])
        if "labels" in params:
            mr["labels"] = self._labels(params["labels"])
        event = params.get("state_event")
        if event in ("close", "reopen"):
            mr["state"] = "closed" if event == "close" else "opened"
        mr["updated_at"] = self._now()
        return self._mr_json(project, mr)

    def _accept_mr(self, project: Project, iid: str, params: JSON) -> JSON:
        """PUT .../merge: the rules of tests/gitlab_merges.py."""
        self._mr(project, iid)
        mr = project.merge_requests[int(iid)]
        head = project.branches.get(mr["source_branch"])
        try:
            if merges.accept(mr, head, project.pipelines.get(head or ""), params) == merges.WAIT:
                mr.update(merge_when_pipeline_succeeds=True, updated_at=self._now())
            else:
                self._merge(project, mr)
        except merges.Refused as exc:
            raise ApiError(exc.status, exc.message) from None
        return self._mr_json(project, mr)

    def _merge(self, project: Project, mr: JSON) -> None:
        """A merge commit on the target (merges.merged_tree: Refused on a conflict)."""
        head, target = project.branches[mr["source_branch"]], project.branches[mr["target_branch"]]
        tree = merges.merged_tree(project.trees, project.commits[head]["parent_ids"], head, target)
        sha = self._commit(project, target, tree, f"Merge branch '{mr['source_branch']}'")
        project.commits[sha]["parent_ids"] = [target, head]
        project.branches[mr["target_branch"]] = sha
        mr.update(state="merged", merge_commit_sha=sha, merge_when_pipeline_succeeds=False)

    def _create_note(self, project: Project, iid: str, params: JSON) -> JSON:
        self._mr(project, iid)
        if not params.get("body"):
            raise ApiError(400, "400 Bad request - body is missing")
        now = self._now()
        note = {
            "id": self._next_id(),
            "type": None,
            "body": str(params["body"]),
            "author": USER,
            "created_at": now,
            "updated_at": now,
            "system": False,
            "noteable_id": project.merge_requests[int(iid)]["id"],
            "noteable_type": "MergeRequest",
            "noteable_iid": int(iid),
            "project_id": project.id,
            "resolvable": False,
        }
        project.notes.setdefault(int(iid), []).append(note)
        return dict(note)

    def _update_note(self, project: Project, iid: str, note_id: str, params: JSON) -> JSON:
        self._mr(project, iid)
        for note in project.notes.get(int(iid), []):
            if str(note["id"]) == note_id:
                note["body"] = str(params.get("body", note["body"]))
                note["updated_at"] = self._now()
                return dict(note)
        raise ApiError(404, "404 Note Not Found")

    # -- faults ---------------------------------------------------------------------------

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first queued fault matching this request, removed from the queue."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.method == method and re.search(fault.path, path):
                    return self._faults.pop(i)
        return None


class _Handler(BaseHTTPRequestHandler):
    """One HTTP/1.0 exchange per connection, so a dropped answer never poisons a pooled one."""

    server_version = "loopback-gitlab/1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server records requests instead of printing them."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        gl: GitLabServer = self.server.gitlab  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with gl._lock:
            gl.requests.append(Recorded(method, split.path, query, body, dict(self.headers.items())))
        user = self._authenticate(gl, method, split.path)
        if user is None:
            return
        over, limits = gl.rate_limit(user)
        if over:  # Rack::Attack answers before the request reaches GitLab: nothing is carried out
            self._answer(429, b"Retry later\n", limits, method, "text/plain")
            return
        fault = gl.take_fault(method, split.path)
        if fault is not None and not fault.perform:
            self._fail(fault, method)
            return
        try:
            status, payload, headers = gl.handle(method, split.path, query, body)
        except ApiError as exc:
            status, payload, headers = exc.status, exc.payload, {}
        if fault is not None:
            self._fail(fault, method)
            return
        self._answer(status, payload, {**limits, **headers}, method)

    def _authenticate(self, gl: GitLabServer, method: str, path: str) -> str | None:
        """Who the request is (a token's user), or None after answering it as GitLab would:
        https://docs.gitlab.com/api/rest/authentication/ (an invalid token is a 401),
        https://docs.gitlab.com/ci/jobs/ci_job_token/#job-token-access (where a job token
        counts), https://docs.gitlab.com/api/rest/troubleshooting/#status-codes (401, 404)."""
        private, job = self.headers.get("PRIVATE-TOKEN"), self.headers.get("JOB-TOKEN")
        if private:
            if private != gl.token:
                self._answer(401, {"message": "401 Unauthorized"}, {}, method)
                return None
            return "token"
        if job and job_token_may(method, path):
            if job != gl.job_token:
                self._answer(401, {"message": "401 Unauthorized"}, {}, method)
                return None
            return "job"
        # Anonymous (no token, or a job token where GitLab does not take one): the project is
        # private, so a write is not authenticated and a read finds nothing.
        if method in ("GET", "HEAD"):
            self._answer(404, {"message": "404 Project Not Found"}, {}, method)
        else:
            self._answer(401, {"message": "401 Unauthorized"}, {}, method)
        return None

    def _fail(self, fault: Fault, method: str) -> None:
        if fault.kind == "sleep":
            time.sleep(fault.seconds)
            self._answer(504, {"message": "504 Gateway Timeout"}, {}, method)
        elif fault.kind == "drop":
            self.close_connection = True  # nothing written: the client sees the connection close
        else:
            message = fault.message or f"{fault.status} {HTTPStatus(fault.status).phrase}"
            self._answer(fault.status, {"message": message}, {}, method)

    def _answer(
        self, status: int, payload: Any, headers: dict[str, str], method: str, content_type: str = ""
    ) -> None:
        if isinstance(payload, bytes):  # a raw file, or the rate limit's plain text
            data, content_type = payload, content_type or "text/plain; charset=utf-8"
        else:
            data = b"" if payload is None else json.dumps(payload).encode()
        gl: GitLabServer = self.server.gitlab  # type: ignore[attr-defined]
        with gl._lock:
            gl.answered.append(status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type or "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault): nothing to answer
