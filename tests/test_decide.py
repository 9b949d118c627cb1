"""The executor's decision for one node: skip, block, fail or compose. Pure: no Git, no disk.

Lineage and dist-git are dictionaries behind the `Known` protocol; the nodes are those of the
example distribution's graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from pipeline.compose.base import InputCompose
from pipeline.core import definitions
from pipeline.core.canonical import canonical_json
from pipeline.core.graph import Graph, Node, build
from pipeline.core.records import InputRef, OutputFile, Record, outputs_digest
from pipeline.core.states import ComposeStatus, NodeStatus
from pipeline.engine import decide as deciding
from pipeline.engine.decide import Block, Compose, Fail, Skip, compose_key, content_digest, decide
from tests.conftest import example_tree, sources
from tests.test_layers import imports

MODULE = "module:httpd:2.4"
KINDS = frozenset({"build", "module", "repo"})
TOOLS = {kind: {"writer": "1", "format": "1"} for kind in KINDS}
HEAD = "c" * 40


@cache
def graph() -> Graph:
    return build(definitions.load(sources(example_tree())))


def node(node_id: str) -> Node:
    return graph().nodes[node_id]


BUILDS = node(MODULE).inputs  # build:httpd@..., build:mod_ssl@...


def record(node_id: str, compose_id: str, *, pins: tuple[tuple[str, str], ...] = (), key: str = "") -> Record:
    outputs = (OutputFile(f"composes/{compose_id}/{node_id.replace(':', '-')}.txt", 3, "a" * 64),)
    return Record(
        compose_id=compose_id,
        node=node_id,
        input_digest="d" * 64,
        key=key,
        commit="e" * 40,
        inputs=(),
        pins=pins,
        outputs=outputs,
        outputs_digest=outputs_digest(outputs),
        tools=(),
        started="2026-11-21T00:00:00Z",
        finished="2026-11-21T00:01:00Z",
        status=ComposeStatus.FINISHED,
    )


@dataclass
class Lineage:
    """`Known` from dictionaries: latest good, records, finished composes by key, branch heads."""

    latest_good: dict[str, str] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    by_key: dict[tuple[str, str], Record] = field(default_factory=dict)
    heads: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, made: Record, *, latest: bool = True) -> None:
        self.records[made.compose_id] = made
        if latest:
            self.latest_good[made.node] = made.compose_id

    def latest(self, node: str) -> str | None:
        return self.latest_good.get(node)

    def record(self, compose_id: str) -> Record:
        return self.records[compose_id]

    def composed(self, node: str, key: str) -> Record | None:
        return self.by_key.get((node, key))

    def head(self, component: str, branch: str) -> str | None:
        return self.heads.get((component, branch))


def with_builds() -> Lineage:
    known = Lineage()
    for n, build_id in enumerate(BUILDS):
        component = build_id.split(":")[1].split("@")[0]
        known.add(record(build_id, f"FL-42-b{n}-20261121.n.0", pins=((component, f"{n}" * 40),)))
    return known


def test_an_input_that_did_not_compose_in_this_run_blocks() -> None:
    statuses = {BUILDS[0]: NodeStatus.COMPOSED, BUILDS[1]: NodeStatus.FAILED}
    assert decide(node(MODULE), statuses, with_builds(), KINDS, TOOLS) == Block(
        MODULE, f"input {BUILDS[1]} did not compose"
    )


def test_a_kind_without_a_composer_blocks() -> None:
    assert decide(node(MODULE), {}, with_builds(), {"build"}, TOOLS) == Block(
        MODULE, "no composer for kind 'module'"
    )


def test_an_input_without_a_latest_good_compose_blocks() -> None:
    known = with_builds()
    del known.latest_good[BUILDS[1]]
    assert decide(node(MODULE), {}, known, KINDS, TOOLS) == Block(
        MODULE, f"input {BUILDS[1]} has no good compose"
    )


def test_a_new_key_composes_with_its_inputs_and_draft_fields() -> None:
    known = with_builds()
    decision = decide(node(MODULE), {}, known, KINDS, TOOLS)
    assert isinstance(decision, Compose)
    inputs = {
        b: InputCompose(b, known.latest_good[b], known.records[known.latest_good[b]].outputs) for b in BUILDS
    }
    digests = {b: content_digest(i.outputs) for b, i in inputs.items()}
    assert decision.key == compose_key(node(MODULE), TOOLS["module"], inputs, digests)
    assert decision.node == node(MODULE)
    assert decision.inputs == inputs
    assert decision.input_refs == tuple(
        InputRef(b, known.latest_good[b], known.records[known.latest_good[b]].outputs_digest) for b in BUILDS
    )
    assert decision.pins == (("httpd", "0" * 40), ("mod_ssl", "1" * 40))  # the pins of its builds
    assert decision.tools == (("format", "1"), ("writer", "1"))


def test_a_key_with_a_finished_compose_skips_and_promotes_it_unless_it_is_latest_good() -> None:
    known = with_builds()
    first = decide(node(MODULE), {}, known, KINDS, TOOLS)
    assert isinstance(first, Compose)
    earlier = record(MODULE, "FL-42-httpd-2.4-20261120.n.0", key=first.key)
    known.by_key[(MODULE, first.key)] = earlier
    known.add(record(MODULE, "FL-42-httpd-2.4-20261121.n.0"))  # a later compose is latest good
    assert decide(node(MODULE), {}, known, KINDS, TOOLS) == Skip(MODULE, earlier.compose_id, promote=True)
    known.add(earlier)
    assert decide(node(MODULE), {}, known, KINDS, TOOLS) == Skip(MODULE, earlier.compose_id, promote=False)


def test_the_key_changes_with_the_content_of_an_input() -> None:
    known = with_builds()
    before = decide(node(MODULE), {}, known, KINDS, TOOLS)
    rebuilt = record(BUILDS[0], "FL-42-b0-20261122.n.0", pins=(("httpd", "0" * 40),))
    known.add(replace(rebuilt, outputs=(OutputFile(rebuilt.outputs[0].path, 3, "b" * 64),)))
    after = decide(node(MODULE), {}, known, KINDS, TOOLS)
    assert isinstance(before, Compose) and isinstance(after, Compose)
    assert before.key != after.key


def branch_build() -> Node:
    """A build of a pin that follows its branch (no ref): the example's openssl pin, unpinned."""
    pinned = node(next(n for n in graph().nodes if n.startswith("build:openssl@")))
    definition = {k: v for k, v in pinned.definition.items() if k != "ref"} | {"branch": "f42"}
    return Node("build:openssl@f42", "build", canonical_json(definition), (), "f" * 64)


def test_a_branch_build_without_a_head_fails() -> None:
    assert decide(branch_build(), {}, Lineage(), KINDS, TOOLS) == Fail(
        "build:openssl@f42", "cannot resolve the head of openssl's branch f42"
    )


def test_a_branch_build_composes_its_head_and_records_it_as_its_pin() -> None:
    known = Lineage(heads={("openssl", "f42"): HEAD})
    decision = decide(branch_build(), {}, known, KINDS, TOOLS)
    assert isinstance(decision, Compose)
    assert decision.node.definition["ref"] == HEAD
    assert decision.pins == (("openssl", HEAD),)
    known.heads[("openssl", "f42")] = "d" * 40
    moved = decide(branch_build(), {}, known, KINDS, TOOLS)
    assert isinstance(moved, Compose) and moved.key != decision.key  # the branch moved: build again


def test_deciding_imports_neither_git_nor_the_store_nor_the_file_system() -> None:
    found = imports(Path(deciding.__file__))
    assert [m for m in found if m.split(".")[:2] in (["pipeline", "git"], ["pipeline", "store"])] == []
    assert [m for m in found if m.split(".")[0] in ("os", "shutil", "pathlib", "subprocess", "pygit2")] == []


def test_an_image_is_keyed_by_what_it_consumes_of_its_repo_not_by_the_repo_compose() -> None:
    host = node("ostree:AtomicHost/host")
    kinds, tools = {"ostree"}, {"ostree": {"ostree": "2022.7", "format": "1"}}
    known = Lineage()
    known.add(record("repo:AtomicHost", "FL-42-AtomicHost-20261121.n.0"))
    packages = {"repo:AtomicHost": "f" * 64}  # the digest of the resolved package set
    first = decide(host, {}, known, kinds, tools, consumed=packages)
    assert isinstance(first, Compose)
    known.by_key[(host.id, first.key)] = record(host.id, "FL-42-AtomicHost-host-20261121.n.0")
    # A new repo compose (other bytes) with the same package set for the image: skipped.
    known.add(replace(record("repo:AtomicHost", "FL-42-AtomicHost-20261122.n.0"), outputs=()))
    assert decide(host, {}, known, kinds, tools, consumed=packages) == Skip(
        host.id, "FL-42-AtomicHost-host-20261121.n.0", promote=True
    )
    # Without the resolved set the repo's whole content decides: a new repo compose recomposes.
    assert isinstance(decide(host, {}, known, kinds, tools), Compose)
    assert isinstance(decide(host, {}, known, kinds, tools, consumed={"repo:AtomicHost": "0" * 64}), Compose)
