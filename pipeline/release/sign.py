"""Signing a copy of a compose: RPMs, repomd.xml (detached), OSTree commits and summaries.

The build store is never touched. RPMs enter composes as hard links of the files in the build
store (`pipeline.compose.links`), so signing a compose in place would rewrite the store's
files and break the sha256 recorded for them in lineage (and the early cutoff that rests on
them). Signing therefore works on a tree of *copies* (a release's staging directory, or the
directory `factory sign --out` names): `sign_tree` refuses any RPM with more than one link.
Signed RPMs change size and checksum, so each repo's metadata is written again
(`createrepo_c --update --keep-all-metadata`, which keeps modules.yaml and comps.xml, at the
repo's own revision) before repomd.xml gets its detached, armored `repomd.xml.asc`.

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
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.tools import createrepo, gpg, ostree, rpmsign

KEY_ENV, PASSPHRASE_ENV = "FACTORY_SIGNING_KEY", "FACTORY_SIGNING_PASSPHRASE"
PUBLIC_KEY = "RPM-GPG-KEY-factory"  # the armored public key, published beside the repos


@dataclass(frozen=True, slots=True)
class Signer:
    """A usable signing key: its GnuPG home, fingerprint and passphrase file (None: no passphrase)."""

    home: Path
    key: str
    passphrase_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Signed:
    """What `sign_tree` signed, relative to the tree."""

    rpms: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    ostree_refs: tuple[str, ...] = ()
    key: str = ""


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


def sign_tree(tree: Path, signer: Signer) -> Signed:
    """Sign every RPM, yum repo and OSTree repo under tree (a tree of copies, see above)."""
    rpms = sorted(p for p in tree.rglob("*.rpm") if p.is_file() and not p.is_symlink())
    shared = [p for p in rpms if p.stat().st_nlink > 1]
    if shared:
        raise OperationFailed(
            f"refusing to sign {shared[0]}: it has {shared[0].stat().st_nlink} links (a file of the build "
            "store?); signing rewrites it",
            hint="sign a copy of the compose (factory sign --out DIR, or factory release)",
            code="sign-shared-file",
        )
    if rpms:
        rpmsign.addsign(rpms, key=signer.key, home=signer.home, passphrase_file=signer.passphrase_file)
    repos = sorted(p.parent.parent for p in tree.rglob("repodata/repomd.xml"))
    for repo in repos:
        refresh_repodata(repo)
        gpg.detach_sign(
            signer.home,
            signer.key,
            repo / "repodata/repomd.xml",
            repo / "repodata/repomd.xml.asc",
            signer.passphrase_file,
        )
    refs = []
    for repo in ostree_repos(tree):
        refs += [f"{repo.relative_to(tree)}:{ref}" for ref in sign_ostree(repo, signer)]
    if rpms or repos or refs:
        gpg.export(signer.home, signer.key, tree / PUBLIC_KEY)
    return Signed(
        tuple(p.relative_to(tree).as_posix() for p in rpms),
        tuple(p.relative_to(tree).as_posix() for p in repos),
        tuple(refs),
        signer.key,
    )


def refresh_repodata(repo: Path) -> None:
    """Rewrite a repo's metadata for its (now signed) RPMs, keeping its extra metadata
    (modules, comps) and its revision."""
    text = (repo / "repodata/repomd.xml").read_text(encoding="utf-8")
    found = re.search(r"<revision>(\d+)</revision>", text)
    createrepo.update_repo(repo, int(found.group(1)) if found else 0)


def ostree_repos(tree: Path) -> list[Path]:
    """OSTree repositories under tree: directories with `config`, `objects/` and `refs/`."""
    return sorted(
        p.parent
        for p in tree.rglob("config")
        if (p.parent / "objects").is_dir() and (p.parent / "refs").is_dir()
    )


def sign_ostree(repo: Path, signer: Signer) -> list[str]:
    """Sign the commit of every ref of an OSTree repo (once each), then its summary; the refs."""
    refs = ostree.refs(repo)
    signed: set[str] = set()
    for ref in refs:
        commit = ostree.rev_parse(repo, ref)
        if commit not in signed:
            ostree.gpg_sign(repo, commit, signer.key, signer.home)
            signed.add(commit)
    ostree.sign_summary(repo, signer.key, signer.home)
    return refs


def copy_tree(source: Path, dest: Path) -> None:
    """A copy (never hard links) of a directory tree, symlinks kept as symlinks."""
    shutil.copytree(source, dest, symlinks=True, copy_function=shutil.copyfile)
