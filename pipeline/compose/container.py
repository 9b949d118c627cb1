"""Composer of `container` nodes: an OCI image made with dnf and umoci, no container daemon.

Layout of the compose's work directory:

    oci/                                        OCI image layout, the image tagged with the
                                                output's name (`base`, `httpd`)
    compose/<Variant>/<arch>/images/<name>.tar  the same image as an oci-archive (skopeo copy)

Both kinds of image are made the same way: unpack an image into a runtime bundle, install the
packages into its rootfs with `dnf --installroot` from the variant's repo, and let `umoci repack`
pack what changed as ONE new layer. A base image (no `from:`) starts from an empty image; a
layered image starts from a copy of its base's layout, so its layers are the base's layers plus
one (dnf sees the base's rpmdb in the unpacked rootfs and installs only what is missing).

Reproducible: rpm records SOURCE_DATE_EPOCH as install time, dnf's caches, logs and history
are removed, every mtime in the rootfs is set to SOURCE_DATE_EPOCH before packing, and umoci
gets `--created`/`--history.created` from it, so the same packages give the same layer
digests. The configuration carries the compose ID as a label, so the manifest digest is the
same only for the same compose ID (then every output is byte-identical).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.compose.base import Job, describe_tree
from pipeline.compose.variant import COMPOSE, os_path
from pipeline.core.errors import OperationFailed
from pipeline.core.records import OutputFile
from pipeline.run import CommandFailed
from pipeline.tools import dnf, skopeo, umoci

LAYOUT = "oci"
KIND = "container"
OCI_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x", "i686": "386"}
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
COMPOSE_ID_LABEL = "org.factory.compose-id"
INPUT_DIGEST_LABEL = "org.factory.input-digest"
NODE_LABEL = "org.factory.node"
REVISION_LABEL = "org.opencontainers.image.revision"
# What dnf leaves in a root that differs from run to run and that no image needs.
DNF_LEFTOVERS = (
    "var/cache/dnf",
    "var/log/dnf.log",
    "var/log/dnf.librepo.log",
    "var/log/dnf.rpm.log",
    "var/log/hawkey.log",
    "var/lib/dnf/history.sqlite",
    "var/lib/dnf/history.sqlite-shm",
    "var/lib/dnf/history.sqlite-wal",
    f"{dnf.RPMDB.lstrip('/')}/rpmdb.sqlite-shm",  # sqlite's shared-memory index, rebuilt on open
)


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """What one container node makes, read from its node definition and inputs."""

    variant_uid: str
    name: str  # the output's name, also the image's tag in the layout
    arch: str
    release: str  # dnf's releasever
    packages: tuple[str, ...]
    cmd: tuple[str, ...]
    labels: Mapping[str, str]
    base: str = ""  # node ID of the image it is layered on (`from:`), empty for a base image


class ContainerComposer:
    """Makes the OCI image of one container output of a variant."""

    kind = KIND
    format = 1  # bump when what this composer makes from the same inputs changes

    def tools(self) -> Mapping[str, str]:
        """dnf, umoci and skopeo, with their versions."""
        return {"dnf": dnf.version(), "umoci": umoci.version(), "skopeo": skopeo.version()}

    def compose(self, job: Job) -> list[OutputFile]:
        """Install the packages as one layer on an empty image or on a copy of the base image."""
        spec = image_spec(job)
        layout = job.workdir / LAYOUT
        created = rfc3339(job.source_date_epoch)
        with tempfile.TemporaryDirectory(dir=job.workdir, prefix=".bundle-") as scratch:
            bundle = Path(scratch) / "bundle"
            start = _start_layout(job, spec, layout)
            umoci.unpack(layout, start, bundle)
            rootfs = bundle / "rootfs"
            _install(rootfs, _variant_repo(job, spec), spec, job.defs.config.dist, job.source_date_epoch)
            tidy_rootfs(rootfs)
            pin_mtimes(rootfs, job.source_date_epoch)
            umoci.repack(layout, spec.name, bundle, created=created, created_by=_created_by(spec))
        if start != spec.name:
            umoci.remove(layout, start)
        # The definitions' labels first: they cannot override what names the compose.
        labels = {
            **spec.labels,
            COMPOSE_ID_LABEL: job.compose_id,
            INPUT_DIGEST_LABEL: job.node.digest,
            NODE_LABEL: job.node.id,
            # The definitions commit it was composed from, under the OCI annotation's name.
            **({REVISION_LABEL: job.commit} if job.commit else {}),
        }
        settings = umoci.Config(created, spec.cmd, (PATH,), labels, OCI_ARCH.get(spec.arch, spec.arch))
        umoci.config(layout, spec.name, settings)
        umoci.gc(layout)
        archive = job.workdir / archive_path(spec)
        archive.parent.mkdir(parents=True, exist_ok=True)
        skopeo.copy(skopeo.oci(layout, spec.name), skopeo.oci_archive(archive, spec.name))
        pin_archive(archive, job.source_date_epoch)
        return describe_tree(job.output_dir, job.workdir)


def image_spec(job: Job) -> ImageSpec:
    """The image a container job makes: from the node's definition and its `container:` input."""
    definition = job.node.definition
    variant = definition["variant"]
    output = definition["output"]
    options = output.get("options") or {}
    arches = list(variant["arches"])
    if len(arches) != 1:
        raise OperationFailed(
            f"{job.node.id}: a container image is made for one arch, variant {variant['uid']} has {arches}",
            hint="multi-arch images (an OCI index per arch) are not supported yet",
            code="unsupported",
        )
    bases = [i for i in job.node.inputs if i.startswith(f"{KIND}:")]
    if len(bases) > 1:
        raise OperationFailed(
            f"{job.node.id}: an image is layered on one image, not on {', '.join(bases)}",
            code="unsupported",
        )
    return ImageSpec(
        variant_uid=str(variant["uid"]),
        name=str(output["name"]),
        arch=str(arches[0]),
        release=str(variant["release"]),
        packages=tuple(str(p) for p in options.get("packages") or ()),
        cmd=tuple(str(p) for p in options.get("cmd") or ()),
        labels={str(k): str(v) for k, v in (options.get("labels") or {}).items()},
        base=bases[0] if bases else "",
    )


def archive_path(spec: ImageSpec) -> str:
    """Where the oci-archive of an image goes, relative to the compose's work directory."""
    return f"{COMPOSE}/{spec.variant_uid}/{spec.arch}/images/{spec.name}.tar"


def layout_of(job: Job, node: str) -> tuple[Path, str]:
    """The OCI layout an input container compose made, and its image's tag."""
    found = job.inputs.get(node)
    if found is None:
        raise OperationFailed(f"{job.node.id}: input {node} was not given", code="missing-input")
    for output in found.outputs:
        if output.path.endswith(f"/{LAYOUT}/index.json"):
            return job.input_path(output).parent, node.rsplit("/", 1)[-1]
    raise OperationFailed(f"{node} ({found.compose_id}) made no OCI layout", code="missing-input")


def rfc3339(epoch: int) -> str:
    """An epoch as the UTC timestamp OCI configurations use."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _start_layout(job: Job, spec: ImageSpec, layout: Path) -> str:
    """Make the layout the new layer goes on; the tag of the image to unpack."""
    if not spec.base:
        umoci.init(layout)
        umoci.new(layout, spec.name)
        return spec.name
    source, tag = layout_of(job, spec.base)
    # Blobs are content-addressed and never rewritten: link them. index.json is rewritten: copy it.
    shutil.copytree(source, layout, copy_function=_link_or_copy, ignore=shutil.ignore_patterns("index.json"))
    shutil.copy2(source / "index.json", layout / "index.json")
    return tag


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def _variant_repo(job: Job, spec: ImageSpec) -> Path:
    """The variant's yum repo for the image's arch, from the `repo:<Variant>` input."""
    node = f"repo:{spec.variant_uid}"
    found = job.inputs.get(node)
    repomd = f"/{COMPOSE}/{os_path(spec.variant_uid, spec.arch)}/repodata/repomd.xml"
    for output in found.outputs if found else ():
        if output.path.endswith(repomd):
            return job.input_path(output).parent.parent
    raise OperationFailed(f"{job.node.id}: input {node} has no {spec.arch} repo", code="missing-input")


def _install(rootfs: Path, repo: Path, spec: ImageSpec, dist: str, source_date_epoch: int) -> None:
    """dnf install into rootfs, with SOURCE_DATE_EPOCH so rpm records reproducible install times."""
    stray = _first_new(rootfs, rootfs / rootfs.relative_to(rootfs.anchor) / "var/cache/dnf")
    try:
        dnf.install(
            rootfs,
            [dnf.Repo(spec.variant_uid, repo)],
            spec.packages,
            releasever=spec.release,
            platform=dist.lstrip("."),
            source_date_epoch=source_date_epoch,
        )
    except CommandFailed as exc:
        raise OperationFailed(
            f"cannot install {', '.join(spec.packages)} into the {spec.name} image: {exc.message}",
            code="install-failed",
        ) from exc
    # dnf puts the installroot in front of the cachedir dnf.install_argv gives it (already inside
    # the root): the cache lands at <root>/<root>/var/cache/dnf. Remove what that made.
    if stray is not None and stray.exists():
        shutil.rmtree(stray)


def _first_new(rootfs: Path, path: Path) -> Path | None:
    """The outermost directory of path under rootfs that does not exist yet (None if all do)."""
    for depth in range(1, len(path.relative_to(rootfs).parts) + 1):
        candidate = rootfs.joinpath(*path.relative_to(rootfs).parts[:depth])
        if not candidate.exists():
            return candidate
    return None


def tidy_rootfs(rootfs: Path) -> None:
    """Remove dnf's caches, logs and history, and the rpmdb's sqlite side files when empty."""
    for leftover in DNF_LEFTOVERS:
        path = rootfs / leftover
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    wal = rootfs / dnf.RPMDB.lstrip("/") / "rpmdb.sqlite-wal"
    if wal.exists() and wal.stat().st_size == 0:  # a non-empty one holds data not yet checkpointed
        wal.unlink()


def pin_mtimes(rootfs: Path, epoch: int) -> None:
    """Set the mtime of everything in rootfs (rootfs too, symlinks themselves) to epoch."""
    for top, dirs, files in os.walk(rootfs):
        for name in (*dirs, *files):
            os.utime(os.path.join(top, name), (epoch, epoch), follow_symlinks=False)
    os.utime(rootfs, (epoch, epoch))


def pin_archive(archive: Path, epoch: int) -> None:
    """Rewrite a tar with members sorted by name, owned by root, all mtimes epoch.

    skopeo writes the oci-archive with the wall-clock mtimes of its temporary layout; the
    members' bytes (blobs, index.json, oci-layout) are already reproducible.
    """
    pinned = archive.with_name(archive.name + ".pinned")
    with tarfile.open(archive) as source, tarfile.open(pinned, "w", format=tarfile.PAX_FORMAT) as target:
        for member in sorted(source.getmembers(), key=lambda m: m.name):
            member.mtime = epoch
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.pax_headers = {}
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
    os.replace(pinned, archive)


def _created_by(spec: ImageSpec) -> str:
    return f"factory: dnf install {' '.join(spec.packages)}"
