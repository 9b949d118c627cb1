"""The planner and impact queries on the example distribution. Pure: no I/O."""

from __future__ import annotations

from pipeline.core import bump, definitions, graph, plan
from tests.conftest import example_tree, sources

CVE_FIX = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"


def ids(result: plan.Plan) -> list[list[str]]:
    return [[n.id for n in tier] for tier in result.tiers]


def test_a_tree_against_itself_plans_nothing() -> None:
    g = graph.build(definitions.load(sources(example_tree())))
    result = plan.plan(g, g)
    assert result.tiers == ()
    assert result.unchanged == len(g.nodes)


def test_against_an_empty_base_everything_is_new() -> None:
    g = graph.build(definitions.load(sources(example_tree())))
    result = plan.plan(graph.Graph({}, {}), g)
    assert len(result.nodes) == len(g.nodes)
    assert all(n.reasons == ("new node",) for n in result.nodes)


def test_bumping_a_pin_plans_the_same_as_editing_the_file() -> None:
    defs = definitions.load(sources(example_tree()))
    bumped = bump.bump(defs, "openssl", "f42", CVE_FIX)
    result = plan.plan(graph.build(defs), graph.build(bumped))
    assert ids(result)[0] == ["build:openssl@9d0324eb"]
    assert ids(result)[1] == ["module:base-runtime:f42"]
    assert "pin openssl 79554528 -> 9d0324eb" in result.nodes[1].reasons


def test_bump_leaves_other_branches_alone() -> None:
    defs = definitions.load(sources(example_tree()))
    assert bump.bump(defs, "openssl", "f41", CVE_FIX) == defs


def test_impact_without_a_known_head_lists_the_same_downstream() -> None:
    defs = definitions.load(sources(example_tree()))
    g = graph.build(defs)
    structural = plan.impact(g, "openssl", "f42")
    exact = plan.plan(g, graph.build(bump.bump(defs, "openssl", "f42", CVE_FIX)))
    assert ids(structural)[1:] == ids(exact)[1:]
    assert ids(structural)[0] == ["build:openssl@79554528"]


def test_impact_of_a_branch_nobody_follows_is_empty() -> None:
    g = graph.build(definitions.load(sources(example_tree())))
    assert plan.impact(g, "openssl", "f41").tiers == ()
    assert ids(plan.impact(g, "gtk3"))[-1] == ["repo:Workstation"]


def test_describe_names_pins_and_fields() -> None:
    old = {"summary": "a", "components": {"x": {"ref": "1" * 40}}, "profiles": {"d": {"rpms": ["x"]}}}
    new = {"summary": "b", "components": {"x": {"ref": "2" * 40}, "y": {"ref": "3" * 40}}, "profiles": {}}
    assert list(plan.describe(old, new)) == [
        "pin x 11111111 -> 22222222",
        "component y added",
        "profiles.d removed",
        "summary changed",
    ]
