"""`factory compose`: compose what is out of date, tier by tier, recording lineage."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Collection

from pipeline.commands.output import out, out_json
from pipeline.core.states import NodeStatus
from pipeline.engine.compose import Composed, compose
from pipeline.engine.progress import TerminalReporter
from pipeline.git import repo as gitrepo
from pipeline.workspace import Workspace


def run(args: argparse.Namespace) -> int:
    composed = composing(
        Workspace.open(args.repo),
        nodes=args.nodes,
        since=args.since,
        compose_type=args.type,
        workers=args.workers,
        as_json=args.json,
    )
    return show(composed, as_json=args.json)


def composing(
    ws: Workspace,
    *,
    nodes: Collection[str],
    since: str | None,
    compose_type: str,
    workers: int,
    as_json: bool,
) -> Composed:
    """The compose use-case with a terminal's progress on stderr (none for JSON output)."""
    gc.enable()  # a long run with worker threads: collect as usual
    if not as_json and gitrepo.worktree_differs(ws.repo):
        sys.stderr.write("note: uncommitted changes to the definitions are not composed; composing HEAD\n")
    return compose(
        ws,
        nodes=nodes,
        since=since,
        compose_type=compose_type,
        workers=workers,
        reporter=None if as_json else TerminalReporter(sys.stderr),
    )


def show(composed: Composed, *, as_json: bool) -> int:
    """Print what a compose run did (JSON, or a summary and every node that is not good);
    its exit status: 0 when every node is good, else 1."""
    result = composed.run
    if as_json:
        out_json(composed.to_json())
    else:
        counts = ", ".join(f"{result.count(s)} {s.lower()}" for s in NodeStatus if result.count(s))
        out(f"{result.status}: {counts or 'nothing to do'} in {result.seconds:.1f}s")
        out(f"run {composed.run_id}: `factory lineage {composed.run_id}` lists the composes it made")
        out(composed.moved.summary())
        if not composed.on_branch.moves_latest:
            out(
                f"latest good did not move: HEAD is {composed.on_branch.why}; this run's composes"
                " are in lineage, marked so (`factory latest --rev HEAD` lists them)"
            )
        if composed.not_composable:
            out(f"not composable yet (no composer for their kind): {', '.join(composed.not_composable)}")
        for r in result.results:
            if not r.status.ok:
                out(f"  {r.status.lower()}: {r.node}: {r.message.splitlines()[0] if r.message else ''}")
    return 0 if composed.finished else 1
