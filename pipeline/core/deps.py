"""Module dependency queries: what a module needs, and what needs it, with every EOL. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.core.errors import InvalidInput
from pipeline.core.model import Definitions, Module


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


def find_module(defs: Definitions, name: str) -> str:
    """`name` or `name:stream` to the name:stream of a defined module."""
    if name in defs.modules:
        return name
    streams = sorted(nsid for nsid in defs.modules if nsid.split(":", 1)[0] == name)
    if len(streams) == 1:
        return streams[0]
    if streams:
        raise InvalidInput(f"module {name} has several streams", hint="name one: " + ", ".join(streams))
    raise InvalidInput(f"no module {name!r}", hint="modules: " + ", ".join(sorted(defs.modules)))


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
            out.append(Dependency(variant.uid, "variant", "ships", via, 0, variant.eol))
    return out


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
                out.append(Dependency(other, "module", relation, current, depth, defs.modules[other].eol))
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
