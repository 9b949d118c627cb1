"""The HTML of the overview site: plain, accessible pages with no JavaScript. Pure: values in, text out.

Every page has the same frame: a navigation bar, a stamp saying when and from which definitions
commit it was made (with a warning when lineage is older than HEAD), a link to its JSON twin,
and one stylesheet (`style.css`). States are shown in words and in colour. Links are relative,
so the site can be served from any path (GitLab Pages serves it under the project's path).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape

from pipeline.core.overview import (
    ComponentView,
    ComposeView,
    EolEntry,
    FoldedBuilds,
    NodeDetail,
    Stale,
    Summary,
)
from pipeline.core.states import NodeState
from pipeline.core.status import GateView, NodeView, Reason, Released

OUTPUTS_SHOWN = 50  # output files listed per compose
SHORT = 12  # hex digits of a commit shown


@dataclass(frozen=True, slots=True)
class Stamp:
    made: str
    commit: str
    commit_time: str
    stale: Stale | None


Link = Callable[[str], str]  # node id -> its page, relative to the site's root


_SPECIAL = re.compile(r"[&<>\"']")


def e(text: object) -> str:
    """HTML-escaped text (most text here has nothing to escape: looking costs less than escaping)."""
    value = str(text)
    return escape(value) if _SPECIAL.search(value) else value


_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:)\]]")


def message(text: str) -> str:
    """A recorded message, escaped, its http(s) URLs links (a failed build's log in its CI job's
    artifacts, an outside check's run): a reader opens them from the page."""
    parts, last = [], 0
    for found in _URL.finditer(text):
        parts += [e(text[last : found.start()]), f'<a href="{e(found.group())}">{e(found.group())}</a>']
        last = found.end()
    return "".join(parts) + e(text[last:])


def page(title: str, body: str, *, root: str, twin: str, stamp: Stamp) -> str:
    """A whole HTML document: `root` is the way from this page to the site's root ("" or "../")."""
    nav = "".join(
        f'<a href="{root}{href}">{label}</a>'
        for href, label in (
            ("index.html", "Overview"),
            ("lists/all.html", "All nodes"),
            ("components/index.html", "Components"),
            ("graph.html", "Graph"),
            ("eol.html", "EOL calendar"),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · factory</title>"
        f'<link rel="stylesheet" href="{root}style.css">'
        f'<link rel="alternate" type="application/json" href="{e(twin)}">'
        f'</head><body><header><nav aria-label="site">{nav}</nav></header>'
        f"<main><h1>{e(title)}</h1>{stamp_html(stamp, twin)}{body}</main></body></html>\n"
    )


def stamp_html(stamp: Stamp, twin: str) -> str:
    made = (
        f'<p class="stamp">Made {e(stamp.made)} from definitions commit '
        f"<code>{e(stamp.commit[:SHORT])}</code> ({e(stamp.commit_time)}). "
        f'<a href="{e(twin)}">This page as JSON</a>.</p>'
    )
    stale = stamp.stale
    if stale is None:
        return made
    if not stale.newest_compose:
        warning = "Lineage holds no compose yet: nothing has been composed from these definitions."
    else:
        warning = (
            f"Lineage is older than HEAD: the newest compose, {e(stale.newest_compose)}, finished "
            f"{e(stale.newest_finished)} from commit <code>{e(stale.newest_commit[:SHORT])}</code>; "
            f"{stale.changed} nodes have changes not composed yet."
        )
    return made + f'<p class="warning" role="alert">{warning}</p>'


def state(value: str) -> str:
    """A state's name beside its colour: `not-applicable` for a check's NOT_APPLICABLE."""
    name = value.lower().replace("_", "-")
    return f'<span class="state s-{e(name)}">{e(name)}</span>'


def node_link(node: str, link: Link, *, anchor: str = "") -> str:
    """A link to a node's page (or its section of a page), or to one of its composes there."""
    href = link(node).split("#", 1)[0] + "#" + anchor if anchor else link(node)
    return f'<a href="{e(href)}">{e(node)}</a>'


def _list(items: Iterable[str], empty: str = "none") -> str:
    shown = list(items)
    return "<ul>" + "".join(f"<li>{i}</li>" for i in shown) + "</ul>" if shown else f"<p>{e(empty)}</p>"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "") -> str:
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    heads = "".join(f'<th scope="col">{e(h)}</th>' for h in head)
    return f"<table>{cap}<thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"


def _count(number: int, word: str) -> str:
    return f"{number} {word}" + ("" if number == 1 else "s")


def _named(nodes: Sequence[str], link: Link, limit: int = 5) -> str:
    shown = ", ".join(node_link(n, link) for n in nodes[:limit])
    return shown + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")


def gate_text(view: GateView) -> str:
    text = str(view.state)
    if view.missing:
        text += f" (missing {', '.join(view.missing)})"
    if view.failed:
        text += f" ({', '.join(view.failed)} failed)"
    if view.waived:
        text += f" ({', '.join(view.waived)} waived)"
    return text


def released_text(items: Sequence[Released]) -> str:
    live = [r for r in items if r.release.live]
    if not live:
        return "not released" if not items else "no live release"
    return "; ".join(f"{r.compose_id} in {r.release.path}" for r in live)


def mirror_text(view: NodeView) -> str:
    if not view.live:
        return "-"
    if view.mirror == "published":
        return "published"
    return "not recorded (no publication to a mirror: factory publish records one)"


# -- rows ----------------------------------------------------------------------------------------------

NODE_HEAD = ("node", "state", "latest good", "gate", "released", "owners", "EOL")


def node_row(view: NodeView, link: Link) -> list[str]:
    """A node in a list (its kind is the id's first word; when a compose finished, its page says)."""
    good = view.latest_good
    return [
        node_link(view.id, link),
        state(view.state),
        "-" if good is None else e(good.compose_id),
        e(gate_text(view.gate)),
        e(released_text(view.released)),
        e(", ".join(view.owners)) or "-",
        "-" if view.eol is None else e(view.eol.isoformat()) + (" (passed)" if view.eol_passed else ""),
    ]


def reasons_html(reasons: Sequence[Reason], link: Link) -> str:
    return _list(
        f"{e(r.text)}"
        + (f"<br><small>{_named(r.nodes, link)}</small>" if r.nodes and len(r.nodes) > 1 else "")
        for r in reasons
    )


# -- the overview --------------------------------------------------------------------------------------


def overview(
    summary: Summary,
    first: Sequence[NodeView],
    total: int,
    filters: str,
    link: Link,
    list_link: Callable[[str, str], str],
) -> str:
    counts = "".join(
        f'<li><a href="{e(list_link("state", s))}">{state(s)} {n}</a></li>' for s, n in summary.counts
    )
    parts = [
        f'<section aria-labelledby="counts"><h2 id="counts">Nodes by state</h2><ul class="counts">{counts}</ul></section>'
    ]
    failures = [
        [
            node_link(v.id, link),
            e(v.last.compose_id if v.last else "-"),
            message(v.last.message if v.last else "") or "-",
            e(", ".join(v.owners)) or "-",
            f"{len(v.blocks)}" + (f": {_named(v.blocks, link, 3)}" if v.blocks else ""),
        ]
        for v in summary.failures
    ]
    parts.append(
        '<section aria-labelledby="failures"><h2 id="failures">Failures</h2>'
        + (
            _table(("node", "compose", "why it failed", "owners", "blocks"), failures)
            if failures
            else "<p>No node failed.</p>"
        )
        + "</section>"
    )
    parts.append(
        '<section aria-labelledby="running"><h2 id="running">Running</h2>'
        + _list(
            (
                f"{node_link(v.id, link)}: {e(', '.join(v.running))} reserved, not finished"
                for v in summary.running
            ),
            "Nothing is composing.",
        )
        + "</section>"
    )
    parts.append(
        '<section aria-labelledby="pending"><h2 id="pending">Gate pending</h2>'
        + _list(
            (f"{node_link(v.id, link)}: {e(gate_text(v.gate))}" for v in summary.pending),
            "No gate is pending.",
        )
        + "</section>"
    )
    shown = summary.out_of_date[:100]
    more = len(summary.out_of_date) - len(shown)
    parts.append(
        '<section aria-labelledby="waiting"><h2 id="waiting">Out of date</h2>'
        + _list(
            (
                f"{node_link(v.id, link)} {state(v.state)}: {e('; '.join(r.text for r in v.reasons))}"
                for v in shown
            ),
            "Every composed node is current.",
        )
        + (
            f'<p><a href="{e(list_link("state", "out-of-date"))}">All {len(summary.out_of_date)} out of date</a></p>'
            if more > 0
            else ""
        )
        + "</section>"
    )
    parts.append(
        '<section aria-labelledby="every"><h2 id="every">Every node</h2>'
        + filters
        + _table(
            NODE_HEAD, (node_row(v, link) for v in first), f"{len(first)} of {total} nodes, in build order"
        )
        + (f'<p><a href="{e(list_link("all", ""))}">All {total} nodes</a></p>' if len(first) < total else "")
        + "</section>"
    )
    return "".join(parts)


def filters(
    kinds: Sequence[str], states: Sequence[str], owners: Sequence[str], list_link: Callable[[str, str], str]
) -> str:
    """Links to the filtered lists: by kind, by state, by owner (pages made ahead of time)."""
    groups = (("kind", kinds), ("state", states), ("owner", owners))
    return (
        '<nav class="filters" aria-label="filters">'
        + "".join(
            f"<p><strong>{name}:</strong> "
            + " ".join(f'<a href="{e(list_link(name, v))}">{e(v)}</a>' for v in values)
            + "</p>"
            for name, values in groups
            if values
        )
        + "</nav>"
    )


BRIEF_HEAD = ("node", "state", "latest good")


def brief_row(view: NodeView, link: Link) -> list[str]:
    """A node in a filtered list: the list of all nodes and its page say the rest."""
    good = view.latest_good
    return [node_link(view.id, link), state(view.state), "-" if good is None else e(good.compose_id)]


def folded_row(row: FoldedBuilds, builds_link: Callable[[str], str]) -> list[str]:
    """The current builds of a builds page, counted, in a filtered list."""
    return [
        f'<a href="{e(builds_link(row.module))}">{_count(row.count, "build")} of {e(row.module)}</a>',
        state("current"),
        "see the builds page",
    ]


def listing(
    rows: Sequence[NodeView | FoldedBuilds],
    link: Link,
    pager: str,
    filters_html: str,
    caption: str,
    *,
    builds_link: Callable[[str], str] = str,
) -> str:
    """A page of a list of nodes, three columns (a node's page says the rest); the current builds
    of each builds page counted in one row (`FoldedBuilds`, linked by `builds_link`): 23,000
    builds are current, of kind build and owned, and their builds pages name each."""
    table = _table(
        BRIEF_HEAD,
        (folded_row(v, builds_link) if isinstance(v, FoldedBuilds) else brief_row(v, link) for v in rows),
        caption,
    )
    return filters_html + pager + table + pager


def pager(number: int, pages: int, href: Callable[[int], str]) -> str:
    if pages <= 1:
        return ""
    items = [
        f"<strong>{n}</strong>" if n == number else f'<a href="{e(href(n))}">{n}</a>'
        for n in range(1, pages + 1)
    ]
    return f'<nav class="pager" aria-label="pages">Page {" ".join(items)}</nav>'


# -- a node ------------------------------------------------------------------------------------------


def node(detail: NodeDetail, link: Link, component_link: Callable[[str], str], prefix: str = "") -> str:
    """A node's page body; `prefix` makes its section ids distinct on a page of several nodes."""
    v = detail.view
    good, last = v.latest_good, v.last
    facts = [
        ("state", state(v.state)),
        ("current with HEAD", "yes" if v.current else "no"),
        ("latest good", "-" if good is None else _compose_ref(good.compose_id, good.finished, good.commit)),
        (
            "last compose",
            "-"
            if last is None
            else f"{_compose_ref(last.compose_id, last.finished, last.commit)} {state(last.status.lower())}",
        ),
        ("gate (last compose)", e(gate_text(v.gate))),
        ("running", e(", ".join(v.running)) + " (reserved, not finished)" if v.running else "no"),
        ("owners", e(", ".join(v.owners)) or "-"),
        ("EOL", "-" if v.eol is None else e(v.eol.isoformat()) + (" (passed)" if v.eol_passed else "")),
        ("released", e(released_text(v.released))),
        ("on the mirrors", e(mirror_text(v))),
        ("defined in", f"<code>{e(v.source)}</code>" if v.source else "not defined at HEAD"),
        ("composes in lineage", str(v.composes)),
    ]
    parts = ['<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{val}</dd>" for k, val in facts) + "</dl>"]
    if v.reasons:
        parts.append(
            f'<section aria-labelledby="{prefix}why"><h2 id="{prefix}why">Why</h2>'
            + reasons_html(v.reasons, link)
            + "</section>"
        )
    if v.blocked_by:
        parts.append(f"<p>Blocked by {_named(v.blocked_by, link, 10)}.</p>")
    if v.blocks:
        parts.append(
            f'<section aria-labelledby="{prefix}blocks"><h2 id="{prefix}blocks">What it blocks</h2>'
            f"<p>{_count(len(v.blocks), 'node')}: {_named(v.blocks, link, 50)}</p></section>"
        )
    if v.kind == "build" and good is not None and good.pins:
        parts.append(
            f'<p>Component: <a href="{e(component_link(good.pins[0][0]))}">{e(good.pins[0][0])}</a></p>'
        )
    parts.append(
        f'<section aria-labelledby="{prefix}head"><h2 id="{prefix}head">At HEAD</h2><div class="two">'
        "<div><h3>Made from</h3>"
        + _list(_inputs_at_head(detail.inputs, link), "nothing: a build of dist-git")
        + "</div><div><h3>Used by</h3>"
        + _list((f"{node_link(c.id, link)} {state(c.state)}" for c in detail.consumers), "nothing")
        + "</div></div></section>"
    )
    history = "".join(compose(c, link, component_link) for c in detail.history)
    older = (
        f"<p>{detail.older} older composes not shown (<code>factory lineage</code> reads them).</p>"
        if detail.older
        else ""
    )
    parts.append(
        f'<section aria-labelledby="{prefix}history"><h2 id="{prefix}history">Compose history</h2>'
        + (history or "<p>Never composed.</p>")
        + older
        + "</section>"
    )
    return "".join(parts)


def _inputs_at_head(inputs: Sequence[NodeView], link: Link) -> list[str]:
    """A node's inputs at HEAD; the current builds of each builds page counted in one item with a
    link to that page (a module of 1,000 builds named each one, and its builds page does)."""
    pages: dict[str, int] = {}
    for i in inputs:
        if i.state == NodeState.CURRENT and "builds/" in link(i.id):
            page = link(i.id).split("#", 1)[0]
            pages[page] = pages.get(page, 0) + 1
    items = []
    for i in inputs:
        page = link(i.id).split("#", 1)[0]
        if i.state != NodeState.CURRENT or page not in pages:
            items.append(f"{node_link(i.id, link)} {state(i.state)}")
        elif count := pages.pop(page):
            group = page.rsplit("/", 1)[-1].removesuffix(".html")
            items.append(f'<a href="{e(page)}">{_count(count, "build")} of {e(group)}</a> {state(i.state)}')
    return items


def _compose_ref(compose_id: str, finished: str, commit: str) -> str:
    return f"{e(compose_id)} <small>finished {e(finished)} from <code>{e(commit[:SHORT])}</code></small>"


def compose(view: ComposeView, link: Link, component_link: Callable[[str], str]) -> str:
    r = view.record
    marks = " (latest good)" if view.latest_good else ""
    head = (
        f'<article class="compose" id="{e(r.compose_id)}"><h3>{e(r.compose_id)}{marks} {state(r.status.lower())}</h3>'
        f"<p>{e(r.started)} to {e(r.finished)}, from definitions commit <code>{e(r.commit[:SHORT])}</code>"
        + (f"<br>{message(r.message)}" if r.message else "")
        + "</p>"
    )
    gate_rows = [
        (e(c.check), state(c.state.lower()), "yes" if c.satisfied else "no", e(c.reason))
        for c in view.gate.required
    ]
    gate_html = f"<h4>Gate: {e(gate_text(view.gate))}</h4>" + (
        _table(("required check", "state", "satisfied", "reason"), gate_rows) if gate_rows else ""
    )
    if view.checks is None:
        checks = "<p>Check results not read.</p>"
    elif not view.checks:
        checks = "<p>No check results recorded.</p>"
    else:
        checks = _table(
            ("check", "state", "message", "ran"),
            (
                (
                    e(c.check),
                    state(c.state.lower()),
                    message(c.message) or "-",
                    f"{e(c.started)} to {e(c.finished)}",
                )
                for c in view.checks
            ),
            "every recorded check result (no logs are recorded beyond the message and its links)",
        )
    # Inline and without the compose IDs their links point at: a module of 1,000 builds listed
    # each input compose and each pin (also on its builds' rows) in a few hundred bytes each.
    made_from = (
        "<p>" + ", ".join(node_link(n, link, anchor=c) for n, c in view.made_from) + "</p>"
        if view.made_from
        else "<p>nothing: built from dist-git</p>"
    )
    if view.made_from:  # the commits its builds were made of (each build's row has it whole)
        pins = (
            "<p>"
            + ", ".join(f"{e(comp)} <code>{e(commit[:SHORT])}</code>" for comp, commit in r.pins)
            + "</p>"
        )
    else:
        pins = _list(
            (
                f'<a href="{e(component_link(comp))}">{e(comp)}</a> at <code>{e(commit)}</code>'
                for comp, commit in r.pins
            ),
            "none",
        )
    if not r.pins:
        pins = "<p>none</p>"
    used_by = _list(
        (f"{node_link(n, link, anchor=c)} <small>{e(c)}</small>" for n, c in view.used_by), "nothing yet"
    )
    parts = [
        head,
        gate_html,
        f"<h4>Checks</h4>{checks}",
        '<div class="two"><div><h4>Made from</h4>' + made_from + "<h4>dist-git commits</h4>" + pins,
        "</div><div><h4>Used by</h4>" + used_by + "</div></div>",
        _diff_html(view, link),
        _outputs(view),
        "<h4>Tools</h4><p>" + e(", ".join(f"{n} {v}" for n, v in r.tools) or "-") + "</p>",
    ]
    if view.releases:
        parts.append(
            "<h4>Releases</h4>"
            + _list(
                f"{e(rel.status)} {e(rel.time)} to <code>{e(rel.path)}</code>"
                + (" (live)" if rel.live else "")
                + (f", signed by {e(rel.signed_by)}" if rel.signed_by else "")
                for rel in view.releases
            )
        )
    parts.append("</article>")
    return "".join(parts)


def _diff_html(view: ComposeView, link: Link) -> str:
    d = view.diff
    if d is None:
        return "<h4>Against the previous compose</h4><p>The first compose of this node.</p>"
    items = []
    if d.definition_changed:
        items.append("its definition (input digest) changed")
    items += [
        f"input {node_link(c.node, link)}: {e(c.before or 'none')} → {e(c.after or 'none')}" for c in d.inputs
    ]
    items += [
        f"dist-git {e(n)}: <code>{e(b or 'none')}</code> → <code>{e(a or 'none')}</code>"
        for n, b, a in d.pins
    ]
    items += [f"tool {e(n)}: {e(b or 'none')} → {e(a or 'none')}" for n, b, a in d.tools]
    items.append("outputs changed" if d.outputs_changed else "outputs identical")
    return f"<h4>Against the previous compose, {e(d.previous)}</h4>" + _list(items)


def _outputs(view: ComposeView) -> str:
    outputs = view.record.outputs
    if not outputs:
        return "<h4>Outputs</h4><p>None.</p>"
    total = sum(o.size for o in outputs)
    rows = (
        (f"<code>{e(o.path)}</code>", str(o.size), f"<code>{e(o.sha256)}</code>")
        for o in outputs[:OUTPUTS_SHOWN]
    )
    more = (
        f"<p>{len(outputs) - OUTPUTS_SHOWN} more in the JSON twin.</p>"
        if len(outputs) > OUTPUTS_SHOWN
        else ""
    )
    return (
        f"<h4>Outputs: {len(outputs)} files, {total} bytes</h4>"
        + _table(("path", "bytes", "sha256"), rows)
        + more
    )


# -- a component, the EOL calendar, the graph ----------------------------------------------------------


def component_group(views: Sequence[ComponentView], link: Link, anchor: Callable[[str], str]) -> str:
    """The components of one module in one table, a row each (its header's id is the component's
    slug); a column the same for every component (no bump open) said once above it. A section
    with four headings each made 1.1 KiB of HTML a component at Fedora scale."""
    cells = [component(v, link) for v in views]
    columns = range(len(COMPONENT_COLUMNS))
    kept = [c for c in columns if len({row[c] for row in cells}) > 1]
    said = "; ".join(f"{COMPONENT_COLUMNS[c]}: {cells[0][c]}" for c in columns if c not in kept and cells)
    rows = "".join(
        f'<tr><th scope="row" id="{e(anchor(v.name))}">{e(v.name)}</th>'
        + "".join(f"<td>{row[c]}</td>" for c in kept)
        + "</tr>"
        for v, row in zip(views, cells, strict=True)
    )
    head = '<th scope="col">component</th>' + "".join(
        f'<th scope="col">{COMPONENT_COLUMNS[c]}</th>' for c in kept
    )
    return (
        "<p>A branch head is named where one was recorded.</p>"
        + (f'<p class="facts">Every component below: {said}.</p>' if said else "")
        + f"<table><caption>{_count(len(views), 'component')}</caption><thead><tr>{head}</tr></thead>"
        + f"<tbody>{rows}</tbody></table>"
    )


COMPONENT_COLUMNS = ("pins at HEAD", "bump merge requests", "commits built, by", "went into")


def component(view: ComponentView, link: Link) -> tuple[str, str, str, str]:
    """A component's cells: its pins at HEAD, its open bumps, every commit built and by which
    composes, and where each went (a line per commit)."""
    pins = [
        f"{e(p.module)} ({e(p.branch)}): "
        + (f"pinned to <code>{e(p.ref[:SHORT])}</code>" if p.ref else "follows the head")
        + f", {node_link(p.build, link)}, built "
        + ("it" if p.built and p.built == p.ref else f"<code>{e(p.built[:SHORT])}</code>" if p.built else "-")
        + (
            ""
            if p.head is None
            else f", branch head <code>{e(p.head.head[:SHORT])}</code> <small>{e(p.head.observed)}</small>"
        )
        + (": a newer commit waits" if p.waiting else "")
        + "".join(f", !{e(b.id)}" for b in p.bumps)
        for p in view.pins
    ]
    if not view.bumps_known:
        bumps = "merge requests are not read from this forge"
    else:
        bumps = (
            "<br>".join(
                f"!{e(b.id)} {e(b.title)} ({e(b.branch)} → <code>{e(b.head[:SHORT])}</code>)"
                for b in view.bumps
            )
            or "none open"
        )
    built = "<br>".join(
        f"<code>{e(b.commit[:SHORT])}</code>" + (" (in a latest good compose)" if b.current else "")
        + ": "
        + ", ".join(node_link(n, link, anchor=c) + ("" if s == "FINISHED" else f" {e(s)}") for n, c, s in b.builds)
        for b in view.built
    )  # fmt: skip
    went = "<br>".join(
        (", ".join(f"{node_link(n, link, anchor=c)}" for n, c in b.used_by) or "nothing yet")
        + (f", then {_count(len(b.reached) + b.more, 'node')} made from those" if b.reached else "")
        for b in view.built
    )
    return "<br>".join(pins) or "no module pins it at HEAD", bumps, built or "never built", went or "-"


def components_index(
    groups: dict[str, list[str]], href: Callable[[str], str], anchor: Callable[[str], str], pager_html: str
) -> str:
    rows = (
        (
            f'<a href="{e(href(g))}">{e(g)}</a>',
            ", ".join(f'<a href="{e(href(g))}#{e(anchor(n))}">{e(n)}</a>' for n in names),
        )
        for g, names in groups.items()
    )
    return pager_html + _table(("module", "components"), rows) + pager_html


def eol(entries: Sequence[EolEntry], link: Link) -> str:
    months: dict[str, list[EolEntry]] = {}
    for entry in entries:
        months.setdefault(entry.eol.strftime("%Y-%m"), []).append(entry)
    parts = []
    for month, items in months.items():
        rows = (
            (
                e(x.eol.isoformat()),
                e(x.kind),
                node_link(x.node, link).replace(f">{e(x.node)}<", f">{e(x.name)}<"),
                "passed" if x.passed else f"in {x.days} days",
            )
            for x in items
        )
        parts.append(f"<h2>{e(month)}</h2>" + _table(("EOL", "kind", "name", "when"), rows))
    return "".join(parts) or "<p>No module or variant defined.</p>"


def graph(drawings: Sequence[tuple[str, str]], folded: bool) -> str:
    legend = "".join(f"<li>{state(s)}</li>" for s in NodeState)
    note = (
        "<p>Builds are folded into their modules; one drawing per variant (its modules, repo and images).</p>"
        if folded
        else ""
    )
    images = "".join(
        f'<figure><object type="image/svg+xml" data="{e(src)}" aria-label="{e(caption)}">'
        f'<a href="{e(src)}">{e(caption)}</a></object><figcaption>{e(caption)} '
        f'(<a href="{e(src)}">open the SVG</a>)</figcaption></figure>'
        for caption, src in drawings
    )
    return f'<ul class="counts">{legend}</ul>{note}{images}'
