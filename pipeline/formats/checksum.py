"""Fedora-style CHECKSUM files: the sha256 of image files, one BSD-style line each.

    # installer.iso: 1234567 bytes
    SHA256 (installer.iso) = 0b16b3…

Fedora publishes one such file beside its ISOs and images (`Fedora-Server-42-1.1-x86_64-CHECKSUM`),
clearsigned with gpg; `sha256sum -c` reads the BSD-style lines (and warns about the signature's
armor lines, which it skips), `gpg --verify` checks the signature. Names are relative to the
file's directory. Pure text in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

LINE = re.compile(r"^SHA256 \((?P<name>.+)\) = (?P<sha256>[0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One file a CHECKSUM file lists: its name (in that directory), size and sha256."""

    name: str
    size: int
    sha256: str


def checksum_name(stem: str) -> str:
    """The file's name: `<stem>-CHECKSUM` (e.g. `FL-42-AtomicHost-…-x86_64-CHECKSUM`)."""
    return f"{stem}-CHECKSUM"


def render(entries: Iterable[Entry]) -> str:
    """The unsigned text: a size comment and a SHA256 line per file, sorted by name."""
    lines = []
    for entry in sorted(entries, key=lambda e: e.name):
        if "\n" in entry.name or "/" in entry.name or not entry.name:
            raise ValueError(f"not a file name in one directory: {entry.name!r}")
        lines += [f"# {entry.name}: {entry.size} bytes", f"SHA256 ({entry.name}) = {entry.sha256}"]
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, str]:
    """name -> sha256 of every SHA256 line (armor and comments skipped, as sha256sum does)."""
    found = {}
    for line in text.splitlines():
        matched = LINE.match(line)
        if matched:
            found[matched["name"]] = matched["sha256"]
    return found
