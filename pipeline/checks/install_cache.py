"""The install check's results, reused per resolved package set.

Whether an install into an empty root succeeds depends only on what is asked (the package
names), on the packages dnf picks for it (each by NEVRA and the sha256 of its RPM file: the
bytes rpm installs) and on the versions of dnf and rpm doing it. The check asks dnf's own
depsolver what the install would bring in (`dnf.resolve`, in-process, ~0.15 s of CPU for 400
packages, against ~1.5 s for the install), and a passed install of exactly that set by an
earlier compose is not run again: its result is reused, and the check's message names the
compose it came from.

Entries are files under `.factory/cache/install-check/`, named by the digest of the key and
holding the whole key: an entry is used only when its key equals the one asked for, so a
corrupt or colliding file never stands for another set. Only PASSED results are kept: a
failing install is run again, so its diagnosis (which modules fail, and their owners) is fresh.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.canonical import canonical_json, digest
from pipeline.core.errors import OperationFailed
from pipeline.tools import dnf, rpm

FORMAT = 1  # bump when what the install check does with the same packages changes
DIRECTORY = Path(".factory") / "cache" / "install-check"


@dataclass(frozen=True, slots=True)
class InstallKey:
    """What decides an install check's result."""

    request: tuple[str, ...]  # the package names asked for, in order
    packages: tuple[tuple[str, str], ...]  # (NEVRA, sha256) of everything installed, sorted
    releasever: str
    platform: str
    tools: tuple[tuple[str, str], ...]  # dnf and rpm versions, and this cache's format

    def as_json(self) -> dict[str, Any]:
        return {
            "request": list(self.request),
            "packages": [list(p) for p in self.packages],
            "releasever": self.releasever,
            "platform": self.platform,
            "tools": [list(t) for t in self.tools],
        }

    @property
    def digest(self) -> str:
        return digest(self.as_json())


@dataclass(frozen=True, slots=True)
class Reused:
    """A passed install check of the same key, by an earlier compose."""

    compose_id: str
    message: str


def install_key(repo: Path, request: Sequence[str], *, releasever: str, platform: str) -> InstallKey | None:
    """The key of installing request from repo; None when dnf cannot resolve it (the install
    then runs, and says why it fails)."""
    try:
        packages = dnf.resolve([dnf.Repo("variant", repo)], request, releasever=releasever, platform=platform)
    except OperationFailed:
        return None
    tools = (("dnf", dnf.version()), ("format", str(FORMAT)), ("rpm", rpm.version()))
    return InstallKey(tuple(request), packages, releasever, platform, tools)


def lookup(root: Path, key: InstallKey) -> Reused | None:
    """The passed result recorded for exactly this key under root's cache, if any."""
    path = root / DIRECTORY / f"{key.digest}.json"
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key.as_json():
        return None
    compose_id, message = entry.get("compose_id"), entry.get("message")
    if not isinstance(compose_id, str) or not isinstance(message, str):
        return None
    return Reused(compose_id, message)


def remember(root: Path, key: InstallKey, compose_id: str, message: str) -> None:
    """Record that compose_id's install of key passed (atomically: checks run in threads)."""
    directory = root / DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    entry = {"key": key.as_json(), "compose_id": compose_id, "message": message}
    handle, temporary = tempfile.mkstemp(prefix=".entry-", dir=directory)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(canonical_json(entry) + "\n")
    os.replace(temporary, directory / f"{key.digest}.json")
