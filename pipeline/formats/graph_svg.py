"""The artifact graph as SVG, nodes coloured by state. Pure: boxes and edges in, SVG text out.

A layered drawing, made here rather than by Graphviz because it must stay fast for 24,000 nodes
and byte-identical from run to run: a node's column is one past its deepest input's, and within
a column nodes are ordered by the mean row of their inputs (one barycentre pass, which keeps
most edges short), then by id. Edges are curves from an input's right side to a consumer's left
side. Every box links to its node's page and says its state in words as well as in colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from pipeline.core.states import NodeState

WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN = 250, 34, 90, 8, 10
LABEL = 34  # characters of a label shown in a box (the whole id is in its tooltip)

COLOURS: Mapping[str, str] = {
    NodeState.CURRENT: "#c8e6c9",
    NodeState.OUT_OF_DATE: "#fff3b0",
    NodeState.RUNNING: "#bbdefb",
    NodeState.FAILED: "#ef9a9a",
    NodeState.BLOCKED: "#e1bee7",
    NodeState.NOT_COMPOSED: "#e0e0e0",
    NodeState.REMOVED: "#f5f5f5",
    NodeState.PENDING: "#ffe0b2",
}


@dataclass(frozen=True, slots=True)
class Box:
    """One node to draw: its id, the text in its box, its state and the page it links to."""

    id: str
    label: str
    state: str
    href: str


def draw(boxes: Sequence[Box], edges: Sequence[tuple[str, str]], title: str) -> str:
    """An SVG document of the boxes and the edges (input id, consumer id) between them."""
    known = {b.id for b in boxes}
    inputs: dict[str, list[str]] = {b.id: [] for b in boxes}
    for source, target in edges:
        if source in known and target in known:
            inputs[target].append(source)
    column = _columns(boxes, inputs)
    rows = _rows(boxes, inputs, column)
    height = max((len(c) for c in _by_column(boxes, column).values()), default=0)
    width = 1 + max(column.values(), default=0)
    size_x = 2 * MARGIN + width * WIDTH + (width - 1) * GAP_X
    size_y = 2 * MARGIN + height * (HEIGHT + GAP_Y)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size_x}" height="{size_y}" '
        f'viewBox="0 0 {size_x} {size_y}" role="img" aria-labelledby="t">',
        f'<title id="t">{escape(title)}</title>',
        "<style>text{font:12px monospace;fill:#111}.s{font-size:10px;fill:#333}"
        "path{fill:none;stroke:#8a8a8a;stroke-width:1}rect{stroke:#555;stroke-width:1}</style>",
    ]
    position = {b.id: _at(column[b.id], rows[b.id]) for b in boxes}
    for b in boxes:
        for a in sorted(inputs[b.id]):
            (x1, y1), (x2, y2) = position[a], position[b.id]
            sx, sy, ex, ey = x1 + WIDTH, y1 + HEIGHT // 2, x2, y2 + HEIGHT // 2
            mid = (sx + ex) // 2
            out.append(f'<path d="M{sx} {sy}C{mid} {sy} {mid} {ey} {ex} {ey}"/>')
    for b in boxes:
        x, y = position[b.id]
        label = b.label if len(b.label) <= LABEL else b.label[: LABEL - 1] + "…"
        out.append(
            f'<a href="{escape(b.href)}" target="_top"><title>{escape(b.id)}: {escape(b.state)}</title>'
            f'<rect x="{x}" y="{y}" width="{WIDTH}" height="{HEIGHT}" rx="4" '
            f'fill="{COLOURS.get(b.state, "#ffffff")}"/>'
            f'<text x="{x + 6}" y="{y + 14}">{escape(label)}</text>'
            f'<text class="s" x="{x + 6}" y="{y + 28}">{escape(b.state)}</text></a>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _at(column: int, row: int) -> tuple[int, int]:
    return MARGIN + column * (WIDTH + GAP_X), MARGIN + row * (HEIGHT + GAP_Y)


def _columns(boxes: Sequence[Box], inputs: Mapping[str, Sequence[str]]) -> dict[str, int]:
    column: dict[str, int] = {}

    def visit(node: str, trail: frozenset[str]) -> int:
        if node not in column:
            deeper = [visit(i, trail | {node}) for i in inputs[node] if i not in trail]
            column[node] = 1 + max(deeper) if deeper else 0
        return column[node]

    for b in boxes:
        visit(b.id, frozenset())
    return column


def _by_column(boxes: Sequence[Box], column: Mapping[str, int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for b in boxes:
        found.setdefault(column[b.id], []).append(b.id)
    return found


def _rows(
    boxes: Sequence[Box], inputs: Mapping[str, Sequence[str]], column: Mapping[str, int]
) -> dict[str, int]:
    rows: dict[str, int] = {}
    for number, members in sorted(_by_column(boxes, column).items()):
        if number == 0:
            ordered = sorted(members)
        else:

            def centre(node: str) -> tuple[float, str]:
                placed = [rows[i] for i in inputs[node] if i in rows]
                return (sum(placed) / len(placed) if placed else 0.0, node)

            ordered = sorted(members, key=centre)
        rows.update((node, row) for row, node in enumerate(ordered))
    return rows
