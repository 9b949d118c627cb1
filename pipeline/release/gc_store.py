"""Garbage collection of an artifact store (`pipeline.artifacts.store`: `file://` and `oci://`).

By the same rule as the output directory, over every compose lineage knows: the manifests of
the composes retention does not keep are deleted, then `sweep` removes the blobs no remaining
manifest references (blobs written or reused within the store's grace, an hour, stay, so a put
running meanwhile loses nothing; a registry frees its own blobs once their manifests are gone,
and there `sweep` only trims the local cache). A compose the store holds but lineage does not
know is kept: it is not gc's to judge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pipeline.artifacts.store import ArtifactStore


@dataclass(frozen=True, slots=True)
class StoreSwept:
    """What gc did to one store: the manifests deleted, the bytes each one's blobs alone held,
    and the bytes the sweep freed (a dry run: those bytes, what it would free at most)."""

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
