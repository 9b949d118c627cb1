"""What a yum repository holds, and which of it a build brings. Pure: no I/O.

A repository of one arch is read (`tools.yumrepo`) into a `Repository`: the state it was in
(repomd.xml's revision and sha256, Koji's repo.json when there is one) and its packages as
primary.xml lists them. A build is a source RPM's NVR: every binary RPM whose `sourcerpm` is
`<NVR>.src.rpm` belongs to it, as in Koji and MBS. For one arch a build brings its RPMs of that
arch and `noarch`, without debuginfo and debugsource packages (Fedora ships those in separate
debug repositories; factory composes none) and without multilib RPMs of another arch (the i686
RPMs of an x86_64 repository).

`newest_with_advisories` is what the history of a source records: the newest build of every
package it holds (rpm's version order, given as `compare`: `tools.rpmlib.label_compare`), and
the advisories naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pipeline.core.advisories import Advisory, naming_build

DEBUG_SUFFIXES = ("-debuginfo", "-debugsource")
SOURCE_ARCH = "src"  # the arch of a source repository (`source_baseurl`) and of its packages


class Package(NamedTuple):
    """One package of a repository's primary.xml: its NEVRA, its build's source RPM (empty for a
    source RPM), where it lies (`location`, relative to the repository), its sha256 and size.

    A named tuple, not a dataclass: a Fedora repository lists tens of thousands, and reading
    one is measured against createrepo_c's own parser (bench/source_scale.py)."""

    name: str
    epoch: int
    version: str
    release: str
    arch: str
    sourcerpm: str
    location: str
    sha256: str
    size: int

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.epoch}:{self.version}-{self.release}.{self.arch}"

    @property
    def is_source(self) -> bool:
        return self.arch in (SOURCE_ARCH, "nosrc")

    @property
    def filename(self) -> str:
        return self.location.rsplit("/", 1)[-1]

    @property
    def build(self) -> str:
        """The NVR of the build it belongs to (a source RPM: its own)."""
        if self.is_source:
            return f"{self.name}-{self.version}-{self.release}"
        return build_of_srpm(self.sourcerpm)


@dataclass(frozen=True, slots=True)
class KojiRepo:
    """What Koji's `repo.json` (beside the arch directories of a tag's repository) says of it."""

    tag: str
    id: int
    event_id: int


@dataclass(frozen=True, slots=True)
class RepoState:
    """The state a repository was read in: the source and arch, its URL as factory.yaml names it
    (`{arch}` replaced), repomd.xml's revision and sha256, and Koji's repo.json if any."""

    source: str
    arch: str
    url: str
    revision: str
    repomd_sha256: str
    koji: KojiRepo | None = None


@dataclass(frozen=True, slots=True)
class Repository:
    """A source's repository of one arch, as read: its state, packages and advisories."""

    state: RepoState
    packages: tuple[Package, ...]
    advisories: tuple[Advisory, ...] = ()


@dataclass(frozen=True, slots=True)
class Build:
    """A build: its source package name, epoch (of its RPMs), version and release."""

    name: str
    epoch: int
    version: str
    release: str

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"

    @property
    def srpm(self) -> str:
        return srpm_of_build(self.nvr)

    @property
    def evr(self) -> tuple[str, str, str]:
        """(epoch, version, release) as `rpm.labelCompare` takes them."""
        return (str(self.epoch), self.version, self.release)


def split_nvr(nvr: str) -> tuple[str, str, str]:
    """(name, version, release) of an NVR such as `glibc-2.41-11.fc42`; ValueError if it is none."""
    name, version, release = nvr.rsplit("-", 2)
    if not (name and version and release):
        raise ValueError(f"not an NVR: {nvr!r}")
    return name, version, release


def srpm_of_build(nvr: str) -> str:
    """The source RPM file name of a build, as binary RPMs name it in `sourcerpm`."""
    return f"{nvr}.src.rpm"


def build_of_srpm(sourcerpm: str) -> str:
    """The NVR of the build a `sourcerpm` field names (`glibc-2.41-11.fc42.src.rpm`)."""
    return sourcerpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")


def ships(package: Package, arch: str) -> bool:
    """Whether a build brings this binary RPM for arch: arch or noarch, no debug package."""
    return package.arch in (arch, "noarch") and not package.name.endswith(DEBUG_SUFFIXES)


def rpms_of_build(repository: Repository, nvr: str, arch: str) -> tuple[Package, ...]:
    """The binary RPMs a build brings for arch from one repository (none: it does not hold it)."""
    srpm = srpm_of_build(nvr)
    return tuple(
        sorted(
            (p for p in repository.packages if p.sourcerpm == srpm and ships(p, arch)),
            key=lambda p: p.location,
        )
    )


def source_rpm(repository: Repository, nvr: str) -> Package | None:
    """The source RPM of a build in a source repository, or None."""
    name, version, release = split_nvr(nvr)
    return next(
        (
            p
            for p in repository.packages
            if p.is_source and (p.name, p.version, p.release) == (name, version, release)
        ),
        None,
    )


def builds(packages: Iterable[Package]) -> dict[str, Build]:
    """Every build the binary packages belong to, by NVR (epoch from its RPMs)."""
    found: dict[str, Build] = {}
    seen: set[str] = set()  # the source RPMs met: every subpackage of a build names the same one
    for package in packages:
        srpm = package.sourcerpm
        if srpm in seen or not srpm or package.is_source:
            continue
        seen.add(srpm)
        nvr = build_of_srpm(srpm)
        if nvr not in found:
            try:
                name, version, release = split_nvr(nvr)
            except ValueError:
                continue  # a sourcerpm field that names no NVR: no build factory can pin
            found[nvr] = Build(name, package.epoch, version, release)
    return found


Compare = Callable[[tuple[str, str, str], tuple[str, str, str]], int]


def newest_builds(packages: Iterable[Package], compare: Compare) -> dict[str, Build]:
    """The newest build of every source package among the packages, by rpm's version order
    (`compare` is `rpm.labelCompare`), keyed by source package name."""
    newest: dict[str, Build] = {}
    for build in builds(packages).values():
        known = newest.get(build.name)
        if known is None or compare(build.evr, known.evr) > 0:
            newest[build.name] = build
    return newest


@dataclass(frozen=True, slots=True)
class Held:
    """The newest build of one package in a source, and the advisories naming it (security
    first, most severe first): what the history of a source records per package."""

    build: Build
    advisories: tuple[Advisory, ...]


def newest_with_advisories(repositories: Iterable[Repository], compare: Compare) -> tuple[Held, ...]:
    """The newest build of every package a source holds (over its repositories of every arch),
    each with the advisories of those repositories that name one of its RPMs; by package name."""
    held = list(repositories)
    newest = newest_builds((p for r in held for p in r.packages), compare)
    notes: dict[str, Advisory] = {a.id: a for r in held for a in r.advisories}
    by_srpm: dict[str, list[Advisory]] = {}  # each advisory under every source RPM it names, once
    for advisory in notes.values():
        for srpm in dict.fromkeys(p.src for p in advisory.packages):
            by_srpm.setdefault(srpm, []).append(advisory)
    return tuple(
        Held(build, naming_build(by_srpm.get(build.srpm, ()), build.srpm))
        for _, build in sorted(newest.items())
    )


def lookup_order(names: Sequence[str], inherits: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The sources a build is looked up in: each name, then what it inherits (depth first, in
    order), each once. Koji's inheritance: what a tag lacks comes from its parents."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        order.append(name)
        for parent in inherits.get(name, ()):
            visit(parent)

    for name in names:
        visit(name)
    return tuple(order)
