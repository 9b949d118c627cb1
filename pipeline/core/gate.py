"""Gating: which checks a compose needs, and whether its results satisfy them. Pure, no I/O.

Terminology (Greenwave's words): a *rule* of a policy names the node kinds (and optionally
variants and node patterns) it applies to and the checks it *requires*; a *requirement* is one
required check of one compose; a *waiver* (a file in Git) forgives a required check of the
nodes it names; the *decision* is `pass`, `fail` or `pending`, with the reason for every
requirement. A check not yet run is pending, never failed: only a FAILED or ERROR result, not
waived, fails a gate. A check that found nothing to check (NOT_APPLICABLE: an install check of a
variant whose profiles select no package) satisfies its requirement, unless the rule requiring
it says `applicable: required`: then it fails the gate as a failed check would (a waiver may
forgive it).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.core.kinds import MODULE, Kind, NodeId, kind_of
from pipeline.core.model import Definitions
from pipeline.core.states import CheckState, Verdict

FAILING = frozenset({CheckState.FAILED, CheckState.ERROR, CheckState.NOT_APPLICABLE})  # when unsatisfied


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One check's result on one compose: what a check returns (check, state, message), and what
    is recorded of it (`pipeline.records.checks`: when it ran, where an outside system shows
    it). A check not yet run is PENDING, never FAILED."""

    __test__ = False  # not a pytest class (its old name, TestResult, looked like one)

    check: str  # the check's name, e.g. "repoclosure"
    state: CheckState
    message: str = ""  # what failed, for people; empty when it passed
    started: str = ""  # ISO 8601 UTC; empty: PENDING (or not recorded yet)
    finished: str = ""  # empty: PENDING or RUNNING (or not recorded yet)
    url: str = ""  # where an outside test system shows the run (openQA's job page)
    origin: str = ""  # "": run by factory; "external": recorded by `factory check record`

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "state": self.state,
            "message": self.message,
            "started": self.started,
            "finished": self.finished,
            **({"url": self.url} if self.url else {}),
            **({"origin": self.origin} if self.origin else {}),
        }


CheckResult = CheckRecord  # the name check plugins return it by (kept for plugins outside factory)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a policy: nodes of these kinds (variants, node patterns) require these checks.

    Empty `variants` or `nodes` match every node of the kinds; a rule with variants never
    matches a node that belongs to no variant (a module).
    """

    kinds: tuple[str, ...]
    require: tuple[str, ...]
    variants: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()  # fnmatch patterns of node ids
    source: str = ""  # where it is written: `policies/default.yaml:5`
    must_apply: bool = False  # `applicable: required`: a NOT_APPLICABLE result does not satisfy it


@dataclass(frozen=True, slots=True)
class Waiver:
    """Forgives a failed (or missing) check of the nodes (and composes) its patterns match."""

    node: str  # fnmatch pattern of node ids: `repo:Workstation`, `module:gtk:*`
    check: str
    reason: str
    who: str
    compose: str = "*"  # fnmatch pattern of compose IDs
    source: str = ""

    def covers(self, node: str, compose_id: str, check: str) -> bool:
        return (
            check == self.check
            and fnmatch.fnmatchcase(node, self.node)
            and fnmatch.fnmatchcase(compose_id, self.compose)
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """Every rule and waiver of a definitions revision."""

    rules: tuple[Rule, ...] = ()
    waivers: tuple[Waiver, ...] = ()


@dataclass(frozen=True, slots=True)
class Requirement:
    """One check a compose must pass, and the rule that asks for it."""

    node: str
    compose_id: str
    check: str
    rule: str
    must_apply: bool = False  # a rule requiring it says `applicable: required`


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one requirement stands: the state of its result (PENDING when none) and why."""

    requirement: Requirement
    state: CheckState
    satisfied: bool
    reason: str

    @property
    def failing(self) -> bool:
        """Whether it fails the gate (a result that cannot turn good by waiting), not only holds it."""
        return not self.satisfied and self.state in FAILING


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's answer for one compose: pass, fail or pending, with every outcome."""

    verdict: Verdict
    outcomes: tuple[Outcome, ...]

    @property
    def passed(self) -> bool:
        return self.verdict == Verdict.PASS

    def unsatisfied(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.satisfied]

    def summary(self) -> str:
        """One line for people: `gate fail: repoclosure FAILED: ...; install PENDING: ...`."""
        if self.passed:
            return f"gate pass ({len(self.outcomes)} required checks satisfied)"
        return f"gate {self.verdict}: " + "; ".join(
            f"{o.requirement.check} {o.state}: {o.reason}" for o in self.unsatisfied()
        )


def variant_of(node: str) -> str | None:
    """The variant a node belongs to: `repo:Server` -> Server, `ostree:AtomicHost/host` ->
    AtomicHost; None for builds, binary pins and modules."""
    kind, _, name = node.partition(":")
    return NodeId(Kind(kind), name).variant if name else None


def requirements(rules: Iterable[Rule], node: str, compose_id: str) -> tuple[Requirement, ...]:
    """The checks the rules require of one compose of node, each once (the first rule names it,
    or the first that says `applicable: required`)."""
    kind = kind_of(node)
    variant = variant_of(node)
    found: dict[str, Requirement] = {}
    for rule in rules:
        if kind not in rule.kinds:
            continue
        if rule.variants and variant not in rule.variants:
            continue
        if rule.nodes and not any(fnmatch.fnmatchcase(node, p) for p in rule.nodes):
            continue
        for check in rule.require:
            earlier = found.get(check)
            if earlier is None or (rule.must_apply and not earlier.must_apply):
                found[check] = Requirement(node, compose_id, check, rule.source, rule.must_apply)
    return tuple(found[c] for c in sorted(found))


def decide(
    required: Sequence[Requirement], results: Sequence[CheckRecord], waivers: Sequence[Waiver]
) -> Decision:
    """The decision for one compose; of several results of one check the last counts."""
    latest = {r.check: r for r in results}
    outcomes = tuple(_outcome(req, latest.get(req.check), waivers) for req in required)
    if any(o.failing for o in outcomes):
        verdict = Verdict.FAIL
    elif any(not o.satisfied for o in outcomes):
        verdict = Verdict.PENDING
    else:
        verdict = Verdict.PASS
    return Decision(verdict, outcomes)


def _outcome(req: Requirement, result: CheckRecord | None, waivers: Sequence[Waiver]) -> Outcome:
    if result is not None and result.state == CheckState.PASSED:
        return Outcome(req, CheckState.PASSED, True, result.message or "passed")
    applies = result is None or result.state != CheckState.NOT_APPLICABLE
    if result is not None and not applies and not req.must_apply:
        return Outcome(
            req, CheckState.NOT_APPLICABLE, True, f"did not apply: {result.message or 'nothing to check'}"
        )
    waiver = next((w for w in waivers if w.covers(req.node, req.compose_id, req.check)), None)
    if waiver is not None:
        return Outcome(
            req, CheckState.WAIVED, True, f"waived by {waiver.who}: {waiver.reason} ({waiver.source})"
        )
    if result is None or result.state not in FAILING:
        state = CheckState.PENDING if result is None else result.state
        what = "still running" if state == CheckState.RUNNING else "not run yet"
        return Outcome(req, state, False, f"{what} (required by {req.rule or 'policy'})")
    if not applies:
        return Outcome(
            req,
            result.state,
            False,
            f"did not apply ({result.message or 'nothing to check'}), and {req.rule or 'the policy'}"
            " says applicable: required",
        )
    return Outcome(req, result.state, False, result.message or result.state.lower())


def owners(defs: Definitions, node: str, messages: Iterable[str] = ()) -> tuple[str, ...]:
    """Who to tell when a compose of node fails: a module's maintainers; for a variant's node,
    the maintainers of its modules named in the failure messages, else of all its modules."""
    if MODULE.of(node):
        module = defs.modules.get(MODULE.name_of(node))
        return module.maintainers if module is not None else ()
    variant = defs.variants.get(variant_of(node) or "")
    if variant is None:
        return ()
    text = "\n".join(messages)
    selected = [s.module for s in variant.modules if s.module in defs.modules]
    named = [nsid for nsid in selected if f"module {nsid}" in text] or selected
    return tuple(dict.fromkeys(m for nsid in named for m in defs.modules[nsid].maintainers))
