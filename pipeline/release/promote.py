"""The promote use-case: `factory gate ID --promote` re-decides the gate of a PENDING compose.

A compose whose gate was pending when it was composed (a required check had no result) is
recorded PENDING. Once results are recorded (`factory check record`) or a waiver is merged, its
gate is decided again with the policies and waivers of a revision (HEAD by default) and the
check results in `refs/notes/tests`:

- pass: its lineage record is rewritten FINISHED with the promotion time and the gate's
  decision (`Lineage.finish_pending`: one notes commit "Promote <id>", the PENDING record stays
  in the notes history), and it becomes latest good of its release, unless a compose of the
  node that finished later already is (an old compose never replaces a newer one), or it was
  composed off the release's branches (`Record.branch` is "") and its commit is still on none
  of them (`pipeline.core.branches`): a side branch's compose never moves latest good, and a
  compose of one of the branches with the same key later reuses it and makes it latest good;
- fail or still pending: nothing is written; the answer says which checks failed or are missing.

A FINISHED compose is left as it is (promoting twice changes nothing); a FAILED one is refused:
it is composed again, never promoted.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.core import gate
from pipeline.core.errors import InvalidInput
from pipeline.core.records import Record, parse_compose_id, utc_seconds
from pipeline.core.states import ComposeStatus
from pipeline.git.release_branch import on_release_branch
from pipeline.records.lineage import Lineage
from pipeline.release import gating
from pipeline.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Promotion:
    """What `promote` did: the gate's decision, the record after it, and whether latest good moved
    (False with a pass: a newer compose of the node is latest good, or it was composed off the
    release's branches: `off_branch`)."""

    decision: gate.Decision
    record: Record
    promoted: bool
    latest_good: bool
    off_branch: bool = False


def promote(
    ws: Workspace,
    compose_id: str,
    rev: str = "HEAD",
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Promotion:
    """Decide the gate of a PENDING compose again and, when it passes, finish and promote it."""
    lineage = Lineage(ws.root, parse_compose_id(compose_id).version)  # the release it belongs to
    try:
        record = lineage.get(compose_id)
        if record.status == ComposeStatus.FAILED:
            raise InvalidInput(
                f"compose {compose_id} is FAILED: a failed compose is composed again, never promoted",
                code="compose-failed",
            )
        decision = gating.decide(ws, lineage, record, rev)
        if record.status == ComposeStatus.FINISHED or not decision.passed:
            return Promotion(decision, record, False, False)
        when = clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        off = (
            record.off_branch
            and not on_release_branch(
                ws.repo, record.commit, ws.config(record.commit).release, os.environ
            ).moves_latest
        )
        finished = lineage.finish_pending(compose_id, when, f"promoted: {decision.summary()}")
        latest = lineage.latest(record.node).get(record.node)
        newer = latest is not None and _finished(lineage.get(latest)) > _finished(finished)
        if not newer and not off:
            lineage.promote(record.node, compose_id)
        return Promotion(decision, finished, True, not newer and not off, off)
    finally:
        lineage.close()


def _finished(record: Record) -> tuple[int, str]:
    return utc_seconds(record.finished), record.compose_id
