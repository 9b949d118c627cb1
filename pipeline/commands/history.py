"""`factory history record` and `factory history show`: branch and source history in Git."""

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
    """Read every tracked branch head (or one component's) and every source (or those its binary
    pins read), and record what is new."""
    import os

    from pipeline.bot import source_state
    from pipeline.git.distgit import DistGit
    from pipeline.records.history import BranchHistory
    from pipeline.records.source_history import SourceHistory
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
    binary = {b.component for m in defs.modules.values() for b in m.binaries}
    if args.component is not None and not tracked and args.component not in binary:
        pinned = {p.component for m in defs.modules.values() for p in m.components} | binary
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
    read = source_state.observe(defs, ws.root, os.environ, args.component)
    problems += [f"source {s.source}: {s.problem}" for s in read.values() if not s.answered]
    observed = source_state.record(SourceHistory(ws.repo), read, now)
    if args.json:
        out_json(
            {
                "recorded": [o.to_json() for o in recorded],
                "sources": [o.to_json() for o in observed],
                "errors": problems,
            }
        )
    else:
        for o in recorded:
            out(f"recorded {o.component} ({o.branch}) at {o.head[:12]}")
        out(f"{len(recorded)} new heads of {len(tracked)} tracked branches")
        for s in observed:
            out(f"recorded source {s.source}: {len(s.changes)} of its {s.packages} packages changed")
            for change in s.changes:
                out(f"  {change.text()}")
        if read:
            out(f"{len(observed)} of {len(read)} sources changed")
        for problem in problems:
            out(f"error: {problem}")
    return 1 if problems else 0


def show(args: argparse.Namespace) -> int:
    """What a branch pointed to at a time (default: now), or its whole history with --all; with
    --source, which build of a package the source held."""
    from pipeline.records.history import BranchHistory, iso, parse_time
    from pipeline.workspace import Workspace

    ws = Workspace.open(args.repo)
    if args.source:
        if args.branch is not None:
            raise InvalidInput(
                "with --source, name a package only: factory history show --source SOURCE PACKAGE",
                code="usage",
            )
        return _show_source(ws, args.source, args.component, args.at, args.all, args.json)
    if args.branch is None:
        raise InvalidInput("name a component and its branch (or --source SOURCE and a package)", code="usage")
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


def _show_source(ws: Workspace, source: str, package: str, at: str | None, every: bool, as_json: bool) -> int:
    """Which build of a package a source held at a time (default: now), or every change (--all)."""
    from pipeline.records.history import iso, parse_time
    from pipeline.records.source_history import HeldAt, SourceHistory

    history = SourceHistory(ws.repo)
    if source not in history.sources():
        known = set(history.sources())
        with contextlib.suppress(FactoryError):
            known |= {s.name for s in ws.config("HEAD").sources}
        if source not in known:
            raise unknown("source", source, known)
        raise InvalidInput(
            f"source {source} has no recorded history",
            hint="`factory history record` records every source",
            code="no-history",
        )
    if every:
        found = history.log(source, package)
        if not found:
            raise unknown("package", package, history.packages(source), where=f" in the history of {source}")
    else:
        when = parse_time(at) if at else int(time.time())
        seen = history.at(source, package, when)
        if seen is None:
            raise InvalidInput(
                f"source {source} was not observed at or before {iso(when)}", code="no-history"
            )
        if seen.held is None and package not in history.packages(source) and not history.log(source, package):
            raise unknown("package", package, history.packages(source), where=f" in the history of {source}")
        found = [seen]

    def as_data(h: HeldAt) -> dict[str, object]:
        return {
            "source": h.source,
            "package": h.package,
            "observed": iso(h.observed),
            "build": h.held.build.nvr if h.held else None,
            "advisories": [
                {"id": a.id, "type": a.type, "severity": a.severity, "cves": list(a.cves)}
                for a in (h.held.advisories if h.held else ())
            ],
        }

    if as_json:
        out_json([as_data(h) for h in found] if every else {**as_data(found[0]), "at": iso(when)})
        return 0
    for h in found:
        if h.held is None:
            out(
                f"{iso(h.observed)}  no build of {package} (observed)"
                if every
                else f"{source} held no build of {package}  (observed {iso(h.observed)})"
            )
            continue
        notes = ", ".join(
            f"{a.id} ({a.type}{', ' + a.severity if a.severity else ''})" for a in h.held.advisories
        )
        line = (
            f"{iso(h.observed)}  {h.held.build.nvr}"
            if every
            else f"{h.held.build.nvr}  (observed {iso(h.observed)})"
        )
        out(line + (f"  {notes}" if notes else ""))
    return 0
