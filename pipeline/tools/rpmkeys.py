"""rpmkeys: check the signatures of RPM files against a keyring holding given keys alone.

The keyring is an rpm database of its own (`--dbpath`, never the host's: see TOOLCHAIN.md), into
which `keyring` imports the keys. `checksig` runs `rpmkeys --checksig -v` and reads, per file,
whether it is signed at all and whether every signature and digest checked out: rpmkeys itself
passes an unsigned package whose digests are sound, so "not signed" is decided here.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import run

BATCH = 256  # files per rpmkeys process: keeps the command line short
_SIGNATURE = re.compile(r"Signature, key ID ([0-9a-f]+): (\w+)")
_RESULT = re.compile(r":\s*(\w+)\s*$")


def import_argv(dbpath: Path, key: Path) -> list[str]:
    """The command line that imports an armored public key into the keyring at dbpath."""
    return ["rpmkeys", "--dbpath", str(dbpath), "--import", str(key)]


def checksig_argv(dbpath: Path, paths: Sequence[Path]) -> list[str]:
    """The command line that checks the signatures and digests of RPM files, verbosely."""
    return ["rpmkeys", "--dbpath", str(dbpath), "--checksig", "-v", *map(str, paths)]


@dataclass(frozen=True, slots=True)
class Checked:
    """What rpmkeys said of one file: the short key ids of its signatures with their results
    (OK, NOKEY, BAD, NOTTRUSTED), and every other line's result."""

    signatures: tuple[tuple[str, str], ...]
    problems: tuple[str, ...]  # lines whose result is not OK (digests)

    @property
    def signed(self) -> bool:
        return bool(self.signatures)

    @property
    def ok(self) -> bool:
        """Signed, and every signature and digest checked out against the keyring."""
        return self.signed and not self.problems and all(r == "OK" for _, r in self.signatures)

    def reason(self) -> str:
        """Why it is not ok, in words."""
        if not self.signed:
            return "it is not signed"
        bad = [f"key ID {k}: {r}" for k, r in self.signatures if r != "OK"]
        if any(r == "NOKEY" for _, r in self.signatures):
            return "it is signed by another key (" + "; ".join(bad) + ")"
        return "its signature does not check out (" + "; ".join([*bad, *self.problems]) + ")"


def parse_checksig(output: str, paths: Sequence[Path]) -> dict[Path, Checked]:
    """Per file, what `checksig_argv` printed of it (a file it said nothing of: a problem)."""
    by_name = {f"{p}:": p for p in paths}
    lines: dict[Path, list[str]] = {p: [] for p in paths}
    current: Path | None = None
    for line in output.splitlines():
        if not line.startswith((" ", "\t")):
            current = by_name.get(line.strip())
            continue
        if current is not None:
            lines[current].append(line.strip())
    found = {}
    for path, said in lines.items():
        signatures = tuple((m[1], m[2]) for line in said if (m := _SIGNATURE.search(line)))
        problems = tuple(line for line in said if not _SIGNATURE.search(line) and not line.endswith(": OK"))
        found[path] = Checked(signatures, problems if said else ("rpmkeys said nothing of it",))
    return found


def checksig(keys: Sequence[Path], paths: Sequence[Path]) -> dict[Path, Checked]:
    """Check RPM files against a keyring of exactly these armored keys (none: an empty one)."""
    found: dict[Path, Checked] = {}
    with tempfile.TemporaryDirectory(prefix="factory-keyring-") as scratch:
        dbpath = Path(scratch) / "db"
        dbpath.mkdir()
        for key in keys:
            run.run(import_argv(dbpath, key))
        for start in range(0, len(paths), BATCH):
            batch = paths[start : start + BATCH]
            log = Path(scratch) / "checksig.log"
            try:
                output = run.run(
                    checksig_argv(dbpath, batch), output_log=log, env={**os.environ, "LC_ALL": "C"}
                )
            except run.CommandFailed as exc:  # exit status 1: some file did not check out
                output = exc.stderr
            found.update(parse_checksig(output, batch))
    return found
