"""The contract between the executor and the checks run on each compose.

After a compose finishes, the executor runs every registered check that applies to the
node's kind, with the same `Job` the composer had (`pipeline.core.job`) and the files it made.
A check returns a `CheckRecord` (`CheckResult`, its name for plugins); the results are recorded in `refs/notes/tests` and the gate (policies in
`policies/`) decides whether the compose may become latest good.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.core.gate import CheckResult
from pipeline.core.job import Job
from pipeline.core.records import OutputFile


class Check(Protocol):
    """One test of an artifact."""

    name: str
    kinds: frozenset[str]  # the node kinds it applies to

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        """Test the artifact; never raise for a failing artifact (return FAILED), only for bugs."""
        ...
