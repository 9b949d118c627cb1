"""The manifest of one compose in the artifact store: which files it made, by sha256. Pure: no I/O.

A manifest names the compose and, per file, its path (relative to the output directory, exactly
as `OutputFile.path`), size, permission bits and sha256. Its bytes are canonical JSON and a
newline, with a format number; the sha256 of those bytes (`Manifest.digest`) is what a lineage
record names, so a manifest cannot change under a record without the record noticing.

    {"compose_id":"FL-42-Server-20261121.n.0","files":[{"mode":"0644","path":"composes/…/a.rpm",
     "sha256":"…","size":1234}, …],"format":1}
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.core.canonical import canonical_json
from pipeline.core.errors import InvalidInput
from pipeline.core.records import OutputFile, parse_compose_id

MANIFEST_FORMAT = 1
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MODE_RE = re.compile(r"0[0-7]{3}")


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One file of a compose: where it goes under the output directory and what it holds.

    `mode` is the permission bits (0o644); the file is always a regular file.
    """

    path: str
    size: int
    mode: int
    sha256: str

    def output(self) -> OutputFile:
        """The file as a lineage record lists it (no mode)."""
        return OutputFile(self.path, self.size, self.sha256)


@dataclass(frozen=True, slots=True)
class Manifest:
    """Every file one compose made. Build it with `Manifest.of` (sorts and checks the files)."""

    compose_id: str
    files: tuple[ManifestFile, ...]

    @classmethod
    def of(cls, compose_id: str, files: Iterable[ManifestFile]) -> Manifest:
        """A checked manifest, files sorted by path; InvalidInput(code="invalid-manifest") if unsound."""
        manifest = cls(compose_id, tuple(sorted(files, key=lambda f: f.path)))
        problems = _problems(manifest)
        if problems:
            raise InvalidInput(
                f"manifest of {compose_id}: "
                + "; ".join(problems[:5])
                + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
                code="invalid-manifest",
            )
        return manifest

    def to_json(self) -> dict[str, Any]:
        """The JSON value of the manifest (write it with `to_bytes`)."""
        return {
            "format": MANIFEST_FORMAT,
            "compose_id": self.compose_id,
            "files": [
                {"path": f.path, "size": f.size, "mode": f"{f.mode:04o}", "sha256": f.sha256}
                for f in self.files
            ],
        }

    def to_bytes(self) -> bytes:
        """The stored bytes: canonical JSON and a newline (what `digest` hashes)."""
        return (canonical_json(self.to_json()) + "\n").encode("utf-8")

    def digest(self) -> str:
        """sha256 (hex) of the manifest's bytes: what a lineage record names."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @classmethod
    def from_json(cls, data: object) -> Manifest:
        """The manifest a JSON value holds; InvalidInput(code="invalid-manifest") when it is not one."""
        if not isinstance(data, Mapping):
            raise InvalidInput("manifest: expected a JSON object", code="invalid-manifest")
        if data.get("format") != MANIFEST_FORMAT:
            raise InvalidInput(
                f"manifest: unsupported format {data.get('format')!r} (this factory reads {MANIFEST_FORMAT})",
                code="invalid-manifest",
            )
        compose_id = data.get("compose_id")
        files = data.get("files")
        if not isinstance(compose_id, str) or not isinstance(files, list):
            raise InvalidInput(
                "manifest: expected compose_id (string) and files (list)", code="invalid-manifest"
            )
        return cls.of(compose_id, [_file(item, n, compose_id) for n, item in enumerate(files)])

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """The manifest stored as `data`; InvalidInput(code="invalid-manifest") when it is not one."""
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise InvalidInput(f"manifest: not JSON: {exc}", code="invalid-manifest") from exc
        return cls.from_json(value)

    def outputs(self) -> tuple[OutputFile, ...]:
        """The files as a lineage record lists them (compare with `outputs_digest`)."""
        return tuple(f.output() for f in self.files)

    def blobs(self) -> dict[str, int]:
        """Every distinct sha256 the manifest references, with its size."""
        return {f.sha256: f.size for f in self.files}

    @property
    def size(self) -> int:
        """Total bytes of the files (a blob shared by two paths counts twice)."""
        return sum(f.size for f in self.files)


def _file(item: object, n: int, compose_id: str) -> ManifestFile:
    where = f"manifest of {compose_id}: files[{n}]"
    if not isinstance(item, Mapping):
        raise InvalidInput(f"{where}: expected an object", code="invalid-manifest")
    path, size, mode, sha256 = (item.get(k) for k in ("path", "size", "mode", "sha256"))
    if (
        not isinstance(path, str)
        or not isinstance(size, int)
        or isinstance(size, bool)
        or not isinstance(mode, str)
        or not _MODE_RE.fullmatch(mode)
        or not isinstance(sha256, str)
    ):
        raise InvalidInput(
            f'{where}: expected path (string), size (integer), mode (like "0644"), sha256 (string)',
            code="invalid-manifest",
        )
    return ManifestFile(path, size, int(mode, 8), sha256)


def _problems(manifest: Manifest) -> list[str]:
    problems: list[str] = []
    try:
        parse_compose_id(manifest.compose_id)
    except InvalidInput as exc:
        problems.append(exc.message)
    paths = {f.path for f in manifest.files}
    directories = {p.rsplit("/", n)[0] for p in paths for n in range(1, p.count("/") + 1)}
    seen: set[str] = set()
    for f in manifest.files:
        if not is_safe_path(f.path):
            problems.append(f"{f.path!r} is not a relative path inside the output directory")
        elif f.path in seen:
            problems.append(f"{f.path} is listed twice")
        elif f.path in directories:
            problems.append(f"{f.path} is both a file and a directory")
        seen.add(f.path)
        if f.size < 0:
            problems.append(f"{f.path}: negative size")
        if not 0 <= f.mode <= 0o777:
            problems.append(f"{f.path}: mode {f.mode:o} is not permission bits")
        if not _SHA256_RE.fullmatch(f.sha256):
            problems.append(f"{f.path}: {f.sha256!r} is not a sha256 in lowercase hex")
    return problems


def is_safe_path(path: str) -> bool:
    """Whether path is relative, normalized and stays inside the directory it is relative to."""
    parts = path.split("/")
    return (
        bool(path) and "\\" not in path and "\0" not in path and all(p not in ("", ".", "..") for p in parts)
    )
