"""Composes whose files garbage collection removed: one note per compose tag in `refs/notes/gc`.

Lineage notes are never deleted; a collected compose is marked instead, so `factory lineage`
says its files are gone and where from, and the executor does not reuse it by its key
(`LineageIndex.find_by_key` skips it). The note is canonical JSON: `{"format": 1,
"compose_id": ..., "collected": [{"where", "time", "bytes", "paths"}, ...]}`, one entry per
place its files were removed from (the output directory, an artifact store), oldest first. From
an artifact store, `where` is its URL, `paths` is `["manifest"]` and `bytes` the bytes of the
blobs only that manifest held (a registry frees them when its own garbage collector runs).
From the output directory, `where` is that directory relative to the checkout when inside it
(`pipeline.records.paths`), else absolute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.records import jsonnotes, paths
from pipeline.records.lineage import Lineage
from pipeline.records.refs import GC_NOTES

COLLECTED_REF = GC_NOTES
MANIFEST = "manifest"  # the paths of a Collection from an artifact store: its manifest was deleted


@dataclass(frozen=True, slots=True)
class Collection:
    """Where a compose's files were removed from, when, the bytes freed and the paths removed."""

    where: str  # an artifact store's URL, or the output directory as recorded
    time: str
    bytes: int
    paths: tuple[str, ...]

    @property
    def from_store(self) -> bool:
        """Whether the files were removed from an artifact store (its manifest deleted)."""
        return self.paths == (MANIFEST,)

    def directory(self, root: Path | None) -> Path | None:
        """The output directory the files were removed from, on this machine (a relative one
        taken from the checkout `root`); None for an artifact store."""
        return None if self.from_store else paths.located(root, self.where)

    def to_json(self) -> dict[str, object]:
        return {"where": self.where, "time": self.time, "bytes": self.bytes, "paths": list(self.paths)}


def in_directory(
    root: Path | None, directory: Path, time: str, freed: int, removed: Sequence[str]
) -> Collection:
    """A collection from an output directory, named as records name it (`pipeline.records.paths`)."""
    return Collection(paths.recorded(root, directory), time, freed, tuple(removed))


def record(lineage: Lineage, collected: Mapping[str, Sequence[Collection]]) -> None:
    """Mark composes collected (compose ID -> where from), in one notes commit."""
    merges = {
        cid: jsonnotes.appended("collected", [e.to_json() for e in entries])
        for cid, entries in collected.items()
    }
    jsonnotes.update_notes(lineage, GC_NOTES, merges, "Garbage collection")


def read(lineage: Lineage, compose_id: str) -> list[Collection]:
    """Where a compose's files were removed from (empty: nowhere)."""
    return _entries(jsonnotes.read_note(lineage, GC_NOTES, compose_id))


def every(lineage: Lineage) -> dict[str, list[Collection]]:
    """Every collected compose and where from."""
    return {cid: _entries(note) for cid, note in jsonnotes.read_all(lineage, GC_NOTES).items()}


def _entries(note: Mapping[str, object] | None) -> list[Collection]:
    found = []
    for item in jsonnotes.items(note, "collected"):
        removed = item.get("paths", [])
        freed = item.get("bytes", 0)
        found.append(
            Collection(
                str(item.get("where", "")),
                str(item.get("time", "")),
                freed if isinstance(freed, int) else 0,
                tuple(str(p) for p in removed) if isinstance(removed, list) else (),
            )
        )
    return found
