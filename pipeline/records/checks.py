"""Check results in Git: one note per compose tag object in `refs/notes/tests`.

The note is canonical JSON: `{"format": 1, "compose_id": ..., "results": [{"check", "state",
"message", "started", "finished"[, "url", "origin"]}, ...]}`, one entry per check (a check run
again replaces its entry), sorted by check name. `started` is empty for a PENDING entry (a
required check with no result, recorded with the compose), `finished` for a PENDING or RUNNING
one; `url` and `origin: "external"` mark a result recorded from outside (`factory check record`).
Each entry is a `CheckRecord` (`pipeline.core.gate`), the one value a check returns, the gate
decides on and the status shows.

A check starts before its compose is tagged (the tag names the compose's final status), so the
RUNNING state of a compose's checks is a note on a stand-in object, a blob that only the compose
ID decides (`running_object`); when the results are recorded on the tag, the same notes commit
removes it. A compose killed while a check runs leaves its RUNNING note, as it leaves its
reserved compose ID. Written through `pipeline.records.jsonnotes`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.gate import CheckRecord as CheckRecord
from pipeline.core.records import utc_seconds
from pipeline.core.states import CheckState
from pipeline.git.objects import GitObject
from pipeline.git.repo import open_repo
from pipeline.records import jsonnotes
from pipeline.records.lineage import Lineage
from pipeline.records.refs import CHECK_NOTES

TESTS_REF = CHECK_NOTES  # the name the notes ref has always had
EXTERNAL = "external"

TestResult = CheckRecord  # its old name here (kept for plugins outside factory)


def read(lineage: Lineage, compose_id: str) -> list[CheckRecord]:
    """The results recorded for a compose (empty: none yet), sorted by check name."""
    note = jsonnotes.read_note(lineage, CHECK_NOTES, compose_id)
    return [] if note is None else _results(note, compose_id)


def read_many(lineage: Lineage, compose_ids: Collection[str]) -> dict[str, list[CheckRecord]]:
    """The results recorded for many composes at once (those with none are left out)."""
    found = jsonnotes.read_notes(lineage, CHECK_NOTES, compose_ids)
    return {cid: _results(note, cid) for cid, note in found.items()}


def record(lineage: Lineage, results: Mapping[str, Sequence[CheckRecord]]) -> None:
    """Add results (compose ID -> results) in one notes commit; a check's new result replaces
    its old one, and the RUNNING notes of these composes go. Every compose must be tagged
    (finished) already."""
    for batch in results.values():
        for r in batch:
            check_result(r)

    def merge(cid: str, old: jsonnotes.Note | None) -> jsonnotes.Note:
        return _merged(cid, old, results[cid])

    wanted = {cid: merge for cid in results if results[cid]}
    running_ = [running_object(cid).oid.hex() for cid in wanted]
    jsonnotes.update_notes(lineage, CHECK_NOTES, wanted, "Check results", remove=running_)


def check_result(r: CheckRecord) -> None:
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


def mark_running(repo_path: str | Path, compose_id: str, result: CheckRecord) -> None:
    """Record that a check of a compose started (state RUNNING, its start time) on the compose's
    stand-in object. Opens its own handle on the repository, so a worker thread may call it:
    the notes ref moves by compare-and-swap, as between processes."""
    check_result(result)
    stand_in = running_object(compose_id)
    jsonnotes.update_object(
        open_repo(repo_path),
        CHECK_NOTES,
        stand_in.oid.hex(),
        lambda old: _merged(compose_id, old, [result]),
        f"Check {result.check} of {compose_id} is running\n",
        compose_id,
        extra=[stand_in],
    )


def running(lineage: Lineage, compose_id: str) -> list[CheckRecord]:
    """The checks of a compose that started and have no result on its tag yet (empty: none)."""
    stand_in = running_object(compose_id).oid.hex()
    note = jsonnotes.read_object(lineage, CHECK_NOTES, stand_in, compose_id)
    return [] if note is None else _results(note, compose_id)


def _merged(cid: str, old: Mapping[str, object] | None, new: Sequence[CheckRecord]) -> jsonnotes.Note:
    by_check = {r.check: r for r in ([] if old is None else _results(old, cid))}
    by_check.update({r.check: r for r in new})
    return {
        "format": jsonnotes.FORMAT,
        "compose_id": cid,
        "results": [by_check[c].to_json() for c in sorted(by_check)],
    }


def _results(note: Mapping[str, object], cid: str) -> list[CheckRecord]:
    items = note.get("results")
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
                f"{CHECK_NOTES}: a result in the note of {cid} is malformed", code="bad-notes"
            )
        out.append(
            CheckRecord(
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
