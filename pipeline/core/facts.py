"""The facts the status of the nodes is computed from (`pipeline.core.status`), as values.

An adapter gathers them (`pipeline.overview.gather`): lineage (every compose, latest good,
compose IDs reserved and not finished), check results, releases, branch history, the bump
bot's open merge requests and the definitions of HEAD. A publication to a mirror (`MirrorFact`)
is what `factory publish` records in `refs/notes/mirrors`; nothing is said about mirrors without one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.core import gate
from pipeline.core.graph import Graph
from pipeline.core.model import Definitions
from pipeline.core.records import Record
from pipeline.core.states import CheckState, ReleaseStatus


@dataclass(frozen=True, slots=True)
class CheckRun:
    """One check's recorded result on one compose."""

    check: str
    state: CheckState
    message: str
    started: str
    finished: str


@dataclass(frozen=True, slots=True)
class ReleaseFact:
    """One release (or quarantine) of a compose, and whether it is what `latest` serves now."""

    status: ReleaseStatus
    path: str
    time: str
    signed_by: str
    live: bool


@dataclass(frozen=True, slots=True)
class MirrorFact:
    """A recorded publication of a compose to a mirror (`factory publish`, refs/notes/mirrors)."""

    mirror: str
    time: str


@dataclass(frozen=True, slots=True)
class BumpRequest:
    """An open merge request of the bump bot: it moves a component's pins on a branch to head."""

    id: str
    title: str
    component: str
    branch: str
    head: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BranchHead:
    """The newest recorded head of a dist-git branch (branch history)."""

    component: str
    branch: str
    head: str
    observed: str


@dataclass(frozen=True)
class Facts:
    """Everything the status is computed from. `checks`, `releases` and `mirrors` hold the
    composes they were read for; a compose missing from `checks` has an UNKNOWN gate.
    `bumps` is None when the forge's merge requests were not read."""

    commit: str
    commit_time: str
    defs: Definitions
    graph: Graph
    records: Sequence[Record]
    latest: Mapping[str, str]
    reserved: Mapping[str, str]  # compose ID -> node: reserved, not finished
    policy: gate.Policy
    checks: Mapping[str, Sequence[CheckRun]]
    releases: Mapping[str, Sequence[ReleaseFact]]
    branches: Mapping[tuple[str, str], BranchHead]
    bumps: Sequence[BumpRequest] | None
    today: dt.date
    mirrors: Mapping[str, Sequence[MirrorFact]] = field(default_factory=dict)
