"""Branch history: which commit each tracked component branch pointed to, and when.

`refs/history/<component>/<branch>` in the definitions repository holds one commit per observed
head. Its tree is one file, `observation.json` (component, branch, head, observed), its commit
time is the time of the observation, and its parent is the previous observation, so
`git log refs/history/openssl/f42` reads the history of openssl's f42 branch. A head is recorded
only when it differs from the last one recorded; the ref moves by compare-and-swap with retry.

The heads themselves are read from dist-git by `pipeline.git.distgit.DistGit`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.git import refs
from pipeline.git import repo as gitrepo
from pipeline.git.repo import Repository
from pipeline.records.refs import HISTORY, SOURCE_HISTORY

log = logging.getLogger("factory.history")

FILE = "observation.json"
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
    if f"{HISTORY}{component}/" == SOURCE_HISTORY:
        raise InvalidInput(
            f"a component named {component!r} cannot have a branch history: {SOURCE_HISTORY} holds "
            "the history of binary package sources",
            code="invalid-name",
        )
    return f"{HISTORY}{component}/{branch}"


class BranchHistory:
    """The branch history recorded in one definitions repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def record(self, component: str, branch: str, head: str, when: int) -> Observation | None:
        """Record head as the branch's newest observation; None when it is already the last one."""
        name = ref_name(component, branch)
        made: list[Observation] = []

        def observe(parent: str | None) -> str | None:
            made.clear()
            last = None if parent is None else self._read(parent)
            if last is not None and last.head == head:
                return parent
            seen = Observation(component, branch, head, max(when, last.observed if last else when))
            data = (json.dumps(seen.to_json(), sort_keys=True, indent=2) + "\n").encode()
            message = f"{component} {branch} at {head[:12]}\n\nObserved {iso(seen.observed)}.\n"
            commit = gitrepo.record_commit(self.repo, parent, FILE, data, message, seen.observed)
            made.append(Observation(component, branch, head, seen.observed, commit))
            return commit

        refs.update_ref(self.repo, name, observe, code="history-contention")
        return made[0] if made else None

    def log(self, component: str, branch: str) -> list[Observation]:
        """Every observation of the branch, newest first."""
        found = []
        commit = gitrepo.ref_target(self.repo, ref_name(component, branch))
        while commit is not None:
            found.append(self._read(commit))
            info = gitrepo.commit_info(self.repo, commit)
            commit = info.parents[0] if info is not None and info.parents else None
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
        names = [n for n in gitrepo.refs(self.repo, HISTORY) if not n.startswith(SOURCE_HISTORY)]
        return sorted(tuple(n.removeprefix(HISTORY).split("/", 1)) for n in names)  # type: ignore[misc]

    def _read(self, commit: str) -> Observation:
        try:
            data = json.loads(gitrepo.read_record(self.repo, commit, FILE))
            return Observation(
                data["component"], data["branch"], data["head"], parse_time(data["observed"]), commit
            )
        except (KeyError, ValueError, TypeError, OperationFailed) as exc:
            raise OperationFailed(
                f"branch history commit {commit} is damaged: {exc}", code="bad-history"
            ) from exc
