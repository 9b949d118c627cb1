"""`factory status` and `factory site`: the build pipeline overview, as lines and as a web site."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from pipeline.commands.output import out, out_json
from pipeline.core.errors import InvalidInput


def cmd_status(args: argparse.Namespace) -> int:
    """One line (or one JSON object) per node the query names: every node without one."""
    from pipeline.core.overview import answers, component, resolve, shown
    from pipeline.core.status import compute
    from pipeline.formats import site, status_json, status_text
    from pipeline.overview.gather import read_records, read_results, recorded
    from pipeline.workspace import Workspace

    ws = Workspace.open(args.repo)
    facts = recorded(ws, whole=False)  # briefs: reading 24,000 records whole costs seconds
    query = resolve(facts, args.query)
    if query is None:
        raise InvalidInput(
            f"no node, module or component named {args.query!r}",
            hint="a node id (`factory graph`), a module (NAME or NAME:STREAM) or a component",
            code="unknown-name",
        )
    # Views only of what the answer shows, from their records read whole; the other nodes'
    # briefs decide what those are blocked by and wait for.
    nodes = shown(facts, query)
    facts = read_records(ws, facts, nodes)
    status = compute(read_results(ws, facts, set(query.nodes)), nodes)
    views = [status.nodes[n] for n in query.nodes]
    components = [component(status, name) for name in query.components]
    asked = [answers(status, n) for n in query.nodes if query.kind == "module" and n.startswith("module:")]
    if args.json:
        out_json(
            {
                "query": args.query,
                "matched": query.kind,
                "commit": status.facts.commit,
                "nodes": [status_json.node_status(v, site.page_of(status.facts.graph, v.id)) for v in views],
                "components": [status_json.component_status(c) for c in components],
                "answers": [
                    {"node": a.node, "underway": a.underway, "complete": a.complete, "mirrors": a.mirrors}
                    for a in asked
                ],
            }
        )
        return 0
    for a in asked:
        out(f"{a.node}")
        out(f"  a fresh build underway? {a.underway}")
        out(f"  complete? {a.complete}")
        out(f"  on the mirrors? {a.mirrors}")
    for line in status_text.node_lines(views):
        out(line)
    for view in components:
        for line in status_text.component_lines(view):
            out(line)
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    """Build the static site into DIR (replacing a site made before) and print where it is."""
    from pipeline.core.status import compute
    from pipeline.formats import site
    from pipeline.overview.gather import gather
    from pipeline.overview.write import write_site
    from pipeline.workspace import Workspace

    start = time.perf_counter()
    ws = Workspace.open(args.repo)
    status = compute(gather(ws))
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    written = write_site(site.pages(status, made), Path(args.dir))
    seconds = time.perf_counter() - start
    index = written.path / "index.html"
    if args.json:
        out_json(
            {"index": str(index), "files": written.files, "bytes": written.bytes, "nodes": len(status.order)}
        )
        return 0
    out(f"{len(status.order)} nodes, {written.files} files, {written.bytes} bytes in {seconds:.1f}s")
    out(f"open {index}")
    return 0
