"""Composes whose files garbage collection removed: one note per compose tag in `refs/notes/gc`.

Lineage notes are never deleted; a collected compose is marked instead, so `factory lineage`
says its files are gone and where from, and the executor does not reuse it by its key
(`LineageIndex.find_by_key` skips it). The note is canonical JSON: `{"format": 1,
"compose_id": ..., "collected": [{"where", "time", "bytes", "paths"}, ...]}`, one entry per
place its files were removed from (the output directory, an artifact store), oldest first. From
an artifact store, `where` is its URL, `paths` is `["manifest"]` and `bytes` the bytes of the
blobs only that manifest held (a registry frees them when its own garbage collector runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.records.checks import FORMAT, read_all, read_note, update_notes
from pipeline.records.lineage import Lineage
from pipeline.records.lineage_index import COLLECTED_REF as COLLECTED_REF

MANIFEST = "manifest"  # the paths of a Collection from an artifact store: its manifest was deleted


@dataclass(frozen=True, slots=True)
class Collection:
    """Where a compose's files were removed from, when, the bytes freed and the paths removed."""

    where: str
    time: str
    bytes: int
    paths: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"where": self.where, "time": self.time, "bytes": self.bytes, "paths": list(self.paths)}


def record(lineage: Lineage, collected: Mapping[str, Sequence[Collection]]) -> None:
    """Mark composes collected (compose ID -> where from), in one notes commit."""

    def merge(compose_id: str, old: dict[str, object] | None) -> dict[str, object]:
        earlier = old.get("collected", []) if old else []
        return {
            "format": FORMAT,
            "compose_id": compose_id,
            "collected": [
                *(earlier if isinstance(earlier, list) else []),
                *(entry.to_json() for entry in collected[compose_id]),
            ],
        }

    update_notes(lineage, COLLECTED_REF, dict.fromkeys(collected, merge), "Garbage collection")


def read(lineage: Lineage, compose_id: str) -> list[Collection]:
    """Where a compose's files were removed from (empty: nowhere)."""
    return _entries(read_note(lineage, COLLECTED_REF, compose_id))


def every(lineage: Lineage) -> dict[str, list[Collection]]:
    """Every collected compose and where from."""
    return {cid: _entries(note) for cid, note in read_all(lineage, COLLECTED_REF).items()}


def _entries(note: Mapping[str, object] | None) -> list[Collection]:
    items = (note or {}).get("collected", [])
    found = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            paths = item.get("paths", [])
            found.append(
                Collection(
                    str(item.get("where", "")),
                    str(item.get("time", "")),
                    int(item.get("bytes", 0)),
                    tuple(str(p) for p in paths) if isinstance(paths, list) else (),
                )
            )
    return found
