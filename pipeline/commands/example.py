"""`factory example distgit`: the example distribution's dist-git."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline import example
from pipeline.commands.output import out as _out
from pipeline.commands.output import out_json as _json

EXIT_OK = 0


def cmd_example_distgit(args: argparse.Namespace) -> int:
    source = (
        Path(args.source) if args.source else Path(__file__).resolve().parents[2] / "examples" / "distgit"
    )
    heads = example.materialize(source, Path(args.dest))
    if args.json:
        _json(heads)
    else:
        for component, branches in sorted(heads.items()):
            _out(f"{component:20} " + "  ".join(f"{b}={h[:8]}" for b, h in sorted(branches.items())))
        _out(f"{len(heads)} dist-git repositories in {args.dest}")
    return EXIT_OK
