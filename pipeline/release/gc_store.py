"""Garbage collection of an artifact store, through the small interface gc needs of one.

The artifact store (issue 10: `file://` directories and `oci://` registries) keeps every
compose's files by sha256 with one manifest per compose. What gc needs of it is `ArtifactStore`
below: the composes it holds, a compose's manifest (the blobs it references, with their
sizes), deleting a manifest, and sweeping the blobs no kept manifest references. The
`ArtifactStore` of `pipeline.store.artifacts` has exactly these; it was not on the main branch
when this was written, so `factory gc` has no store to pass yet (`pipeline.release.gc.collect`
takes them as `stores`).

A compose the store holds but lineage does not know is kept: it is not gc's to judge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol


class StoredManifest(Protocol):
    """A compose's manifest in a store: the blobs (sha256) it references, with their sizes."""

    def blobs(self) -> Mapping[str, int]:
        """Every distinct sha256 the manifest references, with its size."""
        ...


class ArtifactStore(Protocol):
    """What garbage collection needs of an artifact store."""

    url: str

    def composes(self) -> list[str]:
        """Every compose ID with a manifest in the store."""
        ...

    def manifest(self, compose_id: str) -> StoredManifest | None:
        """The manifest of a compose, or None."""
        ...

    def delete(self, compose_id: str) -> bool:
        """Remove a compose's manifest (not its blobs); whether there was one."""
        ...

    def sweep(self, keep: set[str], *, grace: float = 3600.0) -> int:
        """Remove the blobs not in `keep` (but those written lately); the bytes freed."""
        ...


@dataclass(frozen=True, slots=True)
class StoreSwept:
    """What gc did to one store: the manifests deleted, the bytes each one's blobs alone held,
    and the bytes the sweep freed (with a dry run: what it would free at most)."""

    url: str
    deleted: tuple[str, ...]
    owned: Mapping[str, int]
    freed: int


def collect_store(
    store: ArtifactStore, *, keep: Collection[str], known: Collection[str], dry_run: bool
) -> StoreSwept:
    """Delete the manifests of the composes lineage knows and retention does not keep, then sweep
    the blobs no remaining manifest references."""
    held = store.composes()
    doomed = [c for c in held if c in known and c not in keep]
    wanted: set[str] = set()
    for compose_id in held:
        found = store.manifest(compose_id) if compose_id not in doomed else None
        if found is not None:
            wanted.update(found.blobs())
    owned: dict[str, int] = {}
    counted: set[str] = set()
    for compose_id in doomed:  # a blob two doomed composes share counts for the first
        found = store.manifest(compose_id)
        blobs = {} if found is None else found.blobs()
        alone = {sha: size for sha, size in blobs.items() if sha not in wanted and sha not in counted}
        counted.update(alone)
        owned[compose_id] = sum(alone.values())
    if dry_run:
        return StoreSwept(store.url, tuple(doomed), owned, sum(owned.values()))
    for compose_id in doomed:
        store.delete(compose_id)
    return StoreSwept(store.url, tuple(doomed), owned, store.sweep(wanted))
