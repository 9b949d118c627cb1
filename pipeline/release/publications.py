"""Which release `factory publish` pushes, and recording the push.

A release is found in `refs/notes/releases` (`pipeline.records.releases`): a compose ID names
its releases, a node the releases of its composes; of a node's, the live one (what its release
directory's `latest` points at). A compose released into several directories needs `--from`.
Each publication is recorded on the compose's tag in `refs/notes/mirrors`
(`pipeline.records.mirrors`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.records import node_ref, parse_compose_id
from pipeline.records import mirrors
from pipeline.records import releases as release_notes
from pipeline.records.lineage import Lineage
from pipeline.release.publishing import Release, Synced
from pipeline.release.release_dir import MANIFEST
from pipeline.tools import rsync


def releases(lineage: Lineage) -> list[Release]:
    """Every release recorded whose directory is still complete, by compose ID and path."""
    found: dict[Path, Release] = {}
    root = release_notes.checkout(lineage)
    for compose_id, note in release_notes.read_all(lineage).items():
        for entry in note.released():
            path = entry.location(root).resolve()
            if path.is_absolute() and (path / MANIFEST).is_file() and path not in found:
                found[path] = Release(compose_id, lineage.get(compose_id).node, path)
    return list(found.values())


def live(release: Release) -> bool:
    """Whether the release is what its directory's `latest` points at now."""
    return release_notes.live_at(release.path)


def choose(lineage: Lineage, what: str, from_dir: Path | None = None) -> Release:
    """The release a compose ID or node names (in `from_dir`, if given); see the module docstring."""
    by_compose = _is_compose_id(what)
    if not by_compose:
        node_ref(what)  # InvalidInput unless it is a node id
    found = [r for r in releases(lineage) if (r.compose_id if by_compose else r.node) == what]
    if from_dir is not None:
        found = [r for r in found if r.path.parent.resolve() == from_dir.resolve()]
    if not by_compose and any(live(r) for r in found):
        found = [r for r in found if live(r)]
    if not found:
        where = f" in {from_dir}" if from_dir is not None else ""
        raise OperationFailed(
            f"no release of {what}{where} to publish",
            hint="release it first: factory release COMPOSE_ID --to DIR",
            code="no-release",
        )
    directories = sorted({str(r.path.parent) for r in found})
    if len(directories) > 1:
        raise InvalidInput(
            f"{what} is released in {len(directories)} directories: {', '.join(directories)}",
            hint="say which with --from DIR",
            code="ambiguous-release",
        )
    return found[-1]


def record(lineage: Lineage, release: Release, synced: Synced) -> None:
    """Add the publication to the compose's note in refs/notes/mirrors."""
    publication = mirrors.PublicationRecord(
        mirror=mirrors.named(lineage, synced.dest, remote=rsync.is_remote(synced.dest)),
        release=mirrors.named(lineage, release.path),
        time=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        files=synced.files,
        sent=synced.sent,
        deleted=synced.deleted,
    )
    mirrors.append(lineage, release.compose_id, publication)


def _is_compose_id(text: str) -> bool:
    try:
        parse_compose_id(text)
    except InvalidInput:
        return False
    return True
