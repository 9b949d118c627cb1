"""Text, Markdown and DOT renderings of plans, dependencies and the graph. Pure: returns str."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.core.deps import Dependency
from pipeline.core.errors import Diagnostic
from pipeline.core.graph import Graph
from pipeline.core.plan import Plan


def diagnostics(items: Iterable[Diagnostic]) -> str:
    return "\n".join(d.render() for d in items)


def plan_text(plan: Plan, title: str) -> str:
    if not plan.tiers:
        return f"{title}: nothing to compose ({plan.unchanged} nodes unchanged)"
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


def deps_text(subject: str, eol: str, items: list[Dependency], reverse: bool) -> str:
    head = f"{subject} (EOL {eol})"
    if not items:
        return head + ("\n  nothing depends on it" if reverse else "\n  no dependencies")
    lines = [head]
    for dep in items:
        indent = "  " * max(dep.depth, 1)
        if dep.kind == "variant":
            lines.append(f"  variant {dep.name} ships it (EOL {dep.eol})")
        elif reverse:
            lines.append(f"{indent}{dep.name} {dep.relation} {dep.via} (EOL {dep.eol})")
        else:
            lines.append(f"{indent}{dep.via} {dep.relation} {dep.name} (EOL {dep.eol})")
    return "\n".join(lines)


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
