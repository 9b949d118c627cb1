"""The artifact graph of the example distribution: nodes, edges, digests. No I/O, no temp dirs."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.core import definitions, graph
from pipeline.core.canonical import digest
from pipeline.core.model import Definitions
from tests.conftest import example_tree, sources


def example() -> Definitions:
    return definitions.load(sources(example_tree()))


def test_node_ids_follow_the_glossary() -> None:
    g = graph.build(example())
    assert {"build:openssl@79554528", "module:base-runtime:f42", "repo:Server"} <= set(g.nodes)
    assert {"ostree:AtomicHost/host", "container:Cloud/base", "iso:Server/dvd"} <= set(g.nodes)
    assert {n.kind for n in g.nodes.values()} == {
        "build",
        "binary",
        "module",
        "repo",
        "ostree",
        "container",
        "iso",
    }
    assert "binary:python3-idna-3.6-1.fc42" in g.nodes["module:python3:3.12"].inputs


def test_edges_from_pins_selections_and_layering() -> None:
    g = graph.build(example())
    assert "build:openssl@79554528" in g.nodes["module:base-runtime:f42"].inputs
    # Cloud ships base-runtime and httpd only; AtomicHost gets python3 through installer's requires.
    assert g.nodes["repo:Cloud"].inputs == ("module:base-runtime:f42", "module:httpd:2.4")
    assert "module:python3:3.12" in g.nodes["repo:AtomicHost"].inputs
    assert g.nodes["container:Cloud/httpd"].inputs == ("container:Cloud/base", "repo:Cloud")
    assert g.nodes["iso:AtomicHost/installer"].inputs == ("ostree:AtomicHost/host", "repo:AtomicHost")


def test_module_dependencies_are_not_edges() -> None:
    g = graph.build(example())
    assert not any(i.startswith("module:") for i in g.nodes["module:python3:3.12"].inputs)


def test_digests_are_the_same_on_every_machine() -> None:
    # Literal values: a change here means every compose everywhere would be redone.
    g = graph.build(example())
    assert g.nodes["build:openssl@79554528"].digest == (
        "ba98a4ad4edd08cf7822723b02ca9d683313cf12148cf241fea0408111d49c76"
    )
    assert g.nodes["container:Cloud/httpd"].digest == (
        "812a13d436bd917703f7cc2cb726e0448bd47f0dbbaead3d314fab561c42a501"
    )


def test_digest_covers_definition_and_inputs() -> None:
    g = graph.build(example())
    node = g.nodes["repo:Cloud"]
    expected = digest(
        {
            "node": node.id,
            "definition": node.definition,
            "inputs": {i: g.nodes[i].digest for i in node.inputs},
        }
    )
    assert node.digest == expected


def test_digests_do_not_depend_on_file_order() -> None:
    defs = example()
    shuffled = dataclasses.replace(
        defs,
        modules=dict(reversed(list(defs.modules.items()))),
        variants=dict(reversed(list(defs.variants.items()))),
    )
    assert {k: n.digest for k, n in graph.build(defs).nodes.items()} == {
        k: n.digest for k, n in graph.build(shuffled).nodes.items()
    }


def test_tiers_put_every_node_after_its_inputs() -> None:
    g = graph.build(example())
    tiers = g.tiers(g.nodes)
    position = {node: n for n, tier in enumerate(tiers) for node in tier}
    assert sorted(position) == sorted(g.nodes)
    for node in g.nodes.values():
        assert all(position[i] < position[node.id] for i in node.inputs)
    assert tiers[0] == sorted(i for i in g.nodes if i.startswith(("build:", "binary:")))


def test_downstream_and_upstream() -> None:
    g = graph.build(example())
    down = g.downstream(["module:gtk:3"])
    assert down == {"module:gtk:3", "repo:Workstation"}
    up = g.upstream(["container:Cloud/base"])
    assert "build:bash@78022c3d" in up
    assert "module:python3:3.12" not in up


def test_node_ids_are_taken_apart_by_kind_and_name() -> None:
    from pipeline.core.errors import InvalidInput
    from pipeline.core.kinds import BUILD, CONTAINER, MODULE, OSTREE, REPO, Kind, NodeId, kind_of

    assert NodeId.parse("module:base-runtime:f42") == NodeId(MODULE, "base-runtime:f42")
    assert str(NodeId.parse("ostree:AtomicHost/host")) == "ostree:AtomicHost/host"
    assert [NodeId.parse(n).variant for n in ("repo:Server", "ostree:AtomicHost/host", "build:bash@1a2b3c4d")] == [
        "Server", "AtomicHost", None,
    ]  # fmt: skip
    assert OSTREE.of("ostree:AtomicHost/host") and not OSTREE.of("ostree-x:y") and not REPO.of("repository:x")
    assert (
        MODULE.name_of("module:gtk:3") == "gtk:3" and CONTAINER.node("Cloud/base") == "container:Cloud/base"
    )
    assert kind_of("build:bash@1a2b3c4d") == BUILD and Kind("tarball").of("tarball:Minimal/archive")
    for bad in ("repo", "repo:", ":Server"):
        with pytest.raises(InvalidInput):
            NodeId.parse(bad)
    with pytest.raises(InvalidInput):
        MODULE.name_of("repo:Server")
