"""The JSON of the status: one object per node (`factory status --json`, `status.json`) and the
JSON twin of every page of the site. Pure: values in, JSON data out.

Every twin has `format`, `page` (which kind of page), and `stamp` (when and from which
definitions commit it was made, and whether lineage is older than HEAD). Their shapes are
`pipeline/schemas/site.json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.core.overview import (
    ComponentView,
    ComposeView,
    Diff,
    EolEntry,
    FoldedBuilds,
    NodeDetail,
    Stale,
    Summary,
)
from pipeline.core.records import Record
from pipeline.core.states import NodeState
from pipeline.core.status import GateView, NodeView, Released

FORMAT = 1
LISTED = 50  # node ids listed in one reason or `blocks` of a status object (the count is whole)


def stamp(made: str, commit: str, commit_time: str, stale: Stale | None) -> dict[str, Any]:
    """When and from what a page was made; `stale` when lineage is older than HEAD."""
    return {
        "made": made,
        "commit": commit,
        "commit_time": commit_time,
        "stale": None
        if stale is None
        else {
            "newest_compose": stale.newest_compose or None,
            "newest_commit": stale.newest_commit or None,
            "newest_finished": stale.newest_finished or None,
            "changed_nodes": stale.changed,
        },
    }


def node_status(view: NodeView, page: str) -> dict[str, Any]:
    """One node's status: the object of `factory status --json` and of `status.json`."""
    return {
        "node": view.id,
        "kind": view.kind,
        "state": view.state,
        "current": view.current,
        "latest_good": None if view.latest_good is None else _brief(view.latest_good),
        "last_compose": None if view.last is None else {**_brief(view.last), "message": view.last.message},
        "composes": view.composes,
        "running": list(view.running),
        "gate": gate(view.gate, view.last),
        "reasons": [
            {"cause": r.cause, "text": r.text, "nodes": list(r.nodes[:LISTED]), "count": len(r.nodes)}
            for r in view.reasons
        ],
        "blocked_by": list(view.blocked_by),
        "blocks": {"count": len(view.blocks), "nodes": list(view.blocks[:LISTED])},
        "owners": list(view.owners),
        "eol": None if view.eol is None else view.eol.isoformat(),
        "eol_passed": view.eol_passed,
        "released": [released(r) for r in view.released],
        "mirror": view.mirror,
        "source": view.source or None,
        "page": page,
    }


def _brief(record: Record) -> dict[str, Any]:
    return {
        "compose_id": record.compose_id,
        "status": record.status,
        "finished": record.finished,
        "commit": record.commit,
    }


def gate(view: GateView, record: Record | None) -> dict[str, Any]:
    return {
        "state": view.state,
        "compose_id": None if record is None else record.compose_id,
        "required": [
            {"check": c.check, "state": c.state, "satisfied": c.satisfied, "reason": c.reason}
            for c in view.required
        ],
        "missing": list(view.missing),
        "waived": list(view.waived),
        "failed": list(view.failed),
    }


def released(item: Released) -> dict[str, Any]:
    return {
        "compose_id": item.compose_id,
        "status": item.release.status,
        "path": item.release.path,
        "time": item.release.time,
        "signed_by": item.release.signed_by,
        "live": item.release.live,
        "mirrors": [{"mirror": m.mirror, "time": m.time} for m in item.mirrors],
    }


def overview_page(
    summary: Summary,
    views: Sequence[NodeView],
    pages: dict[str, str],
    lists: dict[str, Any],
    page_stamp: dict[str, Any],
) -> dict[str, Any]:
    """`status.json`, a summary: counts, the lists shown first, the status in brief of every node
    that is not current (in the stable order), and the twins of the lists of every node."""
    return {
        "format": FORMAT,
        "page": "overview",
        "stamp": page_stamp,
        "counts": {state: count for state, count in summary.counts},
        "failures": [v.id for v in summary.failures],
        "running": [v.id for v in summary.running],
        "pending": [v.id for v in summary.pending],
        "out_of_date": [v.id for v in summary.out_of_date],
        "nodes": [node_brief(v, pages[v.id]) for v in views if v.state != NodeState.CURRENT],
        "lists": lists,
    }


def node_brief(view: NodeView, page: str) -> dict[str, Any]:
    """A node in `status.json`: where it stands in brief; its page's twin has the whole status."""
    return {
        "node": view.id,
        "kind": view.kind,
        "state": view.state,
        "current": view.current,
        "latest_good": None if view.latest_good is None else view.latest_good.compose_id,
        "gate": view.gate.state,
        "blocked_by": list(view.blocked_by),
        "blocks": len(view.blocks),
        "owners": list(view.owners),
        "eol": None if view.eol is None else view.eol.isoformat(),
        "released": [r.compose_id for r in view.live],
        "mirror": view.mirror,
        "page": page,
    }


def node_page(detail: NodeDetail, pages: dict[str, str], page_stamp: dict[str, Any]) -> dict[str, Any]:
    """A node page's twin: its status, its neighbours at HEAD, and its compose history."""
    return {"format": FORMAT, "page": "node", "stamp": page_stamp, **node_detail(detail, pages)}


def builds_page(
    module: str, details: Sequence[NodeDetail], pages: dict[str, str], page_stamp: dict[str, Any]
) -> dict[str, Any]:
    """The twin of a module's builds page: each build's `build_entry`, and as the page says once
    what every build shares, `shared` holds each field whose value is the same in every build
    (left out of each) and `shared_compose` each field the same in every compose shown: a
    build is `{**shared, **entry}`, each of its composes `{**shared_compose, **compose}`."""
    entries = [build_entry(d, pages) for d in details]
    shared = _common(entries, NEVER_SHARED)
    composes = [c for entry in entries for c in entry["history"]]
    shared_compose = _common(composes, frozenset({"compose_id"}))
    for entry in entries:
        for key in shared:
            del entry[key]
        for c in entry["history"]:
            for key in shared_compose:
                del c[key]
    return {
        "format": FORMAT,
        "page": "builds",
        "stamp": page_stamp,
        "module": module,
        "shared": shared,
        "shared_compose": shared_compose,
        "nodes": entries,
    }


NEVER_SHARED = frozenset({"node", "page", "latest_good", "last_compose", "history"})


def _common(items: Sequence[dict[str, Any]], never: frozenset[str]) -> dict[str, Any]:
    """The fields (but `never`) whose value is the same in every one of two or more items."""
    if len(items) < 2:
        return {}
    first = items[0]
    return {k: v for k, v in first.items() if k not in never and all(i[k] == v for i in items[1:])}


def build_entry(detail: NodeDetail, pages: dict[str, str]) -> dict[str, Any]:
    """A build in its module's builds twin: the facts of a node page's twin, each said once.

    23,000 builds at Fedora scale: with the whole node detail (compose briefs repeated, a gate
    object per compose, output paths with their compose directory) the builds twins were half
    of a 204 MiB site. Here a compose is named by its ID, a gate by its state unless it is
    failed or pending (then whole), pins, checks and tools are [name, value] pairs, and output
    paths are relative to the compose's directory."""
    view = detail.view
    gate_view = view.gate
    return {
        "node": view.id,
        "state": view.state,
        "current": view.current,
        "page": pages[view.id],
        "latest_good": None if view.latest_good is None else view.latest_good.compose_id,
        "last_compose": None if view.last is None else view.last.compose_id,
        "composes": view.composes,
        "older_composes": detail.older,
        "running": list(view.running),
        "gate": gate(gate_view, view.last) if gate_view.state in ("failed", "pending") else gate_view.state,
        "reasons": [
            {"cause": r.cause, "text": r.text, "nodes": list(r.nodes[:LISTED]), "count": len(r.nodes)}
            for r in view.reasons
        ],
        "blocked_by": list(view.blocked_by),
        "blocks": {"count": len(view.blocks), "nodes": list(view.blocks[:LISTED])},
        "owners": list(view.owners),
        "eol": None if view.eol is None else view.eol.isoformat(),
        "released": [r.compose_id for r in view.released],
        "source": view.source or None,
        "inputs": [v.id for v in detail.inputs],
        "consumers": [v.id for v in detail.consumers],
        "history": [_build_compose(c) for c in detail.history],
    }


def _build_compose(view: ComposeView) -> dict[str, Any]:
    record = view.record
    prefix = f"composes/{record.compose_id}/"
    return {
        "compose_id": record.compose_id,
        "status": record.status,
        "message": record.message,
        "latest_good": view.latest_good,
        "commit": record.commit,
        "run": record.run or None,
        "finished": record.finished,
        "gate": view.gate.state,
        "checks": None if view.checks is None else [[c.check, c.state, c.message] for c in view.checks],
        "made_from": [[n, c] for n, c in view.made_from],
        "pins": [[n, c] for n, c in record.pins],
        "used_by": [[n, c] for n, c in view.used_by],
        "diff": None if view.diff is None else _diff(view.diff),
        "outputs": [[o.path.removeprefix(prefix), o.size, o.sha256] for o in record.outputs],
        "tools": [[n, v] for n, v in record.tools],
        "released": [r.path for r in view.releases],
    }


def node_detail(detail: NodeDetail, pages: dict[str, str]) -> dict[str, Any]:
    """A node's status, its neighbours at HEAD, and its compose history."""
    return {
        "status": node_status(detail.view, pages[detail.view.id]),
        "inputs": [{"node": v.id, "state": v.state} for v in detail.inputs],
        "consumers": [{"node": v.id, "state": v.state} for v in detail.consumers],
        "history": [compose(c) for c in detail.history],
        "older_composes": detail.older,
    }


def compose(view: ComposeView) -> dict[str, Any]:
    record = view.record
    return {
        "compose_id": record.compose_id,
        "status": record.status,
        "message": record.message,
        "latest_good": view.latest_good,
        "commit": record.commit,
        "run": record.run or None,
        "input_digest": record.input_digest,
        "started": record.started,
        "finished": record.finished,
        "gate": gate(view.gate, record),
        "checks": None
        if view.checks is None
        else [
            {
                "check": c.check,
                "state": c.state,
                "message": c.message,
                "started": c.started,
                "finished": c.finished,
            }
            for c in view.checks
        ],
        "made_from": [{"node": n, "compose_id": c} for n, c in view.made_from],
        "pins": [{"component": n, "commit": c} for n, c in record.pins],
        "used_by": [{"node": n, "compose_id": c} for n, c in view.used_by],
        "diff": None if view.diff is None else _diff(view.diff),
        "outputs": [{"path": o.path, "size": o.size, "sha256": o.sha256} for o in record.outputs],
        "tools": [{"name": n, "version": v} for n, v in record.tools],
        "releases": [
            {"status": r.status, "path": r.path, "time": r.time, "signed_by": r.signed_by, "live": r.live}
            for r in view.releases
        ],
        "mirrors": [{"mirror": m.mirror, "time": m.time} for m in view.mirrors],
    }


def _diff(diff: Diff) -> dict[str, Any]:
    return {
        "previous": diff.previous,
        "definition_changed": diff.definition_changed,
        "inputs": [
            {"node": c.node, "before": c.before or None, "after": c.after or None} for c in diff.inputs
        ],
        "pins": [{"component": n, "before": b or None, "after": a or None} for n, b, a in diff.pins],
        "tools": [{"name": n, "before": b or None, "after": a or None} for n, b, a in diff.tools],
        "outputs_changed": diff.outputs_changed,
    }


def component_group_page(
    group: str, views: Sequence[ComponentView], page_stamp: dict[str, Any]
) -> dict[str, Any]:
    """The twin of a page of components: those of one module (`group`), each in full."""
    return {
        "format": FORMAT,
        "page": "component",
        "stamp": page_stamp,
        "group": group,
        "components": [component_status(v) for v in views],
    }


def component_status(view: ComponentView) -> dict[str, Any]:
    """A component's pins at HEAD, the commits built and where they went, its open bumps."""
    return {
        "component": view.name,
        "pins": [
            {
                "module": p.module,
                "branch": p.branch,
                "ref": p.ref or None,
                "build": p.build,
                "built": p.built or None,
                "head": None if p.head is None else {"commit": p.head.head, "observed": p.head.observed},
                "waiting": p.waiting,
                "bumps": [b.id for b in p.bumps],
            }
            for p in view.pins
        ],
        "built": [
            {
                "commit": b.commit,
                "current": b.current,
                "builds": [{"node": n, "compose_id": c, "status": s} for n, c, s in b.builds],
                "used_by": [{"node": n, "compose_id": c} for n, c in b.used_by],
                "reached": list(b.reached),
                "more_reached": b.more,
            }
            for b in view.built
        ],
        "bumps": None
        if not view.bumps_known
        else [
            {"id": b.id, "title": b.title, "branch": b.branch, "head": b.head, "labels": list(b.labels)}
            for b in view.bumps
        ],
    }


def list_page(
    title: str,
    rows: Sequence[NodeView | FoldedBuilds],
    number: int,
    pages: int,
    links: dict[str, str],
    page_stamp: dict[str, Any],
) -> dict[str, Any]:
    """One page of a filtered, paginated list of nodes (`links`: page of each node and module)."""
    return {
        "format": FORMAT,
        "page": "list",
        "stamp": page_stamp,
        "title": title,
        "number": number,
        "pages": pages,
        "nodes": [
            {"builds": v.module, "state": "current", "count": v.count, "page": links[v.module]}
            if isinstance(v, FoldedBuilds)
            else {"node": v.id, "state": v.state, "page": links[v.id]}
            for v in rows
        ],
    }


def components_page(
    groups: dict[str, list[str]], number: int, pages: int, links: dict[str, str], page_stamp: dict[str, Any]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "page": "components",
        "stamp": page_stamp,
        "number": number,
        "pages": pages,
        "groups": [{"group": g, "page": links[g], "components": list(names)} for g, names in groups.items()],
    }


def eol_page(entries: Sequence[EolEntry], page_stamp: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "page": "eol",
        "stamp": page_stamp,
        "entries": [
            {
                "kind": e.kind,
                "name": e.name,
                "eol": e.eol.isoformat(),
                "node": e.node,
                "passed": e.passed,
                "days": e.days,
            }
            for e in entries
        ],
    }


def graph_page(
    views: Sequence[NodeView],
    edges: Sequence[tuple[str, str]],
    drawings: Sequence[str],
    page_stamp: dict[str, Any],
) -> dict[str, Any]:
    """The artifact graph: every node with its state, every edge (input -> consumer), the SVGs."""
    return {
        "format": FORMAT,
        "page": "graph",
        "stamp": page_stamp,
        "nodes": [{"node": v.id, "kind": v.kind, "state": v.state} for v in views],
        "edges": [[a, b] for a, b in edges],
        "drawings": list(drawings),
    }
