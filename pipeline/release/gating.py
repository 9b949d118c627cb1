"""The gate use-case: the decision for a compose with the policies of a revision, and its owners.

`factory gate` prints it; `factory release` publishes or quarantines by it. A compose is gated by
the policies and waivers of a revision (HEAD by default, so a waiver counts once it is merged)
and by the check results recorded for it in `refs/notes/tests`.
"""

from __future__ import annotations

from pipeline.core import gate
from pipeline.core.records import Record
from pipeline.records.checks import read as read_results
from pipeline.records.lineage import Lineage
from pipeline.workspace import Workspace


def decide(ws: Workspace, lineage: Lineage, record: Record, rev: str = "HEAD") -> gate.Decision:
    """The gate's decision on a compose, with the policies and waivers of `rev`."""
    policy = ws.policy(rev)
    required = gate.requirements(policy.rules, record.node, record.compose_id)
    results = read_results(lineage, record.compose_id)
    return gate.decide(required, results, policy.waivers)


def owners(ws: Workspace, record: Record, decision: gate.Decision) -> tuple[str, ...]:
    """Whom to tell about what the compose did not satisfy: the maintainers named by the
    definitions it was composed from."""
    defs = ws.load(record.commit, check_distgit=False)
    return gate.owners(defs, record.node, [o.reason for o in decision.unsatisfied()])
