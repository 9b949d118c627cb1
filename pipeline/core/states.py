"""Every state factory records or reports, as string enums (their values are what JSON and Git
notes hold, so they compare equal to the strings earlier records wrote).

Terminology (productmd's and Greenwave's words):
- a compose's status, in its lineage record: FINISHED, FAILED, or PENDING (composed, its gate
  waits for results of required checks: not latest good, not composed again; `factory gate ID
  --promote` makes it FINISHED once its gate passes); RUNNING only while a draft;
- what one run did to a node: COMPOSED, SKIPPED (its key has a finished compose), FAILED,
  BLOCKED (an input did not compose, or is pending), or PENDING (composed in this run, or by an
  earlier one with the same key, and waiting for check results);
- a whole run: FINISHED (every node good), FINISHED_INCOMPLETE (some nodes failed, are blocked
  or pending) or DOOMED (nothing composed, nothing good);
- a check result: PENDING (not run yet, never failed), RUNNING, PASSED, FAILED, ERROR (the check
  itself could not run), NOT_APPLICABLE (it ran and found nothing to check: never recorded as
  passed; it satisfies a requirement unless the policy rule says `applicable: required`) or
  WAIVED;
- the gate's verdict on a compose: pass, fail or pending;
- what a release did: released or quarantined, and later archived (retired);
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
    PENDING = "PENDING"


class NodeStatus(StrEnum):
    COMPOSED = "COMPOSED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    BLOCKED = "BLOCKED"
    PENDING = "PENDING"

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
    NOT_APPLICABLE = "NOT_APPLICABLE"
    WAIVED = "WAIVED"


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    PENDING = "pending"


class ReleaseStatus(StrEnum):
    RELEASED = "released"
    QUARANTINED = "quarantined"
    ARCHIVED = "archived"  # moved out of the release tree by `factory retire`


class MergeRequestState(StrEnum):
    OPENED = "opened"
    CLOSED = "closed"
    MERGED = "merged"


class PlannedStatus(StrEnum):
    OK = "OK"
    NOT_COMPOSED = "NOT COMPOSED"
    NOT_COMPOSABLE = "NOT COMPOSABLE"


class NodeState(StrEnum):
    """Where a node stands now, from what lineage records (`factory status`, the site).

    RUNNING: a compose ID is reserved and not finished (running, or killed before it ended);
    FAILED: its last compose failed; BLOCKED: not current, and a node it is made from failed;
    OUT_OF_DATE: it has a good compose, but not of HEAD's definitions, or something it is made of
    moved on (a newer input, a dist-git branch that moved, an open bump merge request);
    NOT_COMPOSED: no good compose yet; CURRENT: its latest good compose is of HEAD's definitions;
    REMOVED: composed once, no longer in HEAD's definitions (its lineage stays);
    PENDING: its last compose, of HEAD's definition, is PENDING: its gate waits for check results
    (`factory check record`, then `factory gate ID --promote`).
    """

    RUNNING = "running"
    FAILED = "failed"
    BLOCKED = "blocked"
    OUT_OF_DATE = "out-of-date"
    NOT_COMPOSED = "not-composed"
    CURRENT = "current"
    REMOVED = "removed"
    PENDING = "pending"


class GateState(StrEnum):
    """A compose's gate as the policies at HEAD see its recorded check results.

    PASSED, FAILED, PENDING (a required check has no result yet), WAIVED (passed thanks to a
    waiver), NOT_REQUIRED (no policy asks anything of it), UNKNOWN (its results were not read).
    """

    PASSED = "passed"
    FAILED = "failed"
    PENDING = "pending"
    WAIVED = "waived"
    NOT_REQUIRED = "not-required"
    UNKNOWN = "unknown"


class MirrorState(StrEnum):
    """Whether a release is on the mirrors: PUBLISHED only with a record of its publication
    (`factory publish` writes one in refs/notes/mirrors), NOT_RECORDED otherwise."""

    PUBLISHED = "published"
    NOT_RECORDED = "not-recorded"
