"""Composes whose gate waits for check results: what the executor records for them. Pure.

A compose whose gate is pending (a required check has no result: one factory does not run,
such as an openQA run or a manual sign-off, or one still running) is recorded PENDING, not
FAILED: it is not latest good, it blocks what is made from it, and the next run does not compose
it again (its key has a PENDING compose). Each required check without a result is written to
`refs/notes/tests` as a PENDING entry with the compose, so `git notes --ref=tests show` says what
is awaited. `factory check record` adds results; `factory gate ID --promote` finishes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.core import gate
from pipeline.core.states import CheckState
from pipeline.records.checks import TestResult


def awaited(decision: gate.Decision) -> tuple[gate.Outcome, ...]:
    """The requirements a pending gate waits for: unsatisfied, and not failing it."""
    return tuple(o for o in decision.unsatisfied() if not o.failing)


def waiting_message(decision: gate.Decision) -> str:
    """What a PENDING compose waits for, for its record and the run's summary:
    `waits for openqa.install (PENDING, required by policies/openqa.yaml:5)`."""
    parts = [
        f"{o.requirement.check} ({o.state}, required by {o.requirement.rule or 'policy'})"
        for o in awaited(decision)
    ]
    return "waits for " + ", ".join(parts)


def pending_entries(decision: gate.Decision, tests: Sequence[TestResult]) -> list[TestResult]:
    """A PENDING entry for every required check that has no result among `tests`."""
    ran = {t.check for t in tests}
    return [
        TestResult(
            o.requirement.check,
            CheckState.PENDING,
            f"required by {o.requirement.rule or 'policy'}; no result yet",
            "",
            "",
        )
        for o in awaited(decision)
        if o.requirement.check not in ran
    ]
