"""Signing image files: installer ISOs that carry an OSTree repository, and CHECKSUM files.

An installer ISO (`iso:AtomicHost/installer`) holds an OSTree repository that its kickstart
deploys with gpg verification on (`pipeline.compose.iso.kickstart`). Its commits are signed
when it is released, and the release key goes on the image, so the image is made again from
the composed one with xorriso: `ostree/repo` (with the commits' `.commitmeta` signatures and
a signed summary) and `ostree/trusted.gpg.d/factory.gpg` (the key, a binary keyring as ostree
reads) are mapped into a copy of the image, every other file and the boot setup kept. The
released image is then not the composed one: its productmd `images.json` entry is rewritten
for the new size and sha256, and RELEASE.json lists the commits signed inside it.

Every image file of a release (ISOs, OCI archives, disk images) is listed with its sha256 in a
Fedora-style CHECKSUM file beside it, clearsigned (`pipeline.formats.checksum`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import productmd.images  # type: ignore[import-untyped]

from pipeline.compose.images_json import IMAGES_JSON
from pipeline.compose.iso import OSTREE_REPO, TRUSTED_KEYS
from pipeline.core.errors import OperationFailed
from pipeline.core.signatures import Signature, SignatureKind
from pipeline.formats import checksum
from pipeline.release.ostree_sign import sign_ostree
from pipeline.release.signer import Signer
from pipeline.tools import gpg, xorriso

IMAGE_SUFFIXES = (".iso", ".tar", ".qcow2", ".raw", ".raw.xz", ".img", ".vhd", ".vagrant-libvirt.box")
KEYRING = "factory.gpg"  # the release key on an installer image, under TRUSTED_KEYS


def image_files(tree: Path) -> list[Path]:
    """The image files under tree (by suffix), sorted."""
    return sorted(
        p for p in tree.rglob("*") if p.is_file() and not p.is_symlink() and p.name.endswith(IMAGE_SUFFIXES)
    )


def sign_installer_isos(tree: Path, signer: Signer) -> list[Signature]:
    """Sign the OSTree repository of every ISO under tree that has one, and put the key on it."""
    found: list[Signature] = []
    for iso in image_files(tree):
        if iso.suffix != ".iso" or f"/{OSTREE_REPO}/config" not in xorriso.files(iso):
            continue
        within = iso.relative_to(tree).as_posix()
        with tempfile.TemporaryDirectory(prefix="factory-iso-") as scratch:
            repo = Path(scratch) / "repo"
            xorriso.extract(iso, f"/{OSTREE_REPO}", repo)
            _writable(repo)
            signed = sign_ostree(repo, signer, prefix=f"/{OSTREE_REPO}", within=within)
            for leftover in (repo / ".lock", repo / "tmp"):  # ostree's own scratch: not content
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink(missing_ok=True)
            keys = Path(scratch) / "keys"
            keys.mkdir()
            gpg.export(signer.home, signer.key, keys / KEYRING, armor=False)
            remade = iso.with_name(f".{iso.name}.signed")
            remade.unlink(missing_ok=True)
            xorriso.remaster(iso, remade, [(repo, f"/{OSTREE_REPO}"), (keys, f"/{TRUSTED_KEYS}")])
            os.replace(remade, iso)
        listed = set(xorriso.files(iso))
        missing = [s.signature for s in signed if s.signature not in listed]
        if missing:
            raise OperationFailed(f"{within}: signatures missing on the image: {missing}", code="sign-lost")
        found += signed
        refresh_images_json(tree, iso)
    return found


def refresh_images_json(tree: Path, image: Path) -> None:
    """Rewrite the productmd images.json entry of an image file that changed (size, sha256)."""
    for manifest_path in sorted(tree.rglob(IMAGES_JSON)):
        root = manifest_path.parent.parent
        if root not in image.parents:
            continue
        manifest = productmd.images.Images()
        manifest.load(str(manifest_path))
        relative = image.relative_to(root).as_posix()
        changed = False
        for arches in manifest.images.values():
            for entries in arches.values():
                for entry in entries:
                    if entry.path == relative:
                        entry.size = image.stat().st_size
                        entry.checksums = {"sha256": sha256_of(image)}
                        changed = True
        if changed:
            manifest.dump(str(manifest_path))


def write_checksums(tree: Path, stem: str, signer: Signer) -> list[Signature]:
    """A clearsigned CHECKSUM file in every directory of tree that holds image files."""
    by_directory: dict[Path, list[Path]] = {}
    for image in image_files(tree):
        by_directory.setdefault(image.parent, []).append(image)
    found = []
    for directory, images in sorted(by_directory.items()):
        entries = [checksum.Entry(i.name, i.stat().st_size, sha256_of(i)) for i in images]
        target = directory / checksum.checksum_name(_stem(tree, directory, stem))
        with tempfile.TemporaryDirectory(prefix="factory-checksum-") as scratch:
            text = Path(scratch) / "CHECKSUM"
            text.write_text(checksum.render(entries), encoding="utf-8")
            gpg.clearsign(signer.home, signer.key, text, target, signer.passphrase_file)
        relative = target.relative_to(tree).as_posix()
        found.append(
            Signature(
                SignatureKind.CHECKSUM,
                signature=relative,
                key=signer.key,
                path=relative,
                files=tuple(i.relative_to(tree).as_posix() for i in images),
            )
        )
    return found


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _stem(tree: Path, directory: Path, stem: str) -> str:
    """`<stem>-<arch>` for a productmd directory `compose/<Variant>/<arch>/<kind>`, else stem."""
    parts = directory.relative_to(tree).parts
    return f"{stem}-{parts[2]}" if len(parts) == 4 and parts[0] == "compose" else stem


def _writable(root: Path) -> None:
    """xorriso restores the image's permissions; signing writes into the repository."""
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o200)
    os.chmod(root, os.stat(root).st_mode | 0o200)
