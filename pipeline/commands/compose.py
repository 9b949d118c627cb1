"""`factory compose`: compose what is out of date, tier by tier, recording lineage."""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.commands.output import out, out_json
from pipeline.compose.registry import checks, composers
from pipeline.core import plan as planner
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.model import Definitions
from pipeline.core.records import COMPOSE_TYPES
from pipeline.core.states import NodeStatus, RunStatus
from pipeline.engine import executor
from pipeline.engine.progress import TerminalReporter
from pipeline.engine.workspace import Workspace
from pipeline.git import repo as gitrepo
from pipeline.git.distgit import DistGit
from pipeline.release import policies
from pipeline.store.lineage import Lineage


def run(args: argparse.Namespace) -> int:
    gc.enable()  # a long run with worker threads: collect as usual
    ws = Workspace.open(args.repo)
    if args.type not in COMPOSE_TYPES:
        raise InvalidInput(f"unknown compose type {args.type!r}", hint="types: " + ", ".join(COMPOSE_TYPES))
    commit = gitrepo.resolve(ws.repo, "HEAD")
    defs = ws.load("HEAD")
    if defs.config.builder != "local":
        raise OperationFailed(
            f"factory.yaml asks for the {defs.config.builder!r} builder, which factory does not have yet",
            hint="set builder.kind: local (rpmbuild on this machine)",
            code="unsupported-builder",
        )
    graph = ws.graph("HEAD")
    ws.save()
    if gitrepo.worktree_differs(ws.repo) and not args.json:
        sys.stderr.write("note: uncommitted changes to the definitions are not composed; composing HEAD\n")
    unknown = [n for n in args.nodes if n not in graph.nodes]
    if unknown:
        raise InvalidInput(
            f"no node {unknown[0]!r}", hint="`factory graph` lists the nodes", code="unknown-node"
        )
    if args.nodes:
        wanted = set(args.nodes)
    elif args.since:
        wanted = {n.id for n in planner.plan(ws.graph(args.since), graph).nodes}
    else:
        wanted = set(graph.nodes)
    registry = composers()
    targets = {n for n in graph.upstream(wanted) if graph.nodes[n].kind in registry}
    waiting = sorted(n for n in wanted if graph.nodes[n].kind not in registry)
    output_dir = Path(defs.config.output_dir)
    if not output_dir.is_absolute():
        output_dir = ws.root / output_dir
    ctx = executor.Context(
        defs=defs,
        commit=str(commit.id),
        commit_time=commit.commit_time,
        source_root=ws.root,
        output_dir=output_dir,
        compose_type=args.type,
        date=dt.datetime.now(dt.UTC).strftime("%Y%m%d"),
        resolve_head=_head_resolver(defs, ws.root),
    )
    reporter = None if args.json else TerminalReporter(sys.stderr)
    lineage = Lineage(ws.root)
    policy = policies.load(ws.repo, str(commit.id))  # gate by the policies of the commit composed
    result = executor.execute(
        graph,
        targets,
        registry,
        lineage,
        ctx,
        workers=args.workers,
        reporter=reporter,
        checks=checks(),
        policy=policy,
    )
    if args.json:
        out_json(
            {
                "status": result.status,
                "seconds": round(result.seconds, 3),
                "nodes": [
                    {
                        "node": r.node,
                        "status": r.status,
                        "compose_id": r.compose_id,
                        "message": r.message,
                        "tier": r.tier,
                    }
                    for r in result.results
                ],
                "not_composable_yet": waiting,
            }
        )
    else:
        counts = ", ".join(f"{result.count(s)} {s.lower()}" for s in NodeStatus if result.count(s))
        out(f"{result.status}: {counts or 'nothing to do'} in {result.seconds:.1f}s")
        if waiting:
            out(f"not composable yet (no composer for their kind): {', '.join(waiting)}")
        for r in result.results:
            if not r.status.ok:
                out(f"  {r.status.lower()}: {r.node}: {r.message.splitlines()[0] if r.message else ''}")
    return 0 if result.status == RunStatus.FINISHED else 1


def _head_resolver(defs: Definitions, root: Path) -> Callable[[str, str], str | None]:
    """Reads a branch head from the component's dist-git (for pins that follow a branch)."""
    distgit = DistGit(root)

    def head(component: str, branch: str) -> str | None:
        pins = [
            p
            for m in defs.modules.values()
            for p in m.components
            if (p.component, p.branch) == (component, branch)
        ]
        return distgit.head(defs.config.distgit_for(pins[0]), branch) if pins else None

    return head
