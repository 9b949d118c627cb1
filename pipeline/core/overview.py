"""What the overview pages show beyond one line per node: the summary of the whole pipeline, a
node's compose history with lineage both ways and the diff against the previous compose, a
component's branches and commits, and the EOL calendar. Pure: made from a computed `Status`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.core.facts import (
    BranchHead,
    BumpRequest,
    CheckRun,
    ComposeBrief,
    Facts,
    MirrorFact,
    ReleaseFact,
)
from pipeline.core.graph import binary_id, build_id
from pipeline.core.records import Record
from pipeline.core.states import GateState, NodeState
from pipeline.core.status import GateView, NodeView, Status, gate_view, stable_order

HISTORY = 20  # composes shown per node, newest first
REACHED = 3  # nodes listed as reached from one dist-git commit (the count is whole)


# -- the whole pipeline ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stale:
    """Lineage is older than HEAD: HEAD has changes that no compose was made from yet."""

    newest_compose: str  # "" when lineage holds no compose at all
    newest_commit: str
    newest_finished: str
    changed: int  # nodes not current with HEAD


@dataclass(frozen=True, slots=True)
class FoldedBuilds:
    """A row of a filtered list: the current builds of one module's builds page, counted."""

    module: str  # name:stream
    count: int


def fold_builds(rows: Sequence[NodeView], group_of: dict[str, str | None]) -> list[NodeView | FoldedBuilds]:
    """A list's rows: every node, but the current builds of each builds page (`group_of`: a
    build's module, None for a node with a page of its own) counted in one row where the first
    of them stands. 23,000 current builds repeated in the lists of all nodes, of kind, state and
    owner made a sixth of the Fedora-scale site; their builds pages name each."""
    counts: dict[str, int] = {}
    for v in rows:
        group = group_of.get(v.id) if v.state == NodeState.CURRENT else None
        if group is not None:
            counts[group] = counts.get(group, 0) + 1
    found: list[NodeView | FoldedBuilds] = []
    placed: set[str] = set()
    for v in rows:
        group = group_of.get(v.id) if v.state == NodeState.CURRENT else None
        if group is None:
            found.append(v)
        elif group not in placed:
            placed.add(group)
            found.append(FoldedBuilds(group, counts[group]))
    return found


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts by state and the lists the overview shows first."""

    counts: tuple[tuple[NodeState, int], ...]
    failures: tuple[NodeView, ...]  # the most blocking first
    running: tuple[NodeView, ...]
    pending: tuple[NodeView, ...]  # their last compose's gate is pending
    out_of_date: tuple[NodeView, ...]
    stale: Stale | None


def summary(status: Status) -> Summary:
    """The overview's summary, every list in the stable node order (failures by what they block)."""
    views = status.views()
    counts = tuple((state, sum(1 for v in views if v.state == state)) for state in NodeState)
    failures = sorted(
        (v for v in views if v.state == NodeState.FAILED),
        key=lambda v: (-len(v.blocks), status.position[v.id]),
    )
    return Summary(
        counts=counts,
        failures=tuple(failures),
        running=tuple(v for v in views if v.state == NodeState.RUNNING),
        pending=tuple(v for v in views if v.gate.state == GateState.PENDING),
        out_of_date=tuple(v for v in views if v.state == NodeState.OUT_OF_DATE),
        stale=_stale(status),
    )


def _stale(status: Status) -> Stale | None:
    changed = sum(1 for n in status.facts.graph.digests if not status.nodes[n].current)
    newest = max(status.records.values(), key=lambda r: (r.finished, r.compose_id), default=None)
    if newest is None:
        return Stale("", "", "", changed)
    if newest.commit == status.facts.commit or not changed:
        return None
    return Stale(newest.compose_id, newest.commit, newest.finished, changed)


# -- one node --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputChange:
    """An input consumed by a compose and by the one before it ("" where it had none)."""

    node: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Diff:
    """What changed in a compose's inputs against the node's previous compose."""

    previous: str
    definition_changed: bool  # the node's input digest differs
    inputs: tuple[InputChange, ...]
    pins: tuple[tuple[str, str, str], ...]  # (component, before, after)
    tools: tuple[tuple[str, str, str], ...]  # (tool, before, after)
    outputs_changed: bool


@dataclass(frozen=True, slots=True)
class ComposeView:
    """One compose of a node: its record, gate, checks, releases, and lineage both ways."""

    record: Record
    gate: GateView
    checks: tuple[CheckRun, ...] | None  # None: not read
    releases: tuple[ReleaseFact, ...]
    mirrors: tuple[MirrorFact, ...]
    made_from: tuple[tuple[str, str], ...]  # (node, compose ID) of its inputs, as recorded
    used_by: tuple[tuple[str, str], ...]  # (node, compose ID) of the composes made from it
    latest_good: bool
    diff: Diff | None


@dataclass(frozen=True, slots=True)
class NodeDetail:
    view: NodeView
    inputs: tuple[NodeView, ...]  # at HEAD
    consumers: tuple[NodeView, ...]  # at HEAD
    history: tuple[ComposeView, ...]  # newest first
    older: int  # composes not shown


def detail(status: Status, node: str, limit: int = HISTORY) -> NodeDetail:
    """A node's page: its neighbours at HEAD and its composes, newest first (at most `limit`)."""
    graph = status.facts.graph
    composes = status.by_node.get(node, ())
    shown = list(reversed(composes))[:limit]
    history = []
    for index, record in enumerate(shown):
        before = composes[len(composes) - 2 - index] if len(composes) - 2 - index >= 0 else None
        history.append(compose_view(status, record, before))
    graph_node = graph.nodes.get(node) if node in graph.digests else None
    return NodeDetail(
        view=status.nodes[node],
        inputs=tuple(status.nodes[i] for i in graph_node.inputs) if graph_node else (),
        consumers=tuple(status.nodes[c] for c in graph.consumers.get(node, ())) if graph_node else (),
        history=tuple(history),
        older=len(composes) - len(shown),
    )


def compose_view(status: Status, record: Record, previous: Record | None) -> ComposeView:
    facts = status.facts
    used_by = tuple(
        (status.records[c].node, c)
        for c in status.consumers.get(record.compose_id, ())
        if c in status.records
    )
    checks = facts.checks.get(record.compose_id)
    return ComposeView(
        record=record,
        gate=gate_view(facts, record),
        checks=None if checks is None else tuple(checks),
        releases=tuple(facts.releases.get(record.compose_id, ())),
        mirrors=tuple(facts.mirrors.get(record.compose_id, ())),
        made_from=tuple((i.node, i.compose_id) for i in record.inputs),
        used_by=used_by,
        latest_good=facts.latest.get(record.node) == record.compose_id,
        diff=None if previous is None else diff(previous, record),
    )


def diff(before: Record, after: Record) -> Diff:
    """The inputs, pins and tools of a compose against the node's compose before it."""
    old_inputs = {i.node: i.compose_id for i in before.inputs}
    new_inputs = {i.node: i.compose_id for i in after.inputs}
    inputs = tuple(
        InputChange(n, old_inputs.get(n, ""), new_inputs.get(n, ""))
        for n in sorted(old_inputs.keys() | new_inputs.keys())
        if old_inputs.get(n) != new_inputs.get(n)
    )
    return Diff(
        previous=before.compose_id,
        definition_changed=before.input_digest != after.input_digest,
        inputs=inputs,
        pins=_changed_pairs(before.pins, after.pins),
        tools=_changed_pairs(before.tools, after.tools),
        outputs_changed=sorted(o.sha256 for o in before.outputs) != sorted(o.sha256 for o in after.outputs),
    )


def _changed_pairs(
    before: Sequence[tuple[str, str]], after: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str, str], ...]:
    old: dict[str, list[str]] = {}
    new: dict[str, list[str]] = {}
    for name, value in before:
        old.setdefault(name, []).append(value)
    for name, value in after:
        new.setdefault(name, []).append(value)
    return tuple(
        (name, ", ".join(old.get(name, [])), ", ".join(new.get(name, [])))
        for name in sorted(old.keys() | new.keys())
        if sorted(old.get(name, [])) != sorted(new.get(name, []))
    )


# -- one component ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PinView:
    """A module's pin of the component at HEAD, and whether a newer commit waits."""

    module: str  # name:stream
    branch: str
    ref: str  # "" when the pin follows its branch's head
    build: str  # the build node
    built: str  # the commit its latest good compose built ("" when none)
    head: BranchHead | None
    waiting: bool  # the recorded head is not what it builds
    bumps: tuple[BumpRequest, ...]


@dataclass(frozen=True, slots=True)
class BuiltCommit:
    """A dist-git commit of the component that was built, and where it went."""

    commit: str
    builds: tuple[tuple[str, str, str], ...]  # (node, compose ID, status)
    used_by: tuple[tuple[str, str], ...]  # (node, compose ID) of the composes made from its builds
    reached: tuple[str, ...]  # the nodes of composes made from those, transitively (nearest first)
    more: int  # nodes reached and not listed
    current: bool  # a latest good compose of a node HEAD defines is made from it


@dataclass(frozen=True, slots=True)
class ComponentView:
    name: str
    pins: tuple[PinView, ...]
    built: tuple[BuiltCommit, ...]  # newest first
    bumps: tuple[BumpRequest, ...]
    bumps_known: bool


NOT_PINNED = "not pinned at HEAD"


def components(status: Status) -> list[str]:
    """Every component HEAD pins or lineage records a build of, sorted."""
    return sorted(status.pins.keys() | status.builds.keys())


def component_groups(status: Status) -> dict[str, list[str]]:
    """Components grouped for pages: by the first module (name:stream) pinning them at HEAD,
    the others under NOT_PINNED; groups and their components sorted."""
    groups: dict[str, list[str]] = {}
    for name in components(status):
        pins = status.pins.get(name)
        groups.setdefault(pins[0][0] if pins else NOT_PINNED, []).append(name)
    return dict(sorted(groups.items()))


def component(status: Status, name: str) -> ComponentView:
    """A component's pins at HEAD, waiting commits and bumps, and every built commit's way."""
    facts = status.facts
    pins = []
    for nsid, pin in status.pins.get(name, ()):
        node = build_id(pin)
        good = status.nodes[node].latest_good if node in status.nodes else None
        built = pin.ref or next((c for comp, c in (good.pins if good else ()) if comp == name), "")
        head = facts.branches.get((name, pin.branch))
        bumps = tuple(b for b in facts.bumps or () if b.component == name and b.branch == pin.branch)
        waiting = head is not None and bool(built) and head.head != built
        pins.append(PinView(nsid, pin.branch, pin.ref, node, built, head, waiting, bumps))
    return ComponentView(
        name=name,
        pins=tuple(pins),
        built=tuple(_built(status, name)),
        bumps=tuple(b for b in facts.bumps or () if b.component == name),
        bumps_known=facts.bumps is not None,
    )


def _built(status: Status, name: str) -> list[BuiltCommit]:
    builds: dict[str, list[Record]] = {}
    for record in status.builds.get(name, ()):
        builds.setdefault(record.pins[0][1], []).append(record)
    found = []
    for commit, records in builds.items():
        records.sort(key=lambda r: (r.finished, r.compose_id))
        seen = {r.compose_id for r in records}
        direct = list(dict.fromkeys(c for r in records for c in status.consumers.get(r.compose_id, ())))
        todo = list(direct)
        seen.update(todo)
        for cid in todo:  # breadth first: the nearest composes come first
            for c in status.consumers.get(cid, ()):
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
        reached = list(dict.fromkeys(status.records[c].node for c in todo[len(direct) :]))
        found.append(
            BuiltCommit(
                commit=commit,
                builds=tuple((r.node, r.compose_id, str(r.status)) for r in records),
                used_by=tuple((status.records[c].node, c) for c in direct),
                reached=tuple(reached[:REACHED]),
                more=max(0, len(reached) - REACHED),
                current=not status.live.isdisjoint(seen),
            )
        )
    return sorted(
        found, key=lambda b: (max(status.records[c].finished for _, c, _ in b.builds), b.commit), reverse=True
    )


# -- the EOL calendar ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EolEntry:
    """A module stream or a variant and its End Of Life."""

    kind: str  # module or variant
    name: str  # name:stream or uid
    eol: dt.date
    node: str  # its module node, or its variant's repo node
    passed: bool
    days: int  # days from today (negative: past)


def eol_calendar(status: Status) -> list[EolEntry]:
    """Every module and variant of HEAD by EOL date (then kind and name)."""
    facts = status.facts
    found = [
        EolEntry("module", m.nsid, m.eol, f"module:{m.nsid}", m.eol < facts.today, (m.eol - facts.today).days)
        for m in facts.defs.modules.values()
    ]
    found += [
        EolEntry("variant", v.uid, v.eol, f"repo:{v.uid}", v.eol < facts.today, (v.eol - facts.today).days)
        for v in facts.defs.variants.values()
    ]
    return sorted(found, key=lambda e: (e.eol, e.kind, e.name))


# -- `factory status QUERY` --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """What a query names: a node, a module (its streams), a component, or everything."""

    kind: str  # node, module, component or all
    nodes: tuple[str, ...]  # in the stable order
    components: tuple[str, ...] = ()


def resolve(facts: Facts, text: str | None) -> Query | None:
    """The nodes a query names (None: nothing by that name).

    A node id names itself. A module `NAME` or `NAME:STREAM` names its module nodes, the builds
    they are made of and everything made from them (where it was released). A component names
    the builds of it and the modules that pin them.
    """
    graph = facts.graph
    order = stable_order(facts)
    if not text:
        return Query("all", order)
    composes: list[Record | ComposeBrief] = [*facts.records, *facts.briefs]
    if text in graph.digests or any(r.node == text for r in composes):
        return Query("node", (text,))
    modules = [
        f"module:{nsid}"
        for nsid, m in facts.defs.modules.items()
        if text in (m.name, nsid) and f"module:{nsid}" in graph.digests
    ]
    if modules:
        chosen = graph.downstream(modules) | {i for m in modules for i in graph.nodes[m].inputs}
        return Query("module", tuple(n for n in order if n in chosen))
    builds = {r.node for r in composes if r.node.startswith("build:") and r.pins and r.pins[0][0] == text}
    for module in facts.defs.modules.values():
        builds.update(build_id(p) for p in module.components if p.component == text)
        builds.update(binary_id(b) for b in module.binaries if b.component == text)
    if builds:
        chosen = builds | {c for b in builds for c in graph.consumers.get(b, ()) if c.startswith("module:")}
        return Query("component", tuple(n for n in order if n in chosen), (text,))
    return None


def shown(facts: Facts, query: Query) -> set[str]:
    """The nodes whose views answer a query: its nodes, their inputs and what is made from them
    (`answers` looks at both)."""
    graph = facts.graph
    nodes = set(query.nodes)
    defined = [n for n in nodes if n in graph.digests]
    return nodes | graph.downstream(defined) | {i for n in defined for i in graph.nodes[n].inputs}


@dataclass(frozen=True, slots=True)
class Answers:
    """The seed's three questions about a module, answered from what is recorded."""

    node: str
    underway: str  # is a fresh build underway?
    complete: str  # is it complete?
    mirrors: str  # is it on the mirrors (released where, and published)?


def answers(status: Status, node: str) -> Answers:
    """Is a fresh build of the module underway, is it complete, is it on the mirrors?"""
    view = status.nodes[node]
    graph = status.facts.graph
    made_of = [status.nodes[i] for i in graph.nodes[node].inputs] if node in graph.digests else []
    running = [*view.running, *(c for v in made_of for c in v.running)]
    if running:
        underway = f"yes: {', '.join(running)} reserved, not finished (running, or stopped before it ended)"
    elif view.reasons and view.state != NodeState.CURRENT:
        underway = "not running; " + "; ".join(r.text for r in view.reasons)
    else:
        underway = "no: nothing is composing and nothing newer waits"
    good, last = view.latest_good, view.last
    if good is None:
        complete = "no good compose yet"
    else:
        complete = (
            f"yes: latest good {good.compose_id} finished {good.finished} from commit {good.commit[:10]} "
            f"(its gate passed)" + ("; current with HEAD" if view.current else "; not of HEAD's definitions")
        )
    if last is not None and good is not last and last.status == "FAILED":
        complete += f"; its last compose {last.compose_id} failed: {last.message or 'no message'}"
    return Answers(node, underway, complete, _on_mirrors(status, node, good))


def _on_mirrors(status: Status, node: str, good: Record | None) -> str:
    found = []
    for n in sorted(status.facts.graph.downstream([node]) - {node}, key=status.position.__getitem__):
        for released in status.nodes[n].live:
            has = good is not None and _contains(status, released.compose_id, good.compose_id)
            mirrored = (
                "published to " + ", ".join(m.mirror for m in released.mirrors)
                if released.mirrors
                else ("publication to mirrors not recorded")
            )
            found.append(
                f"{n} {released.compose_id} in {released.release.path} "
                f"({'with' if has else 'not with'} its latest good compose; {mirrored})"
            )
    if not found:
        return "not released: nothing made from it has a live release"
    return "released: " + "; ".join(found)


def _contains(status: Status, top: str, wanted: str) -> bool:
    """Whether compose `wanted` is among the inputs of `top`, transitively."""
    todo, seen = [top], {top}
    for cid in todo:
        if cid == wanted:
            return True
        record = status.records.get(cid)
        for i in record.inputs if record is not None else ():
            if i.compose_id not in seen:
                seen.add(i.compose_id)
                todo.append(i.compose_id)
    return False
