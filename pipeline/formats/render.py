"""Text, Markdown and DOT renderings of plans, dependencies and the graph. Pure: returns str."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pipeline.core.deps import Dependency
from pipeline.core.errors import Diagnostic
from pipeline.core.graph import Graph
from pipeline.core.plan import Plan


def diagnostics(items: Iterable[Diagnostic]) -> str:
    return "\n".join(d.render() for d in items)


def plan_text(plan: Plan, title: str) -> str:
    if not plan.tiers:
        removed = f"\nremoved (no longer defined): {', '.join(plan.removed)}" if plan.removed else ""
        return f"{title}: nothing to compose ({plan.unchanged} nodes unchanged){removed}"
    lines = [f"{title}: {len(plan.nodes)} nodes in {len(plan.tiers)} tiers ({plan.unchanged} unchanged)"]
    for n, tier in enumerate(plan.tiers, 1):
        lines.append(f"tier {n}/{len(plan.tiers)}")
        for node in tier:
            lines.append(f"  {node.id}")
            lines.extend(f"      {reason}" for reason in node.reasons)
    if plan.removed:
        lines.append("removed (no longer defined): " + ", ".join(plan.removed))
    return "\n".join(lines)


def plan_markdown(plan: Plan, title: str) -> str:
    if not plan.tiers:
        return f"### {title}\n\nNothing to compose: all {plan.unchanged} nodes are unchanged.\n"
    lines = [
        f"### {title}",
        "",
        f"{len(plan.nodes)} nodes in {len(plan.tiers)} tiers; {plan.unchanged} unchanged nodes are skipped.",
        "",
        "| tier | node | why |",
        "| --- | --- | --- |",
    ]
    for n, tier in enumerate(plan.tiers, 1):
        for node in tier:
            lines.append(f"| {n} | `{node.id}` | {'; '.join(node.reasons)} |")
    if plan.removed:
        lines += ["", "Removed: " + ", ".join(f"`{r}`" for r in plan.removed)]
    return "\n".join(lines) + "\n"


def deps_text(
    subject: str, eol: str, items: list[Dependency], reverse: bool, *, retired: bool = False
) -> str:
    """A module's dependencies (or with `reverse` its dependants and the variants shipping it),
    each with its EOL and how it stands against the module's: what reaches its End Of Life
    first is what owners must plan for."""
    head = f"{subject} (EOL {eol}{', retired' if retired else ''})"
    if not items:
        return head + ("\n  nothing depends on it" if reverse else "\n  no dependencies")
    lines = [head]
    mine = dt.date.fromisoformat(eol)
    for dep in items:
        indent = "  " * max(dep.depth, 1)
        when = f"EOL {dep.eol}{_against(dep.eol, mine, subject)}{', retired' if dep.retired else ''}"
        if dep.kind == "variant":
            how = "ships it" if dep.via == subject else f"ships it (a module it selects requires {subject})"
            lines.append(f"  variant {dep.name} {how} ({when})")
        elif reverse:
            lines.append(f"{indent}{dep.name} {dep.relation} {dep.via} ({when})")
        else:
            lines.append(f"{indent}{dep.via} {dep.relation} {dep.name} ({when})")
    return "\n".join(lines)


def shipped_text(uid: str, eol: str, items: list[Dependency], *, retired: bool = False) -> str:
    """The modules a variant ships, the one reaching its End Of Life first first, each with its
    EOL against the variant's."""
    lines = [f"variant {uid} (EOL {eol}{', retired' if retired else ''}) ships {len(items)} module streams"]
    mine = dt.date.fromisoformat(eol)
    for dep in items:
        how = "selected" if dep.relation == "selects" else f"required by {dep.via}"
        flag = ", retired" if dep.retired else ""
        lines.append(f"  {dep.name} {how} (EOL {dep.eol}{_against(dep.eol, mine, uid)}{flag})")
    return "\n".join(lines)


def _against(eol: dt.date, other: dt.date, name: str) -> str:
    days = (eol - other).days
    if days == 0:
        return f", the same day as {name}"
    return f", {abs(days)} days {'after' if days > 0 else 'before'} {name}"


def graph_text(graph: Graph) -> str:
    tiers = graph.tiers(graph.nodes)
    lines = [f"{len(graph.nodes)} nodes in {len(tiers)} tiers"]
    for n, tier in enumerate(tiers, 1):
        lines.append(f"tier {n}")
        for node_id in tier:
            inputs = graph.nodes[node_id].inputs
            shown = ", ".join(inputs) if len(inputs) <= 4 else f"{', '.join(inputs[:3])}, ... ({len(inputs)})"
            lines.append(f"  {node_id}" + (f"  <- {shown}" if inputs else ""))
    return "\n".join(lines)


def graph_dot(graph: Graph) -> str:
    colors = {
        "build": "gray80",
        "binary": "gray90",
        "module": "lightblue",
        "repo": "palegreen",
        "ostree": "khaki",
        "container": "lightsalmon",
        "iso": "plum",
    }
    lines = ["digraph factory {", "  rankdir=LR;", '  node [shape=box, style=filled, fontname="monospace"];']
    for node_id in sorted(graph.nodes, key=graph.order):
        color = colors.get(graph.nodes[node_id].kind, "white")
        lines.append(f'  "{node_id}" [fillcolor={color}];')
    for node_id in sorted(graph.nodes):
        for i in graph.nodes[node_id].inputs:
            lines.append(f'  "{i}" -> "{node_id}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
