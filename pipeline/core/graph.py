"""The artifact graph: definitions become nodes with input digests. Pure: no I/O.

Terminology (ARCHITECTURE.md):
- node: one step, `kind:name`: `build:openssl@1a2b3c4d`, `module:base-runtime:f42`,
  `repo:Server`, `ostree:AtomicHost/host`, `container:Cloud/base`, `iso:Server/dvd`;
- definition: the part of the definitions that a node's artifact is made from (JSON data);
- input digest: sha256 of the canonical JSON of the node's id, definition and its inputs'
  digests; equal digest means nothing to do.

Edges: a build feeds the modules that pin it; a module feeds the flat repo of every variant
that ships it (selected, or required by a selected module); a variant's repo feeds its image
outputs, and an output feeds the outputs layered on it (`from:`). Module dependencies are not
edges: a module's repo holds only its own builds, so a rebuilt base-runtime does not rebuild
python3.
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
from pipeline.core.kinds import BUILD, BUILT_IN, MODULE, REPO, Kind
from pipeline.core.model import Definitions, Module, Output, Pin, Variant

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
    same = [i for i in node.inputs if i.split(":", 1)[0] not in ("build", "module", "repo")]
    return 1 + max((_depth(graph, i) for i in same), default=0)


def build_id(pin: Pin) -> str:
    # A pin following its branch head has one build node per branch; the commit is resolved
    # when it composes (and is part of its compose key then).
    return BUILD.node(f"{pin.component}@{pin.ref[:8] if pin.ref else pin.branch}")


def module_id(nsid: str) -> str:
    return MODULE.node(nsid)


def repo_id(variant: str) -> str:
    return REPO.node(variant)


def output_id(variant: str, output: Output) -> str:
    return repo_id(variant) if output.kind == REPO else Kind(output.kind).node(f"{variant}/{output.name}")


ModuleMemo = dict[int, tuple[Module, str, list[Node]]]


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
    for module in modules.values():
        entry = memo.get(id(module))
        if entry is None or entry[0] is not module or entry[1] != defs.config.dist:
            entry = (module, defs.config.dist, _module_nodes(module, defs.config.dist))
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


def _module_nodes(module: Module, dist: str) -> list[Node]:
    pending = {
        build_id(pin): _Pending("build", _build_definition(pin, dist), (), module.path)
        for pin in module.components
    }
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
    return {
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
