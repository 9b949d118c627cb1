"""productmd's images.json: the images a compose made (ISOs, container archives, ...).

Shared by the image composers. Each image is described from its file (size, sha256) and the
compose's SOURCE_DATE_EPOCH as mtime, so the manifest is the same bytes whenever the image is.
Paths in images.json are relative to the compose root (`<workdir>/compose`), as productmd
expects: `Server/x86_64/iso/dvd.iso`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import productmd.composeinfo  # type: ignore[import-untyped]
import productmd.images  # type: ignore[import-untyped]

from pipeline.core.errors import InvalidInput

IMAGES_JSON = "metadata/images.json"  # under the compose root


@dataclass(frozen=True, slots=True)
class ImageFile:
    """One image to list: its file under the compose root and what productmd says about it."""

    path: Path  # absolute; must be under the compose root
    variant_uid: str
    arch: str
    type: str  # productmd image type: dvd, dvd-ostree, docker, ociarchive, ...
    format: str  # productmd image format: iso, tar, ociarchive, ...
    subvariant: str
    volume_id: str | None = None
    bootable: bool = False  # has a boot record (say so only when the image was read to have one)


def images_manifest(
    compose_id: str, compose_root: Path, images: Sequence[ImageFile], mtime: int
) -> productmd.images.Images:
    """The productmd Images of a compose's image files (checksums computed from the files)."""
    manifest = productmd.images.Images()
    try:
        date, compose_type, respin = productmd.composeinfo.get_date_type_respin(compose_id)
    except ValueError as exc:
        raise InvalidInput(f"{compose_id!r}: {exc}", code="bad-compose-id") from exc
    manifest.compose.id = compose_id
    manifest.compose.date = date
    manifest.compose.type = compose_type
    manifest.compose.respin = respin
    for image in sorted(images, key=lambda i: i.path):
        entry = productmd.images.Image(manifest)
        entry.path = image.path.relative_to(compose_root).as_posix()
        entry.mtime = mtime
        entry.size = image.path.stat().st_size
        entry.volume_id = image.volume_id
        entry.type = image.type
        entry.format = image.format
        entry.arch = image.arch
        entry.disc_number = 1
        entry.disc_count = 1
        entry.checksums = {"sha256": _sha256(image.path)}
        entry.implant_md5 = None
        entry.bootable = image.bootable
        entry.subvariant = image.subvariant
        manifest.add(image.variant_uid, image.arch, entry)
    return manifest


def write_images_json(compose_id: str, compose_root: Path, images: Sequence[ImageFile], mtime: int) -> Path:
    """Write `<compose_root>/metadata/images.json`; its path."""
    path = compose_root / IMAGES_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    images_manifest(compose_id, compose_root, images, mtime).dump(str(path))
    return path


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
