"""`factory status` as text: one line per node, then a component's pins and waiting commits. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.core.overview import ComponentView
from pipeline.core.status import NodeView
from pipeline.formats.site_html import gate_text


def node_line(view: NodeView, width: int = 0) -> str:
    """`ID  STATE  latest good ID (time)  gate G  released ...  mirror ...  EOL ...: why`."""
    parts = [f"{view.id:{width}}", f"{view.state:<12}"]
    good = view.latest_good
    parts.append("no good compose" if good is None else f"latest good {good.compose_id} ({good.finished})")
    parts.append(f"gate {gate_text(view.gate)}")
    if view.running:
        parts.append(f"running {', '.join(view.running)} (reserved, not finished)")
    if view.state == "failed" and view.last is not None:
        parts.append(f"failed {view.last.compose_id}: {view.last.message or 'no message'}")
        parts.append(f"owners {', '.join(view.owners) or 'unknown'}")
        if view.blocks:
            parts.append(f"blocks {len(view.blocks)}")
    live = view.live
    if live:
        parts.append("released " + ", ".join(f"{r.compose_id} to {r.release.path}" for r in live))
        parts.append("mirror " + ("published" if view.mirror == "published" else "not recorded"))
    elif view.released:
        parts.append("no live release")
    if view.eol is not None:
        parts.append(f"EOL {view.eol.isoformat()}" + (" (passed)" if view.eol_passed else ""))
    why = "; ".join(r.text for r in view.reasons)
    return "  ".join(parts) + (f": {why}" if why else "")


def node_lines(views: Sequence[NodeView]) -> list[str]:
    width = max((len(v.id) for v in views), default=0)
    return [node_line(v, width) for v in views]


def component_lines(view: ComponentView) -> list[str]:
    """A component's pins at HEAD (and whether a newer commit waits), then its bumps."""
    lines = [f"component {view.name}"]
    for p in view.pins:
        pinned = p.ref[:12] if p.ref else "the head"
        head = (
            "head not recorded" if p.head is None else f"head {p.head.head[:12]} observed {p.head.observed}"
        )
        waiting = "a newer commit waits" if p.waiting else "at its head" if p.head is not None else "-"
        bumps = "".join(f", bump !{b.id} open" for b in p.bumps)
        lines.append(
            f"  {p.module} {p.branch}: pins {pinned}, built {p.built[:12] or 'nothing'} ({p.build}); "
            f"{head}; {waiting}{bumps}"
        )
    if not view.bumps_known:
        lines.append("  bump merge requests: not read from this forge")
    for b in view.built[:10]:
        nodes = len({n for n, _ in b.used_by}) + len(b.reached) + b.more
        lines.append(
            f"  commit {b.commit[:12]} built by {', '.join(c for _, c, _ in b.builds)}"
            + (f"; went into {nodes} nodes" if b.used_by else "")
            + ("; in a latest good compose" if b.current else "")
        )
    return lines
