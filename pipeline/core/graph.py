"""The artifact graph: definitions become nodes with input digests. Pure: no I/O.

Terminology (ARCHITECTURE.md):
- node: one step, `kind:name`: `build:openssl@1a2b3c4d`, `binary:glibc-2.41-11.fc42`,
  `module:base-runtime:f42`, `repo:Server`, `ostree:AtomicHost/host`, `container:Cloud/base`,
  `iso:Server/dvd`;
- definition: the part of the definitions that a node's artifact is made from (JSON data);
- input digest: sha256 of the canonical JSON of the node's id, definition and its inputs'
  digests; equal digest means nothing to do.

A binary pin (a build made elsewhere, taken from a source) is one `binary:<NVR>` node, named by
the build alone: its definition is the build and the arches it is taken for, never the source it
comes from, so the same build from another source (or a source renamed) plans nothing.

Edges: a build or a binary pin feeds the modules that pin it; a module feeds the flat repo of every variant
that ships it (selected, or required by a selected module); a variant's repo feeds its image
outputs, and an output feeds the outputs layered on it (`from:`). Module dependencies are not
edges: a module's repo holds only its own builds, so a rebuilt base-runtime does not rebuild
python3. They are *requirements* instead (`Graph.requirements`): a module's checks read the
latest good of the modules it requires, so whatever composes a module composes it after the
modules it buildrequires or requires, without them in its digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pipeline.core.canonical import canonical_json
from pipeline.core.deps import closure
from pipeline.core.kinds import BINARY, BUILD, BUILT_IN, MODULE, REPO, Kind, kind_of
from pipeline.core.model import BinaryPin, Definitions, Module, Output, Pin, Variant
from pipeline.core.sources import pin_arches, release_arches

KINDS_IN_ORDER = BUILT_IN


def kind_rank(kind: str) -> int:
    """Where a kind sorts: built-in kinds in their order, plugin kinds after all of them."""
    return KINDS_IN_ORDER.index(kind) if kind in KINDS_IN_ORDER else len(KINDS_IN_ORDER)


@dataclass(frozen=True, slots=True)
class Node:
    """One step of the artifact graph."""

    id: str
    kind: str
    definition_json: str  # canonical JSON of the definition (kept as text: cheap to cache and load)
    inputs: tuple[str, ...]
    digest: str
    source: str = ""  # the definition file the node comes from
    follows: tuple[tuple[str, str], ...] = ()  # module nodes: (component, branch) of each pin; not hashed

    @property
    def definition(self) -> dict[str, Any]:
        """The node's definition as JSON data (a fresh copy)."""
        value: dict[str, Any] = json.loads(self.definition_json)
        return value


@dataclass(frozen=True)
class Graph:
    """Nodes by id, their digests, and (computed when first asked) who consumes each node.

    `nodes` may be a lazy mapping (a cached graph builds a Node only when it is looked up);
    `digests` is always complete, so comparing two graphs touches no node.
    """

    nodes: Mapping[str, Node]
    digests: Mapping[str, str]

    @cached_property
    def consumers(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for i in node.inputs:
                found.setdefault(i, []).append(node.id)
        return {k: tuple(sorted(v)) for k, v in found.items()}

    def downstream(self, seeds: Iterable[str]) -> set[str]:
        """The seeds and every node that consumes them, transitively."""
        seen: set[str] = set()
        todo = [s for s in seeds if s in self.nodes]
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(self.consumers.get(node, ()))
        return seen

    def upstream(self, seeds: Iterable[str]) -> set[str]:
        """The seeds and every node they consume, transitively."""
        seen: set[str] = set()
        todo = [s for s in seeds if s in self.nodes]
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(self.nodes[node].inputs)
        return seen

    def requirements(self, node_id: str) -> tuple[str, ...]:
        """The module nodes a module node buildrequires or requires, directly (those of this
        graph: a retired module has none); nothing for other kinds. An ordering, not an input."""
        node = self.nodes[node_id]
        if node.kind != MODULE:
            return ()
        definition = node.definition
        found = {
            module_id(f"{name}:{stream}")
            for field in ("buildrequires", "requires")
            for name, stream in definition.get(field, {}).items()
        }
        return tuple(sorted(f for f in found if f in self.nodes))

    def required(self, seeds: Iterable[str]) -> set[str]:
        """Every module node the seeds' modules buildrequire or require, transitively (through
        every module of the graph), without the seeds themselves."""
        chosen = set(seeds)
        seen: set[str] = set()
        todo = [r for s in chosen if s in self.nodes for r in self.requirements(s)]
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(self.requirements(node))
        return seen - chosen

    def in_order(self, subset: Iterable[str]) -> list[str]:
        """A subset with every node after its inputs and the modules it (build)requires that are
        in the subset, by `order` where that leaves a choice."""
        chosen = sorted(set(subset), key=self.order)
        before = {n: [*self.nodes[n].inputs, *self.requirements(n)] for n in chosen}
        placed: set[str] = set()
        ordered: list[str] = []
        for start in chosen:  # depth first, iteratively: requirement chains may be long
            stack = [(start, iter(sorted((b for b in before[start] if b in before), key=self.order)))]
            while stack:
                node, pending = stack[-1]
                if node in placed:
                    stack.pop()
                    continue
                nxt = next((b for b in pending if b not in placed), None)
                if nxt is None:
                    placed.add(node)
                    ordered.append(node)
                    stack.pop()
                else:
                    stack.append((nxt, iter(sorted((b for b in before[nxt] if b in before), key=self.order))))
        return ordered

    def tiers(self, subset: Iterable[str]) -> list[list[str]]:
        """Topological levels of a subset: a node's tier is one past its deepest input in it."""
        chosen = set(subset)
        level: dict[str, int] = {}
        for node_id in sorted(chosen, key=self.order):
            inputs = [level[i] for i in self.nodes[node_id].inputs if i in chosen]
            level[node_id] = 1 + max(inputs) if inputs else 0
        tiers: list[list[str]] = [[] for _ in range(1 + max(level.values(), default=-1))]
        for node_id, n in level.items():
            tiers[n].append(node_id)
        return [sorted(t) for t in tiers]

    def order(self, node_id: str) -> tuple[int, int, str]:
        """A sort key that puts every node after its inputs (by kind, then layering depth)."""
        node = self.nodes[node_id]
        return (kind_rank(node.kind), _depth(self, node_id), node_id)


def _depth(graph: Graph, node_id: str) -> int:
    node = graph.nodes[node_id]
    # A node id starts with its kind: no need to look the inputs up (a cached graph builds
    # a Node, definition and all, on every lookup).
    same = [i for i in node.inputs if kind_of(i) not in (BUILD, BINARY, MODULE, REPO)]
    return 1 + max((_depth(graph, i) for i in same), default=0)


def build_id(pin: Pin) -> str:
    # A pin following its branch head has one build node per branch; the commit is resolved
    # when it composes (and is part of its compose key then).
    return BUILD.node(f"{pin.component}@{pin.ref[:8] if pin.ref else pin.branch}")


def binary_id(pin: BinaryPin) -> str:
    """The node of a binary pin: `binary:<the build's NVR>`, whatever source it comes from."""
    return BINARY.node(pin.build)


def module_id(nsid: str) -> str:
    return MODULE.node(nsid)


def repo_id(variant: str) -> str:
    return REPO.node(variant)


def output_id(variant: str, output: Output) -> str:
    return repo_id(variant) if output.kind == REPO else Kind(output.kind).node(f"{variant}/{output.name}")


ModuleMemo = dict[int, tuple[Module, tuple[str, tuple[str, ...]], list[Node]]]


def build(defs: Definitions, memo: ModuleMemo | None = None) -> Graph:
    """The artifact graph of a validated definitions tree, every node with its input digest.

    A module's build and module nodes depend on nothing but the module and `dist`; pass the
    same memo when building several graphs from the same parsed modules (the base and head of
    a plan) and each module's nodes are made once. Retired modules and variants (`retired:
    true`, past their End Of Life) are left out: nothing plans or composes them any more.
    """
    release = {
        "name": defs.config.release.name,
        "short": defs.config.release.short,
        "version": defs.config.release.version,
    }
    memo = {} if memo is None else memo
    known: dict[str, Node] = {}
    modules = defs.live_modules()
    # What a module's nodes are made of besides the module: `dist` for its builds, the release's
    # arches for its binary pins (a module without any does not depend on them).
    arches = release_arches(v.arches for v in defs.live_variants().values())
    for module in modules.values():
        made_of = (defs.config.dist, arches if module.binaries else ())
        entry = memo.get(id(module))
        if entry is None or entry[0] is not module or entry[1] != made_of:
            entry = (module, made_of, _module_nodes(module, defs.config.dist, arches))
            memo[id(module)] = entry
        for node in entry[2]:
            known.setdefault(node.id, node)
    pending: dict[str, _Pending] = {}
    for variant in defs.live_variants().values():
        shipped = closure((s.module for s in variant.modules), modules)
        repo_inputs = tuple(module_id(nsid) for nsid in shipped)
        by_name = {o.name: o for o in variant.outputs}
        for output in variant.outputs:
            if output.kind == REPO:
                inputs = repo_inputs
            else:
                layered = (output_id(variant.uid, by_name[n]) for n in output.layered_on if n in by_name)
                inputs = tuple(sorted({repo_id(variant.uid), *layered}))
            definition = _output_definition(variant, output, release)
            pending[output_id(variant.uid, output)] = _Pending(output.kind, definition, inputs, variant.path)
    return _with_digests(pending, known)


def _module_nodes(module: Module, dist: str, arches: tuple[str, ...]) -> list[Node]:
    pending = {
        build_id(pin): _Pending("build", _build_definition(pin, dist), (), module.path)
        for pin in module.components
    }
    for binary in module.binaries:
        definition = {"build": binary.build, "arches": list(pin_arches(binary.arches, arches))}
        pending[binary_id(binary)] = _Pending("binary", definition, (), module.path)
    pending[module_id(module.nsid)] = _Pending(
        "module",
        _module_definition(module),
        tuple(sorted(pending)),
        module.path,
        tuple((p.component, p.branch) for p in module.components),
    )
    return list(_with_digests(pending, {}).nodes.values())


@dataclass(frozen=True, slots=True)
class _Pending:
    kind: str
    definition: Mapping[str, Any]
    inputs: tuple[str, ...]
    source: str
    follows: tuple[tuple[str, str], ...] = ()


def _with_digests(pending: dict[str, _Pending], known: dict[str, Node]) -> Graph:
    nodes: dict[str, Node] = dict(known)

    def visit(node_id: str) -> str:
        done = nodes.get(node_id)
        if done is not None:
            return done.digest
        todo = pending[node_id]
        inputs = tuple(i for i in todo.inputs if i in pending or i in nodes)
        input_digests = {i: visit(i) for i in inputs}
        definition = canonical_json(todo.definition)
        # == digest({"node": ..., "definition": ..., "inputs": ...}) without serializing twice
        inputs_json = canonical_json(input_digests) if input_digests else "{}"
        id_json = canonical_json(node_id)
        text = f'{{"definition":{definition},"inputs":{inputs_json},"node":{id_json}}}'
        value = hashlib.sha256(text.encode("utf-8")).hexdigest()
        nodes[node_id] = Node(node_id, todo.kind, definition, inputs, value, todo.source, todo.follows)
        return nodes[node_id].digest

    for node_id in sorted(pending, key=lambda n: kind_rank(pending[n].kind)):
        visit(node_id)
    return Graph(nodes, {k: n.digest for k, n in nodes.items()})


def _build_definition(pin: Pin, dist: str) -> dict[str, Any]:
    # The dist-git location is not part of it: the commit hash is the content.
    if pin.follows_head:
        return {"component": pin.component, "branch": pin.branch, "dist": dist, "arches": list(pin.arches)}
    return {"component": pin.component, "ref": pin.ref, "dist": dist, "arches": list(pin.arches)}


def _module_definition(module: Module) -> dict[str, Any]:
    # What ends up in the module's repo and modulemd; EOL, maintainers and rationale do not.
    definition: dict[str, Any] = {
        "name": module.name,
        "stream": module.stream,
        "summary": module.summary,
        "description": module.description,
        "license": module.license,
        "requires": dict(module.requires),
        "buildrequires": dict(module.buildrequires),
        "components": {
            p.component: {
                **({"branch": p.branch} if p.follows_head else {"ref": p.ref}),
                "buildorder": p.buildorder,
                "arches": list(p.arches),
            }
            for p in module.components
        },
        "profiles": {p.name: {"description": p.description, "rpms": list(p.rpms)} for p in module.profiles},
        "api": sorted(module.api),
    }
    # A binary pin by its build, never its source: the same build from elsewhere changes nothing.
    for b in module.binaries:
        definition["components"][b.component] = {
            "build": b.build,
            "buildorder": b.buildorder,
            "arches": list(b.arches),
        }
    return definition


def _output_definition(variant: Variant, output: Output, release: dict[str, str]) -> dict[str, Any]:
    return {
        "release": release,
        "variant": {
            "uid": variant.uid,
            "name": variant.name,
            "release": variant.release,
            "arches": list(variant.arches),
        },
        "modules": {s.module: sorted(s.profiles) for s in variant.modules} if output.kind == REPO else {},
        "output": {"kind": output.kind, "name": output.name, "options": dict(output.options)},
    }
