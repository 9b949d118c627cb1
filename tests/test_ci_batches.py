"""Batches and parts (pipeline.core.batches): small graphs with exact expectations."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest

from pipeline.core.batches import Batch, Limits, Part, batches, partition
from pipeline.core.definitions import load
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.graph import Graph, Node, build
from pipeline.core.plan import plan
from pipeline.formats import gitlab_ci as ci
from tests.conftest import example_tree, sources
from tests.gitlab_ci_tools import requirements_missed

NOTHING = Graph({}, {})


def graph(edges: Mapping[str, Sequence[str]], requires: Mapping[str, Sequence[str]] | None = None) -> Graph:
    """A graph of the given nodes (kind from the id) and their inputs; `requires`: the module
    streams (`name:stream`) a module node requires."""

    def definition(node_id: str) -> str:
        wanted = (requires or {}).get(node_id, ())
        return json.dumps({"requires": dict(nsid.split(":") for nsid in wanted)})

    nodes = {
        node_id: Node(
            node_id, node_id.split(":")[0], definition(node_id), tuple(sorted(inputs)), f"digest of {node_id}"
        )
        for node_id, inputs in edges.items()
    }
    return Graph(nodes, {n: node.digest for n, node in nodes.items()})


def graph_of(tree: dict[str, bytes]) -> Graph:
    return build(load(sources(tree)))


def module(name: str, builds: int, *, first: int = 0) -> dict[str, list[str]]:
    made = [f"build:{name}-{i:02d}@0000000{i % 10}" for i in range(first, first + builds)]
    return {**{b: [] for b in made}, f"module:{name}:1": made}


def batched(
    edges: Mapping[str, Sequence[str]],
    limits: Limits | None = None,
    requires: Mapping[str, Sequence[str]] | None = None,
) -> list[Batch]:
    g = graph(edges, requires)
    return batches(plan(NOTHING, g), g, limits or Limits())


def one_byte(batch: Batch, needs: Sequence[str]) -> int:
    return 1


def names(parts: Sequence[Part]) -> list[list[str]]:
    return [[b.name for b in p.batches] for p in parts]


def test_a_module_is_one_job_with_its_builds() -> None:
    made = batched({**module("gtk", 3), "repo:Workstation": ["module:gtk:1"]})
    assert [(b.name, b.nodes, b.targets, b.inputs) for b in made] == [
        (
            "compose module:gtk:1",
            ("build:gtk-00@00000000", "build:gtk-01@00000001", "build:gtk-02@00000002", "module:gtk:1"),
            ("module:gtk:1",),
            (),
        ),
        ("compose repo:Workstation", ("repo:Workstation",), ("repo:Workstation",), ("compose module:gtk:1",)),
    ]


def test_a_big_module_is_sharded_and_its_own_job_needs_every_shard() -> None:
    made = batched(module("texlive", 5), Limits(builds_per_job=2))
    assert [(b.name, len(b.nodes), b.inputs) for b in made] == [
        ("compose module:texlive:1 builds 1 of 3", 2, ()),
        ("compose module:texlive:1 builds 2 of 3", 2, ()),
        ("compose module:texlive:1 builds 3 of 3", 1, ()),
        (
            "compose module:texlive:1",
            1,
            (
                "compose module:texlive:1 builds 1 of 3",
                "compose module:texlive:1 builds 2 of 3",
                "compose module:texlive:1 builds 3 of 3",
            ),
        ),
    ]
    assert made[0].targets == made[0].nodes  # a shard names every build it composes


def test_shards_never_outnumber_the_needs_a_job_may_have() -> None:
    made = batched(module("big", 10), Limits(builds_per_job=1, max_needs=4))
    shards = [b for b in made if " builds " in b.name]
    assert [len(b.nodes) for b in shards] == [3, 3, 3, 1]
    assert len(made[-1].inputs) == 4


def test_a_build_shared_by_two_modules_goes_with_the_first_and_the_second_needs_it() -> None:
    shared = "build:openssl@11111111"
    made = batched(
        {
            shared: [],
            "build:curl@22222222": [],
            "module:a:1": [shared],
            "module:b:1": [shared, "build:curl@22222222"],
        }
    )
    assert [(b.name, b.nodes, b.inputs) for b in made] == [
        ("compose module:a:1", (shared, "module:a:1"), ()),
        ("compose module:b:1", ("build:curl@22222222", "module:b:1"), ("compose module:a:1",)),
    ]


def test_a_module_job_comes_after_the_planned_modules_it_requires_even_through_unplanned_ones() -> None:
    edges = {**module("base", 1), **module("gtk", 1), **module("gnome", 1), **module("desktop", 1)}
    requires = {
        "module:gtk:1": ["base:1"],
        "module:gnome:1": ["gtk:1", "base:1"],  # base: gtk's job comes after it already
        "module:desktop:1": ["gnome:1"],
    }
    made = {b.name: b.inputs for b in batched(edges, requires=requires)}
    assert made == {
        "compose module:base:1": (),
        "compose module:gtk:1": ("compose module:base:1",),
        "compose module:gnome:1": ("compose module:gtk:1",),
        "compose module:desktop:1": ("compose module:gnome:1",),
    }
    # gnome unchanged (not planned): desktop still waits for what gnome requires, and no digest moves
    g = graph(edges, requires)
    planned = plan(graph(module("gnome", 1), requires), g)
    assert "module:gnome:1" not in {n.id for n in planned.nodes}
    made = {b.name: b.inputs for b in batches(planned, g, Limits())}
    assert made["compose module:desktop:1"] == ("compose module:gtk:1",)
    assert g.digests == graph(edges).digests


@pytest.mark.parametrize("max_jobs", [500, 8, 6, 5])
def test_every_job_starts_after_the_jobs_of_the_planned_modules_its_modules_require(max_jobs: int) -> None:
    g = graph_of(example_tree())
    full = plan(NOTHING, g)
    files = ci.pipeline_files(full, g, base="none", head="2" * 40, limits=Limits(max_jobs=max_jobs))
    texts = {name: f.text() for name, f in files.items()}
    assert requirements_missed(texts, g, {n.id for n in full.nodes}) == []
    # the race of the first push: GNOME after GTK, the installer after python3
    assert (
        "compose module:gtk:3"
        in {b.name: b for b in batches(full, g, Limits())}["compose module:gnome:47"].inputs
    )


def test_the_example_distribution_is_seventeen_jobs() -> None:
    g = graph_of(example_tree())
    made = batches(plan(NOTHING, g), g, Limits())
    assert len(made) == 17  # 8 modules with their 24 builds, 4 repos, 5 images
    assert sorted(n for b in made for n in b.nodes) == sorted(g.nodes)
    by_name = {b.name: b for b in made}
    assert by_name["compose repo:Cloud"].inputs == (
        "compose module:base-runtime:f42",
        "compose module:httpd:2.4",
    )
    assert by_name["compose container:Cloud/httpd"].inputs == (
        "compose container:Cloud/base",
        "compose repo:Cloud",
    )
    seen: set[str] = set()
    for b in made:  # inputs first
        assert set(b.inputs) <= seen
        seen.add(b.name)


def test_parts_golden_example_at_five_jobs() -> None:
    g = graph_of(example_tree())
    limits = Limits(max_jobs=5)
    parts = partition(batches(plan(NOTHING, g), g, limits), limits, job_bytes=one_byte, budget=10**9)
    assert names(parts) == [
        [
            "compose module:base-runtime:f42",
            "compose module:container-runtime:stable",
            "compose module:gtk:3",
            "compose module:gnome:47",  # after gtk, which it requires
            "compose module:httpd:2.4",
        ],
        [
            "compose module:ostree:2024",
            "compose module:python3:3.12",
            "compose module:installer:f42",
            "compose repo:AtomicHost",
            "compose repo:Cloud",
        ],
        [
            "compose repo:Server",
            "compose repo:Workstation",
            "compose container:Cloud/base",
            "compose iso:Server/dvd",
            "compose ostree:AtomicHost/host",
        ],
        ["compose container:Cloud/httpd", "compose iso:AtomicHost/installer"],
    ]
    assert [(p.after, p.wave) for p in parts] == [((), 0), ((0,), 1), ((1,), 2), ((2,), 3)]
    # The modules of part 2 require base-runtime of part 1, the repos consume modules of earlier
    # parts: they check their inputs; the installer needs python3 in its own part.
    assert parts[1].outside() == {
        "compose module:ostree:2024",
        "compose module:python3:3.12",
        "compose repo:AtomicHost",
        "compose repo:Cloud",
    }


def test_a_job_over_more_than_max_needs_jobs_goes_to_a_later_part_and_needs_none() -> None:
    edges: dict[str, list[str]] = {}
    for i in range(60):
        edges.update(module(f"m{i:02d}", 1))
    edges["repo:Big"] = [f"module:m{i:02d}:1" for i in range(60)]
    edges["repo:Small"] = [f"module:m{i:02d}:1" for i in range(40)]
    limits = Limits()
    parts = partition(batched(edges, limits), limits, job_bytes=one_byte, budget=10**9)
    assert len(parts) == 2
    assert len(parts[0].batches) == 61 and parts[0].batches[-1].name == "compose repo:Small"
    assert names(parts)[1] == ["compose repo:Big"]
    assert parts[1].after == (0,) and parts[1].outside() == {"compose repo:Big"}


def test_independent_jobs_never_wait_for_a_part_they_do_not_need() -> None:
    shared = "build:openssl@11111111"
    edges = {
        shared: [],
        "build:x@22222222": [],
        "build:y@33333333": [],
        "module:a:1": [shared],
        "module:a2:1": ["build:x@22222222"],
        "module:b:1": [shared],  # its build goes with module a: it needs a's job
        "module:c:1": ["build:y@33333333"],
    }
    limits = Limits(max_jobs=2)
    parts = partition(batched(edges, limits), limits, job_bytes=one_byte, budget=10**9)
    # b waits for part 1, which is full; c does not join b's part: it would wait for nothing
    assert names(parts) == [
        ["compose module:a2:1", "compose module:a:1"],  # by node id: "2" sorts before ":"
        ["compose module:b:1"],
        ["compose module:c:1"],
    ]
    assert [p.after for p in parts] == [(), (0,), ()]


def test_the_byte_budget_splits_parts_and_a_job_too_big_for_any_is_an_error() -> None:
    edges: dict[str, list[str]] = {}
    for i in range(6):
        edges.update(module(f"m{i}", 1))
    limits = Limits()
    parts = partition(batched(edges, limits), limits, job_bytes=lambda b, n: 100, budget=250)
    assert [len(p.batches) for p in parts] == [2, 2, 2]
    with pytest.raises(OperationFailed, match="does not fit in an empty pipeline"):
        partition(batched(edges, limits), limits, job_bytes=lambda b, n: 300, budget=250)


def test_after_is_transitively_reduced() -> None:
    edges = {
        **module("a", 1),
        "repo:A": ["module:a:1"],
        "ostree:A/host": ["repo:A"],
        "iso:A/dvd": ["ostree:A/host", "repo:A"],
    }
    limits = Limits(max_jobs=2)
    parts = partition(batched(edges, limits), limits, job_bytes=one_byte, budget=10**9)
    assert names(parts) == [
        ["compose module:a:1", "compose repo:A"],
        ["compose ostree:A/host", "compose iso:A/dvd"],
    ]
    # the ISO needs the ostree commit in its own part and the repo of part 1: after (0,), not more
    assert [p.after for p in parts] == [(), (0,)]


@pytest.mark.parametrize("field", ["max_jobs", "max_needs", "builds_per_job", "max_parsed_bytes"])
def test_limits_refuse_values_no_pipeline_can_keep(field: str) -> None:
    with pytest.raises(InvalidInput, match=field.replace("_", "-")):
        Limits(**{field: 0})
