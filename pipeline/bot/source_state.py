"""What each binary package source holds now: read, and recorded in the source history.

A source is read for every arch the release is composed for (librepo, through the cache of
readings by repomd.xml checksum: `compose.sources.SourceReader`); what it holds is the newest
build of each of its packages with the advisories naming it (`core.packages.newest_with_advisories`,
in rpm's own version order), recorded on `refs/history/sources/<source>`
(`records.source_history`). `factory history record` and `factory bot reconcile` both come here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.compose.sources import SourceReader
from pipeline.core.errors import OperationFailed
from pipeline.core.model import Definitions
from pipeline.core.packages import Held, Repository, newest_with_advisories
from pipeline.core.sources import release_arches
from pipeline.records.source_history import SourceHistory, SourceObservation
from pipeline.tools.rpmlib import label_compare


@dataclass(frozen=True, slots=True)
class Seen:
    """One source as read now: its repositories (one per arch) and what it holds; or why not."""

    source: str
    repositories: tuple[Repository, ...] = ()
    held: tuple[Held, ...] = ()
    problem: str = ""
    by_name: Mapping[str, Held] = field(default_factory=dict, compare=False, repr=False)

    @property
    def answered(self) -> bool:
        return not self.problem

    def newest(self, package: str) -> Held | None:
        """The newest build of a source package it holds, with the advisories naming it."""
        return self.by_name.get(package)


def arches_of(defs: Definitions) -> tuple[str, ...]:
    """The arches a source is read for: the release's (every arch of a live variant)."""
    return release_arches(v.arches for v in defs.live_variants().values())


def pinned_sources(defs: Definitions, reader: SourceReader, component: str | None = None) -> list[str]:
    """The sources the binary pins (of one component, or all) take builds from, with what they
    inherit; every source of factory.yaml when no component is named."""
    if component is None:
        return sorted(reader.sources)
    names = {b.source for m in defs.modules.values() for b in m.binaries if b.component == component}
    return sorted(reader.chain(sorted(n for n in names if n in reader.sources)))


def read(reader: SourceReader, names: Collection[str], arches: Sequence[str]) -> dict[str, Seen]:
    """Each named source as it is now, read for every arch."""
    seen: dict[str, Seen] = {}
    for name in sorted(names):
        try:
            repositories = tuple(reader.repository(name, arch) for arch in arches)
        except OperationFailed as exc:
            seen[name] = Seen(name, problem=exc.message)
            continue
        held = newest_with_advisories(repositories, label_compare)
        seen[name] = Seen(name, repositories, held, by_name={h.build.name: h for h in held})
    return seen


def observe(
    defs: Definitions, root: Path, env: Mapping[str, str], component: str | None = None
) -> dict[str, Seen]:
    """The sources of the definitions (those a component's pins read, when given), read now."""
    reader = SourceReader(defs.config, root, env)
    return read(reader, pinned_sources(defs, reader, component), arches_of(defs))


def record(history: SourceHistory, seen: Mapping[str, Seen], now: int) -> list[SourceObservation]:
    """Record every source that answered; the observations that changed something."""
    made = []
    for name, found in sorted(seen.items()):
        if found.answered and found.repositories:
            observation = history.record(name, found.held, [r.state for r in found.repositories], now)
            if observation is not None:
                made.append(observation)
    return made
