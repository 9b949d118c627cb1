"""What to do with one node of a run: skip it, block it, fail it, or compose it. Pure.

The executor asks `decide` for every node of a tier, then acts on the answer (reserves a compose
ID, makes the work directory, promotes latest good): deciding touches no Git and no disk. What it
needs to know of lineage and dist-git arrives through `Known`, a small read-only protocol (the
executor's is backed by lineage; the tests' by dictionaries).

The rule, in order:
1. an input that did not compose in this run (failed, blocked, or PENDING: waiting for check
   results) blocks the node;
2. a kind without a composer blocks it;
3. an input without a latest good compose blocks it;
4. a build of a pin that follows its branch takes the branch's head (none found: the node fails);
5. the compose key (the node's definition, its tools' versions and format number, the content
   digests of its inputs' latest good composes, or for an image's variant repo the digest of
   what it consumes of it, resolved by the executor: `pipeline.engine.runtime_keys`) with a
   finished compose means skip, promoting that compose to latest good when it is not already
   (a revert reuses the earlier compose); the latest good compose is the one reused when it
   has the key, else the newest; a production run reuses only production composes, but for
   builds and binary pins (`Known.composed` answers so); a PENDING compose (composed, its gate waiting for
   results) with the key means wait: it is not composed again, and it blocks what is made from
   it until `factory gate ID --promote`;
6. otherwise compose, with that key and those inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from pipeline.compose.base import InputCompose
from pipeline.core.canonical import canonical_json, digest
from pipeline.core.graph import Node
from pipeline.core.kinds import BUILD, MODULE
from pipeline.core.records import InputRef, OutputFile, Record
from pipeline.core.states import ComposeStatus, NodeStatus


class Known(Protocol):
    """What a decision reads: lineage (latest good, records, composes by key) and branch heads."""

    def latest(self, node: str) -> str | None:
        """The compose ID of a node's latest good compose, or None."""
        ...

    def record(self, compose_id: str) -> Record:
        """The lineage record of a compose."""
        ...

    def composed(self, node: str, key: str) -> Record | None:
        """A FINISHED compose of node with this compose key, else a PENDING one, or None."""
        ...

    def head(self, component: str, branch: str) -> str | None:
        """The commit a component's dist-git branch points to now, or None when unknown."""
        ...


@dataclass(frozen=True, slots=True)
class Skip:
    """The node's key has a finished compose: reuse it (promoting it when it is not latest good)."""

    node: str
    compose_id: str
    promote: bool


@dataclass(frozen=True, slots=True)
class Wait:
    """The node's key has a PENDING compose: its gate waits for check results. Nothing is
    composed or recorded; the node and what is made from it wait for its promotion."""

    node: str
    compose_id: str
    why: str


@dataclass(frozen=True, slots=True)
class Block:
    """The node cannot compose now because of what it consumes; nothing of it is recorded."""

    node: str
    why: str


@dataclass(frozen=True, slots=True)
class Fail:
    """The node cannot compose at all (its branch has no head); nothing of it is recorded."""

    node: str
    why: str


@dataclass(frozen=True, slots=True)
class Compose:
    """Compose the node: as resolved (a branch-following build carries its head's commit), with
    its key, its inputs' latest good composes, and what its lineage record will say of them."""

    node: Node
    key: str
    inputs: Mapping[str, InputCompose]
    input_refs: tuple[InputRef, ...]
    pins: tuple[tuple[str, str], ...]
    tools: tuple[tuple[str, str], ...]


Decision = Skip | Wait | Block | Fail | Compose


def decide(
    node: Node,
    statuses: Mapping[str, NodeStatus],
    known: Known,
    kinds: Collection[str],
    tools: Mapping[str, Mapping[str, str]],
    waiting: Mapping[str, str] = {},
    consumed: Mapping[str, str] | None = None,
) -> Decision:
    """The decision for one node, given what happened to the nodes before it in this run
    (`statuses`, and for PENDING ones what they wait for, `waiting`), what is known of lineage,
    the kinds that have a composer and the versions of their tools; `consumed` gives, for an
    input the node consumes only a part of, the digest of that part (in place of the input's
    content digest)."""
    bad = [i for i in node.inputs if i in statuses and not statuses[i].ok]
    if bad:
        if statuses[bad[0]] == NodeStatus.PENDING:
            return Block(node.id, f"input {bad[0]} is pending: {waiting.get(bad[0], 'waiting for checks')}")
        return Block(node.id, f"input {bad[0]} did not compose")
    if node.kind not in kinds:
        return Block(node.id, f"no composer for kind {node.kind!r}")
    records: dict[str, Record] = {}
    for i in node.inputs:
        latest = known.latest(i)
        if latest is None:
            return Block(node.id, f"input {i} has no good compose")
        records[i] = known.record(latest)
    resolved = resolve(node, known.head)
    if resolved is None:
        definition = node.definition
        return Fail(
            node.id,
            f"cannot resolve the head of {definition['component']}'s branch {definition['branch']}",
        )
    inputs = {i: InputCompose(i, r.compose_id, r.outputs) for i, r in records.items()}
    parts = consumed or {}
    digests = {i: parts.get(i) or content_digest(r.outputs) for i, r in records.items()}
    key = compose_key(resolved, tools[node.kind], inputs, digests)
    done = known.composed(node.id, key)
    if done is not None and done.status == ComposeStatus.PENDING:
        return Wait(node.id, done.compose_id, f"{done.compose_id} {done.message}")
    if done is not None:
        return Skip(node.id, done.compose_id, promote=known.latest(node.id) != done.compose_id)
    return Compose(
        node=resolved,
        key=key,
        inputs=inputs,
        input_refs=tuple(
            InputRef(i, records[i].compose_id, records[i].outputs_digest) for i in sorted(records)
        ),
        pins=pins(resolved, [records[i] for i in sorted(records)]),
        tools=tuple(sorted(tools[node.kind].items())),
    )


def compose_key(
    node: Node, tools: Mapping[str, str], inputs: Mapping[str, InputCompose], digests: Mapping[str, str]
) -> str:
    """What makes a compose skippable: own definition, tools, and the content of its inputs."""
    return digest(
        {
            "node": node.id,
            "definition": node.definition,
            "tools": dict(tools),
            "inputs": {i: digests[i] for i in sorted(inputs)},
        }
    )


def content_digest(outputs: Iterable[OutputFile]) -> str:
    """The digest of what a compose made, wherever it was put.

    Paths are taken inside the compose's own directory (`builds/<key>/`, `composes/<id>/`),
    so a rebuild that makes the same bytes has the same content digest: early cutoff.
    """
    return digest(sorted([o.path.split("/", 2)[-1], o.sha256] for o in outputs))


def resolve(node: Node, head: Callable[[str, str], str | None]) -> Node | None:
    """The node as composed now: a build of a pin that follows its branch gets the head's commit.

    The commit goes into the node's definition, so the compose key (and the builder) see it:
    when the branch moves, the key changes and the build is redone. None: no head found.
    """
    definition = node.definition
    if node.kind != BUILD or "ref" in definition:
        return node
    found = head(str(definition["component"]), str(definition["branch"]))
    if found is None:
        return None
    return replace(node, definition_json=canonical_json({**definition, "ref": found}))


def pins(node: Node, inputs: Sequence[Record]) -> tuple[tuple[str, str], ...]:
    """The (component, commit) pairs a compose consumed directly: a build's own pin, or the
    pins of the builds a module is made of (resolved commits included)."""
    if node.kind == BUILD:
        return ((str(node.definition["component"]), str(node.definition["ref"])),)
    if node.kind == MODULE:
        return tuple(sorted({pin for record in inputs for pin in record.pins}))
    return ()
