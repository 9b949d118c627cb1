"""Check results in Git: one note per compose tag object in `refs/notes/tests`.

The note is canonical JSON: `{"format": 1, "compose_id": ..., "results": [{"check", "state",
"message", "started", "finished"}, ...]}`, one entry per check (a check run again replaces its
entry), sorted by check name. Notes are written as lineage notes are: one notes commit per
batch, a 2/38 fanned-out notes tree, new objects as one pack, and the notes ref moved by
compare-and-swap, re-applying the batch on top of whatever another process wrote meanwhile.
`update_notes` does the same for JSON notes on any ref (releases use `refs/notes/releases`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from pipeline.core.canonical import canonical_json
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.gate import CheckResult
from pipeline.core.records import utc_seconds
from pipeline.core.states import CheckState
from pipeline.git import notes
from pipeline.git.repo import ref_target
from pipeline.store.lineage import Lineage

TESTS_REF = "refs/notes/tests"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class TestResult:
    """One check's result on one compose, with when it ran (ISO 8601 UTC)."""

    __test__ = False  # not a pytest class

    check: str
    state: CheckState
    message: str
    started: str
    finished: str

    @property
    def result(self) -> CheckResult:
        return CheckResult(self.check, self.state, self.message)

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "state": self.state,
            "message": self.message,
            "started": self.started,
            "finished": self.finished,
        }


def read(lineage: Lineage, compose_id: str) -> list[TestResult]:
    """The results recorded for a compose (empty: none yet), sorted by check name."""
    data = read_note(lineage, TESTS_REF, compose_id)
    return [] if data is None else _results(data, compose_id)


def record(lineage: Lineage, results: Mapping[str, Sequence[TestResult]]) -> None:
    """Add results (compose ID -> results) in one notes commit; a check's new result replaces
    its old one. Every compose must be tagged (finished) already."""
    for batch in results.values():
        for r in batch:
            if r.state not in set(CheckState):
                raise InvalidInput(f"check {r.check}: unknown state {r.state!r}", code="invalid-result")
            for stamp in (r.started, r.finished):
                utc_seconds(stamp)  # raises on a malformed time

    def merge(cid: str, old: dict[str, object] | None) -> dict[str, object]:
        by_check = {r.check: r for r in ([] if old is None else _results(old, cid))}
        by_check.update({r.check: r for r in results[cid]})
        return {
            "format": FORMAT,
            "compose_id": cid,
            "results": [by_check[c].to_json() for c in sorted(by_check)],
        }

    update_notes(lineage, TESTS_REF, {cid: merge for cid in results if results[cid]}, "Check results")


def read_note(lineage: Lineage, ref: str, compose_id: str) -> dict[str, object] | None:
    """The JSON note on a compose's tag in `ref`, or None."""
    blob = notes.read_note(lineage.repo, ref, lineage.tag(compose_id))
    return None if blob is None else _json(blob, ref, compose_id)


def read_many(lineage: Lineage, compose_ids: Collection[str]) -> dict[str, list[TestResult]]:
    """The results recorded for many composes at once (those with none are left out)."""
    return {cid: _results(data, cid) for cid, data in read_notes(lineage, TESTS_REF, compose_ids).items()}


def read_notes(lineage: Lineage, ref: str, compose_ids: Collection[str]) -> dict[str, dict[str, object]]:
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
            found[cid] = _json(notes.read_blob(lineage.repo, blob), ref, cid)
    return found


Merge = Callable[[str, dict[str, object] | None], dict[str, object]]


def update_notes(lineage: Lineage, ref: str, merges: Mapping[str, Merge], message: str) -> None:
    """Rewrite the JSON notes on the tags of composes (compose ID -> merge(old JSON) -> new JSON)
    in one notes commit on `ref` (`pipeline.git.notes.update_notes`)."""
    if not merges:
        return
    tags = {cid: lineage.tag(cid) for cid in merges}
    summary = f"{message} of {len(merges)} composes\n\n" + "".join(f"{c}\n" for c in sorted(merges))

    def change(cid: str, merge: Merge) -> Callable[[bytes | None], bytes]:
        def apply(old: bytes | None) -> bytes:
            new = merge(cid, None if old is None else _json(old, ref, cid))
            return (canonical_json(new) + "\n").encode("utf-8")

        return apply

    changes: dict[str, notes.Change] = {tags[cid]: change(cid, merge) for cid, merge in merges.items()}
    notes.update_notes(lineage.repo, ref, changes, summary, int(time.time()))


def _json(blob: bytes, ref: str, cid: str) -> dict[str, object]:
    try:
        value = json.loads(blob)
    except ValueError as exc:
        raise OperationFailed(f"{ref}: the note of {cid} is not JSON: {exc}", code="bad-notes") from exc
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise OperationFailed(f"{ref}: the note of {cid} has an unknown format", code="bad-notes")
    return value


def _results(data: Mapping[str, object], cid: str) -> list[TestResult]:
    items = data.get("results")
    out = []
    for item in items if isinstance(items, list) else []:
        if (
            not isinstance(item, dict)
            or not all(
                isinstance(item.get(k), str) for k in ("check", "state", "message", "started", "finished")
            )
            or item["state"] not in set(CheckState)
        ):
            raise OperationFailed(
                f"{TESTS_REF}: a result in the note of {cid} is malformed", code="bad-notes"
            )
        out.append(
            TestResult(
                item["check"], CheckState(item["state"]), item["message"], item["started"], item["finished"]
            )
        )
    return sorted(out, key=lambda r: r.check)


def read_all(lineage: Lineage, ref: str) -> dict[str, dict[str, object]]:
    """Every JSON note in `ref`, by the compose ID it names (notes written by `update_notes`)."""
    head = ref_target(lineage.repo, ref)
    if head is None:
        return {}
    found = {}
    for tag, blob in notes.all_notes(lineage.repo, head):
        data = _json(notes.read_blob(lineage.repo, blob), ref, tag)
        if isinstance(data.get("compose_id"), str):
            found[str(data["compose_id"])] = data
    return found
