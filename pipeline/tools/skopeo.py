"""skopeo: read an OCI image's manifest and configuration, copy it into an oci-archive, and push
it to a registry signed with GnuPG (simple signing).

Images are named the containers/image way, `transport:details`: `oci:<layout>:<tag>`,
`oci-archive:<file>[:<tag>]` or `docker://HOST[:PORT]/NAME[:TAG|@DIGEST]`. `inspect` parses
skopeo's JSON at this boundary into typed values; nothing past it sees a dict.

A signed push (`push_signed`) takes everything it needs as files: the policy the source is
checked with, the registries.d directory that names where signatures are written (the
lookaside), registry credentials in an auth file, the key's passphrase in a file; so no secret
is ever on a command line. Plain HTTP (`--dest-tls-verify=false`) is for a registry on the
loopback interface only, as container tools do.
"""

from __future__ import annotations

import json
import os
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


@dataclass(frozen=True, slots=True)
class Push:
    """How to push and sign one image: the files that configure skopeo for it."""

    policy: Path  # the policy.json the source is checked with
    registries_d: Path  # names the lookaside(-staging) directory signatures are written to
    sign_by: str  # fingerprint of the GnuPG key
    digestfile: Path  # skopeo writes the pushed manifest's digest here
    authfile: Path | None = None  # registry credentials (containers-auth.json)
    passphrase_file: Path | None = None
    tls_verify: bool = True


def push_argv(source: str, destination: str, push: Push) -> list[str]:
    """Copy an image to a registry byte for byte, signed by the key (simple signing)."""
    argv = [
        "skopeo",
        "--policy",
        str(push.policy),
        "--registries.d",
        str(push.registries_d),
        "copy",
        "--quiet",
        "--preserve-digests",
        "--sign-by",
        push.sign_by,
        "--digestfile",
        str(push.digestfile),
        f"--dest-tls-verify={'true' if push.tls_verify else 'false'}",
    ]
    if push.authfile is not None:
        argv += ["--dest-authfile", str(push.authfile)]
    if push.passphrase_file is not None:
        argv += ["--sign-passphrase-file", str(push.passphrase_file)]
    return [*argv, source, destination]


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


def push_signed(source: str, destination: str, push: Push, *, gnupghome: Path) -> str:
    """Push and sign an image; the digest of the manifest in the registry (sha256:…)."""
    run.run(push_argv(source, destination, push), env={**os.environ, "GNUPGHOME": str(gnupghome)})
    digest = push.digestfile.read_text(encoding="utf-8").strip()
    if not digest.startswith("sha256:"):
        raise OperationFailed(f"skopeo wrote no digest for {destination}: {digest!r}", code="bad-tool-output")
    return digest


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
