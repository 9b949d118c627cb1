"""The local forge's pipeline: what CI does for a merge request, on this machine.

A merge request's commit is composed as a merge request pipeline composes it (`ci` composes of
what its change plans, and what that needs), each checked and gated by the policies of that
commit; off the release's branches, so latest good does not move until it is merged and its
branch composes (reusing these composes by their keys).
"""

from __future__ import annotations

from pipeline.bot.forge_local import Pipeline
from pipeline.workspace import Workspace


def compose_pipeline(ws: Workspace, workers: int = 2) -> Pipeline:
    """A LocalForge pipeline composing an MR's commit; "" when every node is good, else why not."""

    def run(commit: str, target: str) -> str:
        from pipeline.engine.compose import compose

        composed = compose(ws, rev=commit, since=target, compose_type="ci", workers=workers)
        if composed.finished:
            return ""
        bad = [r for r in composed.run.results if not r.status.ok]
        return "; ".join(
            f"{r.node} {r.status}" + (f": {r.message}" if r.message else "") for r in bad
        ) or str(composed.run.status)

    return run
