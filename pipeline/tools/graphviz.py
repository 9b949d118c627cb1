"""Graphviz's `dot`: render a graph written in the DOT language (`factory graph --format svg`)."""

from __future__ import annotations

from pipeline import run


def render_argv(output_format: str) -> list[str]:
    """The command line that reads DOT on stdin and writes it rendered (svg, png, ...) on stdout."""
    return ["dot", f"-T{output_format}"]


def render(dot: str, output_format: str = "svg") -> str:
    """The graph rendered by dot; run.CommandFailed (with a hint) when dot fails or is missing."""
    try:
        return run.run(render_argv(output_format), input_text=dot)
    except run.CommandFailed as exc:
        exc.hint = f"{output_format} needs Graphviz's dot: apt-get install graphviz"
        raise
