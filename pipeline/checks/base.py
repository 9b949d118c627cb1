"""The contract between the executor and the checks run on each compose.

After a compose finishes, the executor runs every registered check that applies to the
node's kind, with the same `Job` the composer had and the files it made. A check returns a
`CheckResult`; the results are recorded in `refs/notes/tests` and the gate (policies in
`policies/`) decides whether the compose may become latest good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.compose.base import Job, OutputFile

# The states of a check result (Greenwave/ResultsDB words). A check not yet run is PENDING,
# never FAILED; ERROR means the check itself could not run; WAIVED is set by a waiver.
PENDING, RUNNING, PASSED, FAILED, ERROR, WAIVED = "PENDING", "RUNNING", "PASSED", "FAILED", "ERROR", "WAIVED"
STATES = (PENDING, RUNNING, PASSED, FAILED, ERROR, WAIVED)


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str  # the check's name, e.g. "repoclosure"
    state: str  # one of STATES
    message: str = ""  # what failed, for people; empty when it passed


class Check(Protocol):
    """One test of an artifact."""

    name: str
    kinds: frozenset[str]  # the node kinds it applies to

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        """Test the artifact; never raise for a failing artifact (return FAILED), only for bugs."""
        ...
