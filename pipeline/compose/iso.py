"""Composer of `iso` nodes: installer images made with xorriso, listed in productmd images.json.

Layout of the compose's work directory:

    compose/<Variant>/<arch>/iso/<name>.iso   the image, one per arch
    compose/metadata/images.json              productmd: every image with size and sha256

What goes on the image (staged in a scratch directory, hard links where files exist already):

- an output layered on nothing (`iso:Server/dvd`): the variant repo's `os/` tree (Packages,
  repodata), plus `.discinfo` and `media.repo`, as on a DVD;
- an output layered on an ostree output (`iso:AtomicHost/installer`): an archive repository
  at `ostree/repo` holding just the commit of each ref (pulled without history), a kickstart
  `ostree.ks` that deploys it with its signature verified (see `kickstart`), and
  options.packages (with their dependencies, resolved by dnf) under `Packages/` with repodata:
  an installer stub. The commits are signed, and the key put on the image, when it is
  released (`pipeline.release.sign_images`).

What images.json says of each image (productmd's words): a DVD is type `dvd`, an installer on
an OSTree commit `dvd-ostree` (the type Pungi's ostree_installer phase gives its installer); its
`bootable` flag is read back from the image (an El Torito boot record, `xorriso
-report_el_torito`), never assumed. Neither kind gets a boot setup (no boot loader, kernel or
initrd is staged), so neither boots today: both say `bootable: false`.

Reproducible: xorriso runs with SOURCE_DATE_EPOCH (every time in the image is pinned), the
staged files are the same bytes for the same inputs (no ostree summary, which embeds the wall
clock), and images.json uses SOURCE_DATE_EPOCH as mtime.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pipeline.compose.base import Job, describe_tree
from pipeline.compose.images_json import ImageFile, write_images_json
from pipeline.compose.links import link
from pipeline.compose.ostree import (
    OstreeCompose,
    ostree_input,
    package_set,
    platform_id,
    rpm_filename,
    variant_output,
    variant_tree,
)
from pipeline.core.errors import OperationFailed
from pipeline.core.model import Output, Variant
from pipeline.core.records import OutputFile
from pipeline.tools import createrepo, dnf, ostree, xorriso

COMPOSE = "compose"
KICKSTART = "ostree.ks"
OSTREE_REPO = "ostree/repo"  # the installer's OSTree repository, on the image
TRUSTED_KEYS = "ostree/trusted.gpg.d"  # where a release puts its public key (a binary keyring)
MEDIA_ROOT = "/run/install/repo"  # where anaconda mounts the installation image
OSTREE_TRUSTED = "/usr/share/ostree/trusted.gpg.d"  # ostree's keyrings trusted for every remote


class IsoComposer:
    """Makes the installer ISO of one variant output, per arch."""

    kind = "iso"
    format = 2  # bump when what this composer makes from the same inputs changes

    def tools(self) -> Mapping[str, str]:
        """xorriso, ostree, dnf and createrepo_c, with their versions."""
        return {
            "xorriso": xorriso.version(),
            "ostree": ostree.version(),
            "dnf": dnf.version(),
            "createrepo_c": createrepo.version(),
        }

    def compose(self, job: Job) -> list[OutputFile]:
        """Stage each arch's content, make the ISO, write images.json."""
        variant, output = variant_output(job)
        root = job.workdir / COMPOSE
        layered = ostree_input(job)
        volume = volume_id(job, variant, output)
        images = []
        for arch in variant.arches:
            iso = root / iso_path(variant.uid, arch, output.name)
            with tempfile.TemporaryDirectory(prefix=".iso-stage-", dir=job.workdir) as scratch:
                stage = Path(scratch) / "stage"
                if layered is None:
                    _stage_dvd(job, variant, arch, stage)
                else:
                    _stage_installer(job, variant, output, arch, layered, stage, Path(scratch))
                xorriso.make_iso(iso, volume, stage, job.source_date_epoch)
            kind = "dvd" if layered is None else "dvd-ostree"
            bootable = bool(xorriso.boot_images(iso))
            images.append(ImageFile(iso, variant.uid, arch, kind, "iso", variant.uid, volume, bootable))
        write_images_json(job.compose_id, root, images, job.source_date_epoch)
        return describe_tree(job.output_dir, job.workdir)


def iso_path(variant_uid: str, arch: str, name: str) -> str:
    """An image's path relative to the compose root."""
    return f"{variant_uid}/{arch}/iso/{name}.iso"


def volume_id(job: Job, variant: Variant, output: Output) -> str:
    """options.volume_id, or `<short>-<version>-<Variant>`."""
    release = job.defs.config.release
    volume: str = output.option("volume_id") or f"{release.short}-{release.version}-{variant.uid}"
    return volume


def _stage_dvd(job: Job, variant: Variant, arch: str, stage: Path) -> None:
    tree = variant_tree(job, variant.uid, arch)
    for path in sorted(tree.rglob("*")):
        if path.is_file():
            link(path, stage / path.relative_to(tree))
    _media_files(job, variant, arch, stage)


def _stage_installer(
    job: Job, variant: Variant, output: Output, arch: str, layered: OstreeCompose, stage: Path, scratch: Path
) -> None:
    source = job.output_dir / layered.repo
    ostree.init(source)  # on a runner that fetched only the objects, the repository's config
    repo = stage / OSTREE_REPO
    ostree.init(repo)
    commits = [c for c in layered.commits if c.arch == arch]
    if not commits:
        raise OperationFailed(
            f"{job.node.id}: the ostree compose it is layered on has no {arch} commit", code="missing-input"
        )
    for commit in commits:
        ostree.pull_local(repo, source, commit.commit, commit.ref)
    for lock in (repo / ".lock", repo / "tmp"):  # ostree's own scratch: not content
        if lock.is_dir():
            shutil.rmtree(lock)
        else:
            lock.unlink(missing_ok=True)
    (stage / KICKSTART).write_text(kickstart(commits[0].ref), encoding="utf-8")
    names = [str(p) for p in output.option("packages", [])]
    if names:
        root = scratch / "root"
        tree = variant_tree(job, variant.uid, arch)
        repos = [dnf.Repo(f"factory-{variant.uid}", tree)]
        dnf.install(root, repos, names, releasever=variant.release, platform=platform_id(job))
        for package in package_set(job, variant.uid, arch, dnf.installed(root)):
            name = _file_of(tree, package.nevra)
            link(tree / "Packages" / name, stage / "Packages" / name)
        createrepo.make_repo(stage, job.source_date_epoch)
    _media_files(job, variant, arch, stage)


def _file_of(tree: Path, nevra: str) -> str:
    name = rpm_filename(nevra)
    if not (tree / "Packages" / name).is_file():
        raise OperationFailed(f"{nevra} is not in {tree}", code="foreign-package")
    return name


def _media_files(job: Job, variant: Variant, arch: str, stage: Path) -> None:
    release = job.defs.config.release
    (stage / ".discinfo").write_text(
        f"{job.source_date_epoch}\n{release.name} {release.version}\n{arch}\n", encoding="utf-8"
    )
    (stage / "media.repo").write_text(
        "[InstallMedia]\n"
        f"name={release.name} {release.version} {variant.name}\n"
        f"mediaid={job.source_date_epoch}\n"
        "metadata_expire=-1\n"
        "gpgcheck=0\n"
        "cost=500\n",
        encoding="utf-8",
    )


def kickstart(ref: str) -> str:
    """The installer's kickstart: deploy ref from the image's OSTree repository, its signature
    verified (anaconda's `ostreesetup` without `--nogpg`: the remote it adds keeps ostree's
    default gpg-verify=true).

    ostreesetup has no option naming a key: ostree trusts the keyrings in
    /usr/share/ostree/trusted.gpg.d/ of the system that pulls, here the installer's. A release
    puts its public key on the image at TRUSTED_KEYS (`factory release` signs the commits in the
    image's repository and adds the key), and %pre copies it there before anything is pulled.
    An image never released carries no key, so it installs nothing: unsigned commits are refused.
    """
    return (
        "# Deploys the OSTree commit on this image (anaconda's ostreesetup), its signature verified\n"
        "# with the release key the image carries (see %pre).\n"
        f"ostreesetup --osname=factory --remote=factory --url=file://{MEDIA_ROOT}/ostree/repo --ref={ref}\n"
        "\n"
        "%pre\n"
        f"mkdir -p {OSTREE_TRUSTED}\n"
        f"cp {MEDIA_ROOT}/{TRUSTED_KEYS}/*.gpg {OSTREE_TRUSTED}/\n"
        "%end\n"
    )
