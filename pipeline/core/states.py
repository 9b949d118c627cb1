"""Every state factory records or reports, as string enums (their values are what JSON and Git
notes hold, so they compare equal to the strings earlier records wrote).

Terminology (productmd's and Greenwave's words):
- a compose's status, in its lineage record: FINISHED or FAILED (RUNNING only while a draft);
- what one run did to a node: COMPOSED, SKIPPED (its key has a finished compose), FAILED, or
  BLOCKED (an input did not compose);
- a whole run: FINISHED, FINISHED_INCOMPLETE (some nodes failed) or DOOMED (none composed);
- a check result: PENDING (not run yet, never failed), RUNNING, PASSED, FAILED, ERROR (the check
  itself could not run) or WAIVED;
- the gate's verdict on a compose: pass, fail or pending;
- what a release did: released or quarantined;
- a merge request's state, in GitLab's words: opened, closed or merged;
- a planned node at the head of a CI pipeline (`factory ci check`): OK, NOT COMPOSED or
  NOT COMPOSABLE (no composer for its kind).
"""

from __future__ import annotations

from enum import StrEnum


class ComposeStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


class NodeStatus(StrEnum):
    COMPOSED = "COMPOSED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    BLOCKED = "BLOCKED"

    @property
    def ok(self) -> bool:
        """Whether the node has a good compose after the run."""
        return self in (NodeStatus.COMPOSED, NodeStatus.SKIPPED)


class RunStatus(StrEnum):
    FINISHED = "FINISHED"
    FINISHED_INCOMPLETE = "FINISHED_INCOMPLETE"
    DOOMED = "DOOMED"


class CheckState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PASSED = "PASSED"
    FAILED = "FAILED"
    ERROR = "ERROR"
    WAIVED = "WAIVED"


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    PENDING = "pending"


class ReleaseStatus(StrEnum):
    RELEASED = "released"
    QUARANTINED = "quarantined"


class MergeRequestState(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    MERGED = "merged"


class PlannedStatus(StrEnum):
    OK = "OK"
    NOT_COMPOSED = "NOT COMPOSED"
    NOT_COMPOSABLE = "NOT COMPOSABLE"
