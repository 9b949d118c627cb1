"""Source history: the newest build of every package a binary package source held, and when.

`refs/history/sources/<source>` in the definitions repository holds one commit per observed
change of the source, its commit time the time of the observation, its parent the previous
one. Its tree:

    source.json                  the repositories read: per arch, the URL as factory.yaml names
                                 it, repomd.xml's revision and sha256, Koji's tag, repo and event
    packages/<xx>/<name>.json    one file per source package: its newest build (name, epoch,
                                 version, release) and the advisories naming that build, their
                                 package lists cut to its RPMs; canonical JSON, the build on
                                 its first line and an advisory a line; `xx` is the first two
                                 hex digits of the sha1 of the name

A Fedora repository of 20,000 packages changes a few of them a day: a commit rewrites only their
files and folders, so it stays small, comparing a reading with the last record reads no blob
(the blob ids Git would give the new files are compared with the recorded ones), and
`git log -p refs/history/sources/f42-updates -- '*/glibc.json'` reads the history of one
package. The commit message names each change (`glibc 2.41-9.fc42 -> 2.41-11.fc42
(FEDORA-2026-abc123)`). A source whose packages did not change records nothing, even when its
repository was regenerated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.core import advisories
from pipeline.core.canonical import canonical_json, pretty_json
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.packages import Build, Held, RepoState
from pipeline.git import refs
from pipeline.git import repo as gitrepo
from pipeline.git.repo import Repository
from pipeline.records.history import iso
from pipeline.records.refs import SOURCE_HISTORY

STATE = "source.json"
PACKAGES = "packages/"
FORMAT = 1


def ref_name(source: str) -> str:
    """`refs/history/sources/<source>` (source names are checked by factory.yaml's schema)."""
    if not source or "/" in source or source.startswith(".") or ".." in source:
        raise InvalidInput(f"not a usable source name: {source!r}", code="invalid-name")
    return SOURCE_HISTORY + source


def package_path(name: str) -> str:
    """`packages/<xx>/<name>.json`: where a source package's record lies in the tree."""
    shard = hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:2]
    return f"{PACKAGES}{shard}/{name}.json"


def package_file(held: Held) -> bytes:
    """The bytes of a package's record: its build, and the advisories naming it cut to its RPMs."""
    srpm = held.build.srpm
    notes = []
    for advisory in held.advisories:
        data = advisories.to_json(advisory)
        for collection in data["collections"]:
            collection["packages"] = [p for p in collection["packages"] if p[6] == srpm]
        data["collections"] = [c for c in data["collections"] if c["packages"]]
        notes.append(data)
    build = held.build
    # Canonical JSON (sorted keys, no spaces, UTF-8) written by hand for the build: json.dumps
    # per file costs more than the rest of a reading of 20,000 packages. A line for the build
    # and one per advisory, so `git log -p` shows which changed.
    head = (
        f'{{"build":{_string(build.nvr)},"epoch":{int(build.epoch)},"format":{FORMAT},'
        f'"name":{_string(build.name)},"release":{_string(build.release)},"version":{_string(build.version)}}}'
    )
    lines = ",\n".join(canonical_json(a) for a in notes)
    return f'{head[:-1]},\n"advisories":[{chr(10) + lines + chr(10) if notes else ""}]}}\n'.encode()


_string = json.encoder.encode_basestring  # json's own (C) string encoder, as canonical_json's


def parse_package(data: bytes) -> Held:
    """The record `package_file` wrote (ValueError, KeyError or TypeError when it is not one)."""
    value = json.loads(data)
    build = Build(str(value["name"]), int(value["epoch"]), str(value["version"]), str(value["release"]))
    return Held(build, tuple(advisories.from_json(a) for a in value["advisories"]))


def state_file(states: Sequence[RepoState], observed: int) -> bytes:
    """The bytes of source.json: when, and the repositories read (by arch)."""
    repositories = [
        {
            "arch": s.arch,
            "url": s.url,
            "revision": s.revision,
            "repomd_sha256": s.repomd_sha256,
            **(
                {"koji": {"tag": s.koji.tag, "repo_id": s.koji.id, "event_id": s.koji.event_id}}
                if s.koji
                else {}
            ),
        }
        for s in sorted(states, key=lambda s: s.arch)
    ]
    return pretty_json({"format": FORMAT, "observed": iso(observed), "repositories": repositories}).encode()


@dataclass(frozen=True, slots=True)
class Change:
    """One package whose newest build changed: old and new (None: not held), and the ids of the
    advisories naming the new build."""

    package: str
    old: Build | None
    new: Build | None
    advisories: tuple[str, ...] = ()

    def text(self) -> str:
        """`glibc 2.41-9.fc42 -> 2.41-11.fc42 (FEDORA-2026-abc123)`, `tzdata new at 2025b-1.fc42`,
        `bash 5.2.37-1.fc42 gone`."""
        if self.old is None and self.new is not None:
            text = f"{self.package} new at {_vr(self.new)}"
        elif self.new is None and self.old is not None:
            text = f"{self.package} {_vr(self.old)} gone"
        elif self.old is not None and self.new is not None and self.old.nvr == self.new.nvr:
            text = f"{self.package} {_vr(self.new)}"
        else:
            assert self.old is not None and self.new is not None
            text = f"{self.package} {_vr(self.old)} -> {_vr(self.new)}"
        return text + (f" ({', '.join(self.advisories)})" if self.advisories else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "old": self.old.nvr if self.old else None,
            "new": self.new.nvr if self.new else None,
            "advisories": list(self.advisories),
        }


def _vr(build: Build) -> str:
    epoch = f"{build.epoch}:" if build.epoch else ""
    return f"{epoch}{build.version}-{build.release}"


@dataclass(frozen=True, slots=True)
class SourceObservation:
    """A source observed at a time (seconds, UTC): what changed since the last record."""

    source: str
    observed: int
    packages: int  # how many packages it holds
    changes: tuple[Change, ...]
    record: str = ""  # the commit of refs/history/sources/... holding it

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "observed": iso(self.observed),
            "packages": self.packages,
            "changes": [c.to_json() for c in self.changes],
        }


@dataclass(frozen=True, slots=True)
class HeldAt:
    """What one package was in a source at an observation: `held` None when the source held none."""

    source: str
    package: str
    observed: int
    held: Held | None
    record: str


class SourceHistory:
    """The source history recorded in one definitions repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def record(
        self, source: str, held: Sequence[Held], states: Sequence[RepoState], when: int
    ) -> SourceObservation | None:
        """Record what the source holds now (the newest build of each package, with the
        advisories naming it); None when no package changed since the last record."""
        name = ref_name(source)
        files = {package_path(h.build.name): package_file(h) for h in held}
        made: list[SourceObservation] = []

        def observe(parent: str | None) -> str | None:
            made.clear()
            recorded = {
                p: b for p, b in gitrepo.tree_blob_ids(self.repo, parent).items() if p.startswith(PACKAGES)
            }
            changed: dict[str, bytes | None] = {
                p: d for p, d in files.items() if recorded.get(p) != gitrepo.blob_id(d)
            }
            changed.update({p: None for p in recorded if p not in files})
            if parent is not None and not changed:
                return parent
            last = 0 if parent is None else _time(self.repo, parent)
            observed = max(when, last)
            changes = tuple(
                sorted((self._change(parent, p, d) for p, d in changed.items()), key=lambda c: c.package)
            )
            message = _message(source, changes, len(files), observed)
            commit = gitrepo.record_tree_commit(
                self.repo, parent, {**changed, STATE: state_file(states, observed)}, message, observed
            )
            made.append(SourceObservation(source, observed, len(files), changes, commit))
            return commit

        refs.update_ref(self.repo, name, observe, code="history-contention")
        return made[0] if made else None

    def _change(self, parent: str | None, path: str, data: bytes | None) -> Change:
        old_bytes = None if parent is None else gitrepo.file_at(self.repo, parent, path)
        old = None if old_bytes is None else _parse(old_bytes, parent or "", path)
        new = None if data is None else parse_package(data)
        either = new or old
        assert either is not None  # a changed path is written, or removed where one was
        package = either.build.name
        known = {a.id for a in old.advisories} if old and new and old.build == new.build else set()
        fresh = tuple(a.id for a in new.advisories if a.id not in known) if new else ()
        return Change(package, old.build if old else None, new.build if new else None, fresh)

    def observations(self, source: str) -> Iterator[tuple[str, int]]:
        """(commit, observed) of every record of the source, newest first."""
        commit = gitrepo.ref_target(self.repo, ref_name(source))
        while commit is not None:
            info = gitrepo.commit_info(self.repo, commit)
            if info is None:
                raise OperationFailed(f"source history commit {commit} is missing", code="bad-history")
            yield commit, info.commit_time
            commit = info.parents[0] if info.parents else None

    def at(self, source: str, package: str, when: int) -> HeldAt | None:
        """The package in the source at a time: the newest observation made at or before it
        (None when the source was not observed by then)."""
        for commit, observed in self.observations(source):
            if observed <= when:
                return self._held_at(source, package, commit, observed)
        return None

    def latest(self, source: str, package: str) -> HeldAt | None:
        """The package in the source's last record (None: never recorded)."""
        for commit, observed in self.observations(source):
            return self._held_at(source, package, commit, observed)
        return None

    def log(self, source: str, package: str) -> list[HeldAt]:
        """Every observation at which the package's record changed, newest first."""
        path = package_path(package)
        found: list[HeldAt] = []
        previous: tuple[str, int, str | None] | None = None  # the newer commit, its time and blob
        for commit, observed in self.observations(source):
            blob = gitrepo.path_id(self.repo, commit, path)
            if previous is not None and previous[2] != blob:
                found.append(self._held_at(source, package, previous[0], previous[1]))
            previous = (commit, observed, blob)
        if previous is not None and previous[2] is not None:
            found.append(self._held_at(source, package, previous[0], previous[1]))
        return found

    def packages(self, source: str) -> list[str]:
        """Every package the source's last record holds, sorted."""
        head = gitrepo.ref_target(self.repo, ref_name(source))
        names = gitrepo.tree_blob_ids(self.repo, head)
        return sorted(p.rsplit("/", 1)[1].removesuffix(".json") for p in names if p.startswith(PACKAGES))

    def sources(self) -> list[str]:
        """Every source with a history, sorted."""
        return sorted(n.removeprefix(SOURCE_HISTORY) for n in gitrepo.refs(self.repo, SOURCE_HISTORY))

    def _held_at(self, source: str, package: str, commit: str, observed: int) -> HeldAt:
        path = package_path(package)
        data = gitrepo.file_at(self.repo, commit, path)
        return HeldAt(source, package, observed, None if data is None else _parse(data, commit, path), commit)


def _parse(data: bytes, commit: str, path: str) -> Held:
    try:
        return parse_package(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise OperationFailed(
            f"source history commit {commit}: {path} is damaged: {exc}", code="bad-history"
        ) from exc


def _time(repo: Repository, commit: str) -> int:
    info = gitrepo.commit_info(repo, commit)
    return 0 if info is None else info.commit_time


def _message(source: str, changes: Sequence[Change], packages: int, observed: int) -> str:
    """`f42-updates: glibc 2.41-9.fc42 -> 2.41-11.fc42 (FEDORA-2026-abc123)` and a line per change."""
    head = (
        f"{source}: {changes[0].text()}"
        if len(changes) == 1
        else f"{source}: {len(changes)} packages changed"
    )
    lines = [head, "", f"Observed {iso(observed)}: {packages} packages."]
    if len(changes) > 1:
        lines += ["", *(c.text() for c in changes)]
    return "\n".join(lines) + "\n"
