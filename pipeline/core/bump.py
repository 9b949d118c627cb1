"""Moving pins: the definitions as they would be after a branch's pins follow its new head. Pure."""

from __future__ import annotations

from dataclasses import replace

from pipeline.core.model import Definitions, Module


def pinning(defs: Definitions, component: str, branch: str | None = None) -> list[Module]:
    """The modules that pin a component (following branch, when given)."""
    return [
        module
        for module in sorted(defs.modules.values(), key=lambda m: m.nsid)
        if any(
            p.component == component and not p.follows_head and (branch is None or p.branch == branch)
            for p in module.components
        )
    ]


def bump(defs: Definitions, component: str, branch: str, new_ref: str) -> Definitions:
    """Every pin of component that follows branch moved to new_ref."""
    modules = dict(defs.modules)
    for module in pinning(defs, component, branch):
        pins = tuple(
            replace(p, ref=new_ref) if p.component == component and p.branch == branch and p.ref else p
            for p in module.components
        )
        modules[module.nsid] = replace(module, components=pins)
    return replace(defs, modules=modules)


def pinning_build(defs: Definitions, component: str, source: str) -> list[Module]:
    """The modules with a binary pin of component taken from source."""
    return [
        module
        for module in sorted(defs.modules.values(), key=lambda m: m.nsid)
        if any(b.component == component and b.source == source for b in module.binaries)
    ]


def bump_build(defs: Definitions, component: str, source: str, new_build: str) -> Definitions:
    """Every binary pin of component taken from source moved to the build new_build."""
    modules = dict(defs.modules)
    for module in pinning_build(defs, component, source):
        pins = tuple(
            replace(b, build=new_build) if b.component == component and b.source == source else b
            for b in module.binaries
        )
        modules[module.nsid] = replace(module, binaries=pins)
    return replace(defs, modules=modules)
