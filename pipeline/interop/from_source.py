"""Binary pins from what a source holds: the builds `factory import repo`, `import pungi --source`
and `import modulemd --source` pin. Pure: repositories in, pins out.

A name is looked up in the source and then in what it inherits (the first source holding it
answers, as Koji's inheritance does), over its repositories of every arch: a source package
name (a build's name) gives its newest build; a binary package name gives the build of its
newest RPM. rpm's version order is given as `compare` (`tools.rpmlib.label_compare`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.core.packages import (
    Build,
    Compare,
    Package,
    Repository,
    builds,
    newest_builds,
    ships,
    split_nvr,
)


@dataclass(frozen=True, slots=True)
class Found:
    """A name as the source holds it: its component (source package), the build to pin, the
    source holding it, and the binary packages the name stands for (itself when it is one; else
    the build's binary packages of the same name, or all of them)."""

    name: str
    component: str
    build: Build
    holder: str
    binaries: tuple[str, ...]


def _binaries(repositories: Iterable[Repository]) -> list[Package]:
    """The binary RPMs the repositories ship for their arch (noarch too, no debug packages)."""
    return [p for r in repositories for p in r.packages if not p.is_source and ships(p, r.state.arch)]


def find(name: str, chain: Sequence[tuple[str, Sequence[Repository]]], compare: Compare) -> Found | None:
    """A source or binary package name in the first source of the chain holding it; None."""
    for holder, repositories in chain:
        packages = _binaries(repositories)
        newest = newest_builds(packages, compare)
        if name in newest:
            build = newest[name]
            own = sorted({p.name for p in packages if p.sourcerpm == build.srpm})
            return Found(name, name, build, holder, (name,) if name in own else tuple(own))
        named = [p for p in packages if p.name == name]
        if named:
            best = named[0]
            for package in named[1:]:
                if compare(_evr(package), _evr(best)) > 0:
                    best = package
            nvr = best.build
            build = builds([best]).get(nvr) or Build(*_name_version_release(nvr, best.epoch))
            return Found(name, build.name, build, holder, (name,))
    return None


def _evr(package: Package) -> tuple[str, str, str]:
    return (str(package.epoch), package.version, package.release)


def _name_version_release(nvr: str, epoch: int) -> tuple[str, int, str, str]:
    name, version, release = split_nvr(nvr)
    return name, epoch, version, release


def pins(found: Iterable[Found], compare: Compare) -> dict[str, Found]:
    """One pin per component, by component: the newest build any name led to, the binaries of
    every name that led to it (in the order given)."""
    kept: dict[str, Found] = {}
    for item in found:
        known = kept.get(item.component)
        if known is None:
            kept[item.component] = item
            continue
        newer = item if compare(item.build.evr, known.build.evr) > 0 else known
        binaries = tuple(dict.fromkeys((*known.binaries, *item.binaries)))
        kept[item.component] = Found(newer.name, newer.component, newer.build, newer.holder, binaries)
    return kept


def builds_by_nvr(chain: Sequence[tuple[str, Sequence[Repository]]]) -> Mapping[str, tuple[str, Build]]:
    """Every build the chain holds, by NVR: (the first source holding it, the build)."""
    found: dict[str, tuple[str, Build]] = {}
    for holder, repositories in chain:
        for nvr, build in builds(_binaries(repositories)).items():
            found.setdefault(nvr, (holder, build))
    return found
