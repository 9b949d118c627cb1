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
from pipeline.core.states import ComposeStatus, ReleaseStatus

CheckRun = gate.CheckRecord  # one check's recorded result on one compose (its old name)


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


@dataclass(frozen=True, slots=True)
class ComposeBrief:
    """What deciding a node's state needs of a compose whose record was not read whole (the
    nodes a status query does not show): reading 24,000 records costs seconds, these not."""

    compose_id: str
    node: str
    status: ComposeStatus
    input_digest: str
    finished: str
    pins: tuple[tuple[str, str], ...]  # read for builds only (the commit a build built)


@dataclass(frozen=True)
class Facts:
    """Everything the status is computed from. `checks`, `releases` and `mirrors` hold the
    composes they were read for; a compose missing from `checks` has an UNKNOWN gate.
    `bumps` is None when the forge's merge requests were not read. `records` are whole;
    `briefs` are the composes of the other nodes, when only some were read whole (a view is
    made only of a node whose composes are all in `records`)."""

    commit: str
    commit_time: str
    defs: Definitions
    graph: Graph
    records: Sequence[Record]
    latest: Mapping[str, str]
    reserved: Mapping[str, str]  # compose ID -> node: reserved, not finished
    policy: gate.Policy
    checks: Mapping[str, Sequence[gate.CheckRecord]]
    releases: Mapping[str, Sequence[ReleaseFact]]
    branches: Mapping[tuple[str, str], BranchHead]
    bumps: Sequence[BumpRequest] | None
    today: dt.date
    mirrors: Mapping[str, Sequence[MirrorFact]] = field(default_factory=dict)
    briefs: Sequence[ComposeBrief] = ()
