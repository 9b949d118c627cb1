"""`factory gate`, `factory sign` and `factory release`: decide, sign a copy, publish."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from pipeline.commands.output import out, out_json
from pipeline.core import gate
from pipeline.core.errors import OperationFailed
from pipeline.core.records import Record
from pipeline.engine.workspace import Workspace
from pipeline.git import repo as gitrepo
from pipeline.release import policies, sign
from pipeline.release import publish as publisher
from pipeline.store.lineage import Lineage
from pipeline.store.results import read as read_results


class _Context:
    """The repository, lineage and definitions a command about one compose needs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.ws = Workspace.open(args.repo)
        self.lineage = Lineage(self.ws.root)
        self.record: Record = self.lineage.get(args.compose_id)
        self.rev = getattr(args, "rev", None) or "HEAD"

    def decision(self) -> gate.Decision:
        """The gate's decision with the policies and waivers of the revision (default HEAD)."""
        policy = policies.load(self.ws.repo, self.rev)
        required = gate.requirements(policy.rules, self.record.node, self.record.compose_id)
        results = [r.result for r in read_results(self.lineage, self.record.compose_id)]
        return gate.decide(required, results, policy.waivers)

    def owners(self, decision: gate.Decision) -> tuple[str, ...]:
        defs = self.ws.load(self.record.commit, check_distgit=False)
        return gate.owners(defs, self.record.node, [o.reason for o in decision.unsatisfied()])

    def output_dir(self) -> Path:
        raw = yaml.safe_load(gitrepo.file_at(self.ws.repo, self.record.commit, "factory.yaml") or b"{}")
        path = Path(str(_get(raw, "output", "dir") or ".factory/output"))
        return path if path.is_absolute() else self.ws.root / path

    def signing(self, args: argparse.Namespace) -> tuple[str | None, str | None]:
        """(gnupghome, key) from the command line, else factory.yaml's `signing:` of HEAD."""
        raw = yaml.safe_load(gitrepo.file_at(self.ws.repo, "HEAD", "factory.yaml") or b"{}")
        home = args.gnupghome or _get(raw, "signing", "gnupghome")
        key = args.key or _get(raw, "signing", "key")
        return (str(home) if home else None, str(key) if key else None)


def _get(data: Any, section: str, key: str) -> Any:
    value = data.get(section) if isinstance(data, dict) else None
    return value.get(key) if isinstance(value, dict) else None


def cmd_gate(args: argparse.Namespace) -> int:
    """pass (0), fail or pending (1), with the reason for every requirement."""
    ctx = _Context(args)
    decision = ctx.decision()
    if args.json:
        out_json(
            {
                "compose_id": ctx.record.compose_id,
                "node": ctx.record.node,
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
        out(f"{ctx.record.compose_id} ({ctx.record.node}): {decision.verdict}")
        if not decision.outcomes:
            out("  no policy rule applies: nothing is required")
        for o in decision.outcomes:
            out(f"  {o.requirement.check}: {o.state} - {o.reason}")
    return 0 if decision.passed else 1


def cmd_sign(args: argparse.Namespace) -> int:
    """Copy a compose into --out (default: <output dir>/signed/<compose-id>) and sign the copy."""
    ctx = _Context(args)
    dest = Path(args.out) if args.out else ctx.output_dir() / "signed" / ctx.record.compose_id
    if not ctx.record.outputs:
        raise OperationFailed(f"compose {ctx.record.compose_id} made nothing to sign", code="nothing-to-sign")
    home, key = ctx.signing(args)
    with sign.signer(gnupghome=home, key=key, base=ctx.ws.root) as signer:
        publisher.copy_outputs(ctx.record, ctx.output_dir(), dest)
        signed = sign.sign_tree(dest, signer)
    if args.json:
        out_json(
            {
                "compose_id": ctx.record.compose_id,
                "path": str(dest),
                "key": signed.key,
                "rpms": len(signed.rpms),
                "repos": list(signed.repos),
                "ostree_refs": list(signed.ostree_refs),
            }
        )
    else:
        out(f"signed a copy of {ctx.record.compose_id} in {dest} with {signed.key}")
        out(f"  {len(signed.rpms)} RPMs, {len(signed.repos)} repos, {len(signed.ostree_refs)} OSTree refs")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    """Publish a compose atomically into --to, or quarantine it when its gate fails."""
    ctx = _Context(args)
    decision = ctx.decision()
    owners = ctx.owners(decision) if not decision.passed else ()
    to = Path(args.to).resolve()
    quarantine = Path(args.quarantine).resolve() if args.quarantine else None
    common = {
        "output_dir": ctx.output_dir(),
        "to": to,
        "keep": args.keep,
        "quarantine": quarantine,
        "owners": owners,
    }
    if args.unsigned or not decision.passed:
        done = publisher.release(ctx.lineage, ctx.record, decision, signer=None, **common)
    else:
        home, key = ctx.signing(args)
        with sign.signer(gnupghome=home, key=key, base=ctx.ws.root) as signer:
            done = publisher.release(ctx.lineage, ctx.record, decision, signer=signer, **common)
    if args.json:
        out_json(
            {
                "compose_id": ctx.record.compose_id,
                "status": done.status,
                "path": str(done.path),
                "removed": list(done.removed),
                "signed_by": done.signed_by,
                "owners": list(owners),
                "gate": decision.summary(),
            }
        )
    elif done.status == "released":
        out(f"released {ctx.record.compose_id} to {done.path} ({to / publisher.LATEST} points at it)")
        if done.removed:
            out(f"  removed old releases: {', '.join(done.removed)}")
    else:
        out(f"quarantined {ctx.record.compose_id} at {done.path}: {decision.summary()}")
        out(f"  owners: {', '.join(owners) or 'none listed'}")
    return 0 if done.status == "released" else 1
