"""What a mirror needs, in which order, and what it may forget. Pure: no I/O.

A mirror serves clients while it is being written, so a publication goes in passes, each put in
place at its end (`pipeline.tools.rsync`), in the order that keeps every state a client can see
complete (Terminology: a *publication* is one push of one release to one mirror):

1. content: packages, images, keys, OSTree objects, static deltas and their indexes, the
   repository's config: new names only ever, nothing refers to them yet;
2. metadata: a yum repo's repodata files, named by their checksums: new names too;
3. switch: each repo's `repomd.xml` (with its signature): now the repo shows the new metadata;
4. refs: the OSTree refs, each naming a commit whose objects are all there;
5. summary: the OSTree summary and its signature, which list refs and deltas;
6. checksums: CHECKSUM files and RELEASE.json, which describe what is there, last.

Nothing is deleted before the last pass, and then only what no recent publication needs: a
client that read the previous `repomd.xml` or summary a moment ago still finds what it names.
A file stays while some publication that needed it was superseded less than `grace` seconds
ago; the mirror keeps the list of its publications (`STATE`) for that.

Known limit: a signed pair (`repomd.xml` and `repomd.xml.asc`, `summary` and `summary.sig`)
cannot change at once: both are renamed at the end of one pass, and a client that checks the
pair's signature (dnf's repo_gpgcheck, ostree's gpg-verify-summary) and reads one file before
and one after that instant fails once and succeeds when it tries again. Package and commit
signatures (dnf's gpgcheck, ostree's gpg-verify, which Fedora's clients use) have no such window.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pipeline.core.errors import InvalidInput

STATE = ".factory-mirror/publications.json"  # on the mirror, relative to its root
RELEASE_ROOT = "latest/"  # where a release's own files go on the mirror
OSTREE_ROOT = "ostree/repo/"  # where a release's served OSTree repository goes on the mirror
FORMAT = 1
SIGNED_REPOMD = ("repomd.xml", "repomd.xml.asc", "repomd.xml.key")
# What of an OSTree repository is the repository's own business, never served.
OSTREE_PRIVATE = ("tmp/", "state/", ".lock", "refs/remotes/", "refs/mirrors/")


class Stage(StrEnum):
    """The passes of a publication, in their order (see the module docstring)."""

    CONTENT = "content"
    METADATA = "metadata"
    SWITCH = "switch"
    REFS = "refs"
    SUMMARY = "summary"
    CHECKSUMS = "checksums"


ORDER = tuple(Stage)


def stage_of(path: str) -> Stage:
    """The pass a file (relative to the mirror's root) goes in."""
    parent, _, name = path.rpartition("/")
    if path.startswith(OSTREE_ROOT):
        inside = path.removeprefix(OSTREE_ROOT)
        if inside.startswith("refs/"):
            return Stage.REFS
        if inside in ("summary", "summary.sig"):
            return Stage.SUMMARY
        return Stage.CONTENT
    if name == "RELEASE.json" or name.endswith("CHECKSUM") or name.startswith("SHA256SUMS"):
        return Stage.CHECKSUMS
    if parent == "repodata" or parent.endswith("/repodata"):
        return Stage.SWITCH if name in SIGNED_REPOMD else Stage.METADATA
    return Stage.CONTENT


def served(path: str) -> bool:
    """Whether a file of a served OSTree repository (relative to it) belongs on a mirror."""
    return not path.startswith(OSTREE_PRIVATE)


def passes(paths: Iterable[str]) -> list[tuple[Stage, list[str]]]:
    """The files of a publication by pass, in order (empty passes left out), each sorted."""
    by_stage: dict[Stage, list[str]] = {}
    for path in paths:
        if "\n" in path or "\0" in path or path.startswith("/") or ".." in path.split("/"):
            raise InvalidInput(f"a release file a mirror cannot take: {path!r}", code="mirror-path")
        by_stage.setdefault(stage_of(path), []).append(path)
    return [(stage, sorted(by_stage[stage])) for stage in ORDER if stage in by_stage]


@dataclass(frozen=True, slots=True)
class Publication:
    """One release pushed to a mirror: the compose, its node, when it began, every file it holds."""

    compose_id: str
    node: str
    started: str  # ISO 8601 UTC
    files: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "compose_id": self.compose_id,
            "node": self.node,
            "started": self.started,
            "files": list(self.files),
        }


def load_state(data: Mapping[str, Any]) -> list[Publication]:
    """The publications a mirror's STATE lists, oldest first."""
    if data.get("format") != FORMAT or not isinstance(data.get("publications"), list):
        raise InvalidInput(f"{STATE} on the mirror is not factory's (format {FORMAT})", code="mirror-state")
    found = []
    for item in data["publications"]:
        try:
            found.append(
                Publication(
                    str(item["compose_id"]),
                    str(item["node"]),
                    str(item["started"]),
                    tuple(map(str, item["files"])),
                )
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"{STATE} on the mirror has a malformed entry", code="mirror-state") from exc
    return found


def dump_state(publications: Sequence[Publication]) -> dict[str, Any]:
    return {"format": FORMAT, "publications": [p.to_json() for p in publications]}


def begin(publications: Sequence[Publication], new: Publication) -> list[Publication]:
    """The publications once `new` begins: the same release again (same compose, same files)
    changes nothing; anything else is appended and supersedes the one before it. A mirror holds
    one node's releases: another node's is InvalidInput."""
    if publications and publications[-1].node != new.node:
        raise InvalidInput(
            f"the mirror holds releases of {publications[-1].node}, not {new.node}",
            hint="publish each release target (each --to of `factory release`) to its own mirror directory",
            code="mirror-node",
        )
    if publications and (publications[-1].compose_id, publications[-1].files) == (new.compose_id, new.files):
        return list(publications)
    return [*publications, new]


def remembered(publications: Sequence[Publication], now: int, grace: int) -> list[Publication]:
    """The publications still to remember: the newest, and each one superseded (by the start of
    the next) less than `grace` seconds before `now`."""
    kept = []
    for older, newer in itertools.pairwise(publications):
        if now - _seconds(newer.started) < grace:
            kept.append(older)
    return [*kept, *publications[-1:]]


def protected(publications: Sequence[Publication], now: int, grace: int) -> set[str]:
    """Files a deletion pass must spare: those of every remembered publication."""
    return {path for p in remembered(publications, now, grace) for path in p.files} | {STATE}


def _seconds(stamp: str) -> int:
    return int(dt.datetime.fromisoformat(stamp).timestamp())
