"""Releases in Git: one note per compose tag in `refs/notes/releases`, the one reader and writer.

`factory release` appends an entry each time it releases a compose or sends it to quarantine,
`factory retire` one each time it moves a release into the archive; `factory publish`, gc, the
status and `factory why` read them. The note is canonical JSON, `{"format": 1, "compose_id": ...,
"releases": [entry, ...]}`, oldest first. An entry of a release or a quarantine:

    {"status": "released" | "quarantined", "path", "time", "signed_by", "public_key",
     "signatures": [...], "unsigned": bool[, "ostree": [served commit, ...]]}

with the same signature records as the release's RELEASE.json (`pipeline.core.signatures`) and,
for an `ostree:` compose, the commit each ref of the served repository got; an archived one:
`{"status": "archived", "path", "from", "time"}`. `path` (and `from`) name the release directory
`DIR/<compose-id>` relative to the checkout when it is inside it, else absolute
(`pipeline.records.paths`; notes written before that hold absolute paths, and still read).

A release is *live* when it is what its release directory's `latest` symlink points at now
(`live_at`): the one definition the publisher, gc, the status and `factory why` share.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.signatures import Signature
from pipeline.core.states import ReleaseStatus
from pipeline.records import jsonnotes, paths
from pipeline.records.lineage import Lineage
from pipeline.records.refs import RELEASE_NOTES

LATEST = "latest"  # DIR/latest -> <compose-id>: the live release of a release directory
KEY = "releases"  # the note's list


@dataclass(frozen=True, slots=True)
class Served:
    """One ref's released commit in a served OSTree repository: what it is, its version, parent
    and static delta's source (`pipeline.release.ostree_history` makes it)."""

    ref: str
    commit: str
    version: str
    parent: str | None
    delta_from: str | None
    compose_commit: str

    def to_json(self) -> dict[str, str | None]:
        return {
            "ref": self.ref,
            "commit": self.commit,
            "version": self.version,
            "parent": self.parent,
            "delta_from": self.delta_from,
            "compose_commit": self.compose_commit,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Served:
        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            str(data.get("ref", "")),
            str(data.get("commit", "")),
            str(data.get("version", "")),
            text("parent"),
            text("delta_from"),
            str(data.get("compose_commit", "")),
        )


@dataclass(frozen=True, slots=True)
class ReleaseEntry:
    """One release, quarantine or archiving of a compose, as its note records it."""

    status: ReleaseStatus
    path: str  # DIR/<compose-id>: relative to the checkout when inside it, else absolute
    time: str
    signed_by: str = ""
    public_key: str = ""  # relative to the release directory
    signatures: tuple[Signature, ...] = ()
    unsigned: bool = True
    ostree: tuple[Served, ...] = ()  # what a release of an `ostree:` compose added
    moved_from: str = ""  # archived: where the release was (recorded as `path` is)

    @property
    def in_checkout(self) -> bool:
        """Whether `path` is relative to the checkout (else it is absolute, as given)."""
        return paths.in_checkout(self.path)

    def location(self, root: Path | None) -> Path:
        """The release's directory on this machine (a relative `path` taken from `root`)."""
        return paths.located(root, self.path)

    def live(self, root: Path | None) -> bool:
        """Whether this entry is a release that is live now (`live_at`)."""
        return self.status == ReleaseStatus.RELEASED and live_at(self.location(root))

    def to_json(self) -> dict[str, object]:
        if self.status == ReleaseStatus.ARCHIVED:
            return {"status": self.status, "path": self.path, "from": self.moved_from, "time": self.time}
        entry: dict[str, object] = {
            "status": self.status,
            "path": self.path,
            "time": self.time,
            "signed_by": self.signed_by,
            "public_key": self.public_key,
            "signatures": [s.to_json() for s in self.signatures],
            "unsigned": self.unsigned,
        }
        if self.ostree:  # each release of an OSTree compose adds a commit (a rollback too)
            entry["ostree"] = [s.to_json() for s in self.ostree]
        return entry

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ReleaseEntry | None:
        """The entry a note holds; None for one of an unknown status (never written by factory)."""
        status = data.get("status")
        if status not in set(ReleaseStatus):
            return None
        signatures = data.get("signatures", [])
        served = data.get("ostree", [])
        return cls(
            ReleaseStatus(str(status)),
            str(data.get("path", "")),
            str(data.get("time", "")),
            str(data.get("signed_by", "")),
            str(data.get("public_key", "")),
            tuple(Signature.from_json(s) for s in signatures if isinstance(s, dict))
            if isinstance(signatures, list)
            else (),
            data.get("unsigned", True) is not False,
            tuple(Served.from_json(s) for s in served if isinstance(s, dict))
            if isinstance(served, list)
            else (),
            str(data.get("from", "")),
        )


@dataclass(frozen=True, slots=True)
class ReleaseNote:
    """Every release, quarantine and archiving of one compose, oldest first."""

    compose_id: str
    entries: tuple[ReleaseEntry, ...] = ()

    def released(self) -> tuple[ReleaseEntry, ...]:
        """Its releases (not quarantines or archivings), oldest first."""
        return tuple(e for e in self.entries if e.status == ReleaseStatus.RELEASED)

    def live(self, root: Path | None) -> bool:
        """Whether one of its releases is live now."""
        return any(e.live(root) for e in self.entries)


def live_at(release: Path) -> bool:
    """Whether the release in directory `release` (DIR/<compose-id>) is live: what DIR/latest,
    a symlink, points at now. The one definition of a live release."""
    link = release.parent / LATEST
    return link.is_symlink() and link.resolve() == release.resolve()


def recorded_path(lineage: Lineage, path: Path) -> str:
    """How a release entry names `path`: relative to the lineage's checkout when inside it."""
    return paths.recorded(paths.checkout(lineage.repo), path)


def checkout(lineage: Lineage) -> Path | None:
    """The checkout a relative entry's path is taken from (None: a bare repository)."""
    return paths.checkout(lineage.repo)


def append(
    lineage: Lineage, entries: Mapping[str, Sequence[ReleaseEntry]], message: str = "Releases"
) -> None:
    """Add entries to the notes of composes (compose ID -> entries), in one notes commit."""
    merges = {
        cid: jsonnotes.appended(KEY, [e.to_json() for e in added]) for cid, added in entries.items() if added
    }
    jsonnotes.update_notes(lineage, RELEASE_NOTES, merges, message)


def read(lineage: Lineage, compose_id: str) -> ReleaseNote:
    """The releases recorded of a compose (no entries: never released)."""
    return _note(compose_id, jsonnotes.read_note(lineage, RELEASE_NOTES, compose_id))


def read_many(lineage: Lineage, compose_ids: Collection[str]) -> dict[str, ReleaseNote]:
    """The release notes of many composes at once (those never released are left out)."""
    found = jsonnotes.read_notes(lineage, RELEASE_NOTES, compose_ids)
    return {cid: _note(cid, note) for cid, note in found.items()}


def read_all(lineage: Lineage) -> dict[str, ReleaseNote]:
    """Every compose's release note, by compose ID."""
    return {cid: _note(cid, note) for cid, note in sorted(jsonnotes.read_all(lineage, RELEASE_NOTES).items())}


def _note(compose_id: str, note: Mapping[str, object] | None) -> ReleaseNote:
    entries = (ReleaseEntry.from_json(item) for item in jsonnotes.items(note, KEY))
    return ReleaseNote(compose_id, tuple(e for e in entries if e is not None))
