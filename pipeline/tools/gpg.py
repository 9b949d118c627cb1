"""gpg (GnuPG 2): import keys, detached and clear signatures, public key export, in a given
GnuPG home.

Every command runs in batch mode with loopback pinentry, so no agent prompt ever waits for a
person. A passphrase is never put on the command line: it is read from a file the caller
keeps private (`--passphrase-file`); keys without one get `--passphrase ''`.
"""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

from pipeline import run

GPG = "/usr/bin/gpg"


def base_argv(home: Path) -> list[str]:
    """gpg in a GnuPG home, non-interactive."""
    return [GPG, "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback"]


def passphrase_args(passphrase_file: Path | None) -> list[str]:
    return ["--passphrase", ""] if passphrase_file is None else ["--passphrase-file", str(passphrase_file)]


def import_argv(home: Path) -> list[str]:
    """Import the (armored) keys given on stdin."""
    return [*base_argv(home), "--import"]


def list_secret_argv(home: Path) -> list[str]:
    return [*base_argv(home), "--with-colons", "--list-secret-keys"]


def detach_sign_argv(
    home: Path, key: str, source: Path, signature: Path, passphrase_file: Path | None
) -> list[str]:
    """An armored detached signature of source (repomd.xml -> repomd.xml.asc)."""
    return [
        *base_argv(home),
        *passphrase_args(passphrase_file),
        "--yes",
        "--local-user",
        key,
        "--armor",
        "--detach-sign",
        "--output",
        str(signature),
        str(source),
    ]


def clearsign_argv(home: Path, key: str, source: Path, out: Path, passphrase_file: Path | None) -> list[str]:
    """A clearsigned copy of a text file (Fedora's CHECKSUM files)."""
    return [
        *base_argv(home),
        *passphrase_args(passphrase_file),
        "--yes",
        "--local-user",
        key,
        "--clearsign",
        "--output",
        str(out),
        str(source),
    ]


def export_argv(home: Path, key: str, out: Path, *, armor: bool) -> list[str]:
    """Export the public key (armored for dnf's gpgkey=, binary for ostree's keyrings)."""
    return [*base_argv(home), "--yes", *(["--armor"] if armor else []), "--output", str(out), "--export", key]


def parse_secret_fingerprints(colons: str) -> list[str]:
    """The fingerprints of the primary secret keys in `--with-colons --list-secret-keys` output."""
    found, primary = [], False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] in ("sec", "ssb"):
            primary = fields[0] == "sec"
        elif fields[0] == "fpr" and primary and len(fields) > 9:
            found.append(fields[9])
            primary = False
    return found


def import_key(home: Path, armored: str) -> None:
    """Import key material (never logged: it is redacted from every log line and error)."""
    run.run(import_argv(home), input_text=armored, redact=[armored])


def secret_fingerprints(home: Path) -> list[str]:
    return parse_secret_fingerprints(run.run(list_secret_argv(home)))


def detach_sign(home: Path, key: str, source: Path, signature: Path, passphrase_file: Path | None) -> None:
    run.run(detach_sign_argv(home, key, source, signature, passphrase_file))


def clearsign(home: Path, key: str, source: Path, out: Path, passphrase_file: Path | None) -> None:
    run.run(clearsign_argv(home, key, source, out, passphrase_file))


def export(home: Path, key: str, out: Path, *, armor: bool = True) -> None:
    run.run(export_argv(home, key, out, armor=armor))


def kill_agent(home: Path) -> None:
    """Stop the gpg-agent (and any other daemon: `--kill all`) a GnuPG home started; none running
    is fine."""
    with contextlib.suppress(run.CommandFailed):
        run.run(["gpgconf", "--homedir", str(home), "--kill", "all"])


@cache
def version() -> str:
    """The version of gpg, e.g. `2.2.40`."""
    return run.run([GPG, "--version"]).splitlines()[0].split()[-1]
