"""comps.xml of a variant repo: one group per module profile the variant selects. Pure.

A group `<module>-<profile>` lists the profile's RPMs as default packages, so
`dnf group install python3-default` installs what the variant ships of that module. The text
depends only on the groups (sorted by id, packages sorted), never on the order given.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from pipeline.core.model import Module


@dataclass(frozen=True, slots=True)
class Group:
    """One comps group."""

    id: str
    name: str
    description: str
    packages: tuple[str, ...]


def profile_group(module: Module, profile: str) -> Group:
    """The group of one profile of a module stream (which must have that profile)."""
    found = module.profile(profile)
    if found is None:
        raise KeyError(f"{module.nsid} has no profile {profile!r}")
    description = found.description or f"The {profile} profile of {module.nsid}: {module.summary}"
    return Group(f"{module.name}-{profile}", f"{module.nsid} {profile}", description, tuple(found.rpms))


def comps_xml(groups: Iterable[Group]) -> str:
    """The comps.xml text of these groups (ValueError when two different groups share an id)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">',
        "<comps>",
    ]
    chosen = sorted(set(groups), key=lambda g: g.id)
    clashing = sorted({a.id for a, b in itertools.pairwise(chosen) if a.id == b.id})
    if clashing:
        raise ValueError(f"different groups with the same id: {', '.join(clashing)}")
    for group in chosen:
        lines += [
            "  <group>",
            f"    <id>{escape(group.id)}</id>",
            f"    <name>{escape(group.name)}</name>",
            f"    <description>{escape(group.description)}</description>",
            "    <default>false</default>",
            "    <uservisible>true</uservisible>",
            "    <packagelist>",
            *(f'      <packagereq type="default">{escape(p)}</packagereq>' for p in _packages(group)),
            "    </packagelist>",
            "  </group>",
        ]
    lines.append("</comps>")
    return "\n".join(lines) + "\n"


def _packages(group: Group) -> list[str]:
    return sorted(set(group.packages))
