"""umoci: build OCI image layouts without a daemon (init, new, unpack, repack, config, rm, gc).

Every command line is built by a pure function (tested by exact list equality) and run through
`pipeline.run`. An image is named the way umoci names it, `<layout>:<tag>`. Timestamps that go
into an image (`--created`, `--history.created`) are always passed in, never taken from the
clock, so the same inputs give the same digests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import run


@dataclass(frozen=True, slots=True)
class Config:
    """What `umoci config` sets on an image: cmd, env, labels, creation time and platform."""

    created: str  # RFC 3339, e.g. 2026-01-01T00:00:00Z
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()  # KEY=value
    labels: Mapping[str, str] = field(default_factory=dict)
    architecture: str = ""  # OCI's words: amd64, arm64, ppc64le, s390x
    os: str = "linux"


def image(layout: Path, tag: str) -> str:
    """umoci's name of a tagged image in a layout."""
    return f"{layout}:{tag}"


def init_argv(layout: Path) -> list[str]:
    """Create an empty OCI image layout."""
    return ["umoci", "init", "--layout", str(layout)]


def new_argv(layout: Path, tag: str) -> list[str]:
    """Add an empty image (no layers) under tag."""
    return ["umoci", "new", "--image", image(layout, tag)]


def unpack_argv(layout: Path, tag: str, bundle: Path, *, rootless: bool = False) -> list[str]:
    """Extract an image into a runtime bundle (`bundle/rootfs` plus the mtree repack compares with)."""
    return [
        "umoci",
        "unpack",
        *(["--rootless"] if rootless else []),
        "--image",
        image(layout, tag),
        str(bundle),
    ]


def repack_argv(layout: Path, tag: str, bundle: Path, *, created: str, created_by: str) -> list[str]:
    """Pack what changed in an unpacked bundle as one new layer on top, tagged `tag`."""
    return [
        "umoci",
        "repack",
        "--image",
        image(layout, tag),
        f"--history.created={created}",
        f"--history.created_by={created_by}",
        str(bundle),
    ]


def config_argv(layout: Path, tag: str, config: Config) -> list[str]:
    """Set the image configuration; labels are given sorted so the command line is stable."""
    argv = ["umoci", "config", "--image", image(layout, tag), f"--created={config.created}"]
    argv += [f"--history.created={config.created}"]
    if config.architecture:
        argv.append(f"--architecture={config.architecture}")
    if config.os:
        argv.append(f"--os={config.os}")
    if config.cmd:
        argv += [f"--config.cmd={part}" for part in config.cmd]  # the given list replaces Cmd
    argv += [f"--config.env={pair}" for pair in config.env]
    argv += [f"--config.label={key}={config.labels[key]}" for key in sorted(config.labels)]
    return argv


def remove_argv(layout: Path, tag: str) -> list[str]:
    """Remove a tag (its blobs stay until `gc`)."""
    return ["umoci", "rm", "--image", image(layout, tag)]


def gc_argv(layout: Path) -> list[str]:
    """Delete the blobs no tag reaches."""
    return ["umoci", "gc", "--layout", str(layout)]


def init(layout: Path) -> None:
    """Create an empty OCI image layout at layout."""
    run.run(init_argv(layout))


def new(layout: Path, tag: str) -> None:
    """Add an empty image tagged tag."""
    run.run(new_argv(layout, tag))


def unpack(layout: Path, tag: str, bundle: Path) -> None:
    """Extract layout:tag into bundle (rootless when not run as root)."""
    run.run(unpack_argv(layout, tag, bundle, rootless=os.geteuid() != 0))


def repack(layout: Path, tag: str, bundle: Path, *, created: str, created_by: str) -> None:
    """Pack the bundle's changes as one layer of the image tagged tag."""
    run.run(repack_argv(layout, tag, bundle, created=created, created_by=created_by))


def config(layout: Path, tag: str, settings: Config) -> None:
    """Set the configuration of layout:tag."""
    run.run(config_argv(layout, tag, settings))


def remove(layout: Path, tag: str) -> None:
    """Remove tag from layout."""
    run.run(remove_argv(layout, tag))


def gc(layout: Path) -> None:
    """Delete unreachable blobs of layout."""
    run.run(gc_argv(layout))


def version() -> str:
    """umoci's version line, e.g. `umoci version 0.4.7+ds-3+b7`."""
    return run.run(["umoci", "--version"]).strip()
