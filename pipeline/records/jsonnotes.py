"""JSON notes on compose tags: the plumbing every JSON record of `pipeline.records` is built on.

A record (check results, releases, mirror publications, gc marks) is one note per compose tag
object in its own notes ref (`pipeline.records.refs`), canonical JSON of the form
`{"format": 1, "compose_id": ..., <the record's list>: [...]}`. Notes are written as lineage
notes are: one notes commit per batch, a 2/38 fanned-out notes tree, new objects as one pack,
and the notes ref moved by compare-and-swap, re-applying the batch on top of whatever another
process wrote meanwhile (`pipeline.git.notes.update_notes`). Only the modules of
`pipeline.records` call these; each turns the JSON into its own typed values.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence

from pipeline.core.canonical import canonical_json
from pipeline.core.errors import OperationFailed
from pipeline.git import notes
from pipeline.git.objects import GitObject
from pipeline.git.repo import Repository, ref_target
from pipeline.records.lineage import Lineage

FORMAT = 1

Note = dict[str, object]
Merge = Callable[[str, Note | None], Note]


def read_note(lineage: Lineage, ref: str, compose_id: str) -> Note | None:
    """The JSON note on a compose's tag in `ref`, or None."""
    blob = notes.read_note(lineage.repo, ref, lineage.tag(compose_id))
    return None if blob is None else parse(blob, ref, compose_id)


def read_notes(lineage: Lineage, ref: str, compose_ids: Collection[str]) -> dict[str, Note]:
    """The JSON notes in `ref` on the tags of many composes (those without one are left out).

    The notes tree is listed once, instead of looked up from its root for every compose: for
    thousands of composes (a site of the whole pipeline) that is the difference between
    seconds and a minute.
    """
    head = ref_target(lineage.repo, ref)
    if head is None or not compose_ids:
        return {}
    blobs = dict(notes.all_notes(lineage.repo, head))
    found = {}
    for cid in compose_ids:
        blob = blobs.get(lineage.tag(cid))
        if blob is not None:
            found[cid] = parse(notes.read_blob(lineage.repo, blob), ref, cid)
    return found


def read_all(lineage: Lineage, ref: str) -> dict[str, Note]:
    """Every JSON note in `ref`, by the compose ID it names."""
    head = ref_target(lineage.repo, ref)
    if head is None:
        return {}
    found = {}
    for tag, blob in notes.all_notes(lineage.repo, head):
        data = parse(notes.read_blob(lineage.repo, blob), ref, tag)
        if isinstance(data.get("compose_id"), str):
            found[str(data["compose_id"])] = data
    return found


def read_object(lineage: Lineage, ref: str, oid: str, what: str) -> Note | None:
    """The JSON note in `ref` on any object (`what` names it in errors), or None."""
    blob = notes.read_note(lineage.repo, ref, oid)
    return None if blob is None else parse(blob, ref, what)


def update_notes(
    lineage: Lineage, ref: str, merges: Mapping[str, Merge], message: str, *, remove: Collection[str] = ()
) -> None:
    """Rewrite the JSON notes on the tags of composes (compose ID -> merge(old JSON) -> new JSON)
    in one notes commit on `ref` (`pipeline.git.notes.update_notes`), removing the notes on the
    objects `remove` names (hex)."""
    if not merges:
        return
    tags = {cid: lineage.tag(cid) for cid in merges}
    summary = f"{message} of {len(merges)} composes\n\n" + "".join(f"{c}\n" for c in sorted(merges))

    def change(cid: str, merge: Merge) -> Callable[[bytes | None], bytes]:
        def apply(old: bytes | None) -> bytes:
            return encode(merge(cid, None if old is None else parse(old, ref, cid)))

        return apply

    changes: dict[str, notes.Change] = {gone: _removed for gone in remove}
    changes.update({tags[cid]: change(cid, merge) for cid, merge in merges.items()})
    notes.update_notes(lineage.repo, ref, changes, summary, int(time.time()))


def update_object(
    repo: Repository, ref: str, oid: str, change: Callable[[Note | None], Note], message: str, what: str,
    extra: Sequence[GitObject] = (),
) -> None:  # fmt: skip
    """Rewrite the JSON note in `ref` on any object (a stand-in `extra` writes), through the
    notes-update loop, on its own repository handle (a worker thread's)."""

    def apply(old: bytes | None) -> bytes:
        return encode(change(None if old is None else parse(old, ref, what)))

    notes.update_notes(repo, ref, {oid: apply}, message, int(time.time()), extra=list(extra))


def appended(key: str, entries: Sequence[Mapping[str, object]]) -> Merge:
    """A merge that appends entries to the note's list `key` (oldest first)."""

    def merge(compose_id: str, old: Note | None) -> Note:
        earlier = old.get(key, []) if old else []
        return {
            "format": FORMAT,
            "compose_id": compose_id,
            key: [*(earlier if isinstance(earlier, list) else []), *entries],
        }

    return merge


def items(note: Mapping[str, object] | None, key: str) -> list[dict[str, object]]:
    """The entries of a note's list `key` that are JSON objects (a note without one: none)."""
    found = (note or {}).get(key, [])
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def encode(note: Mapping[str, object]) -> bytes:
    return (canonical_json(note) + "\n").encode("utf-8")


def parse(blob: bytes, ref: str, what: str) -> Note:
    """A note's JSON; OperationFailed (bad-notes) unless it is an object of the known format."""
    try:
        value = json.loads(blob)
    except ValueError as exc:
        raise OperationFailed(f"{ref}: the note of {what} is not JSON: {exc}", code="bad-notes") from exc
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise OperationFailed(f"{ref}: the note of {what} has an unknown format", code="bad-notes")
    return value


def _removed(old: bytes | None) -> None:
    return None
