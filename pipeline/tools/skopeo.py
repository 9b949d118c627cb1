"""skopeo: read an OCI image's manifest and configuration, and copy it into an oci-archive.

Images are named the containers/image way, `transport:details`: `oci:<layout>:<tag>` or
`oci-archive:<file>[:<tag>]`. `inspect` parses skopeo's JSON at this boundary into typed
values; nothing past it sees a dict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import run
from pipeline.core.errors import OperationFailed


@dataclass(frozen=True, slots=True)
class Image:
    """What a consumer of an image sees: its manifest digest, layers and configuration."""

    digest: str  # of the manifest, sha256:...
    layers: tuple[str, ...]  # compressed layer digests, bottom first
    labels: Mapping[str, str]
    cmd: tuple[str, ...]
    created: str
    architecture: str
    diff_ids: tuple[str, ...]  # uncompressed layer digests, from the configuration


def oci(layout: Path, tag: str) -> str:
    """The name of a tagged image in an OCI layout."""
    return f"oci:{layout}:{tag}"


def oci_archive(path: Path, tag: str = "") -> str:
    """The name of an image in an oci-archive file (its only image when tag is empty)."""
    return f"oci-archive:{path}" + (f":{tag}" if tag else "")


def inspect_argv(name: str, *, config: bool = False) -> list[str]:
    """Print the image's summary (manifest digest, layers, labels) or, with config, its configuration."""
    return ["skopeo", "inspect", *(["--config"] if config else []), name]


def copy_argv(source: str, destination: str) -> list[str]:
    """Copy an image, keeping its manifest and blobs byte for byte (no recompression)."""
    return ["skopeo", "copy", "--quiet", "--preserve-digests", source, destination]


def inspect(name: str) -> Image:
    """Read an image with `skopeo inspect` and `skopeo inspect --config`."""
    summary = _json(run.run(inspect_argv(name)), name)
    config = _json(run.run(inspect_argv(name, config=True)), name)
    settings = _mapping(config.get("config") or {})
    return Image(
        digest=str(summary.get("Digest", "")),
        layers=tuple(str(layer) for layer in summary.get("Layers") or ()),
        labels={str(k): str(v) for k, v in _mapping(settings.get("Labels") or {}).items()},
        cmd=tuple(str(part) for part in settings.get("Cmd") or ()),
        created=str(config.get("created", "")),
        architecture=str(config.get("architecture", "")),
        diff_ids=tuple(str(d) for d in _mapping(config.get("rootfs") or {}).get("diff_ids") or ()),
    )


def copy(source: str, destination: str) -> None:
    """Copy an image from one place to another (e.g. an OCI layout into an oci-archive)."""
    run.run(copy_argv(source, destination))


def version() -> str:
    """skopeo's version line, e.g. `skopeo version 1.9.3`."""
    return run.run(["skopeo", "--version"]).strip()


def _json(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OperationFailed(f"skopeo printed no JSON for {name}: {exc}", code="bad-tool-output") from exc
    return _mapping(value)


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OperationFailed(f"skopeo printed {type(value).__name__}, not an object", code="bad-tool-output")
    return value
