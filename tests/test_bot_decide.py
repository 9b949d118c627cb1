"""decide(): table-style cases over plain facts; no Git, no forge."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pipeline.bot.decide import (
    Action,
    BranchFact,
    BuildFact,
    BuildPinFact,
    Error,
    Open,
    PinFact,
    State,
    Update,
    decide,
)
from pipeline.bot.forge import CLOSED, MERGED, OPENED, MergeRequest, MergeRequestSpec

OLD, HEAD, NEWER = "a" * 40, "b" * 40, "c" * 40


def spec(component: str, head: str, *labels: str) -> MergeRequestSpec:
    return MergeRequestSpec(
        source_branch=f"factory/bump/{component}/f42",
        target_branch="main",
        title=f"Bump {component} (f42) to {head[:8]}",
        description="...",
        labels=("bump", *labels),
        files={"modules/m.yaml": "..."},
        head=head,
    )


def mr(component: str, state: str, head: str, number: str = "1") -> MergeRequest:
    return MergeRequest(number, f"factory/bump/{component}/f42", "main", state, "t", "d", ("bump",), head)


def fact(
    component: str = "openssl",
    head: str | None = HEAD,
    pins: tuple[tuple[str, bool], ...] = ((OLD, True),),
    *labels: str,
) -> BranchFact:
    facts = tuple(PinFact(f"m{i}:1", ref, descends) for i, (ref, descends) in enumerate(pins))
    behind = head is not None and any(ref != head for ref, _ in pins) and all(d for r, d in pins if r != head)
    proposal = spec(component, head, *labels) if behind and head else None
    return BranchFact(component, "f42", head, facts, proposal, "" if head else "unreachable")


@dataclass
class Case:
    name: str
    facts: tuple[BranchFact, ...]
    existing: dict[str, tuple[MergeRequest, ...]] = field(default_factory=dict)
    expected: list[tuple[str, str]] = field(default_factory=list)  # (kind, component)


def kinds(actions: list[Action]) -> list[tuple[str, str]]:
    return [(type(a).__name__.lower(), a.component) for a in actions]


SOURCE = "factory/bump/openssl/f42"

CASES = [
    Case("pins at the head: nothing", (fact(pins=((HEAD, True),)),)),
    Case("a pin behind: open", (fact(),), expected=[("open", "openssl")]),
    Case("open MR for this head: nothing", (fact(),), {SOURCE: (mr("openssl", OPENED, HEAD),)}),
    Case(
        "open MR for an older head: update",
        (fact(),),
        {SOURCE: (mr("openssl", OPENED, OLD),)},
        [("update", "openssl")],
    ),
    Case("closed for this head: not reopened", (fact(),), {SOURCE: (mr("openssl", CLOSED, HEAD),)}),
    Case("merged for this head: done", (fact(),), {SOURCE: (mr("openssl", MERGED, HEAD),)}),
    Case(
        "closed for an older head: a new one",
        (fact(),),
        {SOURCE: (mr("openssl", CLOSED, OLD),)},
        [("open", "openssl")],
    ),
    Case(
        "merged before, branch moved again: a new one",
        (fact(head=NEWER, pins=((HEAD, True),)),),
        {SOURCE: (mr("openssl", MERGED, HEAD),)},
        [("open", "openssl")],
    ),
    Case("force-push: error, no bump", (fact(pins=((OLD, False),)),), expected=[("error", "openssl")]),
    Case(
        "one module rewritten, the other fine: error only",
        (fact(pins=((OLD, True), ("d" * 40, False))),),
        expected=[("error", "openssl")],
    ),
    Case("head unknown: error", (fact(head=None),), expected=[("error", "openssl")]),
    Case(
        "security first, then the others by name, errors last",
        (
            fact("zlib", pins=((OLD, False),)),
            fact("bash"),
            fact("openssl", HEAD, ((OLD, True),), "security"),
            fact("ca-certificates"),
        ),
        expected=[("open", "openssl"), ("open", "bash"), ("open", "ca-certificates"), ("error", "zlib")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    assert kinds(decide(State(case.facts, case.existing))) == case.expected


def test_update_carries_the_mr_and_the_new_spec() -> None:
    old = mr("openssl", OPENED, OLD, "7")
    [action] = decide(State((fact(),), {SOURCE: (old,)}))
    assert isinstance(action, Update)
    assert action.mr == old and action.spec.head == HEAD


def test_open_carries_the_spec_and_the_error_says_why() -> None:
    [opened] = decide(State((fact(),)))
    assert isinstance(opened, Open) and opened.spec.source_branch == SOURCE
    [error] = decide(State((fact(pins=((OLD, False),)),)))
    assert isinstance(error, Error)
    assert "does not descend" in error.message and "force-pushed" in error.message


def test_decide_is_deterministic() -> None:
    facts = (fact("b"), fact("a", HEAD, ((OLD, True),), "security"))
    assert decide(State(facts)) == decide(State(tuple(reversed(facts))))


# -- build bumps: binary pins following a source ----------------------------------------------------


def build_fact(
    component: str, newest: str | None, orders: tuple[int, ...] = (-1,), severity: str = "", *labels: str
) -> BuildFact:
    pins = tuple(BuildPinFact(f"m{i}:1", f"{component}-1-{i}", o) for i, o in enumerate(orders))
    proposal = None
    if newest is not None and any(o < 0 for o in orders) and not any(o > 0 for o in orders):
        proposal = MergeRequestSpec(
            f"factory/bump-build/{component}/f42-updates", "main", f"Bump {component}", "...", ("bump", *labels),
            head=newest,
        )  # fmt: skip
    return BuildFact(
        component, "f42-updates", newest, pins, proposal, severity, "" if newest else "no answer"
    )


def build_mr(component: str, state: str, head: str) -> MergeRequest:
    return MergeRequest(
        "7", f"factory/bump-build/{component}/f42-updates", "main", state, "t", "d", ("bump",), head
    )


def test_build_bumps_come_security_first_by_severity_and_errors_last() -> None:
    state = State(
        (fact("openssl", HEAD, ((OLD, True),), "security"),),
        builds=(
            build_fact("aaa", "aaa-2-1"),
            build_fact("low", "low-2-1", (-1,), "Low", "security"),
            build_fact("critical", "critical-2-1", (-1,), "Critical", "security"),
            build_fact("gone", None),
            build_fact("back", "back-1-0", (1, -1)),
            build_fact("same", "same-1-0", (0,)),
        ),
    )
    actions = decide(state)
    assert [(type(a).__name__, a.component) for a in actions] == [
        ("Open", "critical"),
        ("Open", "low"),
        ("Open", "openssl"),  # a security bump of unknown severity after those of a known one
        ("Open", "aaa"),
        ("Error", "back"),
        ("Error", "gone"),
    ]
    back = next(a for a in actions if isinstance(a, Error) and a.component == "back")
    assert "went back" in back.message and "not bumped" in back.message and back.source == "f42-updates"


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ((), "Open"),
        ((build_mr("glibc", OPENED, "glibc-2-1"),), None),  # already open for this build
        ((build_mr("glibc", OPENED, "glibc-1-9"),), "Update"),  # open for an older build
        ((build_mr("glibc", CLOSED, "glibc-2-1"),), None),  # refused for this build: never reopened
        ((build_mr("glibc", MERGED, "glibc-2-1"),), None),
        ((build_mr("glibc", CLOSED, "glibc-1-9"),), "Open"),  # a newer build may open a new one
    ],
)
def test_build_bumps_are_idempotent(existing: tuple[MergeRequest, ...], expected: str | None) -> None:
    fact_ = build_fact("glibc", "glibc-2-1")
    actions = decide(State((), {fact_.source_branch: existing}, (fact_,)))
    assert [type(a).__name__ for a in actions] == ([expected] if expected else [])
