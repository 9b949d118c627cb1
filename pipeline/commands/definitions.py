"""`factory validate`, `plan`, `impact`, `deps` and `graph`: queries of the definitions."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import replace
from typing import Any

from pipeline.commands.output import out as _out
from pipeline.commands.output import out_json as _json
from pipeline.core import bump, deps
from pipeline.core import graph as graphs
from pipeline.core import plan as planner
from pipeline.core.errors import InvalidDefinitions, InvalidInput
from pipeline.core.names import unknown
from pipeline.formats import render
from pipeline.git import cli as gitcli
from pipeline.tools import graphviz
from pipeline.workspace import WORKTREE, Workspace

EXIT_OK = 0
EOL_SHOWN = 10  # eol-reached warnings printed one by one; the rest as a count (all in --json)


def cmd_validate(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    rev = args.rev or WORKTREE
    defs = ws.load(rev)
    ws.save()
    from pipeline.core import definitions
    from pipeline.git.distgit import DistGit

    # Pins in a dist-git that cannot be reached are valid but unchecked: say so, on stderr; and
    # what reached its End Of Life without being retired (today: the one clock of validation).
    files = ws.files(rev)
    reached = definitions.eol_reached(files, defs, dt.datetime.now(dt.UTC).date())
    warnings = definitions.warnings(files, defs, DistGit(ws.root)) + reached
    if defs.config.sources:  # what the binary package sources hold now
        from pipeline.engine import sources

        errors, found = sources.validate(ws, defs, rev, os.environ)
        if errors:
            if found:
                sys.stderr.write("\n".join(w.render() for w in found) + "\n")
            raise InvalidDefinitions(errors)
        warnings = found + warnings
    shown = [w for w in warnings if w.code != "eol-reached"] + reached[:EOL_SHOWN]
    if len(reached) > EOL_SHOWN:  # one line for the rest: a Fedora-size tree may hold hundreds
        more = len(reached) - EOL_SHOWN
        shown.append(replace(reached[0], line=0, message=f"{more} more reached their End Of Life unretired"))
    if shown:
        sys.stderr.write(
            "\n".join(w.render() if w.line else f"warning[eol-reached]: {w.message}" for w in shown) + "\n"
        )
    if args.json:
        _json(
            {
                "valid": True,
                "revision": rev,
                "modules": len(defs.modules),
                "variants": len(defs.variants),
                "warnings": [f"{w.path}:{w.line}:{w.col}: {w.code}: {w.message}" for w in warnings],
            }
        )
    else:
        _out(f"{rev}: {len(defs.modules)} modules and {len(defs.variants)} variants are valid")
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    base = _graph_or_empty(ws, args.base)
    head = ws.graph(args.head)
    ws.save()
    result = planner.plan(base, head)
    title = f"plan {args.base} -> {args.head}"
    if args.json:
        _json({"base": args.base, "head": args.head, **result.to_json()})
    elif args.markdown:
        _out(render.plan_markdown(result, title))
    else:
        _out(render.plan_text(result, title))
    return EXIT_OK


def _graph_or_empty(ws: Workspace, rev: str) -> graphs.Graph:
    if rev == gitcli.NO_REVISION:
        return graphs.Graph({}, {})
    return ws.graph(rev)


def cmd_impact(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    defs = ws.load(args.rev, check_distgit=False)
    ws.save()
    current = graphs.build(defs)
    modules = bump.pinning(defs, args.component, args.branch)
    if not modules:
        raise _unknown_pin(defs, args.component, args.branch)
    head = _branch_head(ws, defs, args.component, args.branch)
    if head is not None and args.branch is not None:
        result = planner.plan(current, graphs.build(bump.bump(defs, args.component, args.branch, head)))
        title = f"impact of moving {args.component} ({args.branch}) to its head {head[:8]}"
    else:
        result = planner.impact(current, args.component, args.branch)
        title = f"impact of a move of {args.component}" + (f" ({args.branch})" if args.branch else "")
    if args.json:
        _json({"component": args.component, "branch": args.branch, "head": head, **result.to_json()})
    else:
        _out(render.plan_text(result, title))
    return EXIT_OK


def _unknown_pin(defs: Any, component: str, branch: str | None) -> InvalidInput:
    """No module pins the component (unknown-component), or none on that branch (unknown-branch)."""
    pins = [p for m in defs.modules.values() for p in m.components]
    branches = sorted({p.branch for p in pins if p.component == component})
    if not branches:
        return unknown("component", component, {p.component for p in pins}, where=" (no module pins it)")
    return unknown("branch", branch or "", branches, where=f" of {component} that a module follows")


def _branch_head(ws: Workspace, defs: Any, component: str, branch: str | None) -> str | None:
    """The current head of the branch, when its dist-git is reachable and it moved."""
    if branch is None:
        return None
    pins = [
        p for m in bump.pinning(defs, component, branch) for p in m.components if p.component == component
    ]
    from pipeline.git.distgit import DistGit

    head = DistGit(ws.root).head(defs.config.distgit_for(pins[0]), branch)
    if head is None or all(p.ref == head for p in pins):
        return None
    return head


def cmd_deps(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    defs = ws.load(args.rev, check_distgit=False)
    ws.save()
    uid = deps.find_variant(defs, args.module) if args.module.startswith("variant:") else None
    if args.module.startswith("variant:") and uid is None:
        raise unknown("variant", args.module, [f"variant:{v}" for v in defs.variants])
    if uid is not None:
        variant = defs.variants[uid]
        items = deps.shipped(defs, uid)
        subject, eol, retired = uid, variant.eol, variant.retired
    else:
        nsid = deps.find_module(defs, args.module.removeprefix("module:"))
        module = defs.modules[nsid]
        items = deps.dependants(defs, nsid) if args.reverse else deps.dependencies(defs, nsid)
        subject, eol, retired = nsid, module.eol, module.retired
    if args.json:
        _json(
            {
                "variant" if uid is not None else "module": subject,
                "eol": eol.isoformat(),
                "retired": retired,
                "reverse": args.reverse,
                "items": [
                    {
                        "name": d.name,
                        "kind": d.kind,
                        "relation": d.relation,
                        "via": d.via,
                        "depth": d.depth,
                        "eol": d.eol.isoformat(),
                        "days_after": (d.eol - eol).days,  # negative: it reaches its EOL first
                        "retired": d.retired,
                    }
                    for d in items
                ],
            }
        )
    elif uid is not None:
        _out(render.shipped_text(uid, eol.isoformat(), items, retired=retired))
    else:
        _out(render.deps_text(subject, eol.isoformat(), items, args.reverse, retired=retired))
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    graph = ws.graph(args.rev)
    ws.save()
    if args.format == "json":
        _json(
            {
                "nodes": [
                    {"id": n.id, "kind": n.kind, "digest": n.digest, "inputs": list(n.inputs)}
                    for n in sorted(graph.nodes.values(), key=lambda n: graph.order(n.id))
                ]
            }
        )
    elif args.format == "dot":
        _out(render.graph_dot(graph))
    elif args.format == "svg":
        _out(graphviz.render(render.graph_dot(graph), "svg"))
    else:
        _out(render.graph_text(graph))
    return EXIT_OK
