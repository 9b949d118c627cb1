"""The `file://` artifact store: a directory, local or an NFS mount every runner shares.

    <dir>/blobs/sha256/ab/<hex>            one file per blob (mode 0644)
    <dir>/manifests/<compose-id>.json      one manifest per compose (canonical JSON)

Every write is a temporary file, fsynced, renamed into place; the directories of the new
blobs are fsynced before the manifest is written, and the manifest's directory after, so a
manifest that survives a crash names only blobs that survived it too. Two runners putting the
same blob at once both succeed (the second rename replaces the first with the same bytes).
Fetching links blobs into the output directory when it is on the same file system (the
embedded default: `.factory/store` beside `.factory/output`), and copies them otherwise.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path

from pipeline.artifacts.blobs import BlobDir, DigestMismatch, sync_directories
from pipeline.artifacts.store import (
    FetchReport,
    Obtained,
    StoreReporter,
    describe_for_put,
    file_chunks,
    mismatch_error,
    parse_manifest,
    place_files,
    refuse_other_manifest,
)
from pipeline.core.errors import OperationFailed
from pipeline.core.manifest import Manifest, ManifestFile
from pipeline.core.records import OutputFile, parse_compose_id

SWEEP_GRACE = 3600.0  # seconds a new or reused blob is safe from `sweep`


class FileStore:
    """An artifact store in a directory (see the module docstring for the layout)."""

    def __init__(self, directory: Path, *, reporter: StoreReporter | None = None, url: str = "") -> None:
        self.directory = directory
        self.url = url or directory.as_uri()
        self.blobs = BlobDir(directory)
        self.manifests = directory / "manifests"
        self.reporter = reporter or StoreReporter()

    def put(self, compose_id: str, output_dir: Path, files: Sequence[OutputFile]) -> Manifest:
        """Store the files of a compose, then its manifest (see `ArtifactStore.put`)."""
        manifest = describe_for_put(compose_id, output_dir, files)
        existing = self.manifest(compose_id)
        if existing is not None:
            refuse_other_manifest(existing, manifest, self.url)
            return existing
        touched: set[Path] = set()
        first: dict[str, ManifestFile] = {}
        for file in manifest.files:
            first.setdefault(file.sha256, file)
        for sha256, file in first.items():
            if self.blobs.has(sha256):
                self.blobs.touch(sha256)  # a sweep running now keeps it until our manifest is written
                self.reporter.already_stored(sha256, file.size)
                continue
            try:
                self.blobs.add(sha256, file_chunks(compose_id, output_dir, file), touched=touched)
            except DigestMismatch as exc:
                raise OperationFailed(
                    f"compose {compose_id}: file {file.path} does not match its sha256: {exc}",
                    hint="the file changed after the compose described it",
                    code="store-put",
                ) from None
            self.reporter.uploaded(sha256, file.size)
        sync_directories(touched)
        self._write_manifest(manifest)
        return manifest

    def manifest(self, compose_id: str) -> Manifest | None:
        """The compose's manifest, or None (a manifest that does not parse is an OperationFailed)."""
        try:
            data = self._manifest_path(compose_id).read_bytes()
        except FileNotFoundError:
            return None
        return parse_manifest(data, compose_id, self.url)

    def has(self, compose_id: str) -> bool:
        return self._manifest_path(compose_id).is_file()

    def fetch(self, manifest: Manifest, output_dir: Path, only: Collection[str] | None = None) -> FetchReport:
        """Make the manifest's files exist under output_dir (see `ArtifactStore.fetch`)."""
        return place_files(manifest, output_dir, only, self)

    def composes(self) -> list[str]:
        if not self.manifests.is_dir():
            return []
        return sorted(
            p.name.removesuffix(".json")
            for p in self.manifests.iterdir()
            if p.name.endswith(".json") and not p.name.startswith(".")
        )

    def delete(self, compose_id: str) -> bool:
        path = self._manifest_path(compose_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        sync_directories([path.parent])
        return True

    def sweep(self, keep: set[str], *, grace: float = SWEEP_GRACE) -> int:
        """Remove blobs not in `keep` and older than `grace` seconds; bytes freed."""
        return self.blobs.sweep(keep, grace=grace)

    # -- BlobSource: the store's own directory is the local copy ------------------------------------

    def obtain(self, compose_id: str, file: ManifestFile) -> Obtained:
        path = self.blobs.path(file.sha256)
        if not path.is_file():
            raise OperationFailed(
                f"compose {compose_id}: file {file.path}: its blob sha256:{file.sha256} is missing "
                f"from the store {self.url}",
                code="store-missing",
            )
        self.reporter.downloaded(file.sha256, file.size)
        return Obtained(path, "fetched", verified=False)

    def corrupt(self, compose_id: str, file: ManifestFile, exc: DigestMismatch) -> Obtained:
        raise mismatch_error(compose_id, file.path, exc, f"its blob in the store {self.url}")

    # -------------------------------------------------------------------------------------------

    def _manifest_path(self, compose_id: str) -> Path:
        parse_compose_id(compose_id)  # a compose ID is a safe file name; anything else is refused
        return self.manifests / f"{compose_id}.json"

    def _write_manifest(self, manifest: Manifest) -> None:
        path = self._manifest_path(manifest.compose_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(manifest.to_bytes())
                handle.flush()
                os.fchmod(handle.fileno(), 0o644)
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        sync_directories([path.parent])
