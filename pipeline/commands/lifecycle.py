"""`factory eol`, `factory retire` and `factory branch-release`: the life of a release."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipeline.commands.output import out, out_json
from pipeline.core.errors import InvalidInput
from pipeline.workspace import Workspace

if TYPE_CHECKING:
    from pipeline.release.signer import Signer


def _today() -> dt.date:
    """The one place a wall clock enters `eol`: which dates have come."""
    return dt.datetime.now(dt.UTC).date()


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"not a date: {text!r}", hint="write it as YYYY-MM-DD", code="bad-date") from exc


def _target_branch(ws: Workspace, given: str | None) -> str:
    from pipeline.bot.reconcile import default_target

    return given or default_target(ws)


def diff(
    before: Mapping[str, str], after: Mapping[str, str], renamed: Mapping[str, str] | None = None
) -> str:
    """A unified diff of the files a merge request changes (a dry run shows it); `renamed`: new
    path -> old path of the files it moves."""
    renamed = renamed or {}
    lines: list[str] = []
    for path in sorted(after):
        origin = renamed.get(path, path)
        old = before.get(origin, "").splitlines(keepends=True)
        new = after[path].splitlines(keepends=True)
        lines += difflib.unified_diff(
            old, new, f"a/{origin}" if origin in before else "/dev/null", f"b/{path}", n=1
        )
    return "".join(lines).rstrip("\n")


def cmd_eol(args: argparse.Namespace) -> int:
    """Open one merge request that retires a module stream or variant (or schedules it)."""
    from pipeline.bot import eol
    from pipeline.bot.forge_choice import make_forge

    if (args.what is None) == (not args.due):
        raise InvalidInput("name one module:NAME:STREAM or variant:UID, or pass --due", code="eol-what")
    if args.due and args.date:
        raise InvalidInput("--due retires each definition on its own EOL: no --date", code="eol-what")
    ws = Workspace.open(args.repo)
    branch = _target_branch(ws, args.target)
    forge = None if args.dry_run else make_forge(args.forge or ws.config(branch).forge.kind, ws, branch)
    done = eol.eol(
        ws,
        forge,
        target_branch=branch,
        today=_today(),
        target=args.what,
        date=_date(args.date) if args.date else None,
        due=args.due,
    )
    ws.save()
    proposal, mr = done.proposal, done.merge_request
    if args.json:
        out_json(
            {
                "action": done.action,
                "message": done.message,
                "merge_request": None if mr is None else mr.id,
                "title": None if proposal is None else proposal.spec.title,
                "source_branch": None if proposal is None else proposal.spec.source_branch,
                "changes": [
                    {
                        "target": c.target.id,
                        "path": c.path,
                        "eol": c.eol.isoformat(),
                        "old_eol": c.old_eol.isoformat(),
                        "retired": c.retire,
                    }
                    for c in (proposal.changes if proposal else ())
                ],
                "leaving": list(proposal.leaving) if proposal else [],
            }
        )
        return 0
    if proposal is None:
        out(f"nothing to do: {done.message}")
        return 0
    verb = {"dry-run": "would open", "kept-closed": "not reopened"}.get(done.action, done.action)
    out(f"{verb}{f' !{mr.id}' if mr else ''}: {proposal.spec.title}")
    for c in proposal.changes:
        state = "retired: true" if c.retire else f"retired on {c.eol} by `factory eol --due`"
        out(f"  {c.path}: eol {c.old_eol} -> {c.eol}, {state}")
    if proposal.leaving:
        out(f"  leaving the graph once merged: {', '.join(proposal.leaving)}")
    if args.dry_run:
        out(diff(proposal.before, proposal.spec.files))
    return 0


def cmd_branch_release(args: argparse.Namespace) -> int:
    """Branch release NEW from OLD: dist-git branches, release/OLD, one merge request."""
    import os

    from pipeline.bot import branching
    from pipeline.bot.forge import BranchingForge
    from pipeline.bot.forge_choice import DistGitBranches, make_forge

    ws = Workspace.open(args.repo)
    branch = _target_branch(ws, args.target)
    config = ws.config(branch).forge
    forge: BranchingForge | None = None
    if not args.dry_run:
        forge = make_forge(args.forge or config.kind, ws, branch)
    done = branching.branch_release(
        ws, forge, DistGitBranches(ws, config, os.environ), target_branch=branch, new=args.new, old=args.old
    )
    ws.save()
    if done is None:
        out(f"nothing to do: {branch} composes release {args.new} already")
        return 0
    mr = done.merge_request
    if args.json:
        out_json(
            {
                "action": done.action,
                "old": done.old,
                "new": done.new,
                "merge_request": None if mr is None else mr.id,
                "title": done.spec.title,
                "source_branch": done.spec.source_branch,
                "release_branch": done.release_branch,
                "release_branch_created": done.release_branch_created,
                "distgit": [
                    {
                        "component": b.component,
                        "from": b.old,
                        "branch": b.new,
                        "head": b.head,
                        "created": b.created,
                    }
                    for b in done.branches
                ],
                "streams": [
                    {"module": r.module, "stream": r.stream, "path": r.new_path} for r in done.renames
                ],
                "files": sorted(done.spec.files),
                "removed": list(done.spec.removed),
            }
        )
        return 0
    dry = args.dry_run
    made_now = sum(b.created for b in done.branches)
    out(
        f"dist-git: {len(done.branches)} branches of release {done.new}"
        + ("" if dry else f" ({made_now} made now, {len(done.branches) - made_now} there already)")
    )
    for b in done.branches:
        out(f"  {b.component}: {b.new} at {b.head[:12]} (from {b.old})")
    state = "would make" if dry else ("made" if done.release_branch_created else "there already")
    out(f"{done.release_branch}: {state}, keeps composing {done.old}")
    for r in done.renames:
        out(f"  new stream {r.module.split(':', 1)[0]}:{r.stream} ({r.old_path} -> {r.new_path})")
    verb = {"dry-run": "would open"}.get(done.action, done.action)
    out(f"{verb}{f' !{mr.id}' if mr else ''}: {done.spec.title}")
    if dry:
        out(diff(done.before, done.spec.files, {r.new_path: r.old_path for r in done.renames}))
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    """Carve the retired modules and variants of HEAD out of the release tree (idempotent)."""
    from pathlib import Path

    from pipeline.release import retire
    from pipeline.release.releasing import Key, signing_key
    from pipeline.release.sign import signer

    ws = Workspace.open(args.repo)
    key = signing_key(ws, Key(args.gnupghome or "", args.key or ""))

    def signing() -> contextlib.AbstractContextManager[Signer]:
        return signer(gnupghome=key.gnupghome or None, key=key.fingerprint or None, base=ws.root)

    carved = retire.retire(
        ws,
        archive=Path(args.archive).resolve() if args.archive else None,
        signing=signing,
        dry_run=args.dry_run,
    )
    ws.save()
    if args.json:
        out_json(
            {
                "dry_run": args.dry_run,
                "nodes": [
                    {
                        "node": c.node,
                        "release": c.release,
                        "latest_good": c.latest,
                        "moved": [{"from": str(m.source), "to": str(m.target)} for m in c.moved],
                        "ostree_refs": [{"repo": str(repo), "ref": ref} for repo, ref in c.ostree_refs],
                    }
                    for c in carved
                ],
            }
        )
        return 0
    changed = [c for c in carved if c.changed]
    if not changed:
        out(f"nothing to carve out: every retired node ({len(carved)}) is carved out already")
        return 0
    would = "would move" if args.dry_run else "moved"
    for c in changed:
        out(c.node)
        if c.latest:
            out(f"  latest good {c.latest}: {would} to refs/composes/retired/{c.release}/")
        for m in c.moved:
            out(f"  {m.source} -> {m.target}")
        for repo, ref in c.ostree_refs:
            out(
                f"  OSTree {ref} -> archive/{ref} in {repo}"
                + ("" if args.dry_run else " (summary signed again)")
            )
    return 0
