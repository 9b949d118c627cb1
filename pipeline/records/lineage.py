"""Lineage in Git: compose IDs, compose tags, lineage notes and latest-good refs.

Every compose is recorded in the definitions repository, readable offline with git's own CLI:

- `refs/composes/ids/<compose-id>` reserves a compose ID while the compose runs (made under its
  lock only if neither it nor the compose's tag exists, so racing processes never share an ID);
  `finish` drops it once the tag exists, so those left are composes killed before they ended;
- `refs/tags/compose/<compose-id>`: an annotated tag on the definitions commit, made when the
  compose ends, FINISHED or FAILED alike (failures stay auditable), written to packed-refs;
- `refs/notes/lineage`: one note per compose tag object, the `Record` as canonical JSON; one
  notes commit per `finish` batch, its tree fanned out 2/38 (`pipeline.git.notes`);
- `refs/composes/latest/<release>/<node_ref>`: the tag object of a node's latest good compose
  in one release (factory.yaml's `release.version`, e.g. `42`), so the composes of two
  releases (main and `release/42`) never replace each other. Only a FINISHED compose can be
  promoted; a FAILED one never is. The executor promotes only the composes of a commit on one
  of the release's branches (`pipeline.core.branches`): a scratch branch's are recorded, marked
  off-branch in their note, and move no latest-good ref. Repositories made before releases had their own namespace
  hold `refs/composes/latest/<node_ref>`: such a ref is read as the latest good of the
  release its compose ID names (`FL-42-...`: 42) until a compose of that release is promoted
  under the new name; it is never written again;
- `refs/composes/retired/<release>/<node_ref>`: where `retire` moves the latest good of a node
  whose module or variant reached its End Of Life; nothing reads it as latest good again.

Which node and release a latest-good ref stands for is read from its name and checked against
its tag, whose message names the node (`Compose <id>: <node> <status>`), so a release named like
a node kind cannot be mistaken for one.

Every ref update is a compare-and-swap under the ref's lock file, with bounded retries and a
small random backoff (`pipeline.git.refs`); losers re-read and re-apply. New objects (tags, note
blobs, notes trees, the notes commit) are written as one pack per batch, and the batch's tags as
one packed-refs rewrite. Queries over many composes (`why`, `tree`,
`find_by_key`) use a SQLite index in `<git dir>/factory/lineage.sqlite`, brought up to date
from the notes (the source of truth) before each query.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.facts import ComposeBrief
from pipeline.core.names import unknown
from pipeline.core.records import (
    Record,
    check_record,
    compose_id,
    load_record,
    node_ref,
    parse_compose_id,
    utc_seconds,
)
from pipeline.core.states import ComposeStatus
from pipeline.git import notes, refs
from pipeline.git.objects import GitObject, tag_data
from pipeline.git.repo import (
    Repository,
    file_at,
    head_is_unborn,
    is_commit,
    open_repo,
    ref_target,
    tag_info,
)
from pipeline.records.lineage_index import LineageIndex
from pipeline.records.refs import (
    IDS,
    LATEST,
    LINEAGE_NOTES,
    RETIRED,
    TAG_PREFIX,
    TAGS,
    latest_ref,
    legacy_latest_ref,
    retired_ref,
)

log = logging.getLogger("factory.lineage")

NOTES_REF = LINEAGE_NOTES  # the lineage notes (its name here, older than records.refs)
MAX_RESPIN = 10_000
COMPOSE_ID_CUTOFF = 0.9  # compose IDs share most of their text: only a near one is suggested
COMPOSES_LISTED = "`factory latest` lists the latest good composes, `git tag -l 'compose/*'` all of them"
_PREFIX_RE = re.compile(r"[0-9a-f]{7,64}")
_TAG_SUMMARY = re.compile(r"Compose (?P<cid>\S+): (?P<node>\S+) \S+")


@dataclass(frozen=True, slots=True)
class Pointer:
    """One latest-good (or retired) ref: which release and node it is for, and its compose.

    `legacy`: a ref of the layout without releases (`refs/composes/latest/<node_ref>`)."""

    name: str
    release: str
    node: str
    compose_id: str
    tag: str
    legacy: bool = False


class Lineage:
    """The lineage recorded in one definitions repository (non-bare or bare; SHA-1 only)."""

    def __init__(self, repo_path: str | Path, release: str | None = None) -> None:
        """`release`: the release whose latest good this handle reads and moves (factory.yaml's
        `release.version` of the definitions composed); None: the release of HEAD's factory.yaml,
        read when first needed."""
        self.repo = open_repo(repo_path)
        self.git_dir = self.repo.git_dir
        self.common_dir = self.repo.common_dir  # a linked worktree keeps refs and objects there
        self._index: LineageIndex | None = None
        self._respins: dict[tuple[str, ...], int] = {}
        self._release = release

    @property
    def release(self) -> str:
        """The release whose latest good this handle reads and moves."""
        if self._release is None:
            self._release = release_at_head(self.repo)
        return self._release

    def close(self) -> None:
        """Close the SQLite index (the repository needs no closing)."""
        if self._index is not None:
            self._index.close()
            self._index = None

    # -- writing -----------------------------------------------------------------------------------

    def reserve(self, short: str, version: str, name: str, date: str, type_: str, commit: str) -> str:
        """Reserve the next free compose ID for a compose made from `commit` (respin .0, .1, ...).

        `refs/composes/ids/<compose-id>` is created while holding its lock, and only if neither
        it nor the compose's tag exists, so racing processes never share an ID (`finish` drops a
        reservation only after making the tag, so one of them always shows).
        """
        self._commit(commit)
        series = (short, version, name, date, type_)
        first = self._respins.get(series, 0)
        candidates = (IDS + compose_id(*series, respin) for respin in range(first, MAX_RESPIN))
        try:
            found = refs.claim(
                self.repo, candidates, lambda _: commit, lambda n: [TAGS + n.removeprefix(IDS)]
            )
        except refs.Contention as exc:
            raise OperationFailed(exc.message, hint=exc.hint, code="lineage-locked") from exc
        if found is None:
            raise OperationFailed(
                f"no free respin for {short}-{version}-{name}-{date}", code="lineage-respins"
            )
        cid = found.removeprefix(IDS)
        self._respins[series] = int(cid.rsplit(".", 1)[1]) + 1  # where the next one starts looking
        return cid

    def finish(self, records: Sequence[Record]) -> None:
        """Record ended composes: an annotated tag each, then one notes commit for the batch.

        FAILED composes get a tag and a note too, so the lineage of failures can be audited;
        only `promote` makes a latest-good ref, and it refuses a FAILED compose. Finishing the
        same records again is harmless; finishing a compose ID again with another record is
        refused. The tags go into packed-refs right after the first pack is written, and the
        notes ref moves by compare-and-swap (`pipeline.git.notes.update_notes`).
        """
        if not records:
            return
        self._check(records)
        tags = [GitObject.make(b"tag", _tag(r)) for r in records]
        when = max(utc_seconds(r.finished) for r in records)
        message = f"Lineage of {len(records)} composes\n\n" + "".join(f"{r.compose_id}\n" for r in records)
        try:
            notes.update_notes(
                self.repo,
                NOTES_REF,
                {tag.oid.hex(): r.note() for tag, r in zip(tags, records, strict=True)},
                message,
                when,
                extra=tags,
                after_write=lambda: self._tag(records, tags),
                code="lineage-contention",
            )
        except refs.Contention as exc:
            exc.hint = "the compose tags exist; finish the same records again to add their notes"
            raise

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
        refs.update_ref(self.repo, latest_ref(self.release, node), lambda _: tag, code="lineage-contention")

    def finish_pending(self, compose_id: str, promoted: str, message: str) -> Record:
        """Rewrite the record of a PENDING compose as FINISHED, promoted at `promoted` (ISO 8601
        UTC) with `message` (the gate's decision): the one way a recorded status changes.

        The note is replaced through the notes-update loop, so `refs/notes/lineage`'s history
        keeps the PENDING record and a commit "Promote <id>" says when it changed; the tag keeps
        the status the compose was finished with. Refused unless the compose is PENDING when
        the note is rewritten (a concurrent promotion finds it FINISHED and changes nothing).
        """
        tag, record = self._read(compose_id)
        utc_seconds(promoted)
        done: list[Record] = []

        def change(old: bytes | None) -> bytes:
            current = record if old is None else load_record(old, compose_id)
            if current.status != ComposeStatus.PENDING:
                raise InvalidInput(
                    f"compose {compose_id} is {current.status}, not PENDING: nothing to promote",
                    code="not-pending",
                )
            final = replace(current, status=ComposeStatus.FINISHED, promoted=promoted, message=message)
            check_record(final)
            done[:] = [final]
            return final.note()

        notes.update_notes(
            self.repo,
            NOTES_REF,
            {tag: change},
            f"Promote {compose_id}: PENDING -> FINISHED\n\n{message}\n",
            utc_seconds(promoted),
            code="lineage-contention",
        )
        return done[0]

    def retire(self, node: str) -> str | None:
        """Move a node's latest good in this release to `refs/composes/retired/<release>/`: the
        compose ID moved, or None when it has no latest good here (retired already, or never
        composed). The retired ref is written before the latest-good refs are deleted (each only
        if it still holds what was read), so a crash in between loses nothing."""
        for _ in refs.tries():
            current = self._pointers(self.release, node)
            if not current:
                return None
            chosen = current[0]
            refs.update_ref(
                self.repo, retired_ref(self.release, node), _constant(chosen.tag), code="lineage-contention"
            )
            if all(refs.compare_and_delete(self.repo, p.name, p.tag) for p in current):
                return chosen.compose_id
        raise refs.Contention(f"the latest good of {node} kept moving", code="lineage-contention")

    # -- reading -----------------------------------------------------------------------------------

    def latest(self, node: str | None = None) -> dict[str, str]:
        """Node id -> compose ID of its latest good compose in this release (one node, or every
        node)."""
        if node is not None:
            found = self._pointers(self.release, node)
            return {node: found[0].compose_id} if found else {}
        return {n: cid for (release, n), cid in self._effective(LATEST).items() if release == self.release}

    def latest_everywhere(self) -> dict[str, dict[str, str]]:
        """Release -> node id -> compose ID of the latest good composes of every release."""
        found: dict[str, dict[str, str]] = {}
        for (release, node), cid in self._effective(LATEST).items():
            found.setdefault(release, {})[node] = cid
        return dict(sorted(found.items()))

    def retired(self, release: str | None = None) -> dict[str, str]:
        """Node id -> compose ID of the last latest good of every node retired in a release
        (default: this handle's)."""
        wanted = release or self.release
        return {node: cid for (rel, node), cid in self._effective(RETIRED).items() if rel == wanted}

    def _effective(self, prefix: str) -> dict[tuple[str, str], str]:
        """(release, node) -> compose ID under prefix: a release's own ref wins over a legacy one."""
        found: dict[tuple[str, str], tuple[bool, str]] = {}
        for pointer in self.pointers(prefix):
            key = (pointer.release, pointer.node)
            if key not in found or found[key][0]:
                found[key] = (pointer.legacy, pointer.compose_id)
        return {key: cid for key, (_, cid) in sorted(found.items())}

    def pointers(self, prefix: str = LATEST) -> list[Pointer]:
        """Every latest-good ref (or, with RETIRED, every retired one), read and checked."""
        found = []
        for name in refs.names(self.repo, prefix):
            target = ref_target(self.repo, name)
            pointer = None if target is None else self._pointer(prefix, name, target)
            if pointer is not None:
                found.append(pointer)
        return found

    def _pointers(self, release: str, node: str) -> list[Pointer]:
        """The refs that make a node's latest good in a release: its own ref first, then a
        legacy one of a compose of that release."""
        found = []
        for name in (latest_ref(release, node), legacy_latest_ref(node)):
            target = ref_target(self.repo, name)
            pointer = None if target is None else self._pointer(LATEST, name, target)
            if pointer is not None and pointer.release == release and pointer.node == node:
                found.append(pointer)
        return found

    def _pointer(self, prefix: str, name: str, target: str) -> Pointer | None:
        info = tag_info(self.repo, target)
        if info is None or not info[0].startswith(TAG_PREFIX):
            return None
        cid = info[0].removeprefix(TAG_PREFIX)
        summary = _TAG_SUMMARY.match(info[1])
        suffix = name.removeprefix(prefix)
        if summary is None or summary["cid"] != cid:
            return None
        node = summary["node"]
        own = node_ref(node)
        if suffix == own and prefix == LATEST:
            return Pointer(name, parse_compose_id(cid).version, node, cid, target, legacy=True)
        if suffix.endswith("/" + own) and "/" not in suffix.removesuffix("/" + own):
            return Pointer(name, suffix.removesuffix("/" + own), node, cid, target)
        return None

    def get(self, compose_id: str) -> Record:
        """The record of a compose, read from its note; InvalidInput(code="unknown-compose") if none."""
        return self._read(compose_id)[1]

    def tag(self, compose_id: str) -> str:
        """The hex id of a compose's tag object; InvalidInput when the compose has no tag."""
        tag = ref_target(self.repo, TAGS + compose_id)
        if tag is None:
            raise self._unknown(compose_id)
        return tag

    def reserved_unfinished(self) -> list[str]:
        """Compose IDs reserved but never tagged: composes killed before they finished."""
        ids = [name.removeprefix(IDS) for name in refs.names(self.repo, IDS)]
        return [cid for cid in ids if not refs.exists(self.repo, TAGS + cid)]

    def tree(self, compose_id: str) -> list[tuple[int, Record]]:
        """The compose and its inputs, transitively, depth first: (depth, record), each once.

        Inputs whose composes have no lineage here are left out.
        """
        index = self._index_ready()
        if index.record_json(compose_id) is None:
            raise self._unknown(compose_id)
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

    def why_node(self, node: str) -> list[Record]:
        """Every compose of a node (`binary:<NVR>`: a build made elsewhere) and every compose made
        from one of them, transitively; sorted by compose ID."""
        return [load_record(text.encode("utf-8"), node) for text in self._index_ready().why_node(node)]

    def history(self, node: str | None = None) -> list[Record]:
        """Every compose recorded, FINISHED and FAILED (or every compose of one node), oldest
        first by finish time, then compose ID."""
        return [
            load_record(text.encode("utf-8"), node or "lineage") for text in self._index_ready().records(node)
        ]

    def latest_indexed(self) -> dict[str, str]:
        """What `latest()` says of every node, read faster: the refs from their files and what
        each tag is from the lineage index (a tag it does not know is read as `latest` reads it).
        At 24,000 nodes `latest()` reads 24,000 refs and tag objects: more than a second."""
        known = self._index_ready().tags()
        found: dict[str, tuple[bool, str]] = {}
        for name, target in refs.targets(self.repo, LATEST).items():
            hit = known.get(target)
            pointer = (
                self._pointer(LATEST, name, target) if hit is None else _indexed_pointer(name, target, *hit)
            )
            if pointer is None or pointer.release != self.release:
                continue
            if pointer.node not in found or found[pointer.node][0]:  # its release's own ref wins
                found[pointer.node] = (pointer.legacy, pointer.compose_id)
        return {node: cid for node, (_, cid) in sorted(found.items())}

    def of_run(self, run: str) -> list[Record]:
        """Every compose a run made (`Record.run`), oldest first by finish time, then compose ID."""
        return [load_record(text.encode("utf-8"), run) for text in self._index_ready().records_of_run(run)]

    def runs(self) -> list[str]:
        """Every run ID the lineage notes name, sorted."""
        return self._index_ready().runs()

    def made_from(self, commit: str) -> list[Record]:
        """Every compose made from a definitions commit (a full hash: the commit its tag points
        at), whatever its status and branch, oldest first by finish time, then compose ID."""
        return [load_record(text.encode("utf-8"), commit) for text in self._index_ready().records_at(commit)]

    def off_branch(self) -> dict[str, str]:
        """Compose ID -> commit of every compose made off its release's branches (`Record.branch`
        is ""): a scratch branch's, a merge request's."""
        return dict(self._index_ready().off_branch())

    def history_of(self, nodes: Collection[str]) -> list[Record]:
        """Every compose of these nodes, oldest first by finish time, then compose ID."""
        return [
            load_record(text.encode("utf-8"), "lineage") for text in self._index_ready().records_of(nodes)
        ]

    def every(self) -> list[Record]:
        """Every compose recorded, read from the notes themselves (not the index), by compose ID."""
        head = ref_target(self.repo, NOTES_REF)
        if head is None:
            return []
        found = [
            load_record(notes.read_blob(self.repo, blob), tag)
            for tag, blob in notes.all_notes(self.repo, head)
        ]
        return sorted(found, key=lambda r: r.compose_id)

    def briefs(self) -> list[ComposeBrief]:
        """What deciding the status needs of every compose (`history` reads them whole: seconds
        at 24,000 composes), oldest first by finish time, then compose ID."""
        return [
            ComposeBrief(cid, node, ComposeStatus(status), digest, finished, _pairs(pins))
            for cid, node, status, finished, digest, pins in self._index_ready().briefs()
        ]

    def find_by_key(
        self,
        node: str,
        key: str,
        statuses: Sequence[ComposeStatus] = (ComposeStatus.FINISHED,),
        types: Collection[str] | None = None,
    ) -> Record | None:
        """The latest FINISHED compose of `node` with this runtime key, or None: the work is done.

        With more `statuses` (PENDING: composed, waiting for check results), a compose of the
        first status that has one wins; with `types`, only a compose of those compose types."""
        keep = None if types is None else (lambda cid: parse_compose_id(cid).type_ in types)
        text = self._index_ready().find_by_key(node, key, [str(s) for s in statuses], keep)
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
        head = ref_target(self.repo, NOTES_REF)
        for record in records:
            tag = ref_target(self.repo, TAGS + record.compose_id)
            if tag is None:
                continue
            old = notes.note_in(self.repo, head, tag)
            if tag != GitObject.make(b"tag", _tag(record)).oid.hex() or old not in (None, record.note()):
                raise InvalidInput(
                    f"compose {record.compose_id} was already finished with another record",
                    code="compose-exists",
                )

    def _tag(self, records: Sequence[Record], tags: Sequence[GitObject]) -> None:
        """Add the compose tags to packed-refs, dropping the reservations they end."""
        made = {TAGS + r.compose_id: (t.oid.hex(), r.commit) for r, t in zip(records, tags, strict=True)}
        try:
            existing = refs.add_packed(self.repo, made, [IDS + r.compose_id for r in records])
        except OperationFailed as exc:
            raise OperationFailed(exc.message, hint=exc.hint, code="lineage-locked") from exc
        clash = sorted(name for name, value in existing.items() if value != made[name][0])
        if clash:
            raise InvalidInput(
                f"compose {clash[0].removeprefix(TAGS)} was already finished with another record",
                code="compose-exists",
            )

    def _commit(self, commit: str) -> None:
        if not is_commit(self.repo, commit):
            raise InvalidInput(f"{commit!r} is not a commit of {self.git_dir}", code="unknown-commit")

    def _read(self, cid: str) -> tuple[str, Record]:
        parse_compose_id(cid)
        tag = ref_target(self.repo, TAGS + cid)
        blob = None if tag is None else notes.read_note(self.repo, NOTES_REF, tag)
        if tag is None or blob is None:
            raise self._unknown(cid)
        return tag, load_record(blob, cid)

    def _unknown(self, cid: str) -> InvalidInput:
        """InvalidInput(code="unknown-compose") naming the compose IDs nearest to cid."""
        ids = [n.removeprefix(TAGS) for n in refs.names(self.repo, TAGS)]
        return unknown("compose", cid, ids, cutoff=COMPOSE_ID_CUTOFF, listing=COMPOSES_LISTED)

    def _index_ready(self) -> LineageIndex:
        """The SQLite index, brought up to date with the notes."""
        if self._index is None:
            self._index = LineageIndex(self.repo, self.git_dir / "factory" / "lineage.sqlite")
        self._index.refresh()
        return self._index


def _constant(value: str) -> Callable[[str | None], str]:
    return lambda _: value


def release_at_head(repo: Repository) -> str:
    """The release HEAD's definitions compose: factory.yaml's `release.version` at HEAD."""
    from pipeline import schemas  # noqa: F401  (gives the core its JSON Schemas)
    from pipeline.core.definitions import CONFIG_PATH, SourceFile, load_config
    from pipeline.git.repo import blob_id

    raw = None if head_is_unborn(repo) else file_at(repo, "HEAD", CONFIG_PATH)
    if raw is None:
        raise InvalidInput(
            f"cannot tell which release's latest good to use: HEAD of {repo.git_dir} has no {CONFIG_PATH}",
            code="no-release",
        )
    data = raw
    return load_config(SourceFile(CONFIG_PATH, blob_id(data), lambda: data)).release.version


def _tag(record: Record) -> bytes:
    """The annotated tag `compose/<id>` on the record's commit, by factory at its finish time."""
    summary = f"Compose {record.compose_id}: {record.node} {record.status}\n"
    return tag_data(record.commit, TAG_PREFIX + record.compose_id, utc_seconds(record.finished), summary)


def _indexed_pointer(name: str, target: str, cid: str, node: str) -> Pointer | None:
    """A latest-good ref whose tag the index knows: `Lineage._pointer` without reading the tag."""
    suffix = name.removeprefix(LATEST)
    own = node_ref(node)
    if suffix == own:
        return Pointer(name, parse_compose_id(cid).version, node, cid, target, legacy=True)
    if suffix.endswith("/" + own) and "/" not in suffix.removesuffix("/" + own):
        return Pointer(name, suffix.removesuffix("/" + own), node, cid, target)
    return None


def _pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """The pins of a record, from their JSON ([[component, commit], ...])."""
    if text is None:
        return ()
    return tuple((str(a), str(b)) for a, b in json.loads(text))
