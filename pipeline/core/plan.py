"""The planner: which nodes a change affects, why, and in which order. Pure: no I/O.

A plan compares the graphs of two revisions. A node is planned when its input digest changed
(or it is new); because digests include the inputs' digests, everything downstream of a change
is planned too, and nothing else is. Tiers are topological levels within the planned set:
every node of tier n only consumes nodes of earlier tiers (or unplanned, unchanged ones).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.core.graph import Graph
from pipeline.core.kinds import BUILD, MODULE


@dataclass(frozen=True, slots=True)
class PlannedNode:
    id: str
    kind: str
    digest: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    tiers: tuple[tuple[PlannedNode, ...], ...]
    removed: tuple[str, ...]
    unchanged: int

    @property
    def nodes(self) -> list[PlannedNode]:
        return [n for tier in self.tiers for n in tier]

    def to_json(self) -> dict[str, Any]:
        return {
            "tiers": [
                [{"node": n.id, "kind": n.kind, "digest": n.digest, "reasons": list(n.reasons)} for n in tier]
                for tier in self.tiers
            ],
            "removed": list(self.removed),
            "unchanged": self.unchanged,
        }


def plan(base: Graph, head: Graph) -> Plan:
    """What to compose to go from base to head: changed nodes and their downstream, in tiers."""
    changed = {node_id for node_id, value in head.digests.items() if base.digests.get(node_id) != value}
    removed = tuple(sorted(set(base.digests) - set(head.digests)))
    return _planned(head, changed, lambda node_id: _reasons(base, head, node_id, changed), removed)


def impact(graph: Graph, component: str, branch: str | None = None) -> Plan:
    """What a move of a component's branch would rebuild, from the current graph alone.

    The component's build nodes that follow the branch, every module pinning them, and all
    that is downstream of those. Build nodes keep their current ids; the move gives them new ones.
    """
    seeds = set()
    for node in graph.nodes.values():
        if node.kind != MODULE:
            continue
        follows = dict(node.follows)
        if component not in follows or (branch is not None and follows[component] != branch):
            continue
        seeds.add(node.id)
        seeds.update(i for i in node.inputs if i.startswith(BUILD.node(f"{component}@")))
    what = f"{component}" + (f" ({branch})" if branch else "")

    def reasons(node_id: str) -> tuple[str, ...]:
        node = graph.nodes[node_id]
        if node.kind == BUILD:
            return (f"{what} moved: rebuilt at the new head",)
        if node_id in seeds:
            return (f"pins {what}",)
        return tuple(f"input {i} changes" for i in node.inputs if i in affected)

    affected = graph.downstream(seeds)
    return _planned(graph, affected, reasons, ())


def _planned(
    graph: Graph, chosen: set[str], reasons: Callable[[str], Iterable[str]], removed: tuple[str, ...]
) -> Plan:
    tiers = tuple(
        tuple(PlannedNode(i, graph.nodes[i].kind, graph.nodes[i].digest, tuple(reasons(i))) for i in tier)
        for tier in graph.tiers(chosen)
    )
    return Plan(tiers, removed, len(graph.digests) - len(chosen))


def _reasons(base: Graph, head: Graph, node_id: str, changed: set[str]) -> list[str]:
    node = head.nodes[node_id]
    old = base.nodes.get(node_id)
    if old is None:
        return ["new node"]
    out = list(describe(old.definition, node.definition))
    old_inputs, new_inputs = set(old.inputs), set(node.inputs)
    out.extend(f"new input {i}" for i in sorted(new_inputs - old_inputs))
    out.extend(f"input {i} no longer used" for i in sorted(old_inputs - new_inputs))
    out.extend(f"input {i} changed" for i in node.inputs if i in changed and i in old_inputs)
    return out or ["input digest changed"]


def describe(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """Human lines for what differs between two node definitions."""
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "components" and isinstance(before, dict) and isinstance(after, dict):
            yield from _pins(before, after)
        elif isinstance(before, dict) and isinstance(after, dict):
            yield from describe(before, after, f"{prefix}{key}.")
        elif before is None:
            yield f"{prefix}{key} added"
        elif after is None:
            yield f"{prefix}{key} removed"
        else:
            yield f"{prefix}{key} changed"


def _pins(before: dict[str, Any], after: dict[str, Any]) -> Iterable[str]:
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None:
            yield f"component {name} added"
        elif new is None:
            yield f"component {name} removed"
        elif old.get("ref") != new.get("ref"):
            yield f"pin {name} {_short(old)} -> {_short(new)}"
        else:
            yield f"component {name} changed"


def _short(pin: Mapping[str, Any]) -> str:
    return str(pin["ref"])[:8] if pin.get("ref") else f"head of {pin.get('branch')}"
