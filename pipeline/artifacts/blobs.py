"""A directory of blobs named by their sha256: `blobs/sha256/ab/<hex>`.

The `file://` store keeps its blobs here, and the `oci://` store keeps its local cache here.
Every blob is written to a temporary file beside its final name, hashed as it is written,
fsynced, and renamed into place: a reader sees a whole, verified blob or none, and two writers
of the same blob (threads, processes, runners on one NFS mount) both succeed with the same bytes.
Blobs are stored with mode 0644 so that hard links into an output directory look like the
files composers make; never modify a linked file in place (replace it), or the blob changes too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20
BLOB_MODE = 0o644


class DigestMismatch(Exception):
    """Bytes did not hash to the sha256 they were named by (the caller names the file)."""

    def __init__(self, expected: str, actual: str, size: int) -> None:
        super().__init__(f"expected sha256 {expected}, got {actual} ({size} bytes)")
        self.expected = expected
        self.actual = actual
        self.size = size


class BlobDir:
    """Blobs by sha256 under `root/blobs/sha256/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"

    def path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def add(self, sha256: str, chunks: Iterable[bytes], *, touched: set[Path] | None = None) -> int:
        """Store the bytes of `chunks` as blob `sha256`, verifying the digest as they are written.

        Returns the number of bytes; raises DigestMismatch (and keeps nothing) when the bytes do
        not hash to `sha256`. With `touched`, the blob's directory is added to it instead of
        being fsynced here (the caller fsyncs each directory once, see `sync_directories`).
        """
        final = self.path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{sha256[:16]}.", suffix=".tmp")
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                if digest.hexdigest() != sha256:
                    raise DigestMismatch(sha256, digest.hexdigest(), size)
                os.fchmod(handle.fileno(), BLOB_MODE)
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if touched is None:
            sync_directories([final.parent])
        else:
            touched.add(final.parent)
        return size

    def verify(self, sha256: str) -> int:
        """Hash the stored blob; its size, or DigestMismatch (FileNotFoundError when it is missing)."""
        with self.path(sha256).open("rb") as handle:
            return check_digest(sha256, read_chunks(handle))

    def touch(self, sha256: str) -> None:
        """Mark a blob as just used, so a concurrent `sweep` with a grace period keeps it."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path(sha256))

    def digests(self) -> Iterator[str]:
        """Every stored blob's sha256 (temporary files excluded)."""
        if not self.blobs.is_dir():
            return
        for fan in sorted(self.blobs.iterdir()):
            if fan.is_dir():
                yield from sorted(p.name for p in fan.iterdir() if not p.name.startswith("."))

    def sweep(self, keep: set[str], *, grace: float = 3600.0, now: Callable[[], float] = time.time) -> int:
        """Remove every blob not in `keep` and not modified within `grace` seconds; bytes freed.

        The grace period protects a put running at the same time: its new blobs (and the old
        ones it reuses, which it touches) are younger than the grace period until its manifest
        is written. Stale temporary files older than the grace period go too.
        """
        freed = 0
        limit = now() - grace
        if not self.blobs.is_dir():
            return 0
        for fan in self.blobs.iterdir():
            if not fan.is_dir():
                continue
            for blob in fan.iterdir():
                if blob.name in keep:
                    continue
                try:
                    info = blob.stat()
                    if info.st_mtime > limit:
                        continue
                    blob.unlink()
                except FileNotFoundError:
                    continue
                freed += info.st_size
        return freed


def read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """The bytes of an open file, a chunk at a time."""
    return iter(lambda: handle.read(CHUNK), b"")


def check_digest(sha256: str, chunks: Iterable[bytes]) -> int:
    """Hash chunks; their total size, or DigestMismatch when they do not hash to sha256."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    if digest.hexdigest() != sha256:
        raise DigestMismatch(sha256, digest.hexdigest(), size)
    return size


def sync_directories(directories: Iterable[Path]) -> None:
    """fsync directories, so the renames into them survive a crash (before a manifest names them)."""
    for directory in sorted(set(directories)):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
