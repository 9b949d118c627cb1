"""rpmsign: add a GPG signature to RPM files, in place.

Debian trap (TOOLCHAIN.md): rpm's macros look for /usr/bin/gpg2, which does not exist, so
`__gpg` is set to /usr/bin/gpg; `_gpg_path` names the GnuPG home, `_gpg_name` the key. Loopback
pinentry (and a passphrase file when the key has a passphrase) keeps gpg from prompting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pipeline import run
from pipeline.tools.gpg import GPG

CHUNK = 200  # RPMs per rpmsign run: keeps argv short


def addsign_argv(rpms: Sequence[Path], *, key: str, home: Path, passphrase_file: Path | None) -> list[str]:
    """The command line that signs rpms with key (a fingerprint) from the GnuPG home."""
    extra = "--batch --pinentry-mode loopback " + (
        f"--passphrase-file {passphrase_file}" if passphrase_file is not None else "--passphrase ''"
    )
    return [
        "rpmsign",
        "--define",
        f"__gpg {GPG}",
        "--define",
        f"_gpg_name {key}",
        "--define",
        f"_gpg_path {home}",
        "--define",
        f"_gpg_sign_cmd_extra_args {extra}",
        "--addsign",
        *(str(p) for p in rpms),
    ]


def addsign(rpms: Sequence[Path], *, key: str, home: Path, passphrase_file: Path | None) -> None:
    """Sign rpms in place (rewrites each file)."""
    env = {**os.environ, "GNUPGHOME": str(home)}
    for start in range(0, len(rpms), CHUNK):
        run.run(
            addsign_argv(rpms[start : start + CHUNK], key=key, home=home, passphrase_file=passphrase_file),
            env=env,
        )
