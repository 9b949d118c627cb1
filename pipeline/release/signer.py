"""The signing key: from a GnuPG home and a fingerprint, or from the environment.

The key comes from a GnuPG home and a fingerprint (`--gnupghome/--key`, or factory.yaml's
`signing.gnupghome/signing.key`), or from `FACTORY_SIGNING_KEY`: an armored secret key in the
environment, imported into a private temporary GnuPG home that is removed afterwards. A
passphrase (`FACTORY_SIGNING_PASSPHRASE`) is written to a 0600 file in such a private
directory and given to gpg by path. Neither key material nor passphrase reaches argv, logs,
errors or notes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import InvalidInput
from pipeline.tools import gpg

KEY_ENV, PASSPHRASE_ENV = "FACTORY_SIGNING_KEY", "FACTORY_SIGNING_PASSPHRASE"


@dataclass(frozen=True, slots=True)
class Signer:
    """A usable signing key: its GnuPG home, fingerprint and passphrase file (None: no passphrase)."""

    home: Path
    key: str
    passphrase_file: Path | None = None


@contextlib.contextmanager
def signer(
    *,
    gnupghome: str | None = None,
    key: str | None = None,
    env: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> Iterator[Signer]:
    """The signing key: from `gnupghome` + `key` if given, else from FACTORY_SIGNING_KEY.

    Relative homes are taken from `base`. InvalidInput when there is no usable key.
    """
    env = os.environ if env is None else env
    passphrase = env.get(PASSPHRASE_ENV, "")
    with tempfile.TemporaryDirectory(prefix="factory-sign-") as private:
        Path(private).chmod(0o700)
        secret = None
        if passphrase:
            secret = Path(private) / "passphrase"
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(passphrase)
        if gnupghome:
            home = Path(gnupghome).expanduser()
            home = home if home.is_absolute() or base is None else base / home
            if not home.is_dir():
                raise InvalidInput(f"no GnuPG home at {home}", code="no-signing-key")
            yield Signer(home, _choose(home, key), secret)
            return
        armored = env.get(KEY_ENV, "")
        if not armored:
            raise InvalidInput(
                "no signing key",
                hint=f"give --gnupghome and --key, set signing: in factory.yaml, or put an armored "
                f"secret key in {KEY_ENV}",
                code="no-signing-key",
            )
        home = Path(private) / "gnupg"
        home.mkdir(mode=0o700)
        try:
            gpg.import_key(home, armored)
            yield Signer(home, _choose(home, key), secret)
        finally:
            gpg.kill_agent(home)


def _choose(home: Path, key: str | None) -> str:
    found = gpg.secret_fingerprints(home)
    if key:
        wanted = key.upper().removeprefix("0X")
        match = [f for f in found if f.upper().endswith(wanted)]
        if not match:
            raise InvalidInput(f"no secret key {key} in {home}", code="no-signing-key")
        return match[0]
    if len(found) != 1:
        raise InvalidInput(
            f"{len(found)} secret keys in {home}: say which one with --key (or signing.key)",
            code="no-signing-key",
        )
    return found[0]
