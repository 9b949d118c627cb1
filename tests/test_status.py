"""The status of every node, computed by a pure function from facts: no temp dirs, no Git.

The facts are the example distribution's definitions and graph and lineage records made here
the way the executor makes them: every node composed once, then one change or event at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import pytest

from pipeline.core import definitions, gate
from pipeline.core.facts import (
    BranchHead,
    BumpRequest,
    CheckRun,
    ComposeBrief,
    Facts,
    MirrorFact,
    ReleaseFact,
)
from pipeline.core.graph import Graph
from pipeline.core.graph import build as build_graph
from pipeline.core.model import Definitions
from pipeline.core.overview import component, detail, diff, eol_calendar, resolve, shown, summary
from pipeline.core.records import InputRef, OutputFile, Record, outputs_digest
from pipeline.core.states import CheckState, ComposeStatus, GateState, MirrorState, NodeState, ReleaseStatus
from pipeline.core.status import Cause, Status, compute
from tests.conftest import example_tree, sources

COMMIT = "a" * 40
OPENSSL = "795545287474bedd5e207f70c50a64a10fc7632e"
FIXED = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"
POLICY = gate.Policy(
    rules=(
        gate.Rule(("module",), ("repoclosure",), source="policies/default.yaml:6"),
        gate.Rule(("repo",), ("repoclosure", "install"), source="policies/default.yaml:9"),
    ),
    waivers=(gate.Waiver("repo:Cloud", "install", "no default profile", "qa"),),
)


def broken_gtk() -> dict[str, bytes]:
    tree = example_tree()
    path = "modules/gtk/3.yaml"
    text = tree[path].decode()
    pin = "    glib2:\n      ref: 8a994f55e3f8a120fe79fed88767e3a89d30c829\n      branch: f42\n"
    tree[path] = text.replace(pin, "").replace("[glib2, gtk3]", "[gtk3]").encode()
    return tree


def graph_of(tree: Mapping[str, bytes]) -> tuple[Definitions, Graph]:
    defs = definitions.load(sources(tree))
    return defs, build_graph(defs)


DEFS, GRAPH = graph_of(example_tree())


class Lineage:
    """Records made as the executor makes them: inputs are the latest good of each input."""

    def __init__(self, graph: Graph = GRAPH) -> None:
        self.records: list[Record] = []
        self.latest: dict[str, str] = {}
        self.serial = 0

    def compose(
        self, graph: Graph, nodes: Sequence[str] | None = None, *, fail: Sequence[str] = (), content: str = ""
    ) -> dict[str, Record]:
        made = {}
        for node_id in sorted(nodes if nodes is not None else graph.nodes, key=graph.order):
            node = graph.nodes[node_id]
            self.serial += 1
            name = node_id.split(":", 1)[1].replace(":", "-").replace("@", "-").replace("/", "-")
            cid = f"FL-42-{name}-20261121.n.{self.serial}"
            inputs = tuple(
                InputRef(i, self.latest[i], self.by_id(self.latest[i]).outputs_digest) for i in node.inputs
            )
            pins: tuple[tuple[str, str], ...] = ()
            if node.kind == "build":
                pins = ((node.definition["component"], node.definition["ref"]),)
            elif node.kind == "module":
                pins = tuple(sorted(p for i in inputs for p in self.by_id(i.compose_id).pins))
            outputs = (OutputFile(f"composes/{cid}/artifact", 10, _sha(node_id + content)),)
            status = ComposeStatus.FAILED if node_id in fail else ComposeStatus.FINISHED
            stamp = f"2026-11-21T10:{self.serial // 60:02d}:{self.serial % 60:02d}Z"
            record = Record(
                cid, node_id, node.digest, "key-" + cid, COMMIT, inputs, pins, outputs,
                outputs_digest(outputs), (("tool", "1"),), stamp, stamp, status,
                "gate fail: repoclosure FAILED: gtk3 requires glib2" if node_id in fail else "",
            )  # fmt: skip
            self.records.append(record)
            if status == ComposeStatus.FINISHED:
                self.latest[node_id] = cid
            made[node_id] = record
        return made

    def by_id(self, cid: str) -> Record:
        return next(r for r in self.records if r.compose_id == cid)


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def facts(
    lineage: Lineage,
    *,
    defs: Definitions = DEFS,
    graph: Graph = GRAPH,
    checks: Mapping[str, Sequence[CheckRun]] | None = None,
    **changes: object,
) -> Facts:
    made = Facts(
        commit=COMMIT,
        commit_time="2026-11-21T09:00:00Z",
        defs=defs,
        graph=graph,
        records=tuple(lineage.records),
        latest=dict(lineage.latest),
        reserved={},
        policy=POLICY,
        checks=checks if checks is not None else {r.compose_id: _passing(r) for r in lineage.records},
        releases={},
        branches={},
        bumps=(),
        today=dt.date(2026, 11, 21),
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def _passing(record: Record) -> list[CheckRun]:
    checks = {"module": ["repoclosure"], "repo": ["repoclosure", "install"]}.get(
        record.node.split(":")[0], []
    )
    return [CheckRun(c, CheckState.PASSED, "", record.started, record.finished) for c in checks]


@pytest.fixture
def composed() -> Lineage:
    lineage = Lineage()
    lineage.compose(GRAPH)
    return lineage


def states(status: Status) -> dict[str, NodeState]:
    return {v.id: v.state for v in status.views()}


def test_everything_composed_from_head_is_current_and_passes_its_gate(composed: Lineage) -> None:
    cloud = composed.latest["repo:Cloud"]
    checks = {r.compose_id: _passing(r) for r in composed.records}
    checks[cloud] = [checks[cloud][0], CheckRun("install", CheckState.FAILED, "no default profile", "t", "t")]
    status = compute(facts(composed, checks=checks))
    assert set(states(status).values()) == {NodeState.CURRENT}
    assert list(status.order) == sorted(GRAPH.nodes, key=GRAPH.order)
    base = status.nodes["module:base-runtime:f42"]
    assert base.latest_good is not None and base.latest_good.compose_id == composed.latest[base.id]
    assert base.gate.state == GateState.PASSED and base.reasons == ()
    assert base.owners == ("base-runtime-sig@example.invalid",)
    assert base.eol == dt.date(2027, 12, 31) and not base.eol_passed
    assert status.nodes["build:openssl@79554528"].owners == ("base-runtime-sig@example.invalid",)
    assert status.nodes["repo:Cloud"].gate.state == GateState.WAIVED  # its failed install is waived
    assert status.nodes["repo:Cloud"].gate.waived == ("install",)
    assert status.nodes["build:openssl@79554528"].gate.state == GateState.NOT_REQUIRED
    assert summary(status).stale is None


def test_a_failed_node_names_its_owners_and_blocks_only_what_is_made_from_it(composed: Lineage) -> None:
    defs, graph = graph_of(broken_gtk())
    composed.compose(graph, ["module:gtk:3"], fail=["module:gtk:3"])
    failing = composed.records[-1]
    checks = {r.compose_id: _passing(r) for r in composed.records}
    checks[failing.compose_id] = [
        CheckRun("repoclosure", CheckState.FAILED, "gtk3 requires glib2; module gtk:3", "t", "t")
    ]
    status = compute(facts(composed, defs=defs, graph=graph, checks=checks))
    gtk = status.nodes["module:gtk:3"]
    assert gtk.state == NodeState.FAILED
    assert gtk.owners == ("desktop-sig@example.invalid",)
    assert gtk.gate.state == GateState.FAILED and gtk.gate.failed == ("repoclosure",)
    assert gtk.last is not None and gtk.last.compose_id == failing.compose_id
    workstation = status.nodes["repo:Workstation"]
    assert workstation.state == NodeState.BLOCKED
    assert workstation.blocked_by == ("module:gtk:3",)
    assert workstation.reasons[0].cause == Cause.BLOCKED
    assert "blocked by module:gtk:3, which failed" in workstation.reasons[0].text
    assert set(gtk.blocks) == {"repo:Workstation"}
    # Server does not ship gtk: untouched.
    assert status.nodes["repo:Server"].state == NodeState.CURRENT
    first = summary(status)
    assert [v.id for v in first.failures] == ["module:gtk:3"]
    assert dict(first.counts)[NodeState.BLOCKED] == 1


def test_the_nodes_a_query_shows_say_the_same_from_the_briefs_of_the_others(composed: Lineage) -> None:
    """`factory status` reads whole only the records of the nodes it shows (and their inputs and
    what is made from them); the other composes are briefs. Their views are the whole status's."""
    defs, graph = graph_of(broken_gtk())
    composed.compose(graph, ["module:gtk:3"], fail=["module:gtk:3"])
    whole = facts(composed, defs=defs, graph=graph)
    everything = compute(whole)
    for text in ("gtk", "repo:Workstation", "openssl", "module:base-runtime:f42"):
        query = resolve(whole, text)
        assert query is not None
        nodes = shown(whole, query)
        assert resolve(dataclasses.replace(whole, records=(), briefs=briefs(composed.records)), text) == query
        partial = dataclasses.replace(
            whole,
            records=tuple(r for r in composed.records if r.node in nodes),
            briefs=briefs(r for r in composed.records if r.node not in nodes),
        )
        status = compute(partial, nodes)
        assert set(status.nodes) == nodes
        for n in nodes:
            assert status.nodes[n] == everything.nodes[n], n
    assert compute(partial, nodes).nodes["repo:Workstation"].blocked_by == ("module:gtk:3",)
    with pytest.raises(ValueError, match="not read whole"):
        compute(dataclasses.replace(whole, records=(), briefs=briefs(composed.records)), {"module:gtk:3"})


def briefs(records: Iterable[Record]) -> tuple[ComposeBrief, ...]:
    return tuple(
        ComposeBrief(
            r.compose_id,
            r.node,
            r.status,
            r.input_digest,
            r.finished,
            r.pins if r.node.startswith("build:") else (),
        )
        for r in sorted(records, key=lambda r: (r.finished, r.compose_id))
    )


def test_the_most_blocking_failure_comes_first(composed: Lineage) -> None:
    changed = example_tree()
    for path in ("modules/gtk/3.yaml", "modules/base-runtime/f42.yaml"):
        changed[path] = changed[path].replace(b"summary: ", b"summary: Changed ", 1)
    defs, graph = graph_of(changed)
    composed.compose(
        graph, ["module:gtk:3", "module:base-runtime:f42"], fail=["module:gtk:3", "module:base-runtime:f42"]
    )
    first = summary(compute(facts(composed, defs=defs, graph=graph)))
    assert [v.id for v in first.failures] == ["module:base-runtime:f42", "module:gtk:3"]
    assert len(first.failures[0].blocks) > len(first.failures[1].blocks) >= 1


def test_a_merged_change_not_composed_yet_names_what_changed(composed: Lineage) -> None:
    defs, graph = graph_of(broken_gtk())
    status = compute(facts(composed, defs=defs, graph=graph))
    gtk = status.nodes["module:gtk:3"]
    assert gtk.state == NodeState.OUT_OF_DATE and not gtk.current
    assert gtk.reasons[0].cause == Cause.CHANGED
    assert "its definition changed" in gtk.reasons[0].text
    workstation = status.nodes["repo:Workstation"]
    assert workstation.state == NodeState.OUT_OF_DATE
    assert workstation.reasons[0].nodes == ("module:gtk:3",)
    stale = summary(status).stale
    assert stale is None  # the newest compose is of HEAD's commit
    later = compute(facts(composed, defs=defs, graph=graph, commit="b" * 40))
    stale = summary(later).stale
    assert stale is not None and stale.newest_commit == COMMIT and stale.changed > 0


def test_a_new_pin_is_never_composed_and_its_module_waits_for_it(composed: Lineage) -> None:
    tree = example_tree()
    tree["modules/base-runtime/f42.yaml"] = tree["modules/base-runtime/f42.yaml"].replace(
        OPENSSL.encode(), FIXED.encode()
    )
    defs, graph = graph_of(tree)
    status = compute(facts(composed, defs=defs, graph=graph))
    new = status.nodes["build:openssl@9d0324eb"]
    assert new.state == NodeState.NOT_COMPOSED and new.reasons[0].cause == Cause.NEVER_COMPOSED
    base = status.nodes["module:base-runtime:f42"]
    assert base.state == NodeState.OUT_OF_DATE
    assert base.reasons[0].nodes == ("build:openssl@9d0324eb",)
    old = status.nodes["build:openssl@79554528"]
    assert old.state == NodeState.REMOVED and old.latest_good is not None
    assert status.order[-1] == "build:openssl@79554528"  # removed nodes come last


def test_a_moved_branch_and_an_open_bump_make_everything_made_from_the_pin_out_of_date(
    composed: Lineage,
) -> None:
    head = BranchHead("openssl", "f42", FIXED, "2026-11-21T08:00:00Z")
    bump = BumpRequest("1", "Bump openssl (f42)", "openssl", "f42", FIXED, ("security",))
    status = compute(facts(composed, branches={("openssl", "f42"): head}, bumps=(bump,)))
    build = status.nodes["build:openssl@79554528"]
    assert build.state == NodeState.OUT_OF_DATE and build.current
    causes = {r.cause: r.text for r in build.reasons}
    assert causes[Cause.BRANCH_MOVED].startswith("openssl (f42) moved to 9d0324eb")
    assert causes[Cause.BUMP_OPEN] == "open bump merge request !1 (openssl f42 to 9d0324eb)"
    for node in ("module:base-runtime:f42", "repo:Server", "iso:AtomicHost/installer"):
        view = status.nodes[node]
        assert view.state == NodeState.OUT_OF_DATE, node
        assert {r.cause for r in view.reasons} == {Cause.BRANCH_MOVED, Cause.BUMP_OPEN}
    assert status.nodes["module:gtk:3"].state == NodeState.CURRENT
    openssl = component(status, "openssl")
    f42 = next(p for p in openssl.pins if p.branch == "f42")
    assert f42.waiting and f42.built == OPENSSL and f42.head == head and f42.bumps == (bump,)
    assert OPENSSL in [b.commit for b in openssl.built]
    built = next(b for b in openssl.built if b.commit == OPENSSL)
    assert built.current and "module:base-runtime:f42" in {n for n, _ in built.used_by}


def test_a_reserved_compose_is_running_and_what_changes_after_it_waits(composed: Lineage) -> None:
    defs, graph = graph_of(broken_gtk())
    status = compute(
        facts(composed, defs=defs, graph=graph, reserved={"FL-42-gtk-3-20261122.n.0": "module:gtk:3"})
    )
    gtk = status.nodes["module:gtk:3"]
    assert gtk.state == NodeState.RUNNING and gtk.running == ("FL-42-gtk-3-20261122.n.0",)
    reasons = {r.cause: r for r in status.nodes["repo:Workstation"].reasons}
    assert reasons[Cause.INPUT_RUNNING].nodes == ("module:gtk:3",)
    assert [v.id for v in summary(status).running] == ["module:gtk:3"]


def test_gate_pending_lists_the_missing_checks_and_unread_results_are_unknown(composed: Lineage) -> None:
    server = composed.latest["repo:Server"]
    checks = {r.compose_id: _passing(r) for r in composed.records}
    checks[server] = [c for c in checks[server] if c.check != "install"]
    del checks[composed.latest["repo:Cloud"]]
    status = compute(facts(composed, checks=checks))
    assert status.nodes["repo:Server"].gate.state == GateState.PENDING
    assert status.nodes["repo:Server"].gate.missing == ("install",)
    assert status.nodes["repo:Cloud"].gate.state == GateState.UNKNOWN
    assert [v.id for v in summary(status).pending] == ["repo:Server"]


def test_a_release_is_never_on_the_mirrors_without_a_record_of_it(composed: Lineage) -> None:
    server = composed.latest["repo:Server"]
    released = ReleaseFact(
        ReleaseStatus.RELEASED, "/srv/releases/Server/" + server, "2026-11-21T11:00:00Z", "FPR", True
    )
    status = compute(facts(composed, releases={server: [released]}))
    view = status.nodes["repo:Server"]
    assert [r.compose_id for r in view.live] == [server]
    assert view.mirror == MirrorState.NOT_RECORDED
    mirrored = compute(
        facts(
            composed,
            releases={server: [released]},
            mirrors={server: [MirrorFact("dl", "2026-11-21T12:00:00Z")]},
        )
    )
    assert mirrored.nodes["repo:Server"].mirror == MirrorState.PUBLISHED


def test_a_failure_reverted_before_it_composed_again_is_not_failed(composed: Lineage) -> None:
    _, graph = graph_of(broken_gtk())
    composed.compose(graph, ["module:gtk:3"], fail=["module:gtk:3"])
    assert compute(facts(composed)).nodes["module:gtk:3"].state == NodeState.CURRENT


def test_the_history_of_a_node_has_lineage_both_ways_and_the_diff_to_the_compose_before(
    composed: Lineage,
) -> None:
    first_base = composed.latest["module:base-runtime:f42"]
    tree = example_tree()
    tree["modules/base-runtime/f42.yaml"] = tree["modules/base-runtime/f42.yaml"].replace(
        OPENSSL.encode(), FIXED.encode()
    )
    defs, graph = graph_of(tree)
    composed.compose(graph, sorted(graph.downstream(["build:openssl@9d0324eb"]), key=graph.order))
    status = compute(facts(composed, defs=defs, graph=graph))
    page = detail(status, "module:base-runtime:f42")
    assert [c.record.compose_id for c in page.history][1] == first_base
    newest = page.history[0]
    assert newest.latest_good and newest.diff is not None
    assert newest.diff.previous == first_base and newest.diff.definition_changed
    assert newest.diff.pins == (("openssl", OPENSSL, FIXED),)
    assert [c.node for c in newest.diff.inputs] == ["build:openssl@79554528", "build:openssl@9d0324eb"]
    assert ("build:openssl@9d0324eb", composed.latest["build:openssl@9d0324eb"]) in newest.made_from
    assert {n for n, _ in newest.used_by} >= {"repo:Server", "repo:AtomicHost"}
    assert page.history[1].used_by and not page.history[1].latest_good
    assert {v.id for v in page.inputs} >= {"build:openssl@9d0324eb"}
    assert diff(newest.record, newest.record).inputs == ()


def test_the_eol_calendar_orders_modules_and_variants_by_date() -> None:
    status = compute(facts(Lineage(), today=dt.date(2027, 6, 1)))
    calendar = eol_calendar(status)
    assert [(e.kind, e.name) for e in calendar[:3]] == [
        ("variant", "Workstation"),
        ("module", "gnome:47"),
        ("module", "gtk:3"),
    ]
    assert calendar[0].passed and calendar[0].days == -1
    assert status.nodes["repo:Workstation"].eol_passed
    assert status.nodes["module:gtk:3"].state == NodeState.NOT_COMPOSED


def test_the_three_questions_about_a_module_are_answered_from_the_records(composed: Lineage) -> None:
    from pipeline.core.overview import answers

    server = composed.latest["repo:Server"]
    released = ReleaseFact(ReleaseStatus.RELEASED, "/srv/Server/" + server, "2026-11-21T11:00:00Z", "", True)
    head = BranchHead("openssl", "f42", FIXED, "2026-11-21T08:00:00Z")
    status = compute(
        facts(
            composed,
            releases={server: [released]},
            branches={("openssl", "f42"): head},
            reserved={"FL-42-openssl-79554528-20261122.n.0": "build:openssl@79554528"},
        )
    )
    said = answers(status, "module:base-runtime:f42")
    assert said.underway.startswith("yes: FL-42-openssl-79554528-20261122.n.0 reserved, not finished")
    base = composed.latest["module:base-runtime:f42"]
    assert said.complete.startswith(f"yes: latest good {base} finished")
    assert said.complete.endswith("current with HEAD")
    assert f"repo:Server {server} in /srv/Server/{server} (with its latest good compose" in said.mirrors
    assert "publication to mirrors not recorded" in said.mirrors and "published to" not in said.mirrors
    quiet = answers(compute(facts(composed)), "module:gtk:3")
    assert quiet.underway == "no: nothing is composing and nothing newer waits"
    assert quiet.mirrors == "not released: nothing made from it has a live release"
