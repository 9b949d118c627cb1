"""Gating: the pure decision, policy and waiver files, and the executor promoting only what
passes (with small composers and checks of its own, on a real Git repository)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
import pytest

from pipeline import cli
from pipeline.compose.base import Composer, Job
from pipeline.compose.sources import SourceReader
from pipeline.core import definitions, gate, graph, policies
from pipeline.core.errors import InvalidDefinitions
from pipeline.core.gate import CheckResult
from pipeline.core.records import OutputFile
from pipeline.core.states import CheckState, RunStatus, Verdict
from pipeline.engine import executor
from pipeline.records import checks as testnotes
from pipeline.records.lineage import Lineage
from tests.conftest import commit_tree, example_tree, example_upstream, sources
from tests.test_executor import Writer

REPO_RULE = gate.Rule(("repo",), ("repoclosure", "install"), ("Server", "Workstation"), source="p.yaml:3")
MODULE_RULE = gate.Rule(("module",), ("repoclosure",), source="p.yaml:7")


def req(check: str, node: str = "repo:Server") -> gate.Requirement:
    return gate.Requirement(node, "FL-42-Server-20261121.n.0", check, "p.yaml:3")


# -- the pure core ---------------------------------------------------------------------------


def test_rules_match_kinds_variants_and_node_patterns() -> None:
    rules = [REPO_RULE, MODULE_RULE, gate.Rule(("module",), ("abi",), nodes=("module:gtk:*",))]
    assert [r.check for r in gate.requirements(rules, "repo:Server", "c")] == ["install", "repoclosure"]
    assert gate.requirements(rules, "repo:Cloud", "c") == ()
    assert [r.check for r in gate.requirements(rules, "module:gtk:3", "c")] == ["abi", "repoclosure"]
    assert [r.check for r in gate.requirements(rules, "module:httpd:2.4", "c")] == ["repoclosure"]
    assert gate.requirements(rules, "build:openssl@79554528", "c") == ()


def test_variant_of_nodes() -> None:
    assert gate.variant_of("repo:Server") == "Server"
    assert gate.variant_of("ostree:AtomicHost/host") == "AtomicHost"
    assert gate.variant_of("module:gtk:3") is None
    assert gate.variant_of("build:openssl@79554528") is None


@pytest.mark.parametrize(
    ("states", "verdict"),
    [
        ({"repoclosure": CheckState.PASSED, "install": CheckState.PASSED}, Verdict.PASS),
        ({"repoclosure": CheckState.PASSED, "install": CheckState.FAILED}, Verdict.FAIL),
        ({"repoclosure": CheckState.PASSED, "install": CheckState.ERROR}, Verdict.FAIL),
        ({"repoclosure": CheckState.PASSED}, Verdict.PENDING),  # not run yet: pending, never failed
        ({"repoclosure": CheckState.PASSED, "install": CheckState.RUNNING}, Verdict.PENDING),
        ({"repoclosure": CheckState.FAILED}, Verdict.FAIL),  # a failure wins over a pending check
        ({}, Verdict.PENDING),
    ],
)
def test_decide(states: dict[str, CheckState], verdict: str) -> None:
    results = [CheckResult(check, state, f"{check} said {state}") for check, state in states.items()]
    decision = gate.decide([req("install"), req("repoclosure")], results, [])
    assert decision.verdict == verdict
    assert len(decision.outcomes) == 2
    pending = [o for o in decision.outcomes if o.requirement.check not in states]
    assert all(o.state == CheckState.PENDING and "not run yet" in o.reason for o in pending)


def test_no_requirement_passes_and_unrequired_failures_do_not_count() -> None:
    decision = gate.decide([], [CheckResult("install", CheckState.FAILED, "boom")], [])
    assert decision.passed and decision.outcomes == ()


def test_the_last_result_of_a_check_counts() -> None:
    results = [CheckResult("install", CheckState.FAILED, "first"), CheckResult("install", CheckState.PASSED)]
    assert gate.decide([req("install")], results, []).passed


def test_waivers_forgive_failed_and_missing_checks_of_what_they_match() -> None:
    waiver = gate.Waiver("repo:Ser*", "install", "known mesa bug", "jane@example.invalid", source="w.yaml")
    failed = [
        CheckResult("install", CheckState.FAILED, "boom"),
        CheckResult("repoclosure", CheckState.PASSED),
    ]
    decision = gate.decide([req("install"), req("repoclosure")], failed, [waiver])
    assert decision.passed
    install = next(o for o in decision.outcomes if o.requirement.check == "install")
    assert (
        install.state == CheckState.WAIVED
        and "jane@example.invalid" in install.reason
        and "w.yaml" in install.reason
    )
    assert gate.decide([req("install")], [], [waiver]).passed
    other = gate.Waiver("repo:Cloud", "install", "r", "w")
    assert not gate.decide([req("install")], failed, [other]).passed
    only_old = gate.Waiver("repo:Server", "install", "r", "w", compose="FL-42-Server-2025*")
    assert not gate.decide([req("install")], failed, [only_old]).passed


def test_summary_names_every_unsatisfied_requirement() -> None:
    decision = gate.decide(
        [req("install"), req("repoclosure")], [CheckResult("repoclosure", CheckState.FAILED, "x")], []
    )
    assert (
        decision.summary()
        == "gate fail: install PENDING: not run yet (required by p.yaml:3); repoclosure FAILED: x"
    )


def test_a_check_that_did_not_apply_satisfies_a_rule_unless_it_must_apply() -> None:
    """NOT_APPLICABLE is never PASSED; it satisfies a requirement unless the rule says
    `applicable: required`, and then it fails the gate (no rerun would change it)."""
    results = [
        CheckResult("install", CheckState.NOT_APPLICABLE, "nothing to install"),
        CheckResult("repoclosure", CheckState.PASSED),
    ]
    optional = gate.decide([req("install"), req("repoclosure")], results, [])
    assert optional.passed
    install = optional.outcomes[0]
    assert (install.state, install.satisfied, install.reason) == (
        CheckState.NOT_APPLICABLE, True, "did not apply: nothing to install",
    )  # fmt: skip
    strict = gate.Requirement("repo:Server", "FL-42-Server-20261121.n.0", "install", "p.yaml:9", True)
    required = gate.decide([strict, req("repoclosure")], results, [])
    assert required.verdict == Verdict.FAIL and required.outcomes[0].failing
    assert required.summary() == (
        "gate fail: install NOT_APPLICABLE: did not apply (nothing to install), and p.yaml:9 says "
        "applicable: required"
    )
    waiver = gate.Waiver("repo:Server", "install", "no packages yet", "jane@example.invalid")
    assert gate.decide([strict, req("repoclosure")], results, [waiver]).passed
    # Of two rules requiring one check, the one that says it must apply wins.
    rules = [REPO_RULE, gate.Rule(("repo",), ("install",), source="q.yaml:2", must_apply=True)]
    found = {r.check: r for r in gate.requirements(rules, "repo:Server", "c")}
    assert (found["install"].must_apply, found["install"].rule) == (True, "q.yaml:2")
    assert (found["repoclosure"].must_apply, found["repoclosure"].rule) == (False, "p.yaml:3")


def test_owners_are_module_maintainers() -> None:
    defs = definitions.load(sources(example_tree()))
    assert gate.owners(defs, "module:gtk:3") == ("desktop-sig@example.invalid",)
    named = gate.owners(defs, "repo:Workstation", ["glib2 requires x; from module gtk:3 (maintainers: ...)"])
    assert named == ("desktop-sig@example.invalid",)
    everyone = gate.owners(defs, "repo:Workstation", ["no module named"])
    assert "desktop-sig@example.invalid" in everyone and len(everyone) > 1


# -- policy and waiver files -----------------------------------------------------------------------

POLICY = b"""document: factory-policy
version: 1
rules:
  - kinds: [repo]
    variants: [Server, Workstation]
    require: [repoclosure, install]
  - kinds: [module]
    require: [repoclosure]
"""
WAIVER = b"""document: factory-waiver
version: 1
node: repo:Workstation
check: install
reason: waiting for a fix
who: jane@example.invalid
"""


def test_policy_files_load_with_their_places() -> None:
    policy = policies.parse([("policies/default.yaml", POLICY), ("waivers/ws.yaml", WAIVER)])
    assert policy.rules[0] == gate.Rule(
        ("repo",), ("repoclosure", "install"), ("Server", "Workstation"), (), "policies/default.yaml:4"
    )
    assert policy.rules[1].source == "policies/default.yaml:7"
    assert policy.waivers == (
        gate.Waiver(
            "repo:Workstation", "install", "waiting for a fix", "jane@example.invalid", "*", "waivers/ws.yaml"
        ),
    )


def test_a_rule_says_whether_its_checks_must_apply() -> None:
    text = POLICY.replace(
        b"    require: [repoclosure]\n", b"    require: [repoclosure]\n    applicable: required\n"
    )
    policy = policies.parse([("policies/default.yaml", text)])
    assert [r.must_apply for r in policy.rules] == [False, True]
    optional = POLICY.replace(
        b"    require: [repoclosure, install]\n", b"    require: [install]\n    applicable: optional\n"
    )
    assert [r.must_apply for r in policies.parse([("policies/p.yaml", optional)]).rules] == [False, False]
    with pytest.raises(InvalidDefinitions) as caught:
        policies.parse(
            [
                (
                    "policies/p.yaml",
                    POLICY.replace(
                        b"    require: [repoclosure]\n",
                        b"    require: [repoclosure]\n    applicable: always\n",
                    ),
                )
            ]
        )
    rendered = "\n".join(d.render() for d in caught.value.diagnostics)
    assert "policies/p.yaml:9:" in rendered and "schema-enum" in rendered


def test_the_repository_default_policy_is_valid() -> None:
    root = Path(__file__).resolve().parent.parent
    policy = policies.parse([("policies/default.yaml", (root / "policies/default.yaml").read_bytes())])
    assert {k for r in policy.rules for k in r.kinds} == {"module", "repo", "ostree", "container", "iso"}


@pytest.mark.parametrize(
    ("path", "text", "place", "code"),
    [
        (
            "policies/p.yaml",
            POLICY.replace(b"    require: [repoclosure]\n", b"    requires: [x]\n"),
            ":8:",
            "schema-additional-properties",
        ),
        ("policies/p.yaml", POLICY.replace(b"kinds: [module]", b"kinds: []"), ":7:", "schema-min-items"),
        ("policies/p.yaml", POLICY.replace(b"version: 1", b"version: 2"), ":2:", "schema-const"),
        ("waivers/w.yaml", WAIVER.replace(b"who: jane@example.invalid\n", b""), ":1:", "schema-required"),
        ("waivers/w.yaml", WAIVER + b"until: never\n", ":7:", "schema-additional-properties"),
        ("policies/p.yaml", b"rules: [\n", ":", "yaml"),
    ],
)
def test_bad_policy_files_name_file_line_and_rule(path: str, text: bytes, place: str, code: str) -> None:
    with pytest.raises(InvalidDefinitions) as caught:
        policies.parse([(path, text)])
    rendered = "\n".join(d.render() for d in caught.value.diagnostics)
    assert f"{path}{place}" in rendered
    assert code in rendered


# -- the executor gates what it composes -------------------------------------------------------------


@dataclass
class Verdicts:
    """A check that answers what it is told per node (PASSED otherwise)."""

    name: str
    kinds: frozenset[str]
    states: dict[str, CheckState] = field(default_factory=dict)

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        state = self.states.get(job.node.id, CheckState.PASSED)
        return CheckResult(self.name, state, "" if state == CheckState.PASSED else f"{job.node.id} is broken")


class Crashing:
    name = "crashing"
    kinds = frozenset({"repo"})

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        raise RuntimeError("a bug")


@dataclass
class Gated:
    root: Path
    lineage: Lineage
    composers: dict[str, Writer]
    checks: list[Verdicts]
    branch: str = "master"  # the release's branch the commit composed is on ("": none)

    def run(self, policy: gate.Policy, extra: Sequence[object] = ()) -> executor.RunResult:
        tree = example_tree()
        defs = definitions.load(sources(tree))
        commit = pygit2.Repository(str(self.root)).head.target
        ctx = executor.Context(
            defs, str(commit), 1767225600, self.root, self.root / "out", "test", "20261121", self.branch,
            sources=SourceReader(defs.config, self.root, {}),
        )  # fmt: skip
        plugins: dict[str, Composer] = dict(self.composers)
        g = graph.build(defs)
        return executor.execute(
            g, set(g.nodes) & {n for n in g.nodes if g.nodes[n].kind in plugins}, plugins, self.lineage, ctx,
            checks=[*self.checks, *extra], policy=policy,  # type: ignore[list-item]
        )  # fmt: skip


@pytest.fixture
def gated(tmp_path: Path) -> Gated:
    commit_tree(tmp_path, example_tree(), "definitions\n")
    example_upstream(tmp_path / ".factory" / "upstream")  # python3-idna's source (binary pin)
    closure = Verdicts("repoclosure", frozenset({"module", "repo"}))
    writers = {k: Writer(k) for k in ("binary", "build", "module", "repo")}
    return Gated(tmp_path, Lineage(tmp_path), writers, [closure])


POLICY_VALUE = gate.Policy((REPO_RULE, MODULE_RULE))


def test_a_compose_that_fails_its_gate_is_not_promoted_and_blocks_its_dependants(gated: Gated) -> None:
    first = gated.run(POLICY_VALUE, [Verdicts("install", frozenset({"repo"}))])
    assert first.status == RunStatus.FINISHED
    before = gated.lineage.latest()
    # gtk changes and its repo breaks closure.
    gated.composers["build"].content = {"build:gtk3@b2838247": "broken"}
    gated.composers["build"].tools = lambda: {"writer": "2"}  # type: ignore[method-assign]
    gated.checks[0].states = {"module:gtk:3": CheckState.FAILED}
    result = gated.run(POLICY_VALUE, [Verdicts("install", frozenset({"repo"}))])
    status = {r.node: r for r in result.results}
    assert status["module:gtk:3"].status == "FAILED"
    message = status["module:gtk:3"].message
    assert "gate fail: repoclosure FAILED: module:gtk:3 is broken" in message
    assert "owners: desktop-sig@example.invalid" in message
    assert status["repo:Workstation"].status == "BLOCKED"
    after = gated.lineage.latest()
    assert after["module:gtk:3"] == before["module:gtk:3"]
    assert after["repo:Workstation"] == before["repo:Workstation"]
    failed = gated.lineage.get(status["module:gtk:3"].compose_id)
    assert failed.status == "FAILED" and failed.outputs  # auditable, quarantinable
    notes = testnotes.read(gated.lineage, failed.compose_id)
    assert [(n.check, n.state) for n in notes] == [("repoclosure", CheckState.FAILED)]
    # The fix: the re-run composes gtk again (a failed gate is not skipped by its key).
    gated.checks[0].states = {}
    again = gated.run(POLICY_VALUE, [Verdicts("install", frozenset({"repo"}))])
    assert {r.node: r.status for r in again.results}["module:gtk:3"] == "COMPOSED"
    assert gated.lineage.latest()["module:gtk:3"] != before["module:gtk:3"]


def test_a_required_check_that_never_runs_leaves_the_gate_pending(gated: Gated) -> None:
    result = gated.run(POLICY_VALUE)  # no install check registered
    status = {r.node: r for r in result.results}
    assert status["repo:Server"].status == "PENDING"  # waiting, not failed (tests/test_pending.py)
    assert status["repo:Server"].message.endswith("waits for install (PENDING, required by p.yaml:3)")
    assert status["repo:Cloud"].status == "COMPOSED"  # no rule for Cloud
    assert "repo:Server" not in gated.lineage.latest()


def test_a_waiver_lets_a_failing_compose_pass(gated: Gated) -> None:
    gated.checks[0].states = {"repo:Server": CheckState.FAILED}
    waiver = gate.Waiver("repo:Server", "repoclosure", "known", "jane@example.invalid")
    policy = gate.Policy((REPO_RULE,), (waiver,))
    result = gated.run(policy, [Verdicts("install", frozenset({"repo"}))])
    assert {r.node: r.status for r in result.results}["repo:Server"] == "COMPOSED"


def test_a_check_with_nothing_to_check_is_recorded_not_applicable_and_gated_by_the_rule(gated: Gated) -> None:
    empty = Verdicts("install", frozenset({"repo"}), {"repo:Server": CheckState.NOT_APPLICABLE})
    result = gated.run(POLICY_VALUE, [empty])
    server = {r.node: r for r in result.results}["repo:Server"]
    assert server.status == "COMPOSED"  # the default: a check that did not apply satisfies the rule
    notes = {n.check: n.state for n in testnotes.read(gated.lineage, server.compose_id)}
    assert notes["install"] == CheckState.NOT_APPLICABLE  # recorded as what happened, never PASSED
    strict = gate.Rule(("repo",), ("install",), ("Server",), source="p.yaml:9", must_apply=True)
    gated.composers["repo"].tools = lambda: {"writer": "2"}  # type: ignore[method-assign]
    again = {r.node: r for r in gated.run(gate.Policy((strict, MODULE_RULE)), [empty]).results}["repo:Server"]
    assert again.status == "FAILED"
    assert "install NOT_APPLICABLE: did not apply (repo:Server is broken), and p.yaml:9 says" in again.message


def test_a_crashing_check_is_an_error_result_not_a_crash(gated: Gated) -> None:
    policy = gate.Policy((gate.Rule(("repo",), ("crashing",)),))
    result = gated.run(policy, [Crashing()])
    server = {r.node: r for r in result.results}["repo:Server"]
    assert (
        server.status == "FAILED"
        and "crashing ERROR: the check crashed: RuntimeError: a bug" in server.message
    )


def test_results_are_canonical_notes_git_reads(gated: Gated) -> None:
    gated.run(gate.Policy())
    cid = gated.lineage.latest()["module:gtk:3"]
    tag = str(pygit2.Repository(str(gated.root)).references[f"refs/tags/compose/{cid}"].target)
    shown = subprocess.run(
        ["git", "-C", str(gated.root), "notes", "--ref=tests", "show", tag],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    note = json.loads(shown)
    assert note["compose_id"] == cid and note["results"][0]["check"] == "repoclosure"
    assert shown == json.dumps(note, sort_keys=True, separators=(",", ":")) + "\n"
    # A check run again replaces its result; the others stay.
    later = testnotes.TestResult(
        "install", CheckState.FAILED, "x", "2026-11-21T10:00:00Z", "2026-11-21T10:00:01Z"
    )
    testnotes.record(gated.lineage, {cid: [later]})
    assert [(r.check, r.state) for r in testnotes.read(gated.lineage, cid)] == [
        ("install", CheckState.FAILED),
        ("repoclosure", CheckState.PASSED),
    ]


# -- factory gate ----------------------------------------------------------------------------------------


def test_factory_gate_answers_pending_for_a_compose_with_no_results(
    gated: Gated, capsys: pytest.CaptureFixture[str]
) -> None:
    gated.checks.clear()
    gated.run(gate.Policy())  # composed without checks: no results at all
    cid = gated.lineage.latest()["repo:Server"]
    tree = {**example_tree(), "policies/default.yaml": POLICY}
    commit_tree(gated.root, tree, "Gate repos\n")
    assert cli.main(["gate", cid, "--repo", str(gated.root), "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["verdict"] == "pending"
    assert {(r["check"], r["state"]) for r in answer["requirements"]} == {
        ("install", CheckState.PENDING),
        ("repoclosure", CheckState.PENDING),
    }
    assert all(r["rule"] == "policies/default.yaml:4" for r in answer["requirements"])
    # Results arrive: it passes.
    done = [
        testnotes.TestResult(c, CheckState.PASSED, "", "2026-11-21T10:00:00Z", "2026-11-21T10:00:01Z")
        for c in ("install", "repoclosure")
    ]
    testnotes.record(gated.lineage, {cid: done})
    assert cli.main(["gate", cid, "--repo", str(gated.root)]) == 0
    assert capsys.readouterr().out.startswith(f"{cid} (repo:Server): pass")


def test_factory_gate_refuses_a_bad_policy_with_file_and_line(
    gated: Gated, capsys: pytest.CaptureFixture[str]
) -> None:
    gated.run(gate.Policy())
    cid = gated.lineage.latest()["repo:Server"]
    bad = POLICY.replace(b"    require: [repoclosure]\n", b"    require: [repoclosure]\n    when: always\n")
    commit_tree(gated.root, {**example_tree(), "policies/default.yaml": bad}, "Bad policy\n")
    assert cli.main(["gate", cid, "--repo", str(gated.root)]) == 2
    err = capsys.readouterr().err
    assert "policies/default.yaml:9:5: error[schema-additional-properties]" in err
