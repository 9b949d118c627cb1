"""The text of a bump merge request (Markdown). Pure: data in, text out.

A reviewer should see at a glance what moves (modules, old -> new commits), why (the dist-git
commits in between, the CVEs they name), what it costs (the plan, tier by tier) and what to
watch (modules at or near their end of life). The last line is a marker naming the head, so a
forge can read back which head an MR bumps to.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.bot.forge import head_marker
from pipeline.core.model import DistGitCommit
from pipeline.core.plan import Plan
from pipeline.formats import render

CVE = re.compile(r"CVE-\d{4}-\d{4,}")
EOL_WARNING_DAYS = 90
SECURITY, BUMP = "security", "bump"


@dataclass(frozen=True, slots=True)
class PinMove:
    """One module's pin moving."""

    module: str  # name:stream
    path: str  # the module's file
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Bump:
    """Everything the text of one bump merge request is made from."""

    component: str
    branch: str
    head: str
    moves: tuple[PinMove, ...]
    commits: tuple[DistGitCommit, ...]  # newest first
    plan: Plan
    eols: tuple[tuple[str, dt.date], ...]  # (module, eol) of affected modules
    today: dt.date

    @property
    def cves(self) -> list[str]:
        """The CVE IDs named in the commits, sorted, once each."""
        return sorted({m for c in self.commits for m in CVE.findall(c.message)})


def source_branch(component: str, branch: str) -> str:
    """The branch a bump merge request comes from."""
    return f"factory/bump/{component}/{branch}"


def title(bump: Bump) -> str:
    """`Bump openssl (f42) to 9d0324eb — CVE-2026-1234`."""
    text = f"Bump {bump.component} ({bump.branch}) to {bump.head[:8]}"
    cves = bump.cves
    return f"{text} — {', '.join(cves)}" if cves else text


def labels(bump: Bump) -> tuple[str, ...]:
    return (BUMP, SECURITY) if bump.cves else (BUMP,)


def commit_message(bump: Bump) -> str:
    lines = [title(bump), ""]
    lines += [f"{m.path}: {m.module} {bump.component} {m.old[:12]} -> {m.new[:12]}" for m in bump.moves]
    return "\n".join(lines) + "\n"


def description(bump: Bump) -> str:
    """The Markdown body of the merge request."""
    cves = bump.cves
    parts = [
        f"Moves every pin of **{bump.component}** that follows `{bump.branch}` to its head "
        f"`{bump.head[:12]}`" + (f", a security fix for {', '.join(cves)}." if cves else "."),
        "",
        "### Pins",
        "",
        "| module | file | old | new |",
        "| --- | --- | --- | --- |",
        *(f"| `{m.module}` | `{m.path}` | `{m.old[:12]}` | `{m.new[:12]}` |" for m in bump.moves),
        "",
        f"### dist-git commits ({len(bump.commits)})",
        "",
        *(f"- `{c.id[:12]}` {escape(c.subject)}" for c in bump.commits),
    ]
    if cves:
        parts += ["", "### Security", "", *(f"- {cve}" for cve in cves)]
    parts += ["", render.plan_markdown(bump.plan, "What will be rebuilt").rstrip("\n")]
    warnings = eol_warnings(bump.eols, bump.today)
    if warnings:
        parts += ["", "### End of life", "", *warnings]
    parts += ["", head_marker(bump.head)]
    return "\n".join(parts) + "\n"


def eol_warnings(eols: Sequence[tuple[str, dt.date]], today: dt.date) -> list[str]:
    """A line per module whose EOL has passed or is within EOL_WARNING_DAYS of today."""
    lines = []
    for module, eol in sorted(eols):
        days = (eol - today).days
        if days < 0:
            lines.append(f"- **`{module}` reached its end of life on {eol.isoformat()}** ({-days} days ago)")
        elif days <= EOL_WARNING_DAYS:
            lines.append(f"- `{module}` reaches its end of life on {eol.isoformat()} (in {days} days)")
    return lines


def escape(text: str) -> str:
    """A commit subject safe in a Markdown list item (no HTML, no stray emphasis)."""
    return re.sub(r"([\\`*_<>\[\]|])", r"\\\1", text)
