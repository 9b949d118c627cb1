"""`factory status` and `factory site`: the build pipeline overview, as lines and as a web site."""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.commands.output import out, out_json
from pipeline.core.runs import is_run_id

if TYPE_CHECKING:
    from pipeline.core.records import Record
    from pipeline.workspace import Workspace


def cmd_status(args: argparse.Namespace) -> int:
    """One line (or one JSON object) per node the query names: every node without one."""
    from pipeline.core.overview import answers, component, resolve, run_query, shown, unknown_query
    from pipeline.core.status import compute
    from pipeline.formats import site, status_json, status_text
    from pipeline.overview.gather import read_records, read_results, recorded
    from pipeline.workspace import Workspace

    ws = Workspace.open(args.repo)
    facts = recorded(ws, whole=False)  # briefs: reading 24,000 records whole costs seconds
    made = _run(ws, args.query) if args.query and is_run_id(args.query) else None
    query = resolve(facts, args.query) if made is None else run_query(facts, [r.node for r in made])
    if query is None:
        raise unknown_query(facts, args.query)
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
                **({"run": _run_json(args.query, made)} if made is not None else {}),
            }
        )
        return 0
    if made is not None:
        out(f"run {args.query}: {len(made)} composes made" + (":" if made else ""))
        out("\n".join(f"  {r.compose_id}  {r.node}  {r.status}" for r in made))
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


def _run(ws: Workspace, run: str) -> list[Record]:
    """The composes a run made, as `factory lineage RUN-ID` lists them; unknown-run if none and
    the run was not reserved here."""
    from pipeline.core.names import unknown
    from pipeline.records import runs
    from pipeline.records.lineage import COMPOSE_ID_CUTOFF, Lineage

    lineage = Lineage(ws.root)
    try:
        made = lineage.of_run(run)
        if not made and runs.commit_of(lineage.repo, run) is None:
            known = {*lineage.runs(), *runs.reserved(lineage.repo)}
            raise unknown("run", run, known, cutoff=COMPOSE_ID_CUTOFF)
    finally:
        lineage.close()
    return made


def _run_json(run: str, made: list[Record]) -> dict[str, object]:
    return {
        "id": run,
        "composes": [{"compose_id": r.compose_id, "node": r.node, "status": r.status} for r in made],
    }
