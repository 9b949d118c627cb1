"""The HTML of a module's builds page: every build the module is the first to use, in one
table. Pure: values in, text out.

23,000 builds at Fedora scale: a page each, with the whole frame and every compose as an
article, made the site 50,000 files and most of its 278 MiB; a section each still made 44 MB.
Here a build is a group of rows of its module's table (its row header's id is the build's slug,
each compose's row is the compose ID), saying what a node page says in fewer words: its state
and why, its neighbours at HEAD, and its composes with lineage both ways, the dist-git commits,
the gate and checks, and the outputs with sizes and sha256; owners, EOL and source said once
when every build of the page shares them. The page's JSON twin holds the facts of each build
(`status_json.build_entry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.core.overview import ComposeView, NodeDetail
from pipeline.core.status import NodeView
from pipeline.formats.site_html import (
    SHORT,
    Link,
    _count,
    _named,
    e,
    gate_text,
    message,
    node_link,
    reasons_html,
    released_text,
    state,
)


def builds(
    details: Sequence[NodeDetail],
    link: Link,
    component_link: Callable[[str], str],
    anchor: Callable[[str], str],
) -> str:
    """One table: a build per group of rows (its row header's id is `anchor(node)`), a compose per
    row (its id is the compose ID). A fact or a column whose text is the same for every build of
    the page (their owners, EOL, source, what they are used by at HEAD, the module compose they
    went into, their gate) is said once above it.

    A section per build with its own heading, facts line and compose table made 1.9 KiB of
    HTML a build at Fedora scale; these rows say the same in about a third of it."""
    facts = [_facts(d.view) for d in details]
    shared = {k: v for k, v in facts[0].items() if all(f[k] == v for f in facts)} if facts else {}
    own = [(_stands(d, f, shared, link), _at_head(d, link)) for d, f in zip(details, facts, strict=True)]
    composes = [[_compose_cells(c, link, component_link) for c in d.history] for d in details]
    kept = list(range(len(COLUMNS)))
    for column in SHAREABLE:
        if column in BUILD_COLUMNS:
            texts = {cells[column] for cells in own}
        else:
            texts = {cells[column - len(BUILD_COLUMNS)] for rows in composes for cells in rows}
        if len(texts) == 1:
            kept.remove(column)
            shared[COLUMNS[column]] = texts.pop()
    said = "; ".join(f"{k}: {v}" for k, v in shared.items())
    head = '<th scope="col">build</th>' + "".join(f'<th scope="col">{COLUMNS[c]}</th>' for c in kept)
    body = "".join(
        _rows(d, anchor(d.view.id), cells, rows, kept)
        for d, cells, rows in zip(details, own, composes, strict=True)
    )
    return (
        (f'<p class="facts">Every build below, unless its row says otherwise: {said}.</p>' if said else "")
        + f"<table><caption>{len(details)} builds, in build order; their composes newest first</caption>"
        + f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


COLUMNS = (
    "where it stands",
    "at HEAD",
    "compose",
    "made from, dist-git",
    "used by",
    "gate, checks",
    "outputs",
)
BUILD_COLUMNS = frozenset({0, 1})  # a build's own; the others are a compose's (from 2 on)
SHAREABLE = frozenset({0, 1, 4, 5})


def _facts(v: NodeView) -> dict[str, str]:
    return {
        "owners": e(", ".join(v.owners)) or "-",
        "EOL": "-" if v.eol is None else e(v.eol.isoformat()) + (" (passed)" if v.eol_passed else ""),
        "released": e(released_text(v.released)),
        "defined in": f"<code>{e(v.source)}</code>" if v.source else "not defined at HEAD",
    }


def _at_head(detail: NodeDetail, link: Link) -> str:
    made_from = ", ".join(f"{node_link(i.id, link)} {state(i.state)}" for i in detail.inputs)
    used_by = ", ".join(f"{node_link(c.id, link)} {state(c.state)}" for c in detail.consumers)
    return f"made from {made_from or 'dist-git only'}; used by {used_by or 'nothing'}"


def _stands(detail: NodeDetail, facts: dict[str, str], shared: dict[str, str], link: Link) -> str:
    """Where a build stands: its state, and why, and the facts the page does not say once."""
    v = detail.view
    good = v.latest_good
    stands = [state(v.state)]
    if v.running:
        stands.append(f"running {e(', '.join(v.running))} (reserved, not finished)")
    shown = {c.record.compose_id for c in detail.history}
    if not detail.history:  # else its last compose's row says its gate
        stands.append(f"gate {e(gate_text(v.gate))}")
    if good is None or good.compose_id not in shown:  # else its row says "latest good"
        stands.append("latest good " + ("-" if good is None else e(good.compose_id)))
    stands += [f"{k}: {val}" for k, val in facts.items() if shared.get(k) != val]
    if v.reasons:
        stands.append(reasons_html(v.reasons, link))
    if v.blocks:
        stands.append(f"blocks {_count(len(v.blocks), 'node')}: {_named(v.blocks, link, 50)}")
    if detail.older:
        stands.append(f"{detail.older} older composes not shown")
    return "<br>".join(stands)


def _rows(
    detail: NodeDetail,
    anchor: str,
    own: Sequence[str],
    composes: Sequence[Sequence[str]],
    kept: Sequence[int],
) -> str:
    """A build's rows: its header and own cells span its composes' rows (one row when none)."""
    span = max(1, len(detail.history))
    spanned = f' rowspan="{span}"' if span > 1 else ""
    lead = f'<th scope="row" id="{e(anchor)}"{spanned}>{e(detail.view.id)}</th>' + "".join(
        f"<td{spanned}>{own[c]}</td>" for c in kept if c in BUILD_COLUMNS
    )
    columns = [c - len(BUILD_COLUMNS) for c in kept if c not in BUILD_COLUMNS]
    if not detail.history:
        return f'<tr>{lead}<td colspan="{len(columns)}">never composed</td></tr>'
    return "".join(
        f'<tr id="{e(c.record.compose_id)}">'
        + (lead if n == 0 else "")
        + "".join(f"<td>{cells[i]}</td>" for i in columns)
        + "</tr>"
        for n, (c, cells) in enumerate(zip(detail.history, composes, strict=True))
    )


def _compose_cells(view: ComposeView, link: Link, component_link: Callable[[str], str]) -> tuple[str, ...]:
    r = view.record
    mark = " (latest good)" if view.latest_good else f" {state(r.status.lower())}"  # a latest good finished
    head = (
        f"{e(r.compose_id)}{mark}"
        f"<br><small>{e(r.finished)} from <code>{e(r.commit[:SHORT])}</code></small>"
        + (f"<br>{message(r.message)}" if r.message else "")
        + _diff(view)
    )
    made_from = [f"{node_link(n, link, anchor=c)}" for n, c in view.made_from]
    made_from += [
        f'<a href="{e(component_link(comp))}">{e(comp)}</a> at <code>{e(commit)}</code>'
        for comp, commit in r.pins
    ]
    used_by = [node_link(n, link, anchor=c) for n, c in view.used_by]
    if view.checks is None:
        checks = "results not read"
    else:
        checks = ", ".join(f"{e(c.check)} {state(c.state.lower())}" for c in view.checks) or "none recorded"
    prefix = f"composes/{r.compose_id}/"
    outputs = "<br>".join(
        f"{e(o.path.removeprefix(prefix))} {o.size} B <code>{e(o.sha256)}</code>" for o in r.outputs
    )
    return (
        head,
        "<br>".join(made_from) or "-",
        "<br>".join(used_by) or "-",
        f"{e(gate_text(view.gate))}; checks: {checks}",
        outputs or "none",
    )


def _diff(view: ComposeView) -> str:
    """What changed against the compose before it, in a few words (the twin has it whole)."""
    d = view.diff
    if d is None:
        return ""
    changes = ["definition"] if d.definition_changed else []
    changes += [f"input {e(c.node)}" for c in d.inputs]
    changes += [
        f"{e(n)} <code>{e(b[:SHORT] or 'none')}</code> → <code>{e(a[:SHORT] or 'none')}</code>"
        for n, b, a in d.pins
    ]
    changes += [f"tool {e(n)} {e(b or 'none')} → {e(a or 'none')}" for n, b, a in d.tools]
    changed = ", ".join(changes) or "nothing it was made from"
    outputs = "outputs changed" if d.outputs_changed else "outputs identical"
    return f"<br><small>against {e(d.previous)}: {changed} changed; {outputs}</small>"
