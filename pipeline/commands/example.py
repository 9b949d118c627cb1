"""`factory example distgit` and `factory example upstream`: the example distribution's dist-git,
and the upstream source it takes builds made elsewhere from."""

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


def cmd_example_upstream(args: argparse.Namespace) -> int:
    from pipeline import example_upstream

    description = (
        Path(args.source)
        if args.source
        else Path(__file__).resolve().parents[2] / "examples" / "upstream" / "upstream.yaml"
    )
    published = example_upstream.materialize(description, Path(args.dest), args.day)
    if args.json:
        _json(
            {"day": published.day, "builds": list(published.builds), "advisories": list(published.advisories)}
        )
    else:
        for nvr in published.builds:
            _out(f"build     {nvr}")
        for advisory in published.advisories:
            _out(f"advisory  {advisory}")
        _out(
            f"upstream as of day {published.day}: {len(published.builds)} builds, "
            f"{len(published.advisories)} advisories in {args.dest}"
        )
    return EXIT_OK
