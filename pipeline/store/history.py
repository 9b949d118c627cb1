"""Branch history: which commit each tracked component branch pointed to, and when.

`refs/history/<component>/<branch>` in the definitions repository holds one commit per observed
head. Its tree is one file, `observation.json` (component, branch, head, observed), its commit
time is the time of the observation, and its parent is the previous observation, so
`git log refs/history/openssl/f42` reads the history of openssl's f42 branch. A head is recorded
only when it differs from the last one recorded; the ref moves by compare-and-swap with retry.

Dist-git repositories are read in place when they are local paths (relative to the definitions
repository) or `file://` URLs; other URLs are fetched into bare mirrors under
`<git dir>/factory/distgit-cache/`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pygit2

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.model import DistGitCommit
from pipeline.git import repo as gitrepo

log = logging.getLogger("factory.history")

PREFIX = "refs/history/"
FILE = "observation.json"
CAS_ATTEMPTS = 50
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclass(frozen=True, slots=True)
class Observation:
    """A branch head seen at a time (seconds since the epoch, UTC)."""

    component: str
    branch: str
    head: str
    observed: int
    record: str = ""  # the commit of refs/history/... holding it

    def to_json(self) -> dict[str, str | int]:
        return {
            "component": self.component,
            "branch": self.branch,
            "head": self.head,
            "observed": iso(self.observed),
        }


def iso(seconds: int) -> str:
    """A UTC time as ISO 8601 with a Z."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> int:
    """Seconds since the epoch from ISO 8601 (a date, or a time; naive means UTC) or `@SECONDS`."""
    if text.startswith("@") and text[1:].isdigit():
        return int(text[1:])
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"not a time: {text!r} (use ISO 8601 or @SECONDS)", code="invalid-time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def ref_name(component: str, branch: str) -> str:
    """`refs/history/<component>/<branch>`, refusing names Git or a path could misread."""
    for name in (component, *branch.split("/")):
        if not _NAME.fullmatch(name) or name.endswith((".lock", ".")) or ".." in name:
            raise InvalidInput(f"not a usable component or branch name: {name!r}", code="invalid-name")
    return f"{PREFIX}{component}/{branch}"


class BranchHistory:
    """The branch history recorded in one definitions repository."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo

    def record(self, component: str, branch: str, head: str, when: int) -> Observation | None:
        """Record head as the branch's newest observation; None when it is already the last one."""
        from pipeline.store.lineage import compare_and_swap

        name = ref_name(component, branch)
        for attempt in range(CAS_ATTEMPTS):
            parent = gitrepo.ref_target(self.repo, name)
            last = None if parent is None else self._read(parent)
            if last is not None and last.head == head:
                return None
            seen = Observation(component, branch, head, max(when, last.observed if last else when))
            data = (json.dumps(seen.to_json(), sort_keys=True, indent=2) + "\n").encode()
            message = f"{component} {branch} at {head[:12]}\n\nObserved {iso(seen.observed)}.\n"
            commit = gitrepo.record_commit(self.repo, parent, FILE, data, message, seen.observed)
            if compare_and_swap(self.repo, name, commit, parent):
                return Observation(component, branch, head, seen.observed, commit)
            time.sleep(random.uniform(0.001, min(0.05, 0.002 * 2**attempt)))
        raise OperationFailed(
            f"{name} kept moving: gave up after {CAS_ATTEMPTS} attempts", code="history-contention"
        )

    def log(self, component: str, branch: str) -> list[Observation]:
        """Every observation of the branch, newest first."""
        found = []
        commit = gitrepo.ref_target(self.repo, ref_name(component, branch))
        while commit is not None:
            seen = self._read(commit)
            found.append(seen)
            parents = self.repo[commit].peel(pygit2.Commit).parent_ids
            commit = str(parents[0]) if parents else None
        return found

    def latest(self, component: str, branch: str) -> Observation | None:
        """The newest observation, or None when the branch was never recorded."""
        commit = gitrepo.ref_target(self.repo, ref_name(component, branch))
        return None if commit is None else self._read(commit)

    def at(self, component: str, branch: str, when: int) -> Observation | None:
        """What the branch pointed to at a time: the newest observation made at or before it."""
        return next((o for o in self.log(component, branch) if o.observed <= when), None)

    def tracked(self) -> list[tuple[str, str]]:
        """Every (component, branch) with a history, sorted."""
        names = [r for r in self.repo.references if r.startswith(PREFIX)]
        return sorted(tuple(n.removeprefix(PREFIX).split("/", 1)) for n in names)  # type: ignore[misc]

    def _read(self, commit: str) -> Observation:
        try:
            tree = self.repo[commit].peel(pygit2.Commit).tree
            blob = self.repo[tree[FILE].id].peel(pygit2.Blob)
            data = json.loads(blob.data)
            return Observation(
                data["component"], data["branch"], data["head"], parse_time(data["observed"]), commit
            )
        except (KeyError, ValueError, TypeError, pygit2.GitError) as exc:
            raise OperationFailed(
                f"branch history commit {commit} is damaged: {exc}", code="bad-history"
            ) from exc


# -- dist-git --------------------------------------------------------------------------------------


class DistGitSources:
    """Component dist-git repositories, opened in place or mirrored (for remote URLs)."""

    def __init__(self, root: Path, cache: Path) -> None:
        self.root = root
        self.cache = cache
        self._repos: dict[str, pygit2.Repository | None] = {}
        self.problems: dict[str, str] = {}  # url -> why it could not be read

    def open(self, url: str) -> pygit2.Repository | None:
        """The repository at url (a mirror fetched now, once per instance, for remote URLs)."""
        if url not in self._repos:
            self._repos[url] = self._open(url)
        return self._repos[url]

    def _open(self, url: str) -> pygit2.Repository | None:
        path = url.removeprefix("file://")
        if "://" in path:
            return self.mirror(url)
        full = self.root / path
        try:
            return pygit2.Repository(str(full))
        except pygit2.GitError:
            self.problems[url] = f"{full} is not a Git repository"
            return None

    def mirror(self, url: str) -> pygit2.Repository | None:
        """Fetch every branch of url into a bare mirror under the cache; None when that fails."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))[:40]
        where = self.cache / f"{slug}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"
        try:
            if where.exists():
                repo = pygit2.Repository(str(where))
            else:
                where.parent.mkdir(parents=True, exist_ok=True)
                repo = pygit2.init_repository(str(where), bare=True)
                repo.remotes.create("origin", url, "+refs/heads/*:refs/heads/*")
            repo.remotes["origin"].fetch(prune=pygit2.enums.FetchPrune.PRUNE)
        except (pygit2.GitError, OSError) as exc:
            log.warning("cannot fetch %s: %s", url, exc)
            self.problems[url] = f"cannot fetch {url}: {exc}"
            return None
        return repo

    def head(self, url: str, branch: str) -> str | None:
        """The commit a branch points to now, or None when unknown."""
        repo = self.open(url)
        found = None if repo is None else repo.branches.local.get(branch)
        return None if found is None else str(found.target)

    def descends(self, url: str, ref: str, head: str) -> bool:
        """Whether head is ref or one of its descendants (False when either is unknown)."""
        repo = self.open(url)
        return repo is not None and gitrepo.is_ancestor(repo, ref, head)

    def commits(self, url: str, head: str, since: list[str]) -> list[DistGitCommit]:
        """The commits up to head that none of since contains, newest first."""
        repo = self.open(url)
        if repo is None:
            return []
        return [
            DistGitCommit(str(c.id), c.message.split("\n", 1)[0].strip(), c.message)
            for c in gitrepo.commits_between(repo, head, since)
        ]
