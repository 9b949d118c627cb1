"""The text of a build bump merge request (Markdown): binary pins moving to a source's newer
build. Pure: data in, text out.

A reviewer sees what moves (modules, old -> new builds), why (every advisory of the source
naming a build between the oldest pin and the new one: id, type, severity, CVEs, bug
references), what it costs (the plan, tier by tier) and what to watch (modules near their end of
life). The last line is the marker naming the new build, so a forge can read back which build an
MR bumps to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline.bot.describe import BUMP, SECURITY, eol_warnings, escape
from pipeline.bot.forge import head_marker
from pipeline.core.advisories import SEVERITIES, Advisory
from pipeline.core.packages import Build, build_of_srpm
from pipeline.core.plan import Plan
from pipeline.formats import render

TITLE_ADVISORIES = 3  # advisory ids named in a title; more are counted


@dataclass(frozen=True, slots=True)
class BuildMove:
    """One module's binary pin moving to another build."""

    module: str  # name:stream
    path: str  # the module's file
    old: str  # NVR
    new: str


@dataclass(frozen=True, slots=True)
class BuildBump:
    """Everything the text of one build bump merge request is made from: the component, the
    source its pins name and the one holding the new build (itself or one it inherits), the
    moves, the advisories between the oldest pin and the new build (most urgent first), the plan
    and the EOLs of the affected modules."""

    component: str
    source: str
    holder: str
    new: Build
    moves: tuple[BuildMove, ...]
    advisories: tuple[Advisory, ...]
    plan: Plan
    eols: tuple[tuple[str, dt.date], ...]
    today: dt.date

    @property
    def security(self) -> tuple[Advisory, ...]:
        return tuple(a for a in self.advisories if a.type == "security")

    @property
    def severity(self) -> str:
        """The most urgent severity of its security advisories ("" when none has a known one)."""
        known = [a.severity for a in self.security if a.severity in SEVERITIES]
        return min(known, key=SEVERITIES.index) if known else ""


def build_source_branch(component: str, source: str) -> str:
    """The branch a build bump merge request comes from."""
    return f"factory/bump-build/{component}/{source}"


def evr(build: Build) -> str:
    """`2.41-11.fc42`, `1:2.0-3.fc42` with an epoch."""
    return (
        f"{build.epoch}:{build.version}-{build.release}"
        if build.epoch
        else f"{build.version}-{build.release}"
    )


def title(bump: BuildBump) -> str:
    """`Bump glibc (f42-updates) to 2.41-11.fc42 — FEDORA-2026-abc123`."""
    text = f"Bump {bump.component} ({bump.source}) to {evr(bump.new)}"
    named = bump.security or bump.advisories
    if not named:
        return text
    ids = [a.id for a in named[:TITLE_ADVISORIES]]
    more = len(named) - len(ids)
    return f"{text} — {', '.join(ids)}" + (f" and {more} more" if more else "")


def labels(bump: BuildBump) -> tuple[str, ...]:
    return (BUMP, SECURITY) if bump.security else (BUMP,)


def commit_message(bump: BuildBump) -> str:
    lines = [title(bump), ""]
    lines += [f"{m.path}: {m.module} {bump.component} {m.old} -> {m.new}" for m in bump.moves]
    if bump.advisories:
        lines += ["", *(f"{a.id} ({_kind(a)})" for a in bump.advisories)]
    return "\n".join(lines) + "\n"


def description(bump: BuildBump) -> str:
    """The Markdown body of the merge request."""
    where = f"`{bump.source}`" + (
        f" (from `{bump.holder}`, which it inherits)" if bump.holder != bump.source else ""
    )
    security = bump.security
    why = ""
    if security:
        cves = sorted({c for a in security for c in a.cves})
        why = f", a security update ({bump.severity or 'severity not given'})" + (
            f" for {', '.join(cves)}" if cves else ""
        )
    parts = [
        f"Moves every pin of **{bump.component}** taken from source {where} to its newest build "
        f"there, `{bump.new.nvr}`{why}.",
        "",
        "### Pins",
        "",
        "| module | file | old | new |",
        "| --- | --- | --- | --- |",
        *(f"| `{m.module}` | `{m.path}` | `{m.old}` | `{m.new}` |" for m in bump.moves),
        "",
        f"### Advisories ({len(bump.advisories)})",
        "",
    ]
    if bump.advisories:
        parts += [
            "| advisory | type | severity | builds | CVEs | bugs |",
            "| --- | --- | --- | --- | --- | --- |",
            *(_row(a, bump.component) for a in bump.advisories),
        ]
    else:
        parts.append(f"The source names no advisory for the builds of {bump.component} in between.")
    parts += ["", render.plan_markdown(bump.plan, "What will be rebuilt").rstrip("\n")]
    warnings = eol_warnings(bump.eols, bump.today)
    if warnings:
        parts += ["", "### End of life", "", *warnings]
    parts += ["", head_marker(bump.new.nvr)]
    return "\n".join(parts) + "\n"


def _kind(advisory: Advisory) -> str:
    return f"{advisory.type}, {advisory.severity}" if advisory.severity else advisory.type


def _row(advisory: Advisory, component: str) -> str:
    builds = sorted(
        {
            build_of_srpm(p.src)
            for p in advisory.packages
            if p.src and build_of_srpm(p.src).rsplit("-", 2)[0] == component
        }
    )
    cves = ", ".join(escape(c) for c in advisory.cves) or "-"
    bugs = [_reference(r.id, r.href) for r in advisory.references if r.type not in ("cve", "self") and r.id]
    cells = [
        f"**{escape(advisory.id)}**" + (f" {escape(advisory.title)}" if advisory.title else ""),
        escape(advisory.type),
        escape(advisory.severity) or "-",
        ", ".join(f"`{b}`" for b in builds) or "-",
        cves,
        ", ".join(bugs) or "-",
    ]
    return "| " + " | ".join(cells) + " |"


def _reference(id_: str, href: str) -> str:
    text = escape(id_)
    safe = href.startswith(("https://", "http://")) and not any(c in href for c in " ()<>\"'`")
    return f"[{text}]({href})" if safe else text
