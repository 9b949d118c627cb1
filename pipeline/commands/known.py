"""What a user may name on the command line, gathered only once a name turned out unknown.

A node is known when HEAD's graph has it or lineage holds a compose of it (a retired node, an
old build); a compose when lineage holds it; a release when HEAD composes it, a `release/R`
branch exists or a latest-good or retired ref names it. `pipeline.core.names` words the error
and finds the nearest names.
"""

from __future__ import annotations

import contextlib

from pipeline.core.errors import FactoryError
from pipeline.core.names import unknown
from pipeline.git import repo as gitrepo
from pipeline.records.lineage import Lineage
from pipeline.records.refs import RETIRED
from pipeline.workspace import Workspace

RELEASE_BRANCHES = "refs/heads/release/"
NODES_LISTED = "`factory graph` lists the nodes"


def nodes(ws: Workspace, lineage: Lineage) -> set[str]:
    """Every node of HEAD's graph and every node lineage holds a compose of."""
    found = {node for _, node in _briefs(lineage)}
    with contextlib.suppress(FactoryError):  # no HEAD yet, or invalid definitions: lineage alone
        found |= set(ws.graph("HEAD").nodes)
    return found


def require_node(ws: Workspace, lineage: Lineage, node: str, *, where: str = "") -> None:
    """InvalidInput(code="unknown-node") with the nearest nodes unless `node` is known."""
    candidates = nodes(ws, lineage)
    if node not in candidates:
        raise unknown("node", node, candidates, where=where, listing=NODES_LISTED)


def components(ws: Workspace, lineage: Lineage) -> set[str]:
    """Every component a module pins at HEAD and every component lineage holds a build of."""
    found = {component for b in lineage.briefs() for component, _ in b.pins}
    with contextlib.suppress(FactoryError):
        defs = ws.load("HEAD", check_distgit=False)
        found |= {p.component for m in defs.modules.values() for p in m.components}
    return found


def compose_ids(lineage: Lineage) -> list[str]:
    """The compose ID of every compose lineage holds."""
    return [cid for cid, _ in _briefs(lineage)]


def releases(ws: Workspace, lineage: Lineage) -> set[str]:
    """The releases a user may name: HEAD's, each `release/R` branch's, each one lineage moved."""
    found = set(lineage.latest_everywhere()) | {p.release for p in lineage.pointers(RETIRED)}
    found |= {name.removeprefix(RELEASE_BRANCHES) for name in gitrepo.refs(ws.repo, RELEASE_BRANCHES)}
    with contextlib.suppress(FactoryError):
        found.add(ws.config("HEAD").release.version)
    return found


def _briefs(lineage: Lineage) -> list[tuple[str, str]]:
    return [(b.compose_id, b.node) for b in lineage.briefs()]
