"""`factory history record` and `factory history show`: branch history in Git."""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import TYPE_CHECKING

from pipeline.commands.output import out, out_json
from pipeline.core.errors import FactoryError, InvalidInput
from pipeline.core.names import unknown

if TYPE_CHECKING:
    from pipeline.records.history import BranchHistory
    from pipeline.workspace import Workspace


def record(args: argparse.Namespace) -> int:
    """Read every tracked branch head (or one component's) and record the new ones."""
    from pipeline.git.distgit import DistGit
    from pipeline.records.history import BranchHistory
    from pipeline.workspace import Workspace

    ws = Workspace.open(args.repo)
    defs = ws.load(args.rev, check_distgit=False)
    sources = DistGit(ws.root, ws.cache_dir / "distgit-cache")
    history = BranchHistory(ws.repo)
    now = int(time.time())
    tracked = sorted(
        {
            (pin.component, pin.branch, defs.config.distgit_for(pin))
            for module in defs.modules.values()
            for pin in module.components
            if args.component is None or pin.component == args.component
        }
    )
    if args.component is not None and not tracked:
        pinned = {p.component for m in defs.modules.values() for p in m.components}
        raise unknown("component", args.component, pinned, where=" (no module pins it)")
    recorded, problems = [], []
    for component, branch, url in tracked:
        head = sources.head(url, branch)
        if head is None:
            problems.append(f"{component} ({branch}): {sources.problems.get(url) or 'no such branch'}")
            continue
        seen = history.record(component, branch, head, now)
        if seen is not None:
            recorded.append(seen)
    if args.json:
        out_json({"recorded": [o.to_json() for o in recorded], "errors": problems})
    else:
        for o in recorded:
            out(f"recorded {o.component} ({o.branch}) at {o.head[:12]}")
        out(f"{len(recorded)} new heads of {len(tracked)} tracked branches")
        for problem in problems:
            out(f"error: {problem}")
    return 1 if problems else 0


def show(args: argparse.Namespace) -> int:
    """What a branch pointed to at a time (default: now), or its whole history with --all."""
    from pipeline.records.history import BranchHistory, iso, parse_time
    from pipeline.workspace import Workspace

    ws = Workspace.open(args.repo)
    history = BranchHistory(ws.repo)
    if args.all:
        found = history.log(args.component, args.branch)
        if not found:
            _require_known(ws, history, args.component, args.branch)
        if args.json:
            out_json([o.to_json() for o in found])
        else:
            for o in found:
                out(f"{iso(o.observed)}  {o.head}")
        return 0
    when = parse_time(args.at) if args.at else int(time.time())
    seen = history.at(args.component, args.branch, when)
    if seen is None:
        _require_known(ws, history, args.component, args.branch)
        raise InvalidInput(
            f"no recorded head of {args.component} ({args.branch}) at or before {iso(when)}",
            hint="`factory history record` records the current heads",
            code="no-history",
        )
    if args.json:
        out_json({**seen.to_json(), "at": iso(when)})
    else:
        out(f"{seen.head}  (observed {iso(seen.observed)})")
    return 0


def _require_known(ws: Workspace, history: BranchHistory, component: str, branch: str) -> None:
    """unknown-component unless a pin at HEAD or the branch history names the component,
    unknown-branch unless one names that branch of it: a typo is told apart from a branch
    that has no head recorded yet (or at that time)."""
    known = set(history.tracked())
    with contextlib.suppress(FactoryError):  # no HEAD, or definitions that do not validate
        defs = ws.load("HEAD", check_distgit=False)
        known |= {(p.component, p.branch) for m in defs.modules.values() for p in m.components}
    branches = sorted(b for c, b in known if c == component)
    if not branches:
        raise unknown("component", component, {c for c, _ in known})
    if branch not in branches:
        raise unknown("branch", branch, branches, where=f" of {component} (pinned or recorded)")
