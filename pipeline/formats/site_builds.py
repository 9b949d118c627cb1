"""The HTML of a module's builds page: every build the module is the first to use, one compact
section each. Pure: values in, text out.

23,000 builds at Fedora scale: a page each, with the whole frame and every compose as an
article, made the site 50,000 files and most of its 278 MiB. Here a build is a section of its
module's page (its id is the build's slug, each compose's row is the compose ID), saying what a
node page says in fewer words: its state and why, its neighbours at HEAD, and its composes as a
table with lineage both ways, the dist-git commits, the gate and checks, and the outputs with
sizes and sha256. The page's JSON twin holds every field of each build (`status_json.node_detail`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.core.overview import ComposeView, NodeDetail
from pipeline.formats.site_html import (
    SHORT,
    Link,
    _count,
    _named,
    e,
    gate_text,
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
    """A contents list, then one section per build (its id is `anchor(node)`)."""
    contents = " ".join(
        f'<a href="#{e(anchor(d.view.id))}">{e(d.view.id)}</a> {state(d.view.state)}' for d in details
    )
    sections = "".join(section(d, link, component_link, anchor(d.view.id)) for d in details)
    return f'<nav aria-label="builds"><p>{contents}</p></nav>{sections}'


def section(detail: NodeDetail, link: Link, component_link: Callable[[str], str], anchor: str) -> str:
    """One build: where it stands, why, its neighbours at HEAD and its composes."""
    v = detail.view
    good = v.latest_good
    facts = [
        ("latest good", "-" if good is None else e(good.compose_id)),
        ("gate", e(gate_text(v.gate))),
        ("owners", e(", ".join(v.owners)) or "-"),
        ("EOL", "-" if v.eol is None else e(v.eol.isoformat()) + (" (passed)" if v.eol_passed else "")),
        ("released", e(released_text(v.released))),
        ("defined in", f"<code>{e(v.source)}</code>" if v.source else "not defined at HEAD"),
    ]
    if v.running:
        facts.insert(0, ("running", e(", ".join(v.running)) + " (reserved, not finished)"))
    if good is not None and good.pins:
        component = good.pins[0][0]
        facts.append(("component", f'<a href="{e(component_link(component))}">{e(component)}</a>'))
    parts = [
        f'<section class="node" aria-labelledby="{e(anchor)}">'
        f'<h2 id="{e(anchor)}">{e(v.id)} {state(v.state)}</h2>'
        '<p class="facts">' + "; ".join(f"{k}: {val}" for k, val in facts) + "</p>"
    ]
    if v.reasons:
        parts.append(reasons_html(v.reasons, link))
    if v.blocks:
        parts.append(f"<p>Blocks {_count(len(v.blocks), 'node')}: {_named(v.blocks, link, 50)}</p>")
    made_from = ", ".join(f"{node_link(i.id, link)} {state(i.state)}" for i in detail.inputs)
    used_by = ", ".join(f"{node_link(c.id, link)} {state(c.state)}" for c in detail.consumers)
    parts.append(f"<p>At HEAD made from {made_from or 'dist-git only'}; used by {used_by or 'nothing'}.</p>")
    rows = "".join(_compose_row(c, link, component_link) for c in detail.history)
    parts.append(
        "<table><caption>Compose history, newest first"
        + (f" ({detail.older} older not shown)" if detail.older else "")
        + '</caption><thead><tr><th scope="col">compose</th><th scope="col">made from, dist-git</th>'
        '<th scope="col">used by</th><th scope="col">gate, checks</th><th scope="col">outputs</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p>Never composed.</p>"
    )
    parts.append("</section>")
    return "".join(parts)


def _compose_row(view: ComposeView, link: Link, component_link: Callable[[str], str]) -> str:
    r = view.record
    head = (
        f"{e(r.compose_id)}{' (latest good)' if view.latest_good else ''} {state(r.status.lower())}"
        f"<br><small>{e(r.finished)} from <code>{e(r.commit[:SHORT])}</code></small>"
        + (f"<br>{e(r.message)}" if r.message else "")
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
        f"<code>{e(o.path.removeprefix(prefix))}</code> {o.size} B <code>{e(o.sha256)}</code>"
        for o in r.outputs
    )
    cells = (
        head,
        "<br>".join(made_from) or "-",
        "<br>".join(used_by) or "-",
        f"{e(gate_text(view.gate))}; checks: {checks}",
        outputs or "none",
    )
    return f'<tr id="{e(r.compose_id)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


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
