"""Which composes garbage collection keeps, and why. Pure: no I/O.

A compose's files are kept when any of these says so (every reason is reported):
- it is the latest good compose of its node in some release (what the next compose of that
  release consumes: the default branch's and a release/* branch's each have their own);
- it is the last latest good of a node retired in some release (`refs/composes/retired/`:
  retiring moves a pointer and deletes nothing, so neither does gc);
- it is a live release (what a release directory's `latest` points at);
- it is one of the `keep` newest FINISHED composes of its node in its release (the retention
  rule: composing release 43 does not push release 42's composes out);
- it finished less than `older_than` seconds ago (or has no finish time).
Everything else may be collected: its files removed, its lineage kept forever.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pipeline.core.errors import InvalidInput
from pipeline.core.states import ComposeStatus


class Reason(StrEnum):
    """Why a compose's files are kept."""

    LATEST_GOOD = "latest good"
    RETIRED = "last good of a retired node"
    LIVE_RELEASE = "live release"
    NEWEST = "newest of its node"
    RECENT = "recent"


@dataclass(frozen=True, slots=True)
class Candidate:
    """What retention knows of a compose: its ID, node, release (the compose ID's version),
    status and finish time (epoch seconds)."""

    compose_id: str
    node: str
    release: str
    status: ComposeStatus
    finished: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """A compose and the reasons it is kept (none: it may be collected)."""

    compose_id: str
    node: str
    reasons: tuple[Reason, ...]

    @property
    def kept(self) -> bool:
        return bool(self.reasons)


def decide(
    composes: Sequence[Candidate],
    *,
    latest_good: Collection[str],
    live: Collection[str],
    retired: Collection[str] = (),
    keep: int,
    older_than: int,
    now: int,
) -> list[Verdict]:
    """A verdict per compose, in the order given."""
    if keep < 0 or older_than < 0:
        raise InvalidInput("--keep and --older-than cannot be negative", code="invalid-retention")
    newest: set[str] = set()
    by_node: dict[tuple[str, str], list[Candidate]] = {}
    for c in composes:
        if c.status == ComposeStatus.FINISHED:
            by_node.setdefault((c.release, c.node), []).append(c)
    for finished in by_node.values():
        finished.sort(key=lambda c: (c.finished, c.compose_id), reverse=True)
        newest.update(c.compose_id for c in finished[:keep])
    verdicts = []
    for c in composes:
        reasons = [
            reason
            for reason, holds in (
                (Reason.LATEST_GOOD, c.compose_id in latest_good),
                (Reason.RETIRED, c.compose_id in retired),
                (Reason.LIVE_RELEASE, c.compose_id in live),
                (Reason.NEWEST, c.compose_id in newest),
                (Reason.RECENT, now - c.finished < older_than),
            )
            if holds
        ]
        verdicts.append(Verdict(c.compose_id, c.node, tuple(reasons)))
    return verdicts
