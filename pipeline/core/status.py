"""The status of every node, from what is recorded. Pure: facts in, status out, no I/O.

The facts are what lineage (composes, latest good, reserved IDs), check results, releases,
branch history, the bump bot's merge requests and the definitions of HEAD record; an adapter
gathers them (`pipeline.overview.gather`). `compute` turns them into one `NodeView` per node.

Terminology:
- last compose: a node's most recent compose, FINISHED or FAILED (by finish time, then ID);
- current: its latest good compose was made for the node's input digest at HEAD; a node that
  is not current is *changed* (never composed, or its definition or an input's changed since);
- change root: a changed node none of whose inputs changed (the change itself: a new pin's
  build, an edited module); every changed node names the roots it is changed by;
- root failure: a failed node; it blocks every changed node made from it;
- waiting: a newer commit of a dist-git branch a pin follows (branch history), or an open bump
  merge request, not merged yet: what is made from that pin is out of date, waiting for it.
A record never says more than what happened: a mirror is never called up to date without a
record of the publication (issue 12 adds those), and reserved IDs are "not finished", which
covers a compose running now and one killed before it ended.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property

from pipeline.core import gate
from pipeline.core.facts import ComposeBrief, Facts, MirrorFact, ReleaseFact
from pipeline.core.graph import Graph, build_id
from pipeline.core.model import Definitions, Pin
from pipeline.core.records import Record
from pipeline.core.states import (
    CheckState,
    ComposeStatus,
    GateState,
    MirrorState,
    NodeState,
)

# -- the status --------------------------------------------------------------------------------------


class Cause(StrEnum):
    """Why a node is not current, or waits."""

    NEVER_COMPOSED = "never-composed"
    NO_GOOD_COMPOSE = "no-good-compose"
    CHANGED = "changed"  # a merged change, not composed yet
    INPUT_RECOMPOSED = "input-recomposed"
    BRANCH_MOVED = "branch-moved"
    BUMP_OPEN = "bump-open"
    INPUT_RUNNING = "input-running"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason, for people (`text`) and machines (`cause`, the `nodes` it is about)."""

    cause: Cause
    text: str
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One required check of a compose and how it stands."""

    check: str
    state: CheckState
    satisfied: bool
    reason: str


@dataclass(frozen=True, slots=True)
class GateView:
    """A compose's gate, decided by the policies and waivers at HEAD."""

    state: GateState
    required: tuple[GateCheck, ...] = ()

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(c.check for c in self.required if not c.satisfied and c.state == CheckState.PENDING)

    @property
    def waived(self) -> tuple[str, ...]:
        return tuple(c.check for c in self.required if c.state == CheckState.WAIVED)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(c.check for c in self.required if c.state in gate.FAILING and not c.satisfied)


@dataclass(frozen=True, slots=True)
class Released:
    """A release of one of a node's composes."""

    compose_id: str
    release: ReleaseFact
    mirrors: tuple[MirrorFact, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeView:
    """Where one node stands."""

    id: str
    kind: str
    state: NodeState
    current: bool
    latest_good: Record | None
    last: Record | None
    gate: GateView  # of the last compose
    running: tuple[str, ...]  # compose IDs reserved and not finished
    reasons: tuple[Reason, ...]
    blocked_by: tuple[str, ...]  # the root failures it is blocked by
    blocks: tuple[str, ...]  # the nodes it blocks (when it failed)
    owners: tuple[str, ...]
    eol: dt.date | None
    eol_passed: bool
    source: str
    released: tuple[Released, ...]  # every release of its composes, live ones first
    mirror: MirrorState  # of the live release of its latest good compose
    composes: int  # how many composes lineage holds for it

    @property
    def live(self) -> tuple[Released, ...]:
        return tuple(r for r in self.released if r.release.live)


@dataclass(frozen=True)
class Status:
    """The views of every node (or of the nodes `compute` was asked to show) in the stable order
    (the graph's order, removed nodes last), and the indexes the pages need."""

    facts: Facts
    nodes: Mapping[str, NodeView]
    order: tuple[str, ...]
    records: Mapping[str, Record]  # compose ID -> record
    by_node: Mapping[str, tuple[Record, ...]]  # oldest first
    consumers: Mapping[str, tuple[str, ...]]  # compose ID -> composes made from it

    def views(self) -> list[NodeView]:
        return [self.nodes[n] for n in self.order]

    @cached_property
    def position(self) -> dict[str, int]:
        """Node -> its place in the stable order."""
        return {n: i for i, n in enumerate(self.order)}

    @cached_property
    def builds(self) -> dict[str, list[Record]]:
        """Component -> the records of its builds (a build's first pin is what it built)."""
        found: dict[str, list[Record]] = {}
        for n, records in self.by_node.items():
            if n.startswith("build:"):
                for record in records:
                    if record.pins:
                        found.setdefault(record.pins[0][0], []).append(record)
        return found

    @cached_property
    def pins(self) -> dict[str, list[tuple[str, Pin]]]:
        """Component -> (module name:stream, pin) of every pin of it at HEAD, by module."""
        found: dict[str, list[tuple[str, Pin]]] = {}
        for nsid in sorted(self.facts.defs.modules):
            for pin in self.facts.defs.modules[nsid].components:
                found.setdefault(pin.component, []).append((nsid, pin))
        return found

    @cached_property
    def live(self) -> frozenset[str]:
        """The latest good composes of the nodes HEAD defines."""
        return frozenset(c for n, c in self.facts.latest.items() if n in self.facts.graph.digests)


def stable_order(facts: Facts) -> tuple[str, ...]:
    """Every node HEAD defines (in the graph's order), then those only lineage records (sorted)."""
    graph = facts.graph
    recorded = {r.node for r in facts.records} | {b.node for b in facts.briefs}
    return (*sorted(graph.nodes, key=graph.order), *sorted(recorded - set(graph.digests)))


def compute(facts: Facts, shown: Collection[str] | None = None) -> Status:
    """The status of every node that HEAD defines or lineage records (or only of the nodes in
    `shown`: what each is blocked by, what it blocks and why it waits are still decided from the
    whole graph, but only their views are made, the costly part at 24,000 nodes)."""
    records = {r.compose_id: r for r in facts.records}
    by_node: dict[str, list[Record]] = {}
    consumers: dict[str, list[str]] = {}
    for record in sorted(facts.records, key=lambda r: (r.finished, r.compose_id)):
        by_node.setdefault(record.node, []).append(record)
        for i in record.inputs:
            consumers.setdefault(i.compose_id, []).append(record.compose_id)
    # Deciding states needs less of a compose than a view: the briefs of the nodes not shown.
    brief_by_node: dict[str, list[Record | ComposeBrief]] = {n: list(rs) for n, rs in by_node.items()}
    for brief in facts.briefs:  # oldest first, as lineage gives them
        brief_by_node.setdefault(brief.node, []).append(brief)
    known: dict[str, Record | ComposeBrief] = {b.compose_id: b for b in facts.briefs}
    known.update(records)
    graph = facts.graph
    order = sorted(graph.nodes, key=graph.order)
    removed = sorted(set(brief_by_node) - set(graph.digests))
    running: dict[str, list[str]] = {}
    for cid, node in sorted(facts.reserved.items()):
        running.setdefault(node, []).append(cid)

    good = {n: known[c] for n, c in facts.latest.items() if c in known}
    latest = {n: records[c] for n, c in facts.latest.items() if c in records}
    current = {n: n in good and good[n].input_digest == graph.digests[n] for n in order}
    failed = {n: _failed(brief_by_node.get(n, []), current[n], graph.digests[n]) for n in order}
    pins = _pins(facts.defs)
    own: dict[str, dict[Cause, set[str]]] = {n: {} for n in order}
    for n in order:
        inputs = graph.nodes[n].inputs
        if not current[n] and not any(not current.get(i, True) for i in inputs):
            own[n][Cause.CHANGED] = {n}
        if running.get(n):
            own[n][Cause.INPUT_RUNNING] = {n}
        if failed[n]:
            own[n][Cause.BLOCKED] = {n}
        pin = pins.get(n)
        if pin is not None:
            built = _built_commit(pin, good.get(n))
            head = facts.branches.get((pin[0], pin[1]))
            if head is not None and built and head.head != built:
                own[n][Cause.BRANCH_MOVED] = {n}
            if any(b.component == pin[0] and b.branch == pin[1] for b in facts.bumps or ()):
                own[n][Cause.BUMP_OPEN] = {n}
    roots = _propagate(graph, order, own, current)

    blocks: dict[str, list[str]] = {}
    for n in order:
        if not current[n]:
            for root in sorted(roots[n].get(Cause.BLOCKED, frozenset()) - {n}, key=graph.order):
                blocks.setdefault(root, []).append(n)
    wanted = {*order, *removed} if shown is None else set(shown)
    views: dict[str, NodeView] = {}
    for n in order:
        if n not in wanted:
            continue
        _whole(n, by_node, brief_by_node)
        view = _view(
            facts,
            records,
            n,
            by_node.get(n, []),
            latest.get(n),
            current[n],
            failed[n],
            roots[n],
            running,
            pins,
        )
        views[n] = view if n not in blocks else _with_blocks(view, tuple(blocks[n]))
    for n in removed:
        if n in wanted:
            _whole(n, by_node, brief_by_node)
            views[n] = _removed_view(facts, n, by_node[n], running)
    return Status(
        facts,
        views,
        tuple(n for n in (*order, *removed) if n in wanted),
        records,
        {n: tuple(rs) for n, rs in by_node.items()},
        {c: tuple(cs) for c, cs in consumers.items()},
    )


def _whole(node: str, whole: Mapping[str, Sequence[Record]], every: Mapping[str, Sequence[object]]) -> None:
    """A view is made only of a node whose every compose was read whole (a caller's mistake)."""
    if len(whole.get(node, ())) != len(every.get(node, ())):
        raise ValueError(f"the records of {node} were not read whole: its view cannot be made")


def _failed(composes: Sequence[Record | ComposeBrief], current: bool, digest: str) -> bool:
    """Its last compose failed, unless that failure was of a definition since left behind while
    the latest good compose is current (a change reverted after it failed)."""
    if not composes or composes[-1].status != ComposeStatus.FAILED:
        return False
    return not (current and composes[-1].input_digest != digest)


def _pending(last: Record, digest: str | None) -> bool:
    """Its last compose is of HEAD's definition and waits for check results."""
    return last.status == ComposeStatus.PENDING and last.input_digest == digest


def _pins(defs: Definitions) -> dict[str, tuple[str, str, str]]:
    """Build node -> (component, branch, ref) of the pin it builds ('' ref: follows the head)."""
    found: dict[str, tuple[str, str, str]] = {}
    for module in defs.modules.values():
        for pin in module.components:
            found.setdefault(build_id(pin), (pin.component, pin.branch, pin.ref))
    return found


def _built_commit(pin: tuple[str, str, str], latest_good: Record | ComposeBrief | None) -> str:
    """The dist-git commit a build node builds: its ref, or what its latest good compose built."""
    if pin[2]:
        return pin[2]
    if latest_good is None:
        return ""
    return next((commit for component, commit in latest_good.pins if component == pin[0]), "")


Roots = dict[Cause, frozenset[str]]


def _propagate(
    graph: Graph,
    order: Sequence[str],
    own: Mapping[str, Mapping[Cause, set[str]]],
    current: Mapping[str, bool],
) -> dict[str, Roots]:
    """For every node, the root nodes of each cause upstream of it (itself included).

    Changes and running composes reach only changed nodes (a current node is not waiting for
    them); failures, moved branches and open bumps reach everything made from them, and a
    failure blocks only the changed ones (decided in `_view`).
    """
    found: dict[str, Roots] = {}
    empty: frozenset[str] = frozenset()
    for n in order:
        merged: dict[Cause, set[str]] = {cause: set(nodes) for cause, nodes in own[n].items()}
        for i in graph.nodes[n].inputs:
            for cause, nodes in found.get(i, {}).items():
                if cause in (Cause.CHANGED, Cause.INPUT_RUNNING) and current[n]:
                    continue
                merged.setdefault(cause, set()).update(nodes)
        found[n] = {cause: frozenset(nodes) if nodes else empty for cause, nodes in merged.items()}
    return found


def _view(
    facts: Facts,
    records: Mapping[str, Record],
    n: str,
    composes: Sequence[Record],
    latest_good: Record | None,
    current: bool,
    failed: bool,
    roots: Roots,
    running: Mapping[str, Sequence[str]],
    pins: Mapping[str, tuple[str, str, str]],
) -> NodeView:
    graph = facts.graph
    last = composes[-1] if composes else None
    failures = sorted(roots.get(Cause.BLOCKED, frozenset()) - {n}, key=graph.order)
    blocked_by = tuple(failures) if not current else ()
    reasons = _reasons(facts, records, n, composes, latest_good, current, roots, pins, blocked_by)
    if running.get(n):
        state = NodeState.RUNNING
    elif failed:
        state = NodeState.FAILED
    elif last is not None and _pending(last, graph.digests.get(n)):
        state = NodeState.PENDING
    elif blocked_by:
        state = NodeState.BLOCKED
    elif latest_good is None:
        state = NodeState.NOT_COMPOSED
    elif not current or reasons:
        state = NodeState.OUT_OF_DATE
    else:
        state = NodeState.CURRENT
    eol = _eol(facts, n)
    released = _released(facts, composes)
    return NodeView(
        id=n,
        kind=graph.nodes[n].kind,
        state=state,
        current=current,
        latest_good=latest_good,
        last=last,
        gate=gate_view(facts, last) if last is not None else GateView(GateState.UNKNOWN),
        running=tuple(running.get(n, ())),
        reasons=reasons,
        blocked_by=blocked_by,
        blocks=(),
        owners=_owners(facts, n, last if failed else None),
        eol=eol,
        eol_passed=eol is not None and eol < facts.today,
        source=graph.nodes[n].source,
        released=released,
        mirror=_mirror(released, latest_good),
        composes=len(composes),
    )


def _removed_view(
    facts: Facts, n: str, composes: Sequence[Record], running: Mapping[str, Sequence[str]]
) -> NodeView:
    last = composes[-1]
    good = next((r for r in reversed(composes) if r.compose_id == facts.latest.get(n)), None)
    released = _released(facts, composes)
    return NodeView(
        id=n,
        kind=n.partition(":")[0],
        state=NodeState.REMOVED,
        current=False,
        latest_good=good,
        last=last,
        gate=gate_view(facts, last),
        running=tuple(running.get(n, ())),
        reasons=(Reason(Cause.CHANGED, "no longer defined at HEAD; its lineage is kept"),),
        blocked_by=(),
        blocks=(),
        owners=(),
        eol=None,
        eol_passed=False,
        source="",
        released=released,
        mirror=_mirror(released, good),
        composes=len(composes),
    )


def _with_blocks(view: NodeView, blocked: tuple[str, ...]) -> NodeView:
    return replace(view, blocks=blocked)


def _named(nodes: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(nodes[:limit])
    return shown + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")


def _reasons(
    facts: Facts,
    records: Mapping[str, Record],
    n: str,
    composes: Sequence[Record],
    latest_good: Record | None,
    current: bool,
    roots: Roots,
    pins: Mapping[str, tuple[str, str, str]],
    blocked_by: Sequence[str],
) -> tuple[Reason, ...]:
    graph = facts.graph
    found: list[Reason] = []
    if blocked_by:
        found.append(
            Reason(Cause.BLOCKED, f"blocked by {_named(blocked_by)}, which failed", tuple(blocked_by))
        )
    if not composes:
        found.append(Reason(Cause.NEVER_COMPOSED, "never composed"))
    elif latest_good is None:
        found.append(Reason(Cause.NO_GOOD_COMPOSE, f"no good compose yet ({len(composes)} failed)"))
    changed = sorted(roots.get(Cause.CHANGED, frozenset()), key=graph.order)
    if not current and latest_good is not None:
        made = f"its latest good compose {latest_good.compose_id} was made from {latest_good.commit[:10]}"
        last = composes[-1]
        if last.status == ComposeStatus.FAILED and last.input_digest == graph.digests[n]:
            text = f"the compose of HEAD's definition failed ({last.compose_id}); {made}"
        elif _pending(last, graph.digests[n]):
            text = f"the compose of HEAD's definition is pending: {last.compose_id} {last.message}; {made}"
        elif changed == [n]:
            text = f"a merged change is not composed yet: its definition changed; {made}"
        else:
            text = f"a merged change is not composed yet: {_named(changed)} new or changed; {made}"
        found.append(Reason(Cause.CHANGED, text, tuple(changed)))
    if latest_good is not None:
        found.extend(_recomposed_inputs(facts, records, n, latest_good))
    running = sorted(roots.get(Cause.INPUT_RUNNING, frozenset()) - {n}, key=graph.order)
    if running:
        found.append(
            Reason(Cause.INPUT_RUNNING, f"waits for {_named(running)}, not finished yet", tuple(running))
        )
    moved = sorted(roots.get(Cause.BRANCH_MOVED, frozenset()), key=graph.order)
    if moved:
        found.append(_moved_reason(facts, n, moved, pins))
    bumped = sorted(roots.get(Cause.BUMP_OPEN, frozenset()), key=graph.order)
    if bumped:
        keys = {pins[b][:2] for b in bumped}
        requests = [b for b in facts.bumps or () if (b.component, b.branch) in keys]
        names = ", ".join(f"!{b.id} ({b.component} {b.branch} to {b.head[:8]})" for b in requests[:3])
        more = f" and {len(requests) - 3} more" if len(requests) > 3 else ""
        found.append(Reason(Cause.BUMP_OPEN, f"open bump merge request {names}{more}", tuple(bumped)))
    return tuple(found)


def _moved_reason(
    facts: Facts, n: str, moved: Sequence[str], pins: Mapping[str, tuple[str, str, str]]
) -> Reason:
    if moved == [n]:
        component, branch, _ = pins[n]
        head = facts.branches[(component, branch)]
        text = f"{component} ({branch}) moved to {head.head[:8]} (observed {head.observed}); this builds an older commit"
    else:
        names = sorted({f"{pins[m][0]} ({pins[m][1]})" for m in moved})
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        text = f"made from {shown}, whose branch moved past the pin"
    return Reason(Cause.BRANCH_MOVED, text, tuple(moved))


def _recomposed_inputs(
    facts: Facts, records: Mapping[str, Record], n: str, latest_good: Record
) -> list[Reason]:
    """Inputs that have a newer good compose with other content than the one consumed (a newer
    compose with the same bytes is an early cutoff: nothing to redo)."""
    newer = []
    wanted = set(facts.graph.nodes[n].inputs)
    for i in latest_good.inputs:
        now = facts.latest.get(i.node)
        if i.node not in wanted or now is None or now == i.compose_id:
            continue
        before, after = records.get(i.compose_id), records.get(now)
        if before is not None and after is not None and _content(before) != _content(after):
            newer.append((i.node, now))
    if not newer:
        return []
    text = "newer good compose of " + ", ".join(f"{node} ({cid})" for node, cid in newer[:3])
    return [Reason(Cause.INPUT_RECOMPOSED, text, tuple(node for node, _ in newer))]


def _content(record: Record) -> list[str]:
    return sorted(o.sha256 for o in record.outputs)


def gate_view(facts: Facts, record: Record) -> GateView:
    """The gate of a compose with the policies at HEAD; UNKNOWN when its results were not read."""
    results = facts.checks.get(record.compose_id)
    if results is None:
        return GateView(GateState.UNKNOWN)
    required = gate.requirements(facts.policy.rules, record.node, record.compose_id)
    decision = gate.decide(
        required, [gate.CheckResult(r.check, r.state, r.message) for r in results], facts.policy.waivers
    )
    checks = tuple(GateCheck(o.requirement.check, o.state, o.satisfied, o.reason) for o in decision.outcomes)
    if not checks:
        state = GateState.NOT_REQUIRED
    elif decision.verdict == "fail":
        state = GateState.FAILED
    elif decision.verdict == "pending":
        state = GateState.PENDING
    elif any(c.state == CheckState.WAIVED for c in checks):
        state = GateState.WAIVED
    else:
        state = GateState.PASSED
    return GateView(state, checks)


def _owners(facts: Facts, n: str, failure: Record | None) -> tuple[str, ...]:
    """Who answers for a node: a module's maintainers; a build's, those of the modules pinning
    it; a variant's node, those of its modules (named in the failure when it failed)."""
    kind = facts.graph.nodes[n].kind
    if kind in ("build", "binary"):
        modules = [c.partition(":")[2] for c in facts.graph.consumers.get(n, ()) if c.startswith("module:")]
        return tuple(dict.fromkeys(m for nsid in modules for m in facts.defs.modules[nsid].maintainers))
    messages = [failure.message] if failure is not None else []
    if failure is not None:
        messages += [r.message for r in facts.checks.get(failure.compose_id, ())]
    return gate.owners(facts.defs, n, messages)


def _eol(facts: Facts, n: str) -> dt.date | None:
    kind, _, rest = n.partition(":")
    if kind == "module":
        module = facts.defs.modules.get(rest)
        return module.eol if module is not None else None
    if kind in ("build", "binary"):
        eols = [
            facts.defs.modules[c.partition(":")[2]].eol
            for c in facts.graph.consumers.get(n, ())
            if c.startswith("module:")
        ]
        return max(eols, default=None)
    variant = facts.defs.variants.get(gate.variant_of(n) or "")
    return variant.eol if variant is not None else None


def _released(facts: Facts, composes: Sequence[Record]) -> tuple[Released, ...]:
    found = [
        Released(r.compose_id, fact, tuple(facts.mirrors.get(r.compose_id, ())))
        for r in reversed(composes)
        for fact in facts.releases.get(r.compose_id, ())
    ]
    newest_first = sorted(found, key=lambda x: x.release.time, reverse=True)
    return tuple(sorted(newest_first, key=lambda x: not x.release.live))


def _mirror(released: Sequence[Released], latest_good: Record | None) -> MirrorState:
    """PUBLISHED only with a recorded publication of the live release of the latest good compose."""
    for r in released:
        if (
            r.release.live
            and latest_good is not None
            and r.compose_id == latest_good.compose_id
            and r.mirrors
        ):
            return MirrorState.PUBLISHED
    return MirrorState.NOT_RECORDED
