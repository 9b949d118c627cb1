"""Check results in Git: one note per compose tag object in `refs/notes/tests`.

The note is canonical JSON: `{"format": 1, "compose_id": ..., "results": [{"check", "state",
"message", "started", "finished"[, "url", "origin"]}, ...]}`, one entry per check (a check run
again replaces its entry), sorted by check name. `started` is empty for a PENDING entry (a
required check with no result, recorded with the compose), `finished` for a PENDING or RUNNING
one; `url` and `origin: "external"` mark a result recorded from outside (`factory check record`).

A check starts before its compose is tagged (the tag names the compose's final status), so the
RUNNING state of a compose's checks is a note on a stand-in object, a blob that only the compose
ID decides (`running_object`); when the results are recorded on the tag, the same notes commit
removes it. A compose killed while a check runs leaves its RUNNING note, as it leaves its
reserved compose ID. Notes are written as lineage notes are: one notes commit per
batch, a 2/38 fanned-out notes tree, new objects as one pack, and the notes ref moved by
compare-and-swap, re-applying the batch on top of whatever another process wrote meanwhile.
`update_notes` does the same for JSON notes on any ref (releases use `refs/notes/releases`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.canonical import canonical_json
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.gate import CheckResult
from pipeline.core.records import utc_seconds
from pipeline.core.states import CheckState
from pipeline.git import notes
from pipeline.git.objects import GitObject
from pipeline.git.repo import open_repo, ref_target
from pipeline.records.lineage import Lineage

TESTS_REF = "refs/notes/tests"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class TestResult:
    """One check's result on one compose, with when it ran (ISO 8601 UTC)."""

    __test__ = False  # not a pytest class

    check: str
    state: CheckState
    message: str
    started: str  # empty: PENDING
    finished: str  # empty: PENDING or RUNNING
    url: str = ""  # where an outside test system shows the run (openQA's job page)
    origin: str = ""  # "" : run by factory; EXTERNAL: recorded by `factory check record`

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
            **({"url": self.url} if self.url else {}),
            **({"origin": self.origin} if self.origin else {}),
        }


EXTERNAL = "external"


def read(lineage: Lineage, compose_id: str) -> list[TestResult]:
    """The results recorded for a compose (empty: none yet), sorted by check name."""
    data = read_note(lineage, TESTS_REF, compose_id)
    return [] if data is None else _results(data, compose_id)


def record(lineage: Lineage, results: Mapping[str, Sequence[TestResult]]) -> None:
    """Add results (compose ID -> results) in one notes commit; a check's new result replaces
    its old one, and the RUNNING notes of these composes go. Every compose must be tagged
    (finished) already."""
    for batch in results.values():
        for r in batch:
            check_result(r)

    def merge(cid: str, old: dict[str, object] | None) -> dict[str, object]:
        return _merged(cid, old, results[cid])

    wanted = {cid: merge for cid in results if results[cid]}
    running = [running_object(cid).oid.hex() for cid in wanted]
    update_notes(lineage, TESTS_REF, wanted, "Check results", remove=running)


def check_result(r: TestResult) -> None:
    """Raise InvalidInput unless a result can be written: a known state, UTC times where its
    state has them."""
    if r.state not in set(CheckState):
        raise InvalidInput(f"check {r.check}: unknown state {r.state!r}", code="invalid-result")
    if not r.check or any(c.isspace() for c in r.check):
        raise InvalidInput(f"not a check name: {r.check!r}", code="invalid-result")
    stamps = {"started": r.started, "finished": r.finished}
    may_lack = {CheckState.PENDING: ("started", "finished"), CheckState.RUNNING: ("finished",)}
    for label, stamp in stamps.items():
        if stamp or label not in may_lack.get(r.state, ()):
            utc_seconds(stamp)  # raises on a malformed (or missing) time


def running_object(compose_id: str) -> GitObject:
    """The blob that stands for a compose in refs/notes/tests while its checks run (its tag
    does not exist yet): decided by the compose ID alone."""
    return GitObject.make(b"blob", f"factory: the checks of compose {compose_id}\n".encode())


def mark_running(repo_path: str | Path, compose_id: str, result: TestResult) -> None:
    """Record that a check of a compose started (state RUNNING, its start time) on the compose's
    stand-in object. Opens its own handle on the repository, so a worker thread may call it:
    the notes ref moves by compare-and-swap, as between processes."""
    check_result(result)
    repo = open_repo(repo_path)
    stand_in = running_object(compose_id)

    def change(old: bytes | None) -> bytes:
        data = None if old is None else _json(old, TESTS_REF, compose_id)
        return (canonical_json(_merged(compose_id, data, [result])) + "\n").encode("utf-8")

    notes.update_notes(
        repo,
        TESTS_REF,
        {stand_in.oid.hex(): change},
        f"Check {result.check} of {compose_id} is running\n",
        int(time.time()),
        extra=[stand_in],
    )


def running(lineage: Lineage, compose_id: str) -> list[TestResult]:
    """The checks of a compose that started and have no result on its tag yet (empty: none)."""
    blob = notes.read_note(lineage.repo, TESTS_REF, running_object(compose_id).oid.hex())
    return [] if blob is None else _results(_json(blob, TESTS_REF, compose_id), compose_id)


def _merged(cid: str, old: Mapping[str, object] | None, new: Sequence[TestResult]) -> dict[str, object]:
    by_check = {r.check: r for r in ([] if old is None else _results(old, cid))}
    by_check.update({r.check: r for r in new})
    return {"format": FORMAT, "compose_id": cid, "results": [by_check[c].to_json() for c in sorted(by_check)]}


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
            new = merge(cid, None if old is None else _json(old, ref, cid))
            return (canonical_json(new) + "\n").encode("utf-8")

        return apply

    changes: dict[str, notes.Change] = {gone: _removed for gone in remove}
    changes.update({tags[cid]: change(cid, merge) for cid, merge in merges.items()})
    notes.update_notes(lineage.repo, ref, changes, summary, int(time.time()))


def _removed(old: bytes | None) -> None:
    return None


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
                item["check"],
                CheckState(item["state"]),
                item["message"],
                item["started"],
                item["finished"],
                str(item.get("url", "")),
                str(item.get("origin", "")),
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
