"""Publications to mirrors in Git: one note per compose tag in `refs/notes/mirrors`.

`factory publish` appends an entry each time it pushes a release of the compose to a mirror, so
"is it on the mirror" is answered from a record: `{"format": 1, "compose_id": ..., "publications":
[{"mirror", "release", "time", "files", "sent", "deleted"}, ...]}`, one entry per run, oldest
first. `mirror` is an rsync destination as given (`host:path`, `rsync://...`) or a local
directory, and `release` the release directory published from; a local one is named relative to
the checkout when inside it, else absolute (`pipeline.records.paths`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.records import jsonnotes, paths
from pipeline.records.lineage import Lineage
from pipeline.records.refs import MIRROR_NOTES
from pipeline.tools import rsync

KEY = "publications"


@dataclass(frozen=True, slots=True)
class PublicationRecord:
    """One publication of a release to a mirror: where to, from which release directory, when,
    the files of the release, the files sent by each pass and the files deleted."""

    mirror: str
    release: str
    time: str
    files: int = 0
    sent: Mapping[str, int] = field(default_factory=dict)
    deleted: int = 0

    def where(self, root: Path | None) -> str:
        """The mirror as this machine names it: an rsync destination as recorded, a local
        directory recorded relative to the checkout taken from the checkout `root`."""
        return self.mirror if rsync.is_remote(self.mirror) else str(paths.located(root, self.mirror))

    def to_json(self) -> dict[str, object]:
        return {
            "mirror": self.mirror,
            "release": self.release,
            "time": self.time,
            "files": self.files,
            "sent": dict(self.sent),
            "deleted": self.deleted,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PublicationRecord:
        sent = data.get("sent", {})
        files, deleted = data.get("files", 0), data.get("deleted", 0)
        return cls(
            str(data.get("mirror", "")),
            str(data.get("release", "")),
            str(data.get("time", "")),
            files if isinstance(files, int) else 0,
            {str(k): v for k, v in sent.items() if isinstance(v, int)} if isinstance(sent, dict) else {},
            deleted if isinstance(deleted, int) else 0,
        )


def named(lineage: Lineage, place: str | Path, *, remote: bool = False) -> str:
    """How a publication names a mirror or release directory: an rsync destination (`remote`)
    as given, a local path relative to the lineage's checkout when inside it, else absolute."""
    return str(place) if remote else paths.recorded(paths.checkout(lineage.repo), Path(place))


def append(lineage: Lineage, compose_id: str, publication: PublicationRecord) -> None:
    """Add a publication to the compose's note."""
    merge = jsonnotes.appended(KEY, [publication.to_json()])
    jsonnotes.update_notes(lineage, MIRROR_NOTES, {compose_id: merge}, "Mirror publications")


def read(lineage: Lineage, compose_id: str) -> list[PublicationRecord]:
    """The publications of a compose to mirrors, oldest first."""
    return _entries(jsonnotes.read_note(lineage, MIRROR_NOTES, compose_id))


def read_many(lineage: Lineage, compose_ids: Collection[str]) -> dict[str, list[PublicationRecord]]:
    """The publications of many composes at once (those never published are left out)."""
    found = jsonnotes.read_notes(lineage, MIRROR_NOTES, compose_ids)
    return {cid: _entries(note) for cid, note in found.items()}


def _entries(note: Mapping[str, object] | None) -> list[PublicationRecord]:
    return [PublicationRecord.from_json(item) for item in jsonnotes.items(note, KEY) if item.get("mirror")]
