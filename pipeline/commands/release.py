"""`factory gate`, `factory sign` and `factory release`: decide, sign a copy, publish."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands.output import out, out_json
from pipeline.core.signatures import Signature, counts
from pipeline.core.states import ComposeStatus, ReleaseStatus, Verdict
from pipeline.records.lineage import Lineage
from pipeline.release import gating, releasing
from pipeline.release import release_dir as publisher
from pipeline.release.promote import Promotion, promote
from pipeline.workspace import Workspace


def _key(args: argparse.Namespace) -> releasing.Key:
    return releasing.Key(args.gnupghome or "", args.key or "")


def cmd_gate(args: argparse.Namespace) -> int:
    """pass (0), fail or pending (1), with the reason for every requirement; with --promote, a
    PENDING compose that passes is recorded FINISHED and made latest good."""
    ws = Workspace.open(args.repo)
    promotion = None
    if args.promote:
        promotion = promote(ws, args.compose_id, args.rev or "HEAD")
        record, decision = promotion.record, promotion.decision
    else:
        lineage = Lineage(ws.root)
        record = lineage.get(args.compose_id)
        decision = gating.decide(ws, lineage, record, args.rev or "HEAD")
    if args.json:
        out_json(
            {
                "compose_id": record.compose_id,
                "node": record.node,
                "status": record.status,
                **(
                    {}
                    if promotion is None
                    else {
                        "promoted": promotion.promoted,
                        "latest_good": promotion.latest_good,
                        "off_branch": promotion.off_branch,
                    }
                ),
                "verdict": decision.verdict,
                "requirements": [
                    {
                        "check": o.requirement.check,
                        "state": o.state,
                        "satisfied": o.satisfied,
                        "reason": o.reason,
                        "rule": o.requirement.rule,
                    }
                    for o in decision.outcomes
                ],
            }
        )
    else:
        out(f"{record.compose_id} ({record.node}): {decision.verdict}")
        if not decision.outcomes:
            out("  no policy rule applies: nothing is required")
        for o in decision.outcomes:
            out(f"  {o.requirement.check}: {o.state} - {o.reason}")
        if promotion is not None:
            out(_promotion_text(promotion))
    return 0 if decision.passed else 1


def _promotion_text(promotion: Promotion) -> str:
    record, decision = promotion.record, promotion.decision
    if promotion.promoted:
        if promotion.latest_good:
            where = f"latest good of {record.node}"
        elif promotion.off_branch:
            where = (
                "not latest good: composed off the release's branches (a compose of one of them"
                " with the same key reuses it and makes it latest good)"
            )
        else:
            where = f"not latest good: a newer compose of {record.node} is"
        return f"promoted: {record.compose_id} is FINISHED ({record.promoted}), {where}"
    if record.status != ComposeStatus.PENDING:
        return f"nothing to promote: {record.compose_id} is {record.status}"
    if decision.verdict == Verdict.FAIL:
        return (
            "not promoted: its gate fails ("
            + ", ".join(o.requirement.check for o in decision.unsatisfied())
            + ")"
        )
    missing = ", ".join(o.requirement.check for o in decision.unsatisfied())
    return f"not promoted: still waiting for {missing} (`factory check record {record.compose_id} CHECK --outcome ...`)"


def cmd_sign(args: argparse.Namespace) -> int:
    """Copy a compose into --out (default: <output dir>/signed/<compose-id>) and sign the copy."""
    ws = Workspace.open(args.repo)
    record = Lineage(ws.root).get(args.compose_id)
    copy = releasing.sign_copy(ws, record, _key(args), Path(args.out) if args.out else None)
    signed = copy.signed
    if args.json:
        out_json(
            {
                "compose_id": record.compose_id,
                "path": str(copy.path),
                "key": signed.key,
                "rpms": len(signed.rpms),
                "repos": list(signed.repos),
                "ostree_refs": list(signed.ostree_refs),
                "signatures": [s.to_json() for s in signed.signatures],
            }
        )
    else:
        out(f"signed a copy of {record.compose_id} in {copy.path} with {signed.key}")
        out(f"  {_summary(signed.signatures)}")
    return 0


def _summary(signatures: tuple[Signature, ...]) -> str:
    found = counts(signatures)
    return ", ".join(f"{n} {kind}" for kind, n in found.items()) or "nothing signed"


def cmd_release(args: argparse.Namespace) -> int:
    """Publish a compose atomically into --to, or quarantine it when its gate fails."""
    ws = Workspace.open(args.repo)
    lineage = Lineage(ws.root)
    record = lineage.get(args.compose_id)
    to = Path(args.to).resolve()
    done = releasing.release(
        ws,
        lineage,
        record,
        to=to,
        key=_key(args),
        keep=args.keep,
        quarantine=Path(args.quarantine).resolve() if args.quarantine else None,
        unsigned=args.unsigned,
        rev=args.rev or "HEAD",
        registry=args.registry or "",
    )
    published, decision = done.published, done.decision
    if args.json:
        out_json(
            {
                "compose_id": record.compose_id,
                "status": published.status,
                "path": str(published.path),
                "removed": list(published.removed),
                "signed_by": published.signed_by,
                "signatures": [s.to_json() for s in published.signatures],
                "unsigned": published.status == ReleaseStatus.RELEASED and not published.signatures,
                "ostree": [served.to_json() for served in published.ostree],
                "owners": list(done.owners),
                "gate": decision.summary(),
            }
        )
    elif published.status == ReleaseStatus.RELEASED:
        out(f"released {record.compose_id} to {published.path} ({to / publisher.LATEST} points at it)")
        if published.signatures:
            out(f"  signed by {published.signed_by}: {_summary(published.signatures)}")
            for image in sorted({s.image for s in published.signatures if s.image}):
                out(f"  pushed {image}")
        else:
            out("  unsigned: nothing in it is signed")
        if published.removed:
            out(f"  removed old releases: {', '.join(published.removed)}")
        for served in published.ostree:
            out(f"  {served.ref} {served.version}: {served.commit}")
            if served.parent:
                out(f"    parent {served.parent}, static delta from it")
    else:
        out(f"quarantined {record.compose_id} at {published.path}: {decision.summary()}")
        out(f"  owners: {', '.join(done.owners) or 'none listed'}")
    return 0 if published.status == ReleaseStatus.RELEASED else 1
