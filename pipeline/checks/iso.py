"""The `iso-listing` check: each ISO holds what its kind of image must hold, under its volume ID.

The image is read back with xorriso (`-find / -type f`, `-pvd_info`): a DVD must carry its
repository (repodata, Packages) and the media files; an installer layered on an OSTree commit
must carry the archive repository with that commit on its ref and the kickstart deploying it.
images.json must list every image with its size and sha256.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import productmd.images  # type: ignore[import-untyped]

from pipeline.compose.images_json import IMAGES_JSON
from pipeline.compose.iso import COMPOSE, volume_id
from pipeline.compose.ostree import OstreeCompose, ostree_input, variant_output
from pipeline.core.errors import FactoryError
from pipeline.core.gate import CheckResult
from pipeline.core.job import Job
from pipeline.core.records import OutputFile
from pipeline.core.states import CheckState
from pipeline.tools import xorriso

MEDIA = ("/.discinfo", "/media.repo")


class IsoListingCheck:
    """List each ISO's files and read its volume ID; compare with what the output should hold."""

    name = "iso-listing"
    kinds = frozenset({"iso"})

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        """PASSED, or FAILED with every problem found."""
        try:
            variant, output = variant_output(job)
            layered = ostree_input(job)
        except (FactoryError, OSError, ValueError, KeyError, StopIteration) as exc:
            return CheckResult(
                self.name, CheckState.FAILED, f"cannot tell what the images should hold: {exc}"
            )
        isos = [o for o in outputs if o.path.endswith(".iso")]
        if not isos:
            return CheckResult(self.name, CheckState.FAILED, "the compose made no ISO")
        expected_volume = volume_id(job, variant, output)
        problems = _manifest_problems(job, isos)
        needs_rpms = layered is None or bool(output.option("packages"))
        for iso in isos:
            problems += _image_problems(job.input_path(iso), expected_volume, layered, needs_rpms)
        return CheckResult(
            self.name, CheckState.FAILED if problems else CheckState.PASSED, "; ".join(problems)
        )


def required_files(layered: OstreeCompose | None, arch: str) -> list[str]:
    """The files an image of arch must hold (ostree commits: those of that arch)."""
    if layered is None:  # a DVD: the variant repo
        return [*MEDIA, "/repodata/repomd.xml"]
    required = [*MEDIA, "/ostree.ks", "/ostree/repo/config"]
    for commit in (c for c in layered.commits if c.arch == arch):
        required.append(f"/ostree/repo/refs/heads/{commit.ref}")
        required.append(f"/ostree/repo/objects/{commit.commit[:2]}/{commit.commit[2:]}.commit")
    return required


def _image_problems(
    iso: Path, expected_volume: str, layered: OstreeCompose | None, needs_rpms: bool
) -> list[str]:
    arch = iso.parent.parent.name  # <Variant>/<arch>/iso/<name>.iso
    try:
        listed = set(xorriso.files(iso))
        volume = xorriso.volume_id(iso)
    except FactoryError as exc:
        return [f"{iso.name}: xorriso cannot read it: {exc.message}"]
    problems = [f"{iso.name}: no {path}" for path in required_files(layered, arch) if path not in listed]
    if needs_rpms and not any(p.startswith("/Packages/") and p.endswith(".rpm") for p in listed):
        problems.append(f"{iso.name}: no RPMs under /Packages")
    if volume != expected_volume:
        problems.append(f"{iso.name}: volume ID is {volume!r}, expected {expected_volume!r}")
    return problems


def _manifest_problems(job: Job, isos: Sequence[OutputFile]) -> list[str]:
    path = job.workdir / COMPOSE / IMAGES_JSON
    manifest = productmd.images.Images()
    try:
        manifest.load(str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{IMAGES_JSON} does not load: {exc}"]
    listed = {
        image.path: image
        for arches in manifest.images.values()
        for images in arches.values()
        for image in images
    }
    root = f"{job.workdir.relative_to(job.output_dir).as_posix()}/{COMPOSE}/"
    problems = []
    for iso in isos:
        image = listed.get(iso.path.removeprefix(root))
        if image is None:
            problems.append(f"{IMAGES_JSON} does not list {iso.path.removeprefix(root)}")
        elif image.size != iso.size or image.checksums.get("sha256") != iso.sha256:
            problems.append(f"{IMAGES_JSON}: size or sha256 of {image.path} differ from the file")
    return problems
