"""What the bot should do, decided from facts alone. Pure: no Git, no forge, no clock.

For every tracked (component, branch): when a pin is behind the recorded head, there should be
exactly one merge request bumping it. The rules that keep reruns quiet:

- an open MR for the same head is left alone (main moving does not touch it: no rebase storm);
- an open MR for an older head is updated in place;
- an MR closed without merge, or merged, for this head is never reopened; a new head may open a
  new one;
- a head that does not descend from a pin (a force-push, a rewritten branch) is never bumped:
  it is an error for a human;
- security bumps (MRs labelled `security`) come first, the most severe first (Critical,
  Important, Moderate, Low).

Binary pins follow their source the same way, one merge request per (component, source): when
the source (with what it inherits) holds a newer build than a pin, in rpm's own version order.
A source that went back (its newest build older than a pin: a build untagged) is never bumped:
it is an error for a human. A source's `automerge` says which of its bumps merge themselves once
their pipeline passes: an MR opened or updated is set to, and an open one at the newest build
that is not set yet is set again (`Merge`), so a pipeline that was not there yet is waited for at
the next pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.bot.describe import SECURITY, source_branch
from pipeline.bot.describe_builds import build_source_branch
from pipeline.bot.forge import CLOSED, MERGED, OPENED, MergeRequest, MergeRequestSpec
from pipeline.core.advisories import SEVERITIES


@dataclass(frozen=True, slots=True)
class PinFact:
    """One module's pin of a tracked branch, and whether the recorded head descends from it."""

    module: str  # name:stream
    ref: str
    descends: bool  # the pin is the head or one of its ancestors


@dataclass(frozen=True, slots=True)
class BranchFact:
    """One tracked (component, branch): its recorded head, its pins, the MR that would bump them."""

    component: str
    branch: str
    head: str | None  # None: never observed (dist-git unreachable)
    pins: tuple[PinFact, ...]
    proposal: MergeRequestSpec | None = None  # present when some pin is behind and can move
    problem: str = ""  # why the head is unknown

    @property
    def source_branch(self) -> str:
        return source_branch(self.component, self.branch)

    @property
    def behind(self) -> tuple[PinFact, ...]:
        return tuple(p for p in self.pins if p.ref != self.head)


@dataclass(frozen=True, slots=True)
class BuildPinFact:
    """One module's binary pin of a component from a source, against the newest build there."""

    module: str  # name:stream
    build: str  # the NVR pinned
    order: int  # rpm's order of the pinned build against the newest: -1 older, 0 the same, 1 newer


@dataclass(frozen=True, slots=True)
class BuildFact:
    """One followed (component, source): the newest build the source (with what it inherits)
    holds, the pins, the MR that would bump them, and the most urgent security severity of the
    advisories it brings ("" when none is a security one)."""

    component: str
    source: str
    newest: str | None  # None: the source did not answer, or holds no build of the component
    pins: tuple[BuildPinFact, ...]
    proposal: MergeRequestSpec | None = None
    severity: str = ""
    problem: str = ""  # why the newest build is unknown
    automerge: bool = False  # the source's automerge covers this bump

    @property
    def source_branch(self) -> str:
        return build_source_branch(self.component, self.source)

    @property
    def behind(self) -> tuple[BuildPinFact, ...]:
        return tuple(p for p in self.pins if p.order < 0)


@dataclass(frozen=True, slots=True)
class State:
    """Everything decide() looks at."""

    branches: tuple[BranchFact, ...]
    existing: Mapping[str, tuple[MergeRequest, ...]] = field(default_factory=dict)  # by source branch
    builds: tuple[BuildFact, ...] = ()


@dataclass(frozen=True, slots=True)
class Open:
    component: str
    branch: str  # "" for a build bump
    spec: MergeRequestSpec
    source: str = ""  # the source of a build bump
    severity: str = ""
    automerge: bool = False  # merge it once its pipeline passes


@dataclass(frozen=True, slots=True)
class Update:
    component: str
    branch: str
    mr: MergeRequest
    spec: MergeRequestSpec
    source: str = ""
    severity: str = ""
    automerge: bool = False


@dataclass(frozen=True, slots=True)
class Merge:
    """Set an open MR (already at the newest build) to merge once its pipeline passes."""

    component: str
    branch: str
    mr: MergeRequest
    spec: MergeRequestSpec
    source: str = ""
    severity: str = ""


@dataclass(frozen=True, slots=True)
class Error:
    component: str
    branch: str
    message: str
    source: str = ""


Action = Open | Update | Merge | Error


def decide(state: State) -> list[Action]:
    """The actions that bring the forge in line with the recorded heads and the builds the
    sources hold, security first."""
    actions = [a for fact in state.branches for a in _one(fact, state.existing.get(fact.source_branch, ()))]
    actions += [a for fact in state.builds for a in _build(fact, state.existing.get(fact.source_branch, ()))]
    return sorted(actions, key=_order)


def _build(fact: BuildFact, existing: tuple[MergeRequest, ...]) -> list[Action]:
    component, source = fact.component, fact.source
    if fact.newest is None:
        reason = fact.problem or f"source {source} holds no build of it"
        return [Error(component, "", f"cannot bump {component} ({source}): {reason}", source)]
    ahead = [p for p in fact.pins if p.order > 0]
    if ahead:
        modules = ", ".join(f"{p.module} (pin {p.build})" for p in ahead)
        return [
            Error(
                component,
                "",
                f"{component} ({source}) went back: its newest build is {fact.newest}, older than the pin "
                f"of {modules} (a build untagged?); not bumped, a human must decide",
                source,
            )
        ]
    if not fact.behind:
        return []
    if any(mr.head == fact.newest and mr.state in (CLOSED, MERGED) for mr in existing):
        return []  # done, or refused by a human for this very build
    spec = fact.proposal
    if spec is None:
        return [
            Error(component, "", f"no merge request could be prepared for {component} ({source})", source)
        ]
    opened = [mr for mr in existing if mr.state == OPENED]
    if opened:
        mr = opened[0]
        if mr.head != fact.newest:
            return [Update(component, "", mr, spec, source, fact.severity, fact.automerge)]
        if fact.automerge and not mr.auto_merge:
            return [Merge(component, "", mr, spec, source, fact.severity)]
        return []
    return [Open(component, "", spec, source, fact.severity, fact.automerge)]


def _one(fact: BranchFact, existing: tuple[MergeRequest, ...]) -> list[Action]:
    if fact.head is None:
        reason = fact.problem or "its head was never recorded"
        return [Error(fact.component, fact.branch, f"cannot bump {fact.component} ({fact.branch}): {reason}")]
    behind = fact.behind
    if not behind:
        return []
    strays = [p for p in behind if not p.descends]
    if strays:
        modules = ", ".join(f"{p.module} (pin {p.ref[:12]})" for p in strays)
        return [
            Error(
                fact.component,
                fact.branch,
                f"{fact.component} ({fact.branch}) head {fact.head[:12]} does not descend from the pin of "
                f"{modules}: the branch was force-pushed or rewritten; not bumped, a human must decide",
            )
        ]
    if any(mr.head == fact.head and mr.state in (CLOSED, MERGED) for mr in existing):
        return []  # done, or refused by a human for this very head
    spec = fact.proposal
    if spec is None:
        return [
            Error(fact.component, fact.branch, f"no merge request could be prepared for {fact.component}")
        ]
    opened = [mr for mr in existing if mr.state == OPENED]
    if opened:
        mr = opened[0]
        return [] if mr.head == fact.head else [Update(fact.component, fact.branch, mr, spec)]
    return [Open(fact.component, fact.branch, spec)]


def _order(action: Action) -> tuple[int, int, str, str, str]:
    """Security first, the most severe first (a security bump of unknown severity after those
    of a known one); then the rest; errors last. Ties by component, branch, source."""
    if isinstance(action, Error):
        return (2, 0, action.component, action.branch, action.source)
    security = SECURITY in action.spec.labels
    rank = SEVERITIES.index(action.severity) if action.severity in SEVERITIES else len(SEVERITIES)
    return (0 if security else 1, rank if security else 0, action.component, action.branch, action.source)
