"""The binary package sources of a run, and where a build's RPMs are found in them.

`SourceReader` reads each source's repository of an arch once (librepo, through the cache of
readings by repomd.xml checksum: `tools.yumrepo`), with factory.yaml's baseurl or the
`FACTORY_SOURCE_<NAME>_BASEURL` that overrides it. `locate` finds the RPMs a build brings for
its arches, looking in the pin's source and then in what it inherits, and its source RPM in the
`source_baseurl` of the source holding it; `answers` is what validation asks of every source
(`core.sources.availability_problems`). The binary composer downloads what `locate` finds; the
engine resolves a binary pin's compose key with it (`engine.sources`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.config import Config
from pipeline.core.errors import OperationFailed
from pipeline.core.model import Definitions
from pipeline.core.packages import (
    SOURCE_ARCH,
    Package,
    Repository,
    RepoState,
    lookup_order,
    rpms_of_build,
    ships,
    source_rpm,
    srpm_of_build,
)
from pipeline.core.sources import Answer, Source, effective, repo_json_url
from pipeline.tools import yumrepo


@dataclass(frozen=True, slots=True)
class Located:
    """One RPM of a build where it was found: the package, the repository's state, and the
    variable that overrode the source's baseurl ("" when none did)."""

    package: Package
    state: RepoState
    via: str = ""

    @property
    def url(self) -> str:
        """Its URL as factory.yaml names the repository."""
        return self.state.url.rstrip("/") + "/" + self.package.location


@dataclass(frozen=True, slots=True)
class Found:
    """The RPMs a build brings (binary RPMs of its arches and noarch, and its source RPM when the
    source holding it has a `source_baseurl`); `no_source` says why there is no source RPM."""

    build: str
    rpms: tuple[Located, ...]
    no_source: str = ""

    def key(self) -> list[list[str]]:
        """[[NEVRA, sha256], ...] sorted: what a binary pin's compose key holds of its RPMs."""
        return sorted([r.package.nevra, r.package.sha256] for r in self.rpms)


@dataclass(frozen=True, slots=True)
class Missing:
    """Why a build's RPMs could not be found: not held (`answered`), or a source that failed."""

    why: str
    answered: bool


class SourceReader:
    """The sources of factory.yaml as this run reads them; thread-safe, each repository read once."""

    def __init__(self, config: Config, root: Path, env: Mapping[str, str]) -> None:
        self.sources = {s.name: effective(s, env) for s in config.sources}
        self.configured = {s.name: s for s in config.sources}  # what records name
        self.root = root
        self.cache = root / yumrepo.CACHE
        self._read: dict[tuple[str, str], Repository | OperationFailed] = {}
        self._lock = threading.Lock()

    def source(self, name: str) -> Source:
        return self.sources[name]

    def read_url(self, name: str, arch: str) -> str:
        """The URL a source's repository of arch (`src`: its source RPMs) is read from in this run."""
        source = self.sources[name]
        return source.srpm_url() if arch == SOURCE_ARCH else source.url(arch)

    def chain(self, names: Sequence[str]) -> tuple[str, ...]:
        """The sources a build of these sources is looked up in (with what they inherit)."""
        return lookup_order(names, {n: s.inherits for n, s in self.sources.items()})

    def repository(self, name: str, arch: str) -> Repository:
        """A source's repository of arch (`src`: its source_baseurl) as it is now, read once."""
        key = (name, arch)
        with self._lock:
            known = self._read.get(key)
        if known is None:
            url = self.read_url(name, arch)
            if arch == SOURCE_ARCH:
                where = yumrepo.Where(name, arch, url)
            else:
                repo_json = repo_json_url(url, self.sources[name].baseurl)
                where = yumrepo.Where(name, arch, url, repo_json, self.configured[name].url(arch))
            try:
                known = yumrepo.read(where, root=self.root, cache=self.cache)
            except OperationFailed as exc:
                known = exc
            with self._lock:
                self._read[key] = known
        if isinstance(known, OperationFailed):
            raise known
        return known

    def locate(self, build: str, names: Sequence[str], arches: Sequence[str]) -> Found | Missing:
        """The RPMs a build brings for arches, from the first source of the chain holding it."""
        chain = self.chain(names)
        failures: list[str] = []
        found: dict[str, Located] = {}  # by NEVRA: a noarch RPM is in every arch's repository
        for arch in arches:
            located = self._in_chain(build, arch, chain, failures)
            if located is None:
                return self._missing(build, arch, chain, failures)
            for item in located:
                found.setdefault(item.package.nevra, item)
        if not found:
            return Found(build, ())
        holder = next(iter(found.values())).state.source  # its source RPM comes from there
        if not self.sources[holder].source_baseurl:
            return Found(build, tuple(found.values()), f"source {holder} has no source_baseurl")
        srpm = self._in_chain(build, SOURCE_ARCH, [holder], failures)
        if srpm is None:
            return self._missing(build, SOURCE_ARCH, [holder], failures)
        return Found(build, (*found.values(), *srpm))

    def _in_chain(
        self, build: str, arch: str, chain: Sequence[str], failures: list[str]
    ) -> tuple[Located, ...] | None:
        for name in chain:
            try:
                repository = self.repository(name, arch)
            except OperationFailed as exc:
                failures.append(exc.message)
                continue
            via = self.sources[name].via
            if arch == SOURCE_ARCH:
                package = source_rpm(repository, build)
                if package is not None:
                    return (Located(package, repository.state, via),)
                continue
            rpms = rpms_of_build(repository, build, arch)
            if rpms:
                return tuple(Located(p, repository.state, via) for p in rpms)
        return None

    def _missing(self, build: str, arch: str, chain: Sequence[str], failures: Sequence[str]) -> Missing:
        where = _chain_text(chain)
        if failures:
            return Missing(f"{build} is not in {where} for {arch}, and " + "; ".join(failures), False)
        if arch == SOURCE_ARCH:
            return Missing(f"{srpm_of_build(build)} is not in the source_baseurl of {where}", True)
        return Missing(f"no RPM of {where} for {arch} comes from {srpm_of_build(build)}", True)

    def answers(self, arches: Sequence[str]) -> dict[str, Answer]:
        """What every source holds, for validation: (arch, NVR) of its builds, or why it could not
        be read (a broken answer, or none)."""
        found: dict[str, Answer] = {}
        for name, source in sorted(self.sources.items()):
            holds: set[tuple[str, str]] = set()
            try:
                for arch in arches:
                    repository = self.repository(name, arch)
                    holds.update((arch, p.build) for p in repository.packages if ships(p, arch))
                if source.source_baseurl:
                    repository = self.repository(name, SOURCE_ARCH)
                    holds.update((SOURCE_ARCH, p.build) for p in repository.packages if p.is_source)
            except yumrepo.SourceBroken as exc:
                found[name] = Answer(name, problem=exc.message, broken=True)
                continue
            except OperationFailed as exc:
                found[name] = Answer(name, problem=exc.message)
                continue
            found[name] = Answer(name, frozenset(holds))
        return found


def pin_sources(defs: Definitions, build: str) -> tuple[str, ...]:
    """The sources the live modules pin a build from, in module order, each once."""
    names: list[str] = []
    for nsid in sorted(defs.live_modules()):
        for pin in defs.modules[nsid].binaries:
            if pin.build == build and pin.source not in names:
                names.append(pin.source)
    return tuple(names)


def _chain_text(chain: Sequence[str]) -> str:
    head = f"source {chain[0]}"
    return head if len(chain) == 1 else f"{head} (nor {', '.join(chain[1:])}, which it inherits)"
