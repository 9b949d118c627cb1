"""The compose use-case: compose what is out of date at HEAD, tier by tier, recording lineage.

`factory compose` and the bot (`factory bot reconcile --trigger`) both call `compose`: typed
values in (which nodes, since when, the compose type, the workers, a Reporter), a typed result
out (the executor's RunResult and what could not be composed). Printing is the callers' business.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.compose.sources import SourceReader
from pipeline.core import plan as planner
from pipeline.core import runs
from pipeline.core.branches import OnBranch
from pipeline.core.model import Definitions
from pipeline.core.names import unknown
from pipeline.core.records import COMPOSE_TYPES
from pipeline.core.states import RunStatus
from pipeline.engine import executor
from pipeline.git import repo as gitrepo
from pipeline.git.distgit import DistGit
from pipeline.git.release_branch import on_release_branch
from pipeline.plugins import checks, composers
from pipeline.records.lineage import Lineage
from pipeline.records.runs import reserve as reserve_run
from pipeline.transfer import Moved, open_transfer
from pipeline.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Composed:
    """What one compose run did, and whether the commit composed is on one of its release's
    branches (only then did latest good move)."""

    run: executor.RunResult
    not_composable: tuple[str, ...]  # nodes asked for whose kind has no composer (yet)
    moved: Moved  # what went to and came from the artifact store
    on_branch: OnBranch
    run_id: str = ""  # the one name of the run's composes (`pipeline.core.runs`)

    @property
    def finished(self) -> bool:
        """Whether every node is good after the run (RunStatus FINISHED)."""
        return self.run.status == RunStatus.FINISHED

    def to_json(self) -> dict[str, Any]:
        """The run as `factory compose --json` prints it."""
        return {
            "run": self.run_id,
            "status": self.run.status,
            "seconds": round(self.run.seconds, 3),
            "nodes": [
                {
                    "node": r.node,
                    "status": r.status,
                    "compose_id": r.compose_id,
                    "message": r.message,
                    "tier": r.tier,
                }
                for r in self.run.results
            ],
            "not_composable_yet": list(self.not_composable),
            "branch": self.on_branch.branch,  # "": off the release's branches, latest good unmoved
            "release_branches": list(self.on_branch.names),
            "store": {
                name: {"files": tally.files, "bytes": tally.bytes}
                for name, tally in (
                    ("fetched", self.moved.fetched),
                    ("cached", self.moved.cached),
                    ("put", self.moved.put),
                )
            },
        }


def compose(
    ws: Workspace,
    *,
    nodes: Collection[str] = (),
    since: str | None = None,
    compose_type: str = "nightly",
    workers: int = 2,
    reporter: executor.Reporter | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    env: Mapping[str, str] = os.environ,
    rev: str = "HEAD",
) -> Composed:
    """Compose the committed HEAD (or `rev`: a merge request's commit; never uncommitted
    changes): `nodes` and what they need, else
    what changed `since` a revision and what that needs, else every node. Every compose is
    checked and gated by the policies of HEAD. Latest good moves only when HEAD is on one of
    its release's branches (`pipeline.core.branches`; `env` holds GitLab's variables). Every
    compose made records the run's ID: `FACTORY_RUN`'s, a GitLab pipeline's, else one reserved
    here (`pipeline.core.runs`). A production run reuses only production composes (builds
    excepted: packages are shared by every type), so what it ships has production IDs."""
    if compose_type not in COMPOSE_TYPES:
        raise unknown("compose-type", compose_type, COMPOSE_TYPES)
    commit = gitrepo.resolve(ws.repo, rev)
    defs = ws.load(rev)
    graph = ws.graph(rev)
    ws.save()
    missing = [n for n in nodes if n not in graph.nodes]
    if missing:
        raise unknown(
            "node",
            missing[0],
            list(graph.nodes),
            where=f" at {rev}",
            listing="`factory graph` lists the nodes",
        )
    if nodes:
        wanted = set(nodes)
    elif since:
        wanted = {n.id for n in planner.plan(ws.graph(since), graph).nodes}
    else:
        wanted = set(graph.nodes)
    registry = composers()
    targets = {n for n in graph.upstream(wanted) if graph.nodes[n].kind in registry}
    waiting = tuple(sorted(n for n in wanted if graph.nodes[n].kind not in registry))
    output_dir = Path(defs.config.output.dir)
    on_branch = on_release_branch(ws.repo, str(commit.id), defs.config.release, env)
    date = clock().strftime("%Y%m%d")
    release = defs.config.release
    lineage = Lineage(ws.root, release.version)  # latest good of the release composed
    run_id = runs.from_env(env, release.short, release.version, compose_type) or reserve_run(
        ws.repo, release.short, release.version, date, compose_type, str(commit.id), lineage.runs()
    )
    ctx = executor.Context(
        defs=defs,
        commit=str(commit.id),
        commit_time=commit.commit_time,
        source_root=ws.root,
        output_dir=output_dir if output_dir.is_absolute() else ws.root / output_dir,
        compose_type=compose_type,
        date=date,
        branch=on_branch.branch,
        resolve_head=_head_resolver(defs, ws.root),
        sources=SourceReader(defs.config, ws.root, os.environ) if defs.config.sources else None,
        run=run_id,
    )
    policy = ws.policy(str(commit.id))  # gate by the policies of the commit composed
    transfer = open_transfer(defs.config.store, root=ws.root, output_dir=ctx.output_dir, env=os.environ)
    result = executor.execute(
        graph,
        targets,
        registry,
        lineage,
        ctx,
        workers=workers,
        reporter=reporter,
        checks=checks(),
        policy=policy,
        transfer=transfer,
    )
    return Composed(result, waiting, transfer.moved, on_branch, run_id)


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
