"""rsync: pushing files to a mirror, a local directory or a remote rsync destination.

Every transfer names its files exactly (`--files-from`, NUL-separated), so the caller decides
what goes in which pass and in which order. `--delay-updates` puts the files of one pass in
place only at its end (each file by rename), so a pass never shows its files half written and
shows them nearly at once. Deleting is a separate pass that transfers nothing (`--existing
--ignore-existing`) and spares what its protect rules name. `--out-format='%i %n'` makes rsync
say what it sent and deleted (`parse_changes`).

A destination is what rsync takes: `/path`, `host:path`, `user@host:path`, `host::module/path`
or `rsync://host[:port]/module/path` (a password comes from RSYNC_PASSWORD, never the URL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline import run

OUT_FORMAT = "--out-format=%i %n"
MISSING = "No such file or directory"


def is_remote(dest: str) -> bool:
    """Whether rsync takes dest as remote: an rsync:// URL, or a colon before the first slash."""
    return dest.startswith("rsync://") or ":" in dest.split("/", 1)[0]


def join(dest: str, path: str) -> str:
    """dest/path, for local and remote destinations alike."""
    return f"{dest.rstrip('/')}/{path.lstrip('/')}" if path else dest


def send_argv(source: Path, dest: str, files_from: Path, *, checksum: bool = False) -> list[str]:
    """Send the files listed (relative to source) to dest, in place at the end of the pass.

    `checksum`: compare contents, not size and time (for small files that change in place)."""
    argv = [
        "rsync",
        "--links",
        "--times",
        "--perms",
        "--mkpath",
        "--delay-updates",
        "--from0",
        f"--files-from={files_from}",
        OUT_FORMAT,
    ]
    if checksum:
        argv.append("--checksum")
    return [*argv, f"{source}/", f"{dest.rstrip('/')}/"]


def delete_argv(source: Path, dest: str, rules: Path) -> list[str]:
    """Delete what dest has and source has not, except what the rules protect; send nothing."""
    return [
        "rsync",
        "--recursive",
        "--delete",
        "--existing",
        "--ignore-existing",
        "--from0",
        f"--filter=merge {rules}",
        OUT_FORMAT,
        f"{source}/",
        f"{dest.rstrip('/')}/",
    ]


def fetch_argv(remote: str, local: Path) -> list[str]:
    return ["rsync", "--times", remote, str(local)]


def put_argv(local: Path, remote: str) -> list[str]:
    return ["rsync", "--times", "--mkpath", str(local), remote]


def protect_rule(path: str) -> str:
    """The filter rule that spares one file (relative to the transfer's root) from deletion."""
    anchored = "/" + path.lstrip("/")
    if any(c in anchored for c in "*?["):  # rsync unescapes only patterns that have wildcards
        anchored = re.sub(r"([*?\[\\])", r"\\\1", anchored)
    return f"P {anchored}"


def rules_text(rules: Iterable[str]) -> str:
    """Filter rules as `--from0` reads them."""
    return "".join(f"{rule}\0" for rule in rules)


@dataclass(frozen=True, slots=True)
class Changes:
    """What one rsync run sent and deleted (paths relative to its destination)."""

    sent: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


def parse_changes(output: str) -> Changes:
    """Files sent (`<f...`, `>f...`, a symlink `cL...`) and paths deleted, from `%i %n` lines."""
    sent, deleted = [], []
    for line in output.splitlines():
        flags, _, name = line.partition(" ")
        if flags == "*deleting":
            deleted.append(name.strip())
        elif len(flags) == 11 and flags[0] in "<>c" and flags[1] in "fL" and not flags.startswith("cd"):
            sent.append(name)
    return Changes(tuple(sent), tuple(deleted))


def send(source: Path, dest: str, files: Iterable[str], scratch: Path, *, checksum: bool = False) -> Changes:
    """Send files (relative to source) to dest in one pass; what was sent."""
    listing = scratch / "files-from"
    listing.write_text("".join(f"{name}\0" for name in files), encoding="utf-8")
    return parse_changes(run.run(send_argv(source, dest, listing, checksum=checksum)))


def delete(source: Path, dest: str, protect: Iterable[str], scratch: Path) -> Changes:
    """Delete from dest what source has not, sparing the protected paths; what was deleted."""
    rules = scratch / "protect"
    rules.write_text(rules_text(protect_rule(p) for p in protect), encoding="utf-8")
    return parse_changes(run.run(delete_argv(source, dest, rules)))


def fetch(remote: str, local: Path) -> bool:
    """Copy one file from a destination; False when it has no such file."""
    try:
        run.run(fetch_argv(remote, local))
    except run.CommandFailed as exc:
        if MISSING in exc.stderr:
            return False
        raise
    return True


def put(local: Path, remote: str) -> None:
    """Copy one file to a destination (rsync writes a temporary file and renames it)."""
    run.run(put_argv(local, remote))


@cache
def version() -> str:
    """The version of rsync, e.g. `3.2.7`."""
    first = run.run(["rsync", "--version"]).splitlines()[0]
    return first.split("version", 1)[1].split()[0]
