"""Module dependency queries: what a module needs, what needs it, and what a variant ships, with
every EOL and whether it is retired. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.core.errors import InvalidInput
from pipeline.core.model import Definitions, Module
from pipeline.core.names import unknown


def closure(selected: Iterable[str], index: dict[str, Module]) -> list[str]:
    """The selected module streams and, transitively, every stream they require (sorted)."""
    seen: set[str] = set()
    todo = [nsid for nsid in selected if nsid in index]
    while todo:
        nsid = todo.pop()
        if nsid in seen:
            continue
        seen.add(nsid)
        todo.extend(f"{n}:{s}" for n, s in index[nsid].requires if f"{n}:{s}" in index)
    return sorted(seen)


@dataclass(frozen=True, slots=True)
class Dependency:
    """One module stream or variant related to the queried module."""

    name: str  # name:stream for modules, uid for variants
    kind: str  # "module" or "variant"
    relation: str  # requires, buildrequires, ships
    via: str  # the module (or variant) through which the relation holds
    depth: int
    eol: dt.date
    retired: bool = False


def find_module(defs: Definitions, name: str) -> str:
    """`name` or `name:stream` to the name:stream of a defined module."""
    if name in defs.modules:
        return name
    streams = sorted(nsid for nsid in defs.modules if nsid.split(":", 1)[0] == name)
    if len(streams) == 1:
        return streams[0]
    if streams:
        raise InvalidInput(
            f"module {name} has several streams",
            hint="name one: " + ", ".join(streams),
            code="ambiguous-module",
        )
    forms = {nsid: (nsid.split(":", 1)[0],) for nsid in defs.modules}  # httpd for httpd:2.4
    raise unknown("module", name, defs.modules, forms=forms, listing="`factory graph` lists the modules")


def dependencies(defs: Definitions, nsid: str) -> list[Dependency]:
    """Every module stream nsid requires or buildrequires, transitively, breadth first."""

    def needs(current: str) -> list[tuple[str, str]]:
        module = defs.modules[current]
        return _relations(module.requires, module.buildrequires)

    return _breadth_first(defs, nsid, needs)


def dependants(defs: Definitions, nsid: str) -> list[Dependency]:
    """Every module stream that needs nsid, transitively, then every variant that ships it."""
    reverse: dict[str, list[tuple[str, str]]] = {}
    for module in defs.modules.values():
        for dep, relation in _relations(module.requires, module.buildrequires):
            reverse.setdefault(dep, []).append((module.nsid, relation))
    out = _breadth_first(defs, nsid, lambda current: sorted(reverse.get(current, ())))
    for variant in sorted(defs.variants.values(), key=lambda v: v.uid):
        selected = [s.module for s in variant.modules]
        if nsid in closure(selected, defs.modules):
            via = nsid if nsid in selected else "requires"
            out.append(Dependency(variant.uid, "variant", "ships", via, 0, variant.eol, variant.retired))
    return out


def find_variant(defs: Definitions, name: str) -> str | None:
    """The uid of a variant named `variant:UID` (or UID); None when it names no variant."""
    uid = name.removeprefix("variant:")
    return uid if uid in defs.variants else None


def shipped(defs: Definitions, uid: str) -> list[Dependency]:
    """Every module stream a variant ships (selected, or required by one it selects), the one
    reaching its End Of Life first first; `via` names the selected module that requires it."""
    variant = defs.variants[uid]
    selected = [s.module for s in variant.modules if s.module in defs.modules]
    out = []
    for nsid in closure(selected, defs.modules):
        module = defs.modules[nsid]
        through = next((s for s in selected if s != nsid and nsid in closure([s], defs.modules)), uid)
        relation, via = ("selects", uid) if nsid in selected else ("requires", through)
        out.append(Dependency(nsid, "module", relation, via, 1, module.eol, module.retired))
    return sorted(out, key=lambda d: (d.eol, d.name))


def _breadth_first(
    defs: Definitions, start: str, neighbours: Callable[[str], list[tuple[str, str]]]
) -> list[Dependency]:
    """Module streams reachable from start, level by level, each once, with its depth."""
    out: list[Dependency] = []
    seen = {start}
    frontier = [start]
    depth = 0
    while frontier:
        depth += 1
        found = []
        for current in frontier:
            for other, relation in neighbours(current):
                if other in seen or other not in defs.modules:
                    continue
                seen.add(other)
                found.append(other)
                module = defs.modules[other]
                out.append(Dependency(other, "module", relation, current, depth, module.eol, module.retired))
        frontier = sorted(found)
    return out


def _relations(
    requires: tuple[tuple[str, str], ...], buildrequires: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    """(name:stream, relation) pairs; a stream both required and build-required is named once."""
    run = {f"{n}:{s}" for n, s in requires}
    build = {f"{n}:{s}" for n, s in buildrequires}
    names = {dep: "requires+buildrequires" if dep in run and dep in build else "requires" for dep in run}
    names.update({dep: "buildrequires" for dep in build - run})
    return sorted(names.items())
