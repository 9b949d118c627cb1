"""Which release `factory publish` pushes, and the record of every push to a mirror.

A release is found in `refs/notes/releases` (`pipeline.release.release_dir`): a compose ID names its
releases, a node the releases of its composes; of a node's, the live one (what its release
directory's `latest` points at). A compose released into several directories needs `--from`.

Each publication is recorded on the compose's tag in `refs/notes/mirrors`, so "is it on the
mirror" is answered from a record: `{"format": 1, "compose_id": ..., "publications": [{"mirror",
"release", "time", "files", "sent", "deleted"}, ...]}`, one entry per run, oldest first.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.records import node_ref, parse_compose_id
from pipeline.core.states import ReleaseStatus
from pipeline.records import checks as results
from pipeline.records import paths
from pipeline.records.lineage import Lineage
from pipeline.release.publishing import Release, Synced
from pipeline.release.release_dir import LATEST, MANIFEST, RELEASES_REF
from pipeline.tools import rsync

MIRRORS_REF = "refs/notes/mirrors"


def releases(lineage: Lineage) -> list[Release]:
    """Every release recorded whose directory is still complete, by compose ID and path."""
    found: dict[Path, Release] = {}
    root = paths.checkout(lineage.repo)
    for compose_id, note in sorted(results.read_all(lineage, RELEASES_REF).items()):
        entries = note.get("releases")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("status") != ReleaseStatus.RELEASED:
                continue
            path = paths.located(root, str(entry.get("path", ""))).resolve()
            if path.is_absolute() and (path / MANIFEST).is_file() and path not in found:
                found[path] = Release(compose_id, lineage.get(compose_id).node, path)
    return list(found.values())


def live(release: Release) -> bool:
    """Whether the release is what its directory's `latest` points at now."""
    link = release.path.parent / LATEST
    return link.is_symlink() and link.resolve() == release.path.resolve()


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
    """Add the publication to the compose's note in refs/notes/mirrors: a local mirror and the
    release directory relative to the checkout when inside it (`pipeline.records.paths`)."""
    root = paths.checkout(lineage.repo)
    entry = {
        "mirror": synced.dest if rsync.is_remote(synced.dest) else paths.recorded(root, Path(synced.dest)),
        "release": paths.recorded(root, release.path),
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": synced.files,
        "sent": synced.sent,
        "deleted": synced.deleted,
    }

    def merge(compose_id: str, old: dict[str, object] | None) -> dict[str, object]:
        earlier = old.get("publications", []) if old else []
        return {
            "format": results.FORMAT,
            "compose_id": compose_id,
            "publications": [*(earlier if isinstance(earlier, list) else []), entry],
        }

    results.update_notes(lineage, MIRRORS_REF, {release.compose_id: merge}, "Mirror publications")


def publications(lineage: Lineage, compose_id: str) -> list[dict[str, object]]:
    """The recorded publications of a compose to mirrors, oldest first."""
    note = results.read_note(lineage, MIRRORS_REF, compose_id) or {}
    found = note.get("publications", [])
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def _is_compose_id(text: str) -> bool:
    try:
        parse_compose_id(text)
    except InvalidInput:
        return False
    return True
