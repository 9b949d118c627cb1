"""The overview site: every page and its JSON twin, from a computed status. Pure: yields
(path, text) pairs; `pipeline.overview.site` writes them.

    index.html  status.json                 the overview: counts, failures first, running,
                                            pending, out of date, every node (first page)
    lists/all[-N].html, lists/kind-K, lists/state-S, lists/owner-O  (+ .json)
                                            every node in the stable order, filtered, 500 rows a
                                            page; the current builds of a builds page one row
    nodes/<node>.html  nodes/<node>.json    one per node that is not a build: status, lineage,
                                            history, checks
    builds/<module>.html#<node>  builds/<module>.json
                                            the builds a module is made of (the first module
                                            using them at HEAD), one table, a build's rows
                                            headed by its slug, and their
                                            twins in one array: 23,000 builds make 1,000 pages
    components/index[-N].html, components/<module>.html (+ .json)
                                            the components of each module (the first module
                                            pinning them), one row each: <module>.html#<name>
    graph.html  graph.json  graph/*.svg     the artifact graph, states as colours
    eol.html  eol.json                      the EOL calendar of modules and variants
    runs.html  runs.json                    the newest runs (`runs.html#<run-id>`), each with the
                                            composes it made
    style.css

Every name in a path is made of node ids and the like by `slug`, which keeps letters, digits
and `.-+@`, writes `:` as `~` and `/` as `,`, and escapes anything else, so the names are
distinct, safe in a URL and need no quoting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import Any

from pipeline.core.canonical import canonical_json
from pipeline.core.graph import Graph
from pipeline.core.overview import (
    NOT_PINNED,
    FoldedBuilds,
    component,
    component_groups,
    detail,
    eol_calendar,
    fold_builds,
    summary,
)
from pipeline.core.states import NodeState
from pipeline.core.status import NodeView, Status
from pipeline.formats import graph_svg, site_builds, site_html, site_runs, site_style, status_json
from pipeline.formats.site_html import Stamp

PAGE_ROWS = 500  # nodes in one page of a list
FIRST_ROWS = 200  # nodes in the overview's own table
FULL_GRAPH = 400  # nodes up to which the whole graph is one drawing
_KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-+@")


@cache
def slug(name: str) -> str:
    """A file name for a node id, component or owner (distinct names give distinct slugs)."""
    special = {":": "~", "/": ","}
    out = []
    for char in name:
        if char in _KEEP:
            out.append(char)
        else:
            out.append(special.get(char) or "".join(f"_{b:02x}" for b in char.encode("utf-8")))
    text = "".join(out)
    return "_" + text if text.startswith(".") or not text else text


def node_page(node: str) -> str:
    return f"nodes/{slug(node)}.html"


def builds_page(module: str) -> str:
    """The page of the builds a module (name:stream) is made of."""
    return f"builds/{slug(module)}.html"


def build_group(graph: Graph, node: str) -> str | None:
    """The module (name:stream) whose builds page holds a node's rows: the first module using
    the build at HEAD. None for a node that is no build, or that no module uses at HEAD (a build
    lineage keeps after its pin went away): that node has a page of its own."""
    if not node.startswith("build:") or node not in graph.digests:
        return None
    modules = sorted(c.partition(":")[2] for c in graph.consumers.get(node, ()) if c.startswith("module:"))
    return modules[0] if modules else None


def page_of(graph: Graph, node: str) -> str:
    """A node's page: its own, or its rows on its module's builds page (a stable URL)."""
    group = build_group(graph, node)
    return node_page(node) if group is None else f"{builds_page(group)}#{slug(node)}"


def group_page(group: str) -> str:
    return f"components/{slug(group)}.html"


def list_page(filter_name: str, value: str, number: int = 1) -> str:
    base = "lists/all" if filter_name == "all" else f"lists/{filter_name}-{slug(value)}"
    return f"{base}.html" if number == 1 else f"{base}-{number}.html"


def twin(path: str) -> str:
    """The JSON twin of a page: the same path with .json (index.html's is status.json)."""
    return "status.json" if path == "index.html" else path.removesuffix(".html") + ".json"


def _json(value: Any) -> str:
    return canonical_json(value) + "\n"


def pages(status: Status, made: str) -> Iterator[tuple[str, str]]:
    """Every file of the site, as (path relative to the site's root, text)."""
    facts = status.facts
    summ = summary(status)
    stamp = Stamp(made, facts.commit, facts.commit_time, summ.stale)
    json_stamp = status_json.stamp(made, facts.commit, facts.commit_time, summ.stale)
    views = status.views()
    graph = facts.graph
    links = {v.id: page_of(graph, v.id) for v in views}
    top: Callable[[str], str] = links.__getitem__

    def below(node: str) -> str:
        return "../" + links[node]

    def list_top(name: str, value: str) -> str:
        return list_page(name, value)

    def list_below(name: str, value: str) -> str:
        return "../" + list_page(name, value)

    groups = _groups(views)
    yield "style.css", site_style.STYLE

    first = views[:FIRST_ROWS]
    body = site_html.overview(
        summ, first, len(views), site_html.filters(*_filter_values(groups), list_top), top, list_top
    )
    yield (
        "index.html",
        site_html.page("Build pipeline overview", body, root="", twin="status.json", stamp=stamp),
    )
    lists: dict[str, Any] = {"all": twin(list_page("all", ""))}
    for name, value in groups:
        if name != "all":
            lists.setdefault(name, {})[value] = twin(list_page(name, value))
    yield "status.json", _json(status_json.overview_page(summ, views, links, lists, json_stamp))

    filters_below = site_html.filters(*_filter_values(groups), list_below)
    group_of = {v.id: build_group(graph, v.id) for v in views}
    for (name, value), rows in groups.items():
        yield from _list_pages(
            name, value, fold_builds(rows, group_of), below, filters_below, stamp, json_stamp, links
        )

    groups_of_components = component_groups(status)
    component_links = {
        n: f"{group_page(g)}#{slug(n)}" for g, names in groups_of_components.items() for n in names
    }

    def component_below(name: str) -> str:
        return "../" + component_links[name]

    grouped: dict[str, list[str]] = {}
    for v in views:
        group = build_group(graph, v.id)
        if group is not None:
            grouped.setdefault(group, []).append(v.id)
            continue
        page = links[v.id]
        node_detail = detail(status, v.id)
        body = site_html.node(node_detail, below, component_below)
        yield page, site_html.page(v.id, body, root="../", twin=_leaf(twin(page)), stamp=stamp)
        yield twin(page), _json(status_json.node_page(node_detail, links, json_stamp))
    for group, nodes in sorted(grouped.items()):
        page = builds_page(group)
        details = [detail(status, n) for n in nodes]
        body = site_builds.builds(details, below, component_below, slug)
        yield (
            page,
            site_html.page(f"Builds of {group}", body, root="../", twin=_leaf(twin(page)), stamp=stamp),
        )
        yield twin(page), _json(status_json.builds_page(group, details, links, json_stamp))

    for group, names in groups_of_components.items():
        page = group_page(group)
        members = [component(status, name) for name in names]
        body = site_html.component_group(members, below, slug)
        title = f"Components of {group}" if group != NOT_PINNED else f"Components {group}"
        yield page, site_html.page(title, body, root="../", twin=_leaf(twin(page)), stamp=stamp)
        yield twin(page), _json(status_json.component_group_page(group, members, json_stamp))
    yield from _component_index(groups_of_components, stamp, json_stamp)

    entries = eol_calendar(status)
    body = site_html.eol(entries, top)
    yield "eol.html", site_html.page("EOL calendar", body, root="", twin="eol.json", stamp=stamp)
    yield "eol.json", _json(status_json.eol_page(entries, json_stamp))

    runs = site_runs.run_views(facts.records)
    body = site_runs.html(runs, links, lambda page: page)
    yield site_runs.PAGE, site_html.page("Runs", body, root="", twin="runs.json", stamp=stamp)
    yield "runs.json", _json(site_runs.json_page(runs, links, json_stamp))

    yield from _graph(status, views, links, stamp, json_stamp)


def _leaf(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _groups(views: Sequence[NodeView]) -> dict[tuple[str, str], list[NodeView]]:
    """Every filtered list: all nodes, by kind, by state, by owner (each in the stable order)."""
    found: dict[tuple[str, str], list[NodeView]] = {("all", ""): list(views)}
    for v in views:
        found.setdefault(("kind", v.kind), []).append(v)
        found.setdefault(("state", v.state), []).append(v)
        for owner in v.owners:
            found.setdefault(("owner", owner), []).append(v)
    for s in NodeState:  # a state with no node still has its (empty) page: the counts link there
        found.setdefault(("state", s), [])
    return found


def _filter_values(groups: dict[tuple[str, str], list[NodeView]]) -> tuple[list[str], list[str], list[str]]:
    kinds = sorted({v for n, v in groups if n == "kind"})
    states = [str(s) for s in NodeState if groups.get(("state", s))]
    owners = sorted({v for n, v in groups if n == "owner"})
    return kinds, states, owners


def _list_pages(
    name: str,
    value: str,
    rows: Sequence[NodeView | FoldedBuilds],
    link: Callable[[str], str],
    filters_html: str,
    stamp: Stamp,
    json_stamp: dict[str, Any],
    links: dict[str, str],
) -> Iterator[tuple[str, str]]:
    title = "All nodes" if name == "all" else f"Nodes with {name} {value}"
    count = max(1, -(-len(rows) // PAGE_ROWS))
    for number in range(1, count + 1):
        chunk = rows[(number - 1) * PAGE_ROWS : number * PAGE_ROWS]
        page = list_page(name, value, number)
        pager = site_html.pager(number, count, lambda n: _leaf(list_page(name, value, n)))
        caption = f"{len(chunk)} of {len(rows)} rows, in build order" + (
            f", page {number} of {count}" if count > 1 else ""
        )
        body = site_html.listing(
            chunk,
            link,
            pager,
            filters_html,
            caption,
            builds_link=lambda m: "../" + builds_page(m),
        )
        yield page, site_html.page(title, body, root="../", twin=_leaf(twin(page)), stamp=stamp)
        yield (
            twin(page),
            _json(
                status_json.list_page(
                    title,
                    chunk,
                    number,
                    count,
                    {_key(v): "../" + _row_page(v, links) for v in chunk},
                    json_stamp,
                )
            ),
        )


def _key(row: NodeView | FoldedBuilds) -> str:
    return row.module if isinstance(row, FoldedBuilds) else row.id


def _row_page(row: NodeView | FoldedBuilds, links: dict[str, str]) -> str:
    return builds_page(row.module) if isinstance(row, FoldedBuilds) else links[row.id]


def _component_index(
    groups: dict[str, list[str]], stamp: Stamp, json_stamp: dict[str, Any]
) -> Iterator[tuple[str, str]]:
    """Every group of components with its components, PAGE_ROWS groups a page."""
    items = list(groups.items())
    count = max(1, -(-len(items) // PAGE_ROWS))

    def index(number: int) -> str:
        return "components/index.html" if number == 1 else f"components/index-{number}.html"

    for number in range(1, count + 1):
        chunk = dict(items[(number - 1) * PAGE_ROWS : number * PAGE_ROWS])
        pager = site_html.pager(number, count, lambda n: _leaf(index(n)))
        body = site_html.components_index(chunk, lambda g: _leaf(group_page(g)), slug, pager)
        page = index(number)
        yield page, site_html.page("Components", body, root="../", twin=_leaf(twin(page)), stamp=stamp)
        yield (
            twin(page),
            _json(
                status_json.components_page(
                    chunk, number, count, {g: _leaf(group_page(g)) for g in chunk}, json_stamp
                )
            ),
        )


def _graph(
    status: Status, views: Sequence[NodeView], links: dict[str, str], stamp: Stamp, json_stamp: dict[str, Any]
) -> Iterator[tuple[str, str]]:
    graph = status.facts.graph
    defined = [v for v in views if v.id in graph.digests]
    edges = [(i, v.id) for v in defined for i in graph.nodes[v.id].inputs]
    drawings: list[tuple[str, str]] = []
    folded = len(defined) > FULL_GRAPH

    def box(v: NodeView, label: str = "") -> graph_svg.Box:
        return graph_svg.Box(v.id, label or v.id, v.state, "../" + links[v.id])

    if not folded:
        svg = graph_svg.draw([box(v) for v in defined], edges, "The artifact graph")
        drawings.append(("The whole artifact graph", "graph/all.svg"))
        yield "graph/all.svg", svg
    else:
        for uid in sorted(status.facts.defs.variants):
            repo = f"repo:{uid}"
            if repo not in graph.digests:
                continue
            members = sorted(graph.downstream([repo]) | set(graph.nodes[repo].inputs), key=graph.order)
            boxes = []
            for n in members:
                v = status.nodes[n]
                builds = len(graph.nodes[n].inputs) if v.kind == "module" else 0
                boxes.append(box(v, f"{n} (+{builds} builds)" if builds else n))
            inside = set(members)
            svg = graph_svg.draw(
                boxes, [(a, b) for a, b in edges if a in inside and b in inside], f"Variant {uid}"
            )
            path = f"graph/{slug(uid)}.svg"
            drawings.append((f"Variant {uid}: {len(members)} nodes", path))
            yield path, svg
    body = site_html.graph(drawings, folded)
    yield "graph.html", site_html.page("The artifact graph", body, root="", twin="graph.json", stamp=stamp)
    yield "graph.json", _json(status_json.graph_page(defined, edges, [p for _, p in drawings], json_stamp))
