"""The artifact store: every compose's output files by sha256, with one manifest per compose.

Terminology:
- a *blob* is the bytes of one file, named by its sha256; two files with the same bytes (in one
  compose or in two) are one blob, stored once;
- a compose's *manifest* (`pipeline.core.manifest.Manifest`) lists its files: path relative to
  the output directory, size, mode, sha256. Its own sha256 (`Manifest.digest()`) is what the
  compose's lineage record names;
- `put` uploads the blobs the store lacks, then the manifest: a manifest is only ever visible
  once all its blobs are. `fetch` makes a manifest's files exist under an output directory,
  verifying every digest, and says what it had to download.

Two backends, chosen by URL (`open_store`):
- `file:///path` (or `file:relative/path`, against the definitions repository): a directory,
  also an NFS mount shared by runners. See `artifacts_file`.
- `oci://host[:port]/namespace`: an OCI distribution registry, through the `oras` library.
  See `artifacts_oci`.

Garbage collection (not done here; what it needs is): `composes()` lists every manifest,
`delete(compose_id)` removes one, and `sweep(keep)` removes the blobs whose sha256 is not in
`keep`, e.g. `keep = referenced(store)` after deleting the manifests no longer wanted.
A registry frees its own blobs (its garbage collector removes blobs no manifest references);
there, `sweep` only trims the local cache.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from pipeline.artifacts.blobs import BLOB_MODE, CHUNK, DigestMismatch, check_digest, read_chunks
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.manifest import Manifest, ManifestFile, is_safe_path
from pipeline.core.records import OutputFile, parse_compose_id


class StoreReporter:
    """Hooks a store calls as it moves blobs; they do nothing unless overridden.

    They may be called from several threads at once.
    """

    def uploaded(self, sha256: str, size: int) -> None:
        """A blob the store lacked was uploaded."""

    def already_stored(self, sha256: str, size: int) -> None:
        """A blob the store had already was not uploaded again."""

    def downloaded(self, sha256: str, size: int) -> None:
        """A blob was read from the store (over the network, or from the store's directory)."""


@dataclass(frozen=True, slots=True)
class Tally:
    files: int = 0
    bytes: int = 0

    def add(self, size: int) -> Tally:
        return Tally(self.files + 1, self.bytes + size)


@dataclass(frozen=True, slots=True)
class FetchReport:
    """What one `fetch` did, per file of the manifest it was asked for.

    `fetched`: files whose bytes came from the store (downloaded from a registry, or read from a
    `file://` store's directory, linked where the file system allows); `cached`: files taken
    from the local blob cache, nothing downloaded; `present`: files already in place with the
    right digest. `linked` counts the fetched and cached files that are hard links, not copies.
    """

    fetched: Tally = Tally()
    cached: Tally = Tally()
    present: Tally = Tally()
    linked: int = 0

    def summary(self) -> str:
        return (
            f"fetched {self.fetched.files} files ({self.fetched.bytes} bytes), "
            f"{self.cached.files} from the local cache ({self.cached.bytes} bytes), "
            f"{self.present.files} already present ({self.present.bytes} bytes); {self.linked} hard links"
        )


class ArtifactStore(Protocol):
    """Where compose output files live by sha256, with one manifest per compose."""

    url: str

    def put(self, compose_id: str, output_dir: Path, files: Sequence[OutputFile]) -> Manifest:
        """Store the files (paths relative to output_dir) of a compose, and its manifest last.

        Uploads every blob the store lacks, verifying each file's sha256 as it reads it; a file
        that is missing, not a regular file or not what `files` says is an OperationFailed
        naming the compose and the file. Putting the same manifest again changes nothing;
        a different manifest under a compose ID already stored is refused.
        """
        ...

    def manifest(self, compose_id: str) -> Manifest | None:
        """The manifest of a compose, or None when the store has none."""
        ...

    def has(self, compose_id: str) -> bool:
        """Whether the store has the compose's manifest (and so all its blobs)."""
        ...

    def fetch(self, manifest: Manifest, output_dir: Path, only: Collection[str] | None = None) -> FetchReport:
        """Make each file of the manifest (or only the paths in `only`) exist at output_dir/path.

        Files already there with the right digest are kept; the others are hard-linked from a
        local blob cache where possible, otherwise written; every digest is verified and every
        file written atomically. A missing or corrupt blob is an OperationFailed naming the
        compose and the file.
        """
        ...

    def composes(self) -> list[str]:
        """Every compose ID with a manifest in the store, sorted."""
        ...

    def delete(self, compose_id: str) -> bool:
        """Remove a compose's manifest (not its blobs: see `sweep`); whether there was one."""
        ...

    def sweep(self, keep: set[str], *, grace: float = 3600.0) -> int:
        """Remove stored blobs whose sha256 is not in `keep`; the bytes freed.

        Blobs written or reused in the last `grace` seconds are kept, so a put running at the
        same time loses nothing. A registry frees its own blobs (see the module docstring):
        there, only the local cache is trimmed.
        """
        ...


def referenced(store: ArtifactStore) -> set[str]:
    """The sha256 of every blob some manifest in the store references (what `sweep` must keep)."""
    found: set[str] = set()
    for compose_id in store.composes():
        manifest = store.manifest(compose_id)
        if manifest is not None:  # deleted since it was listed
            found.update(manifest.blobs())
    return found


def open_store(
    url: str,
    *,
    root: Path,
    env: Mapping[str, str],
    cache: Path | None = None,
    reporter: StoreReporter | None = None,
) -> ArtifactStore:
    """The store a URL names: `file:///abs/path`, `file:rel/path` (against `root`, the definitions
    repository) or `oci://host[:port]/namespace`. `env` holds the credentials of an OCI registry
    (see `pipeline.core.credentials`); `cache` is the OCI store's local blob cache (default
    `root/.factory/cache/store`). A URL that is none of these is InvalidInput naming it.
    """
    reporter = reporter or StoreReporter()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "file":
        from pipeline.artifacts.file import FileStore

        return FileStore(_file_path(url, root), reporter=reporter, url=url)
    if scheme == "oci":
        from pipeline.artifacts.oci import OciStore
        from pipeline.artifacts.oci_names import parse_oci_url

        location = parse_oci_url(url)
        return OciStore(
            location, env=env, cache=cache or root / ".factory" / "cache" / "store", reporter=reporter
        )
    raise InvalidInput(
        f"not an artifact store URL: {shown_url(url)!r}",
        hint="use file:///ABSOLUTE/PATH, file:RELATIVE/PATH or oci://HOST[:PORT]/NAMESPACE",
        code="invalid-store-url",
    )


def shown_url(url: str) -> str:
    """A URL as it may appear in a message: any user:password@ part replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[unparsable URL]"
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"[redacted]@{host}").geturl()


def _file_path(url: str, root: Path) -> Path:
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"not a file:// store URL: {shown_url(url)!r}", code="invalid-store-url") from exc
    if parts.query or parts.fragment or parts.netloc not in ("", "localhost") or not parts.path:
        raise InvalidInput(
            f"not a file:// store URL: {shown_url(url)!r}",
            hint="use file:///ABSOLUTE/PATH or file:RELATIVE/PATH (relative to the definitions repository)",
            code="invalid-store-url",
        )
    path = Path(parts.path)
    return path if path.is_absolute() else root / path


# -- shared by the backends ------------------------------------------------------------------------


def describe_for_put(compose_id: str, output_dir: Path, files: Sequence[OutputFile]) -> Manifest:
    """The manifest of files about to be put: each must be a regular file of the size listed."""
    parse_compose_id(compose_id)
    described = []
    for output in files:
        if not is_safe_path(output.path):
            raise InvalidInput(
                f"compose {compose_id}: {output.path!r} is not a path inside the output directory",
                code="invalid-manifest",
            )
        path = output_dir / output.path
        try:
            info = path.lstat()
        except FileNotFoundError:
            raise OperationFailed(
                f"compose {compose_id}: file {output.path} is missing from {output_dir}", code="store-put"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise OperationFailed(
                f"compose {compose_id}: {output.path} is not a regular file", code="store-put"
            )
        if info.st_size != output.size:
            raise OperationFailed(
                f"compose {compose_id}: file {output.path} has {info.st_size} bytes, "
                f"its record says {output.size}",
                code="store-put",
            )
        described.append(
            ManifestFile(output.path, output.size, stat.S_IMODE(info.st_mode) & 0o777, output.sha256)
        )
    return Manifest.of(compose_id, described)


def refuse_other_manifest(existing: Manifest, wanted: Manifest, url: str) -> None:
    """A compose ID names one compose: refuse to replace its manifest with a different one."""
    if existing != wanted:
        raise OperationFailed(
            f"compose {wanted.compose_id} is already in the store {url} with other files",
            hint="a compose ID names one compose; a new compose gets a new ID",
            code="store-conflict",
        )


def mismatch_error(compose_id: str, path: str, exc: DigestMismatch, what: str) -> OperationFailed:
    """The error for bytes that are not what a file's sha256 says."""
    return OperationFailed(
        f"compose {compose_id}: file {path}: {what} is corrupt: {exc}", code="store-corrupt"
    )


def file_chunks(compose_id: str, output_dir: Path, file: ManifestFile) -> Iterator[bytes]:
    """The bytes of a file to put, a chunk at a time (a vanished file is an OperationFailed)."""
    try:
        handle: BinaryIO = (output_dir / file.path).open("rb")
    except OSError as exc:
        raise OperationFailed(
            f"compose {compose_id}: cannot read file {file.path}: {exc.strerror}", code="store-put"
        ) from exc
    with handle:
        yield from read_chunks(handle)


@dataclass(frozen=True, slots=True)
class Obtained:
    """A local copy of a blob, ready to be linked or copied into place."""

    path: Path
    origin: str  # "fetched" (read from the store) or "cached" (the local blob cache had it)
    verified: bool  # hashed since it was last written (no need to hash it again)


class BlobSource(Protocol):
    """How `place_files` gets a local, whole copy of a blob from one backend."""

    def obtain(self, compose_id: str, file: ManifestFile) -> Obtained:
        """A local copy of the file's blob (OperationFailed naming compose and file if missing)."""
        ...

    def corrupt(self, compose_id: str, file: ManifestFile, exc: DigestMismatch) -> Obtained:
        """The local copy did not hash right: a fresh verified one, or an OperationFailed."""
        ...


def place_files(
    manifest: Manifest,
    output_dir: Path,
    only: Collection[str] | None,
    source: BlobSource,
    *,
    workers: int = 4,
) -> FetchReport:
    """Make each wanted file of a manifest exist at output_dir/path with the right bytes.

    Files are placed by `workers` threads; the first error raised is the one reported.
    """
    wanted = _wanted(manifest, only)
    verified: set[Path] = set()  # blobs hashed by this fetch (set.add is atomic under the GIL)

    def one(file: ManifestFile) -> tuple[str, int, bool]:
        dest = output_dir / file.path
        if _is_in_place(dest, file):
            return "present", file.size, False
        obtained = source.obtain(manifest.compose_id, file)
        if obtained.verified:
            verified.add(obtained.path)
        try:
            linked = _install(obtained.path, dest, file, obtained.path in verified)
        except DigestMismatch as exc:
            obtained = source.corrupt(manifest.compose_id, file, exc)
            linked = _install(obtained.path, dest, file, True)
        verified.add(obtained.path)
        return obtained.origin, file.size, linked

    tallies = {"fetched": Tally(), "cached": Tally(), "present": Tally()}
    linked = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for origin, size, was_linked in pool.map(one, wanted):
            tallies[origin] = tallies[origin].add(size)
            linked += was_linked
    return FetchReport(tallies["fetched"], tallies["cached"], tallies["present"], linked)


def _wanted(manifest: Manifest, only: Collection[str] | None) -> list[ManifestFile]:
    if only is None:
        return list(manifest.files)
    paths = set(only)
    unknown = sorted(paths - {f.path for f in manifest.files})
    if unknown:
        raise InvalidInput(
            f"compose {manifest.compose_id} has no file {unknown[0]}"
            + (f" (and {len(unknown) - 1} more asked for)" if len(unknown) > 1 else ""),
            code="store-unknown-file",
        )
    return [f for f in manifest.files if f.path in paths]


def _is_in_place(dest: Path, file: ManifestFile) -> bool:
    """Whether dest is a regular file with the file's size, mode and digest."""
    try:
        info = dest.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size != file.size or stat.S_IMODE(info.st_mode) != file.mode:
        return False
    try:
        with dest.open("rb") as handle:
            check_digest(file.sha256, read_chunks(handle))
    except DigestMismatch:
        return False
    return True


def _install(blob: Path, dest: Path, file: ManifestFile, verified: bool) -> bool:
    """Put the blob at dest atomically: a hard link when the mode allows, else a verified copy.

    Whether it is a hard link. DigestMismatch when the blob does not hash right (dest untouched).
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise OperationFailed(
            f"cannot place {file.path}: a parent of it in {dest.parent} is not a directory",
            code="store-fetch",
        ) from exc
    if dest.is_dir() and not dest.is_symlink():
        raise OperationFailed(f"cannot place {file.path}: {dest} is a directory", code="store-fetch")
    tmp = dest.parent / f".{dest.name[:40]}.{secrets.token_hex(8)}.tmp"
    try:
        if file.mode == BLOB_MODE:
            try:
                os.link(blob, tmp)
            except OSError:
                pass  # another file system, or links not allowed: copy instead
            else:
                if not verified:
                    with tmp.open("rb") as handle:
                        check_digest(file.sha256, read_chunks(handle))
                os.replace(tmp, dest)
                return True
        _copy_verified(blob, tmp, file)
        os.replace(tmp, dest)
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _copy_verified(blob: Path, tmp: Path, file: ManifestFile) -> None:
    digest = hashlib.sha256()
    size = 0
    with blob.open("rb") as src, tmp.open("xb") as out:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        os.fchmod(out.fileno(), file.mode)
    if digest.hexdigest() != file.sha256:
        raise DigestMismatch(file.sha256, digest.hexdigest(), size)


def parse_manifest(data: bytes, compose_id: str, url: str) -> Manifest:
    """The manifest a store holds for compose_id, from its bytes; OperationFailed (store-corrupt)
    when they are not one, or are another compose's."""
    try:
        manifest = Manifest.from_bytes(data)
    except InvalidInput as exc:
        raise OperationFailed(
            f"the manifest of {compose_id} in the store {url} is corrupt: {exc.message}",
            code="store-corrupt",
        ) from None
    if manifest.compose_id != compose_id:
        raise OperationFailed(
            f"the manifest stored for {compose_id} in {url} is {manifest.compose_id}'s",
            code="store-corrupt",
        )
    return manifest
