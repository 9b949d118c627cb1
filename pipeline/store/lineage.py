"""Lineage in Git: compose IDs, compose tags, lineage notes and latest-good refs (pygit2).

Every compose is recorded in the definitions repository, readable offline with git's own CLI:

- `refs/composes/ids/<compose-id>` reserves a compose ID while the compose runs (made under its
  lock only if neither it nor the compose's tag exists, so racing processes never share an ID);
  `finish` drops it once the tag exists, so those left are composes killed before they ended;
- `refs/tags/compose/<compose-id>`: an annotated tag on the definitions commit, made when the
  compose ends, FINISHED or FAILED alike (failures stay auditable), written to packed-refs;
- `refs/notes/lineage`: one note per compose tag object, the `Record` as canonical JSON; one
  notes commit per `finish` batch, its tree fanned out 2/38 (`pipeline.store.lineage_index`);
- `refs/composes/latest/<node_ref>`: the tag object of a node's latest good compose. Only a
  FINISHED compose can be promoted; a FAILED one never is.

Every ref update is a compare-and-swap under the ref's lock file, with bounded retries and a
small random backoff; losers re-read and re-apply. New objects (tags, note blobs, notes trees,
the notes commit) are written as one pack per batch. Queries over many composes (`why`, `tree`,
`find_by_key`) use a SQLite index in `<git dir>/factory/lineage.sqlite`, brought up to date
from the notes (the source of truth) before each query.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import pygit2

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.records import (
    LATEST,
    Record,
    check_record,
    compose_id,
    load_record,
    node_from_ref,
    node_ref,
    parse_compose_id,
    utc_seconds,
)
from pipeline.core.states import ComposeStatus
from pipeline.git.repo import open_repo
from pipeline.store.lineage_index import NOTES_REF as NOTES_REF
from pipeline.store.lineage_index import (
    GitObject,
    LineageIndex,
    add_packed_refs,
    note_blob,
    notes_tree,
    packed_names,
    write_pack,
)

log = logging.getLogger("factory.lineage")
_T = TypeVar("_T")

COMPOSE_TYPES = {"nightly": "n", "test": "t", "ci": "ci", "production": ""}
RECORD_FORMAT = 1

TAGS = "refs/tags/compose/"
IDS = "refs/composes/ids/"
IDENTITY = ("factory", "factory@localhost")

CAS_ATTEMPTS = 100
MAX_RESPIN = 10_000

_SEGMENT = r"[A-Za-z0-9](?:[A-Za-z0-9_+]|\.(?!\.))*"  # no '-', no '..', no trailing '.'
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_+-]|\.(?!\.))*"
_ID_RE = re.compile(
    rf"(?P<short>{_SEGMENT})-(?P<version>{_SEGMENT})-(?P<name>{_NAME})-(?P<date>\d{{8}})"
    r"(?:\.(?P<type>n|t|ci))?\.(?P<respin>0|[1-9]\d*)"
)
_HEX_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_PREFIX_RE = re.compile(r"[0-9a-f]{7,64}")
_TYPE_NAMES = {abbrev: name for name, abbrev in COMPOSE_TYPES.items()}


# -- the lineage of one repository -----------------------------------------------------------------


class Lineage:
    """The lineage recorded in one definitions repository (non-bare or bare; SHA-1 only)."""

    def __init__(self, repo_path: str | Path) -> None:
        self.repo = open_repo(repo_path)
        self.git_dir = Path(self.repo.path)
        common = self.git_dir / "commondir"  # a linked worktree keeps refs and objects there
        self.common_dir = (
            (self.git_dir / common.read_text().strip()).resolve() if common.exists() else self.git_dir
        )
        self._index: LineageIndex | None = None
        self._respins: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        """Close the SQLite index (the repository needs no closing)."""
        if self._index is not None:
            self._index.close()
            self._index = None

    # -- writing -----------------------------------------------------------------------------------

    def reserve(self, short: str, version: str, name: str, date: str, type_: str, commit: str) -> str:
        """Reserve the next free compose ID for a compose made from `commit` (respin .0, .1, ...).

        `refs/composes/ids/<compose-id>` is created while holding its lock, and only if neither
        it nor the compose's tag exists, so racing processes never share an ID.
        """
        target = self._commit(commit)
        series = (short, version, name, date, type_)
        respin, waits = self._respins.get(series, 0), 0
        while respin < MAX_RESPIN:
            cid = compose_id(short, version, name, date, type_, respin)
            taken = _claim(self.repo, cid, target)
            if taken is None:  # its lock is held right now: someone is taking this respin
                waits += 1
                if waits > CAS_ATTEMPTS:
                    raise OperationFailed(
                        f"cannot reserve {cid}: {IDS + cid} stays locked",
                        hint=f"remove {self.common_dir / IDS}{cid}.lock if no factory process is running",
                        code="lineage-locked",
                    )
                _backoff(waits)
            elif taken:
                respin += 1
            else:
                self._respins[series] = respin + 1  # where the next reservation starts looking
                return cid
        raise OperationFailed(f"no free respin for {short}-{version}-{name}-{date}", code="lineage-respins")

    def finish(self, records: Sequence[Record]) -> None:
        """Record ended composes: an annotated tag each, then one notes commit for the batch.

        FAILED composes get a tag and a note too, so the lineage of failures can be audited;
        only `promote` makes a latest-good ref, and it refuses a FAILED compose. Finishing the
        same records again is harmless; finishing a compose ID again with another record is
        refused. The notes ref moves by compare-and-swap: when another process moved it
        meanwhile, the notes are re-applied on its new tree and the swap retried.
        """
        if not records:
            return
        self._check(records)
        tags = [GitObject.make(b"tag", _tag_data(r)) for r in records]
        blobs = [GitObject.make(b"blob", r.note()) for r in records]
        notes = {tag.oid.hex(): blob.oid for tag, blob in zip(tags, blobs, strict=True)}
        when = max(utc_seconds(r.finished) for r in records)
        message = f"Lineage of {len(records)} composes\n\n" + "".join(f"{r.compose_id}\n" for r in records)
        pending = tags + blobs
        for attempt in range(CAS_ATTEMPTS):
            parent = self._head(NOTES_REF)
            base = None if parent is None else self._tree_of(parent)
            root, trees = notes_tree(self.repo, base, notes)
            changed = base is None or root != base.raw
            commit = GitObject.make(b"commit", _commit_data(root, parent, when, message))
            write_pack(self.common_dir / "objects" / "pack", pending + trees + ([commit] if changed else []))
            if pending:
                self._tag(records, tags)
                pending = []
            if not changed or _swap(self.repo, NOTES_REF, parent, pygit2.Oid(raw=commit.oid)):
                return
            _backoff(attempt)
        raise OperationFailed(
            f"{NOTES_REF} kept moving: gave up after {CAS_ATTEMPTS} attempts",
            hint="the compose tags exist; finish the same records again to add their notes",
            code="lineage-contention",
        )

    def promote(self, node: str, compose_id: str) -> None:
        """Make a FINISHED compose of `node` its latest good: refs/composes/latest/<node_ref>.

        The last promotion wins; the ref moves by compare-and-swap with retry.
        """
        tag, record = self._read(compose_id)
        if record.node != node:
            raise InvalidInput(f"compose {compose_id} is of {record.node}, not {node}", code="node-mismatch")
        if record.status != ComposeStatus.FINISHED:
            raise InvalidInput(
                f"compose {compose_id} is {record.status}: only a finished compose can be latest good",
                code="compose-failed",
            )
        name = LATEST + node_ref(node)
        for attempt in range(CAS_ATTEMPTS):
            current = self._head(name)
            if current == tag or _swap(self.repo, name, current, tag):
                return
            _backoff(attempt)
        raise OperationFailed(
            f"{name} kept moving: gave up after {CAS_ATTEMPTS} attempts", code="lineage-contention"
        )

    # -- reading -----------------------------------------------------------------------------------

    def latest(self, node: str | None = None) -> dict[str, str]:
        """Node id -> compose ID of its latest good compose (one node, or every node)."""
        names = [LATEST + node_ref(node)] if node is not None else self._ref_names(LATEST)
        found: dict[str, str] = {}
        for name in names:
            target = self._head(name)
            tag = None if target is None else self.repo.get(target)
            if isinstance(tag, pygit2.Tag) and tag.name.startswith("compose/"):
                found[node_from_ref(name)] = tag.name.removeprefix("compose/")
        return dict(sorted(found.items()))

    def get(self, compose_id: str) -> Record:
        """The record of a compose, read from its note; InvalidInput(code="unknown-compose") if none."""
        return self._read(compose_id)[1]

    def reserved_unfinished(self) -> list[str]:
        """Compose IDs reserved but never tagged: composes killed before they finished."""
        ids = [name.removeprefix(IDS) for name in self._ref_names(IDS)]
        return [cid for cid in ids if TAGS + cid not in self.repo.references]

    def tree(self, compose_id: str) -> list[tuple[int, Record]]:
        """The compose and its inputs, transitively, depth first: (depth, record), each once.

        Inputs whose composes have no lineage here are left out.
        """
        index = self._index_ready()
        if index.record_json(compose_id) is None:
            raise InvalidInput(f"no lineage for compose {compose_id!r}", code="unknown-compose")
        found: list[tuple[int, Record]] = []
        seen: set[str] = set()
        todo = [(0, compose_id)]
        while todo:
            depth, cid = todo.pop()
            text = None if cid in seen else index.record_json(cid)
            if text is None:
                continue
            seen.add(cid)
            record = load_record(text.encode("utf-8"), cid)
            found.append((depth, record))
            todo.extend((depth + 1, i.compose_id) for i in reversed(record.inputs))
        return found

    def why(self, component: str, commit: str) -> list[Record]:
        """Every compose made with `component` at `commit` (a prefix of 7+ hex digits): those that
        pin it, and those that consume one of them, transitively; sorted by compose ID."""
        prefix = commit.lower()
        if not _PREFIX_RE.fullmatch(prefix):
            raise InvalidInput(f"not a commit hash (7 or more hex digits): {commit!r}", code="invalid-commit")
        return [
            load_record(text.encode("utf-8"), component)
            for text in self._index_ready().why(component, prefix)
        ]

    def find_by_key(self, node: str, key: str) -> Record | None:
        """The latest FINISHED compose of `node` with this runtime key, or None: the work is done."""
        text = self._index_ready().find_by_key(node, key)
        return None if text is None else load_record(text.encode("utf-8"), node)

    # -- helpers -----------------------------------------------------------------------------------

    def _check(self, records: Sequence[Record]) -> None:
        """Refuse a batch with an unsound record, a compose twice, or a compose finished before
        with another record (the same record again is fine)."""
        seen: set[str] = set()
        for record in records:
            check_record(record)
            if record.compose_id in seen:
                raise InvalidInput(
                    f"compose {record.compose_id} appears twice in one batch", code="invalid-record"
                )
            seen.add(record.compose_id)
        for made_from in {r.commit for r in records}:
            self._commit(made_from)
        head = self._head(NOTES_REF)
        for record in records:
            tag = self._head(TAGS + record.compose_id)
            if tag is None:
                continue
            old = None if head is None else note_blob(self.repo, self._tree_of(head), str(tag))
            if tag.raw != GitObject.make(b"tag", _tag_data(record)).oid or old not in (None, record.note()):
                raise InvalidInput(
                    f"compose {record.compose_id} was already finished with another record",
                    code="compose-exists",
                )

    def _tag(self, records: Sequence[Record], tags: Sequence[GitObject]) -> None:
        """Add the compose tags to packed-refs, then drop the reservations they end."""
        refs = {TAGS + r.compose_id: (t.oid.hex(), r.commit) for r, t in zip(records, tags, strict=True)}
        for attempt in range(CAS_ATTEMPTS):
            try:
                existing = add_packed_refs(self.common_dir, refs, {IDS + r.compose_id for r in records})
            except FileExistsError:  # packed-refs.lock is held: someone else writes refs
                _backoff(attempt)
                continue
            clash = sorted(name for name, value in existing.items() if value != refs[name][0])
            if clash:
                raise InvalidInput(
                    f"compose {clash[0].removeprefix(TAGS)} was already finished with another record",
                    code="compose-exists",
                )
            _release(self.common_dir, [r.compose_id for r in records])
            return
        raise OperationFailed(
            "packed-refs stays locked",
            hint=f"remove {self.common_dir / 'packed-refs.lock'} if no git or factory process is running",
            code="lineage-locked",
        )

    def _ref_names(self, prefix: str) -> list[str]:
        """The names of the refs under prefix, loose or packed, sorted.

        pygit2 has no glob for refs, and listing every ref costs 0.4 s per 20,000 refs: read the
        loose refs' directory and packed-refs instead (names only; values go through pygit2).
        """
        names = {
            Path(folder, file).relative_to(self.common_dir).as_posix()
            for folder, _, files in os.walk(self.common_dir / prefix)
            for file in files
            if not file.endswith(".lock")
        }
        names.update(packed_names(self.common_dir / "packed-refs", prefix))
        return sorted(names)

    def _head(self, name: str) -> pygit2.Oid | None:
        ref = self.repo.references.get(name)
        return None if ref is None else _target(ref)

    def _commit(self, commit: str) -> pygit2.Oid:
        try:
            found = self.repo.get(commit)
        except (ValueError, KeyError):
            found = None
        if not isinstance(found, pygit2.Commit):
            raise InvalidInput(f"{commit!r} is not a commit of {self.git_dir}", code="unknown-commit")
        return found.id

    def _tree_of(self, commit: pygit2.Oid) -> pygit2.Oid:
        found = self.repo.get(commit)
        if not isinstance(found, pygit2.Commit):
            raise OperationFailed(f"{NOTES_REF} points at {commit}, which is not a commit", code="bad-notes")
        return found.tree_id

    def _read(self, cid: str) -> tuple[pygit2.Oid, Record]:
        parse_compose_id(cid)
        tag, head = self._head(TAGS + cid), self._head(NOTES_REF)
        blob = None if tag is None or head is None else note_blob(self.repo, self._tree_of(head), str(tag))
        if tag is None or blob is None:
            raise InvalidInput(f"no lineage for compose {cid!r}", code="unknown-compose")
        return tag, load_record(blob, cid)

    def _index_ready(self) -> LineageIndex:
        """The SQLite index, brought up to date with the notes."""
        if self._index is None:
            self._index = LineageIndex(self.repo, self.git_dir / "factory" / "lineage.sqlite")
        self._index.refresh()
        return self._index


def _target(ref: pygit2.Reference) -> pygit2.Oid:
    target = ref.target
    if not isinstance(target, pygit2.Oid):
        raise OperationFailed(f"{ref.name} is a symbolic ref", code="bad-ref")
    return target


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0.0005, min(0.05, 0.001 * 2 ** min(attempt, 6))))


# -- refs: compare-and-swap under the ref's lock ---------------------------------------------------
#
# Not `references.create(force=False)`: libgit2 checks that the ref is absent *before* it takes
# the lock, so two processes can both "create" the same ref (the concurrency test caught it).
# A transaction holds `<ref>.lock` (made with O_EXCL, as git does) from the comparison to the
# write, so no writer that takes the lock (git, libgit2) slips in between. pygit2 1.21 cannot
# pass a reflog signature to a transaction (TypeError), so reflogs name the repository's identity.


class _Moved(Exception):
    """The ref does not hold what the caller expected."""


def compare_and_swap(repo: pygit2.Repository, name: str, new: str, expected: str | None) -> bool:
    """Point ref `name` at `new` if it points at `expected` (None: if it does not exist).

    True when done; False when the ref holds something else or another process holds its lock.
    """
    return _swap(repo, name, None if expected is None else pygit2.Oid(hex=expected), pygit2.Oid(hex=new))


def _swap(repo: pygit2.Repository, name: str, expected: pygit2.Oid | None, new: pygit2.Oid) -> bool:
    try:
        with repo.transaction() as transaction:
            transaction.lock_ref(name)
            ref = repo.references.get(name)
            if (None if ref is None else _target(ref)) != expected:
                raise _Moved
            transaction.set_target(name, new, None, "factory: lineage")
    except _Moved:
        return False
    except (pygit2.GitError, OSError) as exc:  # the lock is held by someone else
        log.debug("ref %s is locked: %s", name, exc)
        return False
    return True


def _claim(repo: pygit2.Repository, cid: str, commit: pygit2.Oid) -> bool | None:
    """Reserve a compose ID: False when reserved now, True when taken, None when locked.

    Under the reservation's lock the ID is free if neither the reservation nor the compose's tag
    exists; `finish` drops a reservation only after making the tag, so one of them always shows.
    """
    name = IDS + cid
    if name in repo.references or TAGS + cid in repo.references:
        return True
    try:
        with repo.transaction() as transaction:
            transaction.lock_ref(name)
            if name in repo.references or TAGS + cid in repo.references:
                raise _Moved
            transaction.set_target(name, commit, None, "factory: reserve")
    except _Moved:
        return True
    except (pygit2.GitError, OSError):
        return None
    return False


def _release(common_dir: Path, cids: Sequence[str]) -> None:
    """Drop the loose reservations of composes now tagged (their packed copies went with the
    packed-refs rewrite that added the tags).

    No lock is taken: a reservation is never rewritten, and `_claim` refuses an ID whose tag
    exists whether or not its reservation is still there. A leftover one is harmless.
    """
    folder = os.path.join(common_dir, IDS)
    for cid in cids:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, cid))


# -- objects, written as one pack per batch --------------------------------------------------------


def _tag_data(record: Record) -> bytes:
    """An annotated tag `compose/<id>` on the record's commit, by factory at its finish time."""
    summary = f"Compose {record.compose_id}: {record.node} {record.status}"
    return (
        f"object {record.commit}\ntype commit\ntag compose/{record.compose_id}\n"
        f"tagger {IDENTITY[0]} <{IDENTITY[1]}> {utc_seconds(record.finished)} +0000\n\n{summary}\n"
    ).encode()


def _commit_data(tree: bytes, parent: pygit2.Oid | None, when: int, message: str) -> bytes:
    ident = f"{IDENTITY[0]} <{IDENTITY[1]}> {when} +0000"
    lines = [f"tree {tree.hex()}", *([f"parent {parent}"] if parent is not None else [])]
    return "\n".join([*lines, f"author {ident}", f"committer {ident}", "", message]).encode()
