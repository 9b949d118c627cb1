"""Lineage to and from a Git remote: many runners record composes, one remote holds them all.

`pull` fetches the remote's lineage and merges it into the local refs; `push` does the same,
then pushes the merged refs with one atomic compare-and-swap per ref (`--force-with-lease` with
the value just fetched). When another runner pushed in between, the push is refused as a whole
and the loop starts again from the fetch, so nothing is lost and nothing is overwritten blindly.

How each kind of ref merges:

- tags `refs/tags/compose/*` are immutable: missing ones are added on either side; the same
  name on another object is a conflict (two composes with one ID) and an error;
- notes `refs/notes/*` (lineage, tests) are keyed by the tag object they annotate, and a tag is
  written by one compose only: the merge is the union of both notes trees, in a commit with
  both heads as parents (a note both sides hold with different bytes keeps ours, logged);
- latest good `refs/composes/latest/*` (every release's) and retired nodes'
  `refs/composes/retired/*` are merged three-way against the value fetched last time (kept in
  `refs/factory/remotes/<remote>/latest/*` and `.../retired/*`): the side that moved wins; when
  both moved, the compose that finished last wins (ties: the greater compose ID). A deletion is a
  move too: `factory retire` deletes latest-good refs, and the deletion wins over a side that
  did not move (so a pull never brings a retired node back), while a ref the other side moved
  after our base comes back. The fetch prunes the tracking refs, so a deletion on the remote is
  seen. GitLab's resource_group runs one job per node at a time, so "both moved" only happens
  across overlapping pipelines;
- branch history `refs/history/*`: the descendant wins; diverged histories keep the remote's
  (the bot re-observes branch heads at its next pass, so nothing is lost for good).

Compose ID reservations (`refs/composes/ids/*`) stay local: they only mean something under the
local lock, and resource_group keeps two runners from composing one node at once.
Fetching and pushing go through the git CLI (`pipeline.git.cli`); local ref updates through
`pipeline.git.refs`' compare-and-swap, the notes union through `pipeline.git.notes.merge`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import retry
from pipeline.core.errors import FactoryError, OperationFailed
from pipeline.core.records import utc_seconds
from pipeline.git import cli as gitcli
from pipeline.git import notes, refs
from pipeline.git import repo as gitrepo
from pipeline.git.refs import compare_and_swap
from pipeline.git.repo import ref_target
from pipeline.records.lineage import Lineage as _Lineage
from pipeline.records.refs import HISTORY, LATEST, NOTES, RETIRED, SHARED, TAGS, TRACKING
from pipeline.run import CommandFailed

log = logging.getLogger("factory.remote")

# Refs merged three-way, deletions included: (kind under the tracking prefix, local prefix).
POINTERS = (("latest/", LATEST), ("retired/", RETIRED))
PUSH_ATTEMPTS = 30
PUSH_BACKOFF = retry.Backoff(first=0.05, most=1.0, least=0.05, jitter=True)
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


class LineageConflict(OperationFailed):
    """The remote holds a compose tag of the same name on another object."""


@dataclass
class SyncResult:
    """What a pull or push did: refs changed locally, refs pushed, attempts made."""

    fetched: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    attempts: int = 0


class Remote:
    """The lineage refs of one local repository and one of its Git remotes."""

    def __init__(self, repo_path: str | Path, remote: str = "origin") -> None:
        self.lineage = _Lineage(repo_path)
        self.repo = self.lineage.repo
        self.git_dir = self.lineage.common_dir
        self.remote = remote
        self.tracking = TRACKING + _safe(remote) + "/"

    # -- the git CLI -------------------------------------------------------------------------------

    def _git(self, *argv: str) -> str:
        env = {**os.environ, **_GIT_ENV}
        return gitcli.git(self.git_dir, *argv, env=env)

    def _fetch(self) -> None:
        """The remote's lineage: tags straight in (never clobbered, never pruned: a compose not
        pushed yet keeps its tag), the rest under tracking, pruned (a ref the remote deleted is
        no longer tracked)."""
        self._git("fetch", "--no-tags", "--no-write-fetch-head", self.remote, f"{TAGS}*:{TAGS}*")
        self._git(
            "fetch",
            "--prune",
            "--no-tags",
            "--no-write-fetch-head",
            self.remote,
            f"+{NOTES}*:{self.tracking}notes/*",
            *(f"+{prefix}*:{self.tracking}{kind}*" for kind, prefix in POINTERS),
            f"+{HISTORY}*:{self.tracking}history/*",
        )
        self.repo = gitrepo.reopen(self.repo)  # see the refs git just wrote
        self.lineage.repo = self.repo

    def _remote_refs(self) -> dict[str, str]:
        """The remote's lineage refs as last fetched: the values the push leases against.

        Notes, latest good and history come from the tracking refs the fetch wrote, never from a
        newer look: a lease on a value we did not merge with would drop what was pushed between.
        Tags come from `ls-remote` (a tag is never moved, so a newer look loses nothing).
        """
        refs: dict[str, str] = {}
        for line in self._git("ls-remote", self.remote, TAGS + "*").splitlines():
            oid, _, name = line.partition("\t")
            if not name.endswith("^{}"):
                refs[name] = oid
        for kind, prefix in (("notes/", NOTES), *POINTERS, ("history/", HISTORY)):
            for name, oid in self._refs(self.tracking + kind).items():
                refs[prefix + name.removeprefix(self.tracking + kind)] = oid
        return refs

    # -- refs ------------------------------------------------------------------------------------

    def _refs(self, prefix: str) -> dict[str, str]:
        """Name -> target of the local direct refs under prefix (loose or packed)."""
        return gitrepo.refs(self.repo, prefix)

    def _set(self, name: str, new: str, expected: str | None) -> bool:
        return compare_and_swap(self.repo, name, new, expected)

    # -- merging the fetched refs into the local ones -------------------------------------------

    def merge(self, base: Mapping[str, str]) -> list[str]:
        """Merge the tracking refs into the local lineage refs; the local refs changed. `base`:
        the tracking refs of latest good and retired nodes before the fetch."""
        changed: list[str] = []
        changed += self._merge_notes()
        for kind, prefix in POINTERS:
            changed += self._merge_pointers(kind, prefix, base)
        changed += self._merge_history()
        return changed

    def _merge_notes(self) -> list[str]:
        changed = []
        for name, theirs in self._refs(self.tracking + "notes/").items():
            local = NOTES + name.removeprefix(self.tracking + "notes/")
            before = ref_target(self.repo, local)

            def union(ours: str | None, local: str = local, theirs: str = theirs) -> str:
                return theirs if ours is None else notes.merge(self.repo, ours, theirs, local)

            if refs.update_ref(self.repo, local, union, code="lineage-contention") != before:
                changed.append(local)
        return changed

    def _merge_pointers(self, kind: str, prefix: str, base: Mapping[str, str]) -> list[str]:
        """Three-way merge of one kind of pointer ref, where None (no ref) is a value too."""
        changed = []
        tracked = self.tracking + kind
        theirs_all = self._refs(tracked)
        names = set(theirs_all) | {n for n in base if n.startswith(tracked)}
        for name in sorted(names):
            local = prefix + name.removeprefix(tracked)
            ours = self._refs(local).get(local)
            theirs = theirs_all.get(name)
            winner = self._winner(ours, theirs, base.get(name))
            if winner == ours:
                continue
            done = (
                refs.compare_and_delete(self.repo, local, ours)
                if winner is None and ours is not None
                else winner is not None and self._set(local, winner, ours)
            )
            if done:
                changed.append(local)
        return changed

    def _winner(self, ours: str | None, theirs: str | None, base: str | None) -> str | None:
        if ours in (theirs, base):
            return theirs
        if theirs == base:
            return ours
        if ours is None or theirs is None:  # one side deleted it, the other moved it: the move
            return ours or theirs
        return max(ours, theirs, key=self._finished)

    def _finished(self, tag_id: str) -> tuple[int, str]:
        """When the compose a tag object records finished, and its compose ID (the tie-break)."""
        name = gitrepo.tag_name(self.repo, tag_id)
        if name is None:
            return (0, tag_id)
        cid = name.removeprefix("compose/")
        try:
            return (utc_seconds(self.lineage.get(cid).finished), cid)
        except FactoryError:  # no readable record: it loses against one that has
            return (0, cid)

    def _merge_history(self) -> list[str]:
        changed = []
        for name, theirs in self._refs(self.tracking + "history/").items():
            local = HISTORY + name.removeprefix(self.tracking + "history/")
            ours = self._refs(local).get(local)
            if ours == theirs or (ours is not None and self._descends(ours, theirs)):
                continue
            if ours is not None and not self._descends(theirs, ours):
                log.warning("%s diverged from %s: keeping the remote's", local, self.remote)
            if self._set(local, theirs, ours):
                changed.append(local)
        return changed

    def _descends(self, commit: str, ancestor: str) -> bool:
        return gitrepo.is_ancestor(self.repo, ancestor, commit)

    # -- pull and push ---------------------------------------------------------------------------

    def pull(self) -> SyncResult:
        """Fetch the remote's lineage and merge it into the local refs."""
        result = SyncResult(attempts=1)
        before = set(self._refs(TAGS))
        base = self._tracked_pointers()
        try:
            self._fetch()
        except CommandFailed as exc:
            raise _conflict_or(exc, self.remote) from exc
        result.fetched = sorted(set(self._refs(TAGS)) - before) + self.merge(base)
        return result

    def push(self, *, attempts: int = PUSH_ATTEMPTS) -> SyncResult:
        """Merge the remote's lineage in, then push ours; again from the fetch when refused."""
        result = SyncResult()
        last: CommandFailed | None = None
        for attempt in retry.attempts(attempts, PUSH_BACKOFF):
            result.attempts = attempt.number
            result.fetched += self.pull().fetched
            remote = self._remote_refs()
            updates = self._updates(remote)
            if not updates:
                return result
            try:
                self._push(updates, remote)
            except CommandFailed as exc:
                # A refused lease (another runner pushed after our fetch) is the usual cause, and
                # `git push --quiet` may say nothing about it: fetch, merge and try again.
                last = exc
                log.info("push to %s refused (attempt %d); fetching again", self.remote, attempt.number)
                continue
            self._remember_pushed(updates)
            result.pushed = sorted(updates)
            return result
        raise OperationFailed(
            f"pushing lineage to {self.remote} was refused {attempts} times: other runners keep pushing",
            hint="run `factory lineage push` again; nothing is lost, the records are in this clone"
            + (f"\nlast refusal: {last.message}" if last is not None else ""),
            code="lineage-push-contention",
        )

    def _updates(self, remote: Mapping[str, str]) -> dict[str, str | None]:
        """Local lineage refs the remote lacks or holds at another value: name -> our value;
        None for a latest-good or retired ref the remote holds and we deleted (the merge just
        kept our deletion)."""
        ours: dict[str, str] = {}
        for prefix in SHARED:
            ours.update(self._refs(prefix))
        updates: dict[str, str | None] = {n: v for n, v in ours.items() if remote.get(n) != v}
        for name in remote:
            if name.startswith((LATEST, RETIRED)) and name not in ours:
                updates[name] = None
        return dict(sorted(updates.items()))

    def _push(self, updates: Mapping[str, str | None], remote: Mapping[str, str]) -> None:
        leases = [f"--force-with-lease={n}:{remote.get(n, '')}" for n in updates]
        specs = [f"{v or ''}:{n}" for n, v in updates.items()]
        self._git("push", "--atomic", "--no-verify", self.remote, *leases, *specs)

    def _tracked_pointers(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for kind, _ in POINTERS:
            found.update(self._refs(self.tracking + kind))
        return found

    def _remember_pushed(self, updates: Mapping[str, str | None]) -> None:
        """What the remote holds now becomes the base of the next three-way merge."""
        for kind, prefix in (("notes/", NOTES), *POINTERS, ("history/", HISTORY)):
            for name, value in updates.items():
                if name.startswith(prefix):
                    tracked = self.tracking + kind + name.removeprefix(prefix)
                    if value is None:
                        gitrepo.delete_ref(self.repo, tracked)
                    else:
                        gitrepo.set_ref(self.repo, tracked, value)

    def close(self) -> None:
        """Close the lineage index."""
        self.lineage.close()


def _safe(remote: str) -> str:
    """A ref component for a remote name, or a digest of a URL or path."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", remote):
        return remote
    return "url-" + hashlib.sha256(remote.encode()).hexdigest()[:16]


def _conflict_or(exc: CommandFailed, remote: str) -> OperationFailed:
    if "would clobber existing tag" in exc.stderr:
        return LineageConflict(
            f"{remote} holds a compose tag that differs from ours (two composes with one ID)",
            hint=exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else "",
            code="lineage-conflict",
        )
    return exc
