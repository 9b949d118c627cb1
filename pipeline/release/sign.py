"""Signing a copy of a compose: RPMs, repomd.xml (detached), OSTree commits and summaries,
installer ISOs' OSTree repositories, and a clearsigned CHECKSUM beside image files.

The build store is never touched. RPMs enter composes as hard links of the files in the build
store (`pipeline.compose.links`), so signing a compose in place would rewrite the store's
files and break the sha256 recorded for them in lineage (and the early cutoff that rests on
them). Signing therefore works on a tree of *copies* (a release's staging directory, or the
directory `factory sign --out` names): `sign_tree` refuses any RPM with more than one link.
Signed RPMs change size and checksum, so each repo's metadata is written again
(`createrepo_c --update --keep-all-metadata`, which keeps modules.yaml and comps.xml, at the
repo's own revision) before repomd.xml gets its detached, armored `repomd.xml.asc`.

`sign_tree` returns one `Signature` record per signature it made (`pipeline.core.signatures`),
each made after the tool succeeded and its file is there, and exports the public key beside
them only when it signed something. Container images are signed when they are pushed to a
registry (`pipeline.release.container_registry`), which only a release does. The key: `signer.py`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.compose.ostree import OSTREE_JSON
from pipeline.core.errors import OperationFailed
from pipeline.core.signatures import Signature, SignatureKind, ordered
from pipeline.release import sign_images as images
from pipeline.release.ostree_sign import ostree_repos, sign_ostree
from pipeline.release.signer import KEY_ENV, PASSPHRASE_ENV, Signer, signer
from pipeline.tools import createrepo, gpg, rpmsign

__all__ = [
    "KEY_ENV",
    "PASSPHRASE_ENV",
    "PUBLIC_KEY",
    "Signed",
    "Signer",
    "ostree_repos",
    "sign_ostree",
    "sign_tree",
    "signable",
    "signer",
]

PUBLIC_KEY = "RPM-GPG-KEY-factory"  # the armored public key, published beside the repos


@dataclass(frozen=True, slots=True)
class Signed:
    """What `sign_tree` signed (paths relative to the tree), and with which key."""

    signatures: tuple[Signature, ...] = ()
    key: str = ""

    def of(self, kind: SignatureKind) -> tuple[Signature, ...]:
        return tuple(s for s in self.signatures if s.kind == kind)

    @property
    def rpms(self) -> tuple[str, ...]:
        return tuple(s.path for s in self.of(SignatureKind.RPM))

    @property
    def repos(self) -> tuple[str, ...]:
        return tuple(s.path.removesuffix("/repodata/repomd.xml") for s in self.of(SignatureKind.REPODATA))

    @property
    def ostree_refs(self) -> tuple[str, ...]:
        return tuple(f"{s.path}:{s.ref}" for s in self.of(SignatureKind.OSTREE_COMMIT) if not s.within)


def sign_tree(tree: Path, signer: Signer, *, stem: str = "") -> Signed:
    """Sign every RPM, yum repo, OSTree repo and image file under tree (a tree of copies, see
    above); CHECKSUM files are named `<stem>[-<arch>]-CHECKSUM` (stem: the compose ID)."""
    rpms = sorted(p for p in tree.rglob("*.rpm") if p.is_file() and not p.is_symlink())
    shared = [p for p in rpms if p.stat().st_nlink > 1]
    if shared:
        raise OperationFailed(
            f"refusing to sign {shared[0]}: it has {shared[0].stat().st_nlink} links (a file of the build "
            "store?); signing rewrites it",
            hint="sign a copy of the compose (factory sign --out DIR, or factory release)",
            code="sign-shared-file",
        )
    found: list[Signature] = []
    if rpms:
        rpmsign.addsign(rpms, key=signer.key, home=signer.home, passphrase_file=signer.passphrase_file)
        found += [_rpm(tree, p, signer.key) for p in rpms]
    for repo in sorted(p.parent.parent for p in tree.rglob("repodata/repomd.xml")):
        refresh_repodata(repo)
        repomd = repo / "repodata/repomd.xml"
        gpg.detach_sign(
            signer.home, signer.key, repomd, repomd.with_name("repomd.xml.asc"), signer.passphrase_file
        )
        found.append(
            Signature(
                SignatureKind.REPODATA,
                signature=repomd.with_name("repomd.xml.asc").relative_to(tree).as_posix(),
                key=signer.key,
                path=repomd.relative_to(tree).as_posix(),
            )
        )
    for repo in ostree_repos(tree):
        found += sign_ostree(repo, signer, prefix=repo.relative_to(tree).as_posix())
    found += images.sign_installer_isos(tree, signer)
    found += images.write_checksums(tree, stem or tree.name, signer)
    if found:
        gpg.export(signer.home, signer.key, tree / PUBLIC_KEY)
    return Signed(ordered(found), signer.key)


def signable(paths: Iterable[str]) -> bool:
    """Whether a compose with these output paths has anything `sign_tree` signs."""
    return any(
        path.endswith((".rpm", "/repodata/repomd.xml", f"/{OSTREE_JSON}", *images.IMAGE_SUFFIXES))
        for path in paths
    )


def _rpm(tree: Path, rpm: Path, key: str) -> Signature:
    relative = rpm.relative_to(tree).as_posix()
    return Signature(SignatureKind.RPM, signature=relative, key=key, path=relative)


def refresh_repodata(repo: Path) -> None:
    """Rewrite a repo's metadata for its (now signed) RPMs, keeping its extra metadata
    (modules, comps) and its revision."""
    text = (repo / "repodata/repomd.xml").read_text(encoding="utf-8")
    found = re.search(r"<revision>(\d+)</revision>", text)
    createrepo.update_repo(repo, int(found.group(1)) if found else 0)


def copy_tree(source: Path, dest: Path) -> None:
    """A copy (never hard links) of a directory tree, symlinks kept as symlinks."""
    shutil.copytree(source, dest, symlinks=True, copy_function=shutil.copyfile)
