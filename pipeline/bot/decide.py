"""What the bot should do, decided from facts alone. Pure: no Git, no forge, no clock.

For every tracked (component, branch): when a pin is behind the recorded head, there should be
exactly one merge request bumping it. The rules that keep reruns quiet:

- an open MR for the same head is left alone (main moving does not touch it: no rebase storm);
- an open MR for an older head is updated in place;
- an MR closed without merge, or merged, for this head is never reopened; a new head may open a
  new one;
- a head that does not descend from a pin (a force-push, a rewritten branch) is never bumped:
  it is an error for a human;
- security bumps (MRs labelled `security`) come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.bot.describe import SECURITY, source_branch
from pipeline.bot.forge import CLOSED, MERGED, OPENED, MergeRequest, MergeRequestSpec


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
class State:
    """Everything decide() looks at."""

    branches: tuple[BranchFact, ...]
    existing: Mapping[str, tuple[MergeRequest, ...]] = field(default_factory=dict)  # by source branch


@dataclass(frozen=True, slots=True)
class Open:
    component: str
    branch: str
    spec: MergeRequestSpec


@dataclass(frozen=True, slots=True)
class Update:
    component: str
    branch: str
    mr: MergeRequest
    spec: MergeRequestSpec


@dataclass(frozen=True, slots=True)
class Error:
    component: str
    branch: str
    message: str


Action = Open | Update | Error


def decide(state: State) -> list[Action]:
    """The actions that bring the forge in line with the recorded heads, security first."""
    actions = [a for fact in state.branches for a in _one(fact, state.existing.get(fact.source_branch, ()))]
    return sorted(actions, key=_order)


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


def _order(action: Action) -> tuple[int, str, str]:
    if isinstance(action, Error):
        return (2, action.component, action.branch)
    return (0 if SECURITY in action.spec.labels else 1, action.component, action.branch)
