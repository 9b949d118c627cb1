"""Publishing a release to a mirror, in the order mirrors need (`pipeline.core.mirror`).

The mirror of a release target (one `--to DIR` of `factory release`) is a directory, local or
remote (whatever rsync takes), that serves the release at stable paths, shaped as the release
target is, so the paths RELEASE.json names (`../ostree/repo/...`) hold on the mirror too:

    DEST/latest/                   the files of the release (DIR/<compose-id>/, what DIR/latest
                                   points at): compose/..., metadata/..., RPM-GPG-KEY-factory,
                                   RELEASE.json; a real directory, its content replaced in place
    DEST/ostree/repo/              the served OSTree repository (DIR/ostree/repo), for an
                                   `ostree:` node: objects, deltas, refs, signed summary
    DEST/.factory-mirror/publications.json   what was published there, and when

A container release's `containers/registries.d/` names its signatures' lookaside by a
`file://` path of the machine that released it; the mirror gets its own instead, naming the
lookaside where the mirror serves it (`<base URL>/latest/sigstore`), when the URL the mirror is
served at is given, and none otherwise (`Synced.unserved` lists what was left out).

Each pass is one rsync run per source (the release's directory, the served repository) with its
files listed exactly; the publication is written to the mirror's state before the first pass,
so a publication that is interrupted is remembered as well, and deletion comes last. Running
the same publication again sends nothing new; an interrupted one leaves the mirror serving the
old release or the new one, each complete, and running it again finishes it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core import mirror
from pipeline.core.canonical import pretty_json
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.kinds import OSTREE
from pipeline.core.mirror import Publication
from pipeline.release import container_registry as registries
from pipeline.release import ostree_history
from pipeline.tools import rsync

DEFAULT_GRACE = 3600  # seconds a superseded publication's files stay on the mirror


@dataclass(frozen=True, slots=True)
class Release:
    """A release to publish: its compose, node and directory (DIR/<compose-id>)."""

    compose_id: str
    node: str
    path: Path

    @property
    def served_repo(self) -> Path | None:
        """The served OSTree repository of the release's target, for an `ostree:` node."""
        repo = ostree_history.served_repo(self.path.parent)
        return repo if OSTREE.of(self.node) and (repo / "config").is_file() else None


@dataclass(frozen=True, slots=True)
class Synced:
    """What one publication did: files of the release, files sent per pass, files deleted."""

    dest: str
    files: int
    sent: dict[str, int] = field(default_factory=dict)
    deleted: int = 0
    unserved: tuple[str, ...] = ()  # the release's registries.d files the mirror got no copy of

    def to_json(self) -> dict[str, object]:
        return {
            "dest": self.dest,
            "files": self.files,
            "sent": self.sent,
            "deleted": self.deleted,
            "unserved": list(self.unserved),
        }


def files_of(release: Release) -> dict[str, tuple[Path, str]]:
    """Every file of the release as the mirror holds it: mirror path -> (source root, path in
    it), but the release's own registries.d files (`publish` writes the mirror's)."""
    found: dict[str, tuple[Path, str]] = {}
    roots = [(release.path, mirror.RELEASE_ROOT)]
    if release.served_repo is not None:
        roots.append((release.served_repo, mirror.OSTREE_ROOT))
    for root, prefix in roots:
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                inside = Path(folder, name).relative_to(root).as_posix()
                if root != release.path and not mirror.served(inside):
                    continue
                if root == release.path and inside.startswith(registries.SNIPPETS):
                    continue
                found[prefix + inside] = (root, inside)
    return found


def snippets_of(release: Release) -> list[str]:
    """The release's own registries.d files (they name this machine's lookaside)."""
    folder = release.path / registries.SNIPPETS
    return sorted(f"{registries.SNIPPETS}{p.name}" for p in folder.iterdir()) if folder.is_dir() else []


def publish(
    release: Release,
    dest: str,
    *,
    grace: int = DEFAULT_GRACE,
    clock: Callable[[], float] | None = None,
    base_url: str = "",
) -> Synced:
    """Push a release to the mirror dest (see the module docstring); `base_url`: the URL dest
    is served at, which the mirror's registries.d files name."""
    if grace < 0:
        raise InvalidInput("--grace cannot be negative", code="invalid-grace")
    if not (release.path / "RELEASE.json").is_file():
        raise OperationFailed(
            f"{release.path} is not a complete release (no RELEASE.json)", code="no-release"
        )
    clock = clock or _time
    files = files_of(release)
    unserved = snippets_of(release)
    with tempfile.TemporaryDirectory(prefix="factory-mirror-") as scratch_dir:
        scratch = Path(scratch_dir)
        if base_url and unserved:
            written = scratch / "client"
            served_at = f"{base_url.rstrip('/')}/{mirror.RELEASE_ROOT}"
            for inside, text in registries.mirror_snippets(release.path, release.node, served_at).items():
                (written / inside).parent.mkdir(parents=True, exist_ok=True)
                (written / inside).write_text(text, encoding="utf-8")
                files[mirror.RELEASE_ROOT + inside] = (written, inside)
            unserved = [s for s in unserved if mirror.RELEASE_ROOT + s not in files]
        plan = mirror.passes(files)
        now = int(clock())
        new = Publication(release.compose_id, release.node, _stamp(now), tuple(sorted(files)))
        publications = mirror.begin(_read_state(dest, scratch), new)
        _write_state(dest, publications, scratch)
        sent: dict[str, int] = {}
        for stage, paths in plan:
            count = 0
            for (root, prefix), listed in _by_root(paths, files):
                # Contents are compared, not size and time: each release signs its own copies of
                # the RPMs, so one re-signed within the same second as the mirror's copy has its
                # name, size and mtime and other bytes (rsync's quick check kept the stale copy).
                changes = rsync.send(root, rsync.join(dest, prefix), listed, scratch, checksum=True)
                count += len(changes.sent)
            sent[stage] = count
        now = int(clock())
        remembered = mirror.remembered(publications, now, grace)
        nothing = scratch / "empty"  # deleting from an empty source: all but what is protected
        nothing.mkdir()
        gone = rsync.delete(nothing, dest, sorted(mirror.protected(remembered, now, grace)), scratch)
        _write_state(dest, remembered, scratch)
    deleted = len([p for p in gone.deleted if not p.endswith("/")])
    return Synced(dest, len(files), sent, deleted, tuple(unserved))


def _by_root(
    paths: list[str], files: dict[str, tuple[Path, str]]
) -> list[tuple[tuple[Path, str], list[str]]]:
    """The paths of one pass grouped by the root they come from and the prefix they go to on the
    mirror, roots in a stable order."""
    grouped: dict[tuple[Path, str], list[str]] = {}
    for path in paths:
        root, inside = files[path]
        grouped.setdefault((root, path.removesuffix(inside)), []).append(inside)
    return sorted(grouped.items(), key=lambda item: str(item[0][0]))


def _read_state(dest: str, scratch: Path) -> list[Publication]:
    local = scratch / "publications.json"
    if not rsync.fetch(rsync.join(dest, mirror.STATE), local):
        return []
    try:
        data = json.loads(local.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput(f"{mirror.STATE} on the mirror is not JSON: {exc}", code="mirror-state") from exc
    return mirror.load_state(data)


def _write_state(dest: str, publications: list[Publication], scratch: Path) -> None:
    local = scratch / "publications.json"
    local.write_text(pretty_json(mirror.dump_state(publications)), encoding="utf-8")
    rsync.put(local, rsync.join(dest, mirror.STATE))


def _time() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def _stamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
