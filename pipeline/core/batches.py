"""Batches and parts: the CI jobs a plan becomes, and the pipelines they are split into. Pure.

Terminology (besides ARCHITECTURE.md's words):
- *batch*: the planned nodes one CI job composes. Its *targets* are the nodes it gives to
  `factory compose` (those no other node of the batch consumes: compose makes what they need);
- *unit*: batches kept in one pipeline when they fit (the build shards of a module and the
  module's own batch);
- *part*: one pipeline of batches; a batch *needs* the batches of its inputs in its own part, and
  comes after the parts that hold its other inputs.

How batches are formed: a planned module is one batch with its planned builds (a build consumed by
several modules goes with the first of them by id). A module with more planned builds than
`Limits.builds_per_job` gets shards of its builds (at most `max_needs` of them, so the module's
batch may need them all) and a batch of its own after them. Every other node is a batch alone.

What a batch comes after (its `inputs`): the batches holding its nodes' planned inputs, and for a
module's batch also those of the planned modules it buildrequires or requires (`Graph.requirements`,
through modules not planned; one implied by another left out): its checks read their latest good,
so a module composed before them fails its gate on the first push. These order jobs only: no
digest changes.

How parts are formed: units are placed in dependency order, each into the first part, from the
last part holding one of its inputs onwards, that keeps every limit: no more than `max_jobs`
batches, no more than `max_needs` inputs of one batch in the same part, the bytes estimated for
its jobs within the budget. A part placed after the part of an input does not need that input: it
comes after that part instead, so the number of needs never grows with the plan.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.graph import Graph, Node
from pipeline.core.plan import Plan

BUILD, BINARY, MODULE = "build", "binary", "module"
JOB_PREFIX = "compose "


@dataclass(frozen=True, slots=True)
class Limits:
    """What one generated pipeline may hold. The defaults are GitLab's default instance limits
    (`ci_needs_size_limit` 50) and factory's own (`ci.max_jobs` 500 in factory.yaml)."""

    max_jobs: int = 500
    max_needs: int = 50
    builds_per_job: int = 50
    # of one generated file as GitLab measures it (the memory of the loaded YAML): half its 1 MB
    max_parsed_bytes: int = 500_000

    def __post_init__(self) -> None:
        for name, least in (
            ("max_jobs", 2),
            ("max_needs", 2),
            ("builds_per_job", 1),
            ("max_parsed_bytes", 50_000),
        ):
            if getattr(self, name) < least:
                raise InvalidInput(f"{name.replace('_', '-')} must be at least {least}", code="bad-ci-limit")


@dataclass(frozen=True, slots=True)
class Batch:
    """The planned nodes one CI job composes."""

    name: str  # the job: "compose module:gtk:3", "compose module:texlive:3 builds 2 of 9"
    nodes: tuple[str, ...]  # every planned node it composes, inputs first
    targets: tuple[str, ...]  # what `factory compose` is given
    inputs: tuple[str, ...]  # the batches it comes after, by name: its planned inputs' and requirements'
    unit: str


@dataclass(frozen=True, slots=True)
class Part:
    """One pipeline of batches, and the earlier parts it must come after."""

    batches: tuple[Batch, ...]
    after: tuple[int, ...]  # indexes of earlier parts holding its inputs (transitively reduced)
    wave: int  # 0 for a part after none, else one more than the latest wave it comes after

    def outside(self) -> set[str]:
        """Names of its batches that have inputs in other parts."""
        mine = {b.name for b in self.batches}
        return {b.name for b in self.batches if any(i not in mine for i in b.inputs)}


def job_name(node_id: str) -> str:
    """The CI job of a batch named after one node: `compose module:base-runtime:f42`."""
    return JOB_PREFIX + node_id


def batches(plan: Plan, graph: Graph, limits: Limits) -> list[Batch]:
    """The batches of a plan, every planned node in exactly one, inputs' batches first."""
    nodes = {n.id: graph.nodes[n.id] for n in plan.nodes}
    position = {node_id: i for i, node_id in enumerate(nodes)}  # the plan's tiers: inputs first
    consumers: dict[str, list[str]] = {}
    for node in nodes.values():
        for i in node.inputs:
            if i in nodes:
                consumers.setdefault(i, []).append(node.id)
    builds: dict[str, list[str]] = {}  # module -> the planned builds that go with it
    alone: list[str] = []
    for node_id, node in nodes.items():
        modules = sorted(c for c in consumers.get(node_id, ()) if nodes[c].kind == MODULE)
        if node.kind in (BUILD, BINARY) and modules:  # a binary pin goes with its module, as a build
            builds.setdefault(modules[0], []).append(node_id)
        else:
            alone.append(node_id)
    shaped: list[tuple[str, tuple[str, ...], tuple[str, ...], str]] = []  # name, nodes, targets, unit
    for node_id in alone:
        mine = sorted(builds.get(node_id, ()))
        if nodes[node_id].kind != MODULE or len(mine) <= limits.builds_per_job:
            shaped.append((job_name(node_id), (*mine, node_id), (node_id,), node_id))
            continue
        count = min(math.ceil(len(mine) / limits.builds_per_job), limits.max_needs)
        size = math.ceil(len(mine) / count)
        chunks = [tuple(mine[i : i + size]) for i in range(0, len(mine), size)]
        for n, chunk in enumerate(chunks, 1):
            shaped.append((f"{job_name(node_id)} builds {n} of {len(chunks)}", chunk, chunk, node_id))
        shaped.append((job_name(node_id), (node_id,), (node_id,), node_id))
    home = {node_id: name for name, members, _, _ in shaped for node_id in members}
    required = _Requirements(graph, {n for n, node in nodes.items() if node.kind == MODULE})
    made = [
        Batch(name, members, targets, _inputs(name, members, nodes, home, required), unit)
        for name, members, targets, unit in shaped
    ]
    return _topological(made, lambda b: (min(position[t] for t in b.targets), b.name))


def _inputs(
    name: str,
    members: Iterable[str],
    nodes: Mapping[str, Node],
    home: Mapping[str, str],
    required: _Requirements,
) -> tuple[str, ...]:
    found = {home[i] for m in members for i in (*nodes[m].inputs, *required.waits_for(m)) if i in home}
    found.discard(name)
    return tuple(sorted(found))


class _Requirements:
    """The planned modules a module's batch waits for: those it (build)requires, directly or
    through modules not planned, less those another of them (build)requires (its batch waits
    for them already)."""

    def __init__(self, graph: Graph, planned: set[str]) -> None:
        self._graph = graph
        self._planned = planned
        self._reach: dict[str, frozenset[str]] = {}
        self._nearest: dict[str, frozenset[str]] = {}

    def waits_for(self, node_id: str) -> tuple[str, ...]:
        if node_id not in self._planned:
            return ()
        near = self._near(node_id)
        implied = set().union(*(self._all(n) for n in near))
        return tuple(sorted(near - implied))

    def _near(self, node_id: str) -> frozenset[str]:
        found: set[str] = set()
        for r in self._graph.requirements(node_id):
            if r in self._planned:
                found.add(r)
            else:
                if r not in self._nearest:
                    self._nearest[r] = self._near(r)
                found |= self._nearest[r]
        return frozenset(found)

    def _all(self, node_id: str) -> frozenset[str]:
        """Every module node_id (build)requires, transitively."""
        if node_id not in self._reach:
            direct = self._graph.requirements(node_id)
            self._reach[node_id] = frozenset(direct).union(*(self._all(r) for r in direct))
        return self._reach[node_id]


def _topological(items: Sequence[Batch], key: Callable[[Batch], tuple[int, str]]) -> list[Batch]:
    """Batches with every batch after its inputs, by key where the graph leaves a choice."""
    by_name = {b.name: b for b in items}
    waiting = {b.name: len(b.inputs) for b in items}
    users: dict[str, list[str]] = {}
    for b in items:
        for i in b.inputs:
            users.setdefault(i, []).append(b.name)
    ready = [(key(b), b.name) for b in items if not b.inputs]
    heapq.heapify(ready)
    ordered: list[Batch] = []
    while ready:
        _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for user in users.get(name, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (key(by_name[user]), user))
    if len(ordered) != len(items):  # the artifact graph is acyclic, and batches follow its edges
        raise OperationFailed("the CI batches of the plan form a cycle", code="bug-batch-cycle")
    return ordered


def partition(
    ordered: Sequence[Batch],
    limits: Limits,
    *,
    job_bytes: Callable[[Batch, Sequence[str]], int],
    budget: int,
) -> list[Part]:
    """Split batches (inputs first) into parts that keep `limits`.

    `job_bytes(batch, needs)` is an upper bound of the bytes its job takes in a file when it needs
    those batches, `budget` the bytes one file may spend on jobs.
    """
    units: dict[str, list[Batch]] = {}
    for b in ordered:
        units.setdefault(b.unit, []).append(b)
    part_of: dict[str, int] = {}
    jobs: list[int] = []  # per part: its number of jobs, bytes spent, and the parts it comes after
    spent: list[int] = []
    after: list[set[int]] = []

    def sizes(group: Sequence[Batch], q: int) -> list[int]:
        inside = {b.name for b in group}
        return [job_bytes(b, [i for i in b.inputs if i in inside or part_of.get(i) == q]) for b in group]

    def fits(group: Sequence[Batch], q: int) -> bool:
        if q == len(jobs):
            return (
                len(group) <= limits.max_jobs
                and sum(sizes(group, q)) <= budget
                and _needs_ok(group, {}, q, limits)
            )
        outside = _outside(group, part_of)
        waits = {part_of[i] for i in outside} - {q}
        # Nothing waits for parts it does not need: a part that comes after no other takes only
        # batches over nothing in other parts; one that comes after others only batches that
        # consume from some part (it then also comes after theirs).
        free = not after[q] and not waits
        return (
            (free or (bool(after[q]) and bool(outside)))
            and jobs[q] + len(group) <= limits.max_jobs
            and _needs_ok(group, part_of, q, limits)
            and spent[q] + sum(sizes(group, q)) <= budget
        )

    for unit in _unit_order(ordered, units):
        members = units[unit]
        groups = [members] if fits(members, len(jobs)) else [[b] for b in members]
        for group in groups:
            q = max((part_of[i] for i in _outside(group, part_of)), default=0)
            while not fits(group, q):
                if q == len(jobs):
                    raise OperationFailed(
                        f"the CI job {group[0].name!r} does not fit in an empty pipeline",
                        hint=f"its YAML takes {sizes(group, q)[0]} bytes of a budget of {budget}",
                        code="ci-job-too-big",
                    )
                q += 1
            if q == len(jobs):
                jobs.append(0)
                spent.append(0)
                after.append(set())
            jobs[q] += len(group)
            spent[q] += sum(sizes(group, q))
            after[q] |= {part_of[i] for i in _outside(group, part_of)} - {q}
            part_of.update((b.name, q) for b in group)
    return _parts(ordered, part_of, len(jobs))


def _outside(group: Sequence[Batch], part_of: Mapping[str, int]) -> list[str]:
    """The inputs of a group's batches that are not in the group (placed already: inputs first)."""
    inside = {b.name for b in group}
    return [i for b in group for i in b.inputs if i not in inside]


def _needs_ok(group: Sequence[Batch], part_of: Mapping[str, int], q: int, limits: Limits) -> bool:
    inside = {b.name for b in group}
    return all(
        sum(1 for i in b.inputs if i in inside or part_of.get(i) == q) <= limits.max_needs for b in group
    )


def _unit_order(ordered: Sequence[Batch], units: Mapping[str, list[Batch]]) -> list[str]:
    """Units with every unit after the units of its inputs, in batch order where free."""
    first: dict[str, int] = {}
    unit_of = {b.name: b.unit for b in ordered}
    for n, b in enumerate(ordered):
        first.setdefault(b.unit, n)
    deps = {u: {unit_of[i] for b in members for i in b.inputs} - {u} for u, members in units.items()}
    users: dict[str, list[str]] = {}
    for u, ds in deps.items():
        for d in ds:
            users.setdefault(d, []).append(u)
    waiting = {u: len(ds) for u, ds in deps.items()}
    ready = [(first[u], u) for u, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    found: list[str] = []
    while ready:
        _, u = heapq.heappop(ready)
        found.append(u)
        for user in users.get(u, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (first[user], user))
    if len(found) != len(units):  # module requirements are acyclic (core.consistency)
        raise OperationFailed("the CI batch units of the plan form a cycle", code="bug-batch-cycle")
    return found


def _parts(ordered: Sequence[Batch], part_of: Mapping[str, int], count: int) -> list[Part]:
    members: list[list[Batch]] = [[] for _ in range(count)]
    direct: list[set[int]] = [set() for _ in range(count)]
    for b in ordered:
        q = part_of[b.name]
        members[q].append(b)
        direct[q].update(part_of[i] for i in b.inputs if part_of[i] != q)
    reach: list[set[int]] = []  # every earlier part a part comes after, transitively
    waves: list[int] = []
    parts: list[Part] = []
    for q in range(count):
        reach.append(set().union(*(reach[d] | {d} for d in direct[q])) if direct[q] else set())
        implied = set().union(*(reach[d] for d in direct[q])) if direct[q] else set()
        after = tuple(sorted(direct[q] - implied))
        waves.append(1 + max(waves[d] for d in after) if after else 0)
        parts.append(Part(tuple(members[q]), after, waves[q]))
    return parts
