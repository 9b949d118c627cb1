"""The `factory` command: argument parsing and output only.

Only `main` turns exceptions into exit codes: 0 ok, 1 operation failed, 2 invalid input,
3 bug (with the traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline import __version__, bump, deps, example, gitrepo, render
from pipeline import graph as graphs
from pipeline import plan as planner
from pipeline import run as processes
from pipeline.canonical import pretty_json
from pipeline.errors import FactoryError, InvalidDefinitions, InvalidInput
from pipeline.workspace import WORKTREE, Workspace

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
Handler = Callable[[argparse.Namespace], int]


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _json(value: Any) -> None:
    sys.stdout.write(pretty_json(value))


# -- commands --------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    rev = args.rev or WORKTREE
    defs = ws.load(rev)
    ws.save()
    if args.json:
        _json({"valid": True, "revision": rev, "modules": len(defs.modules), "variants": len(defs.variants)})
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
    if rev == gitrepo.NO_REVISION:
        return graphs.Graph({}, {})
    return ws.graph(rev)


def cmd_impact(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    defs = ws.load(args.rev, check_distgit=False)
    ws.save()
    current = graphs.build(defs)
    modules = bump.pinning(defs, args.component, args.branch)
    if not modules:
        follows = f" following {args.branch}" if args.branch else ""
        raise InvalidInput(f"no module pins {args.component}{follows}", code="unknown-component")
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


def _branch_head(ws: Workspace, defs: Any, component: str, branch: str | None) -> str | None:
    """The current head of the branch, when its dist-git is reachable and it moved."""
    if branch is None:
        return None
    pins = [
        p for m in bump.pinning(defs, component, branch) for p in m.components if p.component == component
    ]
    head = gitrepo.DistGit(ws.root).head(defs.config.distgit_for(pins[0]), branch)
    if head is None or all(p.ref == head for p in pins):
        return None
    return head


def cmd_deps(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    defs = ws.load(args.rev, check_distgit=False)
    ws.save()
    nsid = deps.find_module(defs, args.module)
    items = deps.dependants(defs, nsid) if args.reverse else deps.dependencies(defs, nsid)
    eol = defs.modules[nsid].eol.isoformat()
    if args.json:
        _json(
            {
                "module": nsid,
                "eol": eol,
                "reverse": args.reverse,
                "items": [
                    {
                        "name": d.name,
                        "kind": d.kind,
                        "relation": d.relation,
                        "via": d.via,
                        "depth": d.depth,
                        "eol": d.eol.isoformat(),
                    }
                    for d in items
                ],
            }
        )
    else:
        _out(render.deps_text(nsid, eol, items, args.reverse))
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
        try:
            _out(processes.run(["dot", "-Tsvg"], input_text=render.graph_dot(graph)))
        except processes.CommandFailed as exc:
            exc.hint = "svg needs Graphviz's dot: apt-get install graphviz"
            raise
    else:
        _out(render.graph_text(graph))
    return EXIT_OK


def cmd_example_distgit(args: argparse.Namespace) -> int:
    source = (
        Path(args.source) if args.source else Path(__file__).resolve().parent.parent / "examples" / "distgit"
    )
    heads = example.materialize(source, Path(args.dest))
    if args.json:
        _json(heads)
    else:
        for component, branches in sorted(heads.items()):
            _out(f"{component:20} " + "  ".join(f"{b}={h[:8]}" for b, h in sorted(branches.items())))
        _out(f"{len(heads)} dist-git repositories in {args.dest}")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="factory",
        description="A Git-native release pipeline for a modular RPM-based distribution.",
        epilog="Exit status: 0 ok, 1 operation failed, 2 invalid input, 3 bug, 130 interrupted.",
    )
    top.add_argument("--version", action="version", version=f"factory {__version__}")
    top.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Handler, help_text: str, *, json_flag: bool = True
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--repo", default=".", help="the definitions repository (default: .)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.set_defaults(handler=handler)
        return p

    p = command("validate", cmd_validate, "Check the definitions against the schemas and each other.")
    p.add_argument("--rev", help="validate this commit straight from Git objects (default: the working tree)")

    p = command("plan", cmd_plan, "List the nodes a change affects, in tiers, with the reason for each.")
    p.add_argument("--base", required=True, help="the revision before the change ('none': an empty tree)")
    p.add_argument("--head", default=WORKTREE, help="the revision after it (default: the working tree)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (for merge requests)")

    p = command("impact", cmd_impact, "What a move of a component's branch would rebuild.")
    p.add_argument("component", help="the component (dist-git repository name)")
    p.add_argument("--branch", help="only pins following this branch")
    p.add_argument(
        "--rev", default=WORKTREE, help="the revision of the definitions (default: the working tree)"
    )

    p = command(
        "deps", cmd_deps, "What a module depends on, or with --reverse what depends on it, with EOLs."
    )
    p.add_argument("module", help="NAME or NAME:STREAM")
    p.add_argument("--reverse", action="store_true", help="list the modules and variants that depend on it")
    p.add_argument(
        "--rev", default=WORKTREE, help="the revision of the definitions (default: the working tree)"
    )

    p = command("graph", cmd_graph, "Draw the artifact graph.", json_flag=False)
    p.add_argument("--format", choices=("text", "dot", "json", "svg"), default="text")
    p.add_argument(
        "--rev", default=WORKTREE, help="the revision of the definitions (default: the working tree)"
    )

    ex = sub.add_parser("example", help="The example distribution.", description="The example distribution.")
    ex_sub = ex.add_subparsers(dest="example_command", required=True, metavar="COMMAND")
    p = ex_sub.add_parser(
        "distgit",
        help="Materialize the example components into bare dist-git repositories.",
        description="Write one bare Git repository per example component, with deterministic commit "
        "hashes, so the pins in modules/ are real commits. Rerunning resets them.",
    )
    p.add_argument("dest", help="the directory to write DEST/<component>.git into")
    p.add_argument("--source", help="the example sources (default: examples/distgit of this checkout)")
    p.add_argument("--json", action="store_true", help="print the branch heads as JSON")
    p.set_defaults(handler=cmd_example_distgit)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except InvalidDefinitions as exc:
        sys.stderr.write(render.diagnostics(exc.diagnostics) + "\n")
        sys.stderr.write(f"factory: {exc.message}\n")
        return EXIT_INVALID
    except FactoryError as exc:
        sys.stderr.write(f"factory: error[{exc.code}]: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"  hint: {exc.hint}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("factory: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception:
        sys.stderr.write("factory: internal error (a bug); please report it with this traceback:\n")
        traceback.print_exc()
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
