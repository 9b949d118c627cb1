"""End Of Life and new releases, as decisions on typed definitions. Pure: no I/O, no clock.

Terminology (ARCHITECTURE.md):
- target: what `factory eol` retires, a module stream (`module:gtk:3`) or a variant
  (`variant:Workstation`);
- retire: set `retired: true` (next to `eol:`) in its definition file; the artifact graph then
  leaves it out, and `factory retire` carves its composes out of the release tree;
- schedule: set only its `eol:` to a date still to come; `factory eol --due` (a scheduled job)
  retires what has reached its date. "Today" always comes from the caller: no wall clock enters
  a graph, a digest or a plan;
- release branch: a dist-git branch named for a release (`f42` for release 42), which
  `factory branch-release` follows with a branch for the new release (`f43`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from pipeline.core import graph as graphs
from pipeline.core.deps import closure
from pipeline.core.errors import InvalidInput
from pipeline.core.model import Definitions, Module, Variant
from pipeline.core.names import did_you_mean, unknown

MODULE, VARIANT = "module", "variant"


@dataclass(frozen=True, slots=True, order=True)
class Target:
    """A module stream (`name` is name:stream) or a variant (`name` is its uid)."""

    kind: str
    name: str

    @property
    def id(self) -> str:
        """As the command line names it: `module:gtk:3`, `variant:Workstation`."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class Change:
    """What `eol` writes into one definition: its new EOL, and whether it is retired now."""

    target: Target
    path: str
    eol: dt.date
    retire: bool
    old_eol: dt.date


@dataclass(frozen=True, slots=True)
class Blocker:
    """A live variant or module that keeps a module from reaching its End Of Life on a date."""

    kind: str  # variant or module
    name: str
    eol: dt.date
    why: str  # "ships it", "requires it", "buildrequires it"


def parse_target(text: str, defs: Definitions) -> Target:
    """`module:NAME:STREAM` or `variant:UID` of the definitions; InvalidInput naming what exists."""
    kind, _, name = text.partition(":")
    if kind == MODULE and name in defs.modules:
        return Target(MODULE, name)
    if kind == VARIANT and name in defs.variants:
        return Target(VARIANT, name)
    if kind == MODULE:
        raise unknown(MODULE, text, [f"module:{nsid}" for nsid in defs.modules], where=" to retire")
    if kind == VARIANT:
        raise unknown(VARIANT, text, [f"variant:{uid}" for uid in defs.variants], where=" to retire")
    hint = "name a module stream as module:NAME:STREAM or a variant as variant:UID"
    near = did_you_mean(
        text, [*(f"module:{n}" for n in defs.modules), *(f"variant:{u}" for u in defs.variants)]
    )
    raise InvalidInput(f"no {text!r} to retire", hint=near or hint, code="unknown-target")


def definition(defs: Definitions, target: Target) -> Module | Variant:
    """The module stream or variant a target names."""
    return defs.modules[target.name] if target.kind == MODULE else defs.variants[target.name]


def change(defs: Definitions, target: Target, date: dt.date, today: dt.date) -> Change:
    """What retiring `target` on `date` writes: a date up to today retires it now; a later one
    only sets its EOL (the retirement waits for `factory eol --due` on that day)."""
    found = definition(defs, target)
    return Change(target, found.path, date, date <= today, found.eol)


def apply(defs: Definitions, changes: list[Change]) -> Definitions:
    """The definitions as they are once the changes are merged."""
    modules = dict(defs.modules)
    variants = dict(defs.variants)
    for c in changes:
        if c.target.kind == MODULE:
            modules[c.target.name] = replace(modules[c.target.name], eol=c.eol, retired=c.retire)
        else:
            variants[c.target.name] = replace(variants[c.target.name], eol=c.eol, retired=c.retire)
    return replace(defs, modules=modules, variants=variants)


def blockers(after: Definitions, c: Change) -> list[Blocker]:
    """What keeps a module from its End Of Life, in the definitions as they would be after:
    live variants shipping it past the date (or at all, when it is retired now), live modules
    that need it. Variants end when they end, so nothing blocks a variant."""
    if c.target.kind != MODULE:
        return []
    nsid = c.target.name
    live = after.live_modules()
    found = []
    for variant in sorted(after.live_variants().values(), key=lambda v: v.uid):
        shipped = closure((s.module for s in variant.modules), after.modules)
        if nsid in shipped and (c.retire or variant.eol > c.eol):
            found.append(Blocker(VARIANT, variant.uid, variant.eol, "ships it"))
    for module in sorted(live.values(), key=lambda m: m.nsid):
        for field, deps in (("requires", module.requires), ("buildrequires", module.buildrequires)):
            needed = nsid in (f"{n}:{s}" for n, s in deps)
            if needed and (c.retire or (field == "requires" and module.eol > c.eol)):
                found.append(Blocker(MODULE, module.nsid, module.eol, f"{field} it"))
                break
    return found


def due(defs: Definitions, today: dt.date) -> list[Target]:
    """What has reached its End Of Life and is not retired yet: variants first, then modules."""
    variants = [Target(VARIANT, v.uid) for v in defs.variants.values() if not v.retired and v.eol <= today]
    modules = [Target(MODULE, m.nsid) for m in defs.modules.values() if not m.retired and m.eol <= today]
    return sorted(variants) + sorted(modules)


def retired_nodes(defs: Definitions) -> list[str]:
    """The nodes of retired modules and variants: those their definitions would make, less those
    the live definitions still make (a build two modules share stays while one is live)."""
    revived = replace(
        defs,
        modules={k: replace(m, retired=False) for k, m in defs.modules.items()},
        variants={k: replace(v, retired=False) for k, v in defs.variants.items()},
    )
    everything = graphs.build(revived)
    live = graphs.build(defs)
    return sorted(set(everything.nodes) - set(live.nodes), key=everything.order)


def release_branch(branch: str, old: str, new: str) -> str | None:
    """The branch of release `new` that follows `branch` of release `old` (`f42` -> `f43`,
    `epel42` -> `epel43`, `42` -> `43`); None when `branch` is not named for release `old`
    (`rawhide`, `3.12`, `f142`)."""
    if not branch.endswith(old) or not old:
        return None
    stem = branch[: -len(old)]
    if stem and (stem[-1].isdigit() or (old[0].isdigit() and stem[-1] == ".")):
        return None
    return stem + new


def release_token(value: str, old: str, new: str) -> str:
    """A text with release `old` replaced by `new` where it stands alone between separators
    (`FL-42-AtomicHost` -> `FL-43-AtomicHost`, `FL/42/x86_64/host`), nowhere else."""
    return re.sub(rf"(?<![0-9A-Za-z]){re.escape(old)}(?![0-9A-Za-z])", new, value)
