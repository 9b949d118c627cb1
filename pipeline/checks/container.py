"""The `container-config` check: read a composed image back with skopeo and check its config.

It checks what a consumer of the image relies on: the image is readable from its OCI layout
and from its oci-archive (the same manifest in both), its labels name the compose and the
node's input digest, its Cmd is the one the definitions ask for, and a layered image is its
base image's layers plus exactly one layer on top.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline import run
from pipeline.compose.container import (
    COMPOSE_ID_LABEL,
    INPUT_DIGEST_LABEL,
    LAYOUT,
    ImageSpec,
    archive_path,
    image_spec,
    layout_of,
)
from pipeline.core.errors import FactoryError
from pipeline.core.gate import CheckResult
from pipeline.core.job import Job
from pipeline.core.records import OutputFile
from pipeline.core.states import CheckState
from pipeline.tools import skopeo

NAME = "container-config"


class ContainerConfigCheck:
    """Labels, Cmd and layers of a container compose, as skopeo reads them."""

    name = NAME
    kinds = frozenset({"container"})

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        """PASSED, or FAILED with every problem found; ERROR when skopeo cannot be run at all."""
        try:
            problems = _problems(job, outputs)
        except run.CommandFailed as exc:
            state = CheckState.ERROR if exc.returncode == 127 else CheckState.FAILED
            return CheckResult(NAME, state, f"skopeo cannot read the image: {exc.message}")
        except FactoryError as exc:
            return CheckResult(NAME, CheckState.FAILED, exc.message)
        return (
            CheckResult(NAME, CheckState.FAILED, "; ".join(problems))
            if problems
            else CheckResult(NAME, CheckState.PASSED)
        )


def _problems(job: Job, outputs: Sequence[OutputFile]) -> list[str]:
    spec = image_spec(job)
    index = [o for o in outputs if o.path.endswith(f"/{LAYOUT}/index.json")]
    if not index:
        return [f"no OCI layout ({LAYOUT}/index.json) among the {len(outputs)} outputs"]
    image = skopeo.inspect(skopeo.oci(job.input_path(index[0]).parent, spec.name))
    problems = _config_problems(job, spec, image)
    archive = [o for o in outputs if o.path.endswith(f"/{archive_path(spec)}")]
    if not archive:
        problems.append(f"no oci-archive {archive_path(spec)} among the outputs")
    else:
        archived = skopeo.inspect(skopeo.oci_archive(job.input_path(archive[0])))
        if archived.digest != image.digest:
            problems.append(f"the oci-archive holds manifest {archived.digest}, the layout {image.digest}")
    if spec.base:
        problems += _layer_problems(job, spec, image)
    return problems


def _config_problems(job: Job, spec: ImageSpec, image: skopeo.Image) -> list[str]:
    problems = []
    for label, wanted in ((COMPOSE_ID_LABEL, job.compose_id), (INPUT_DIGEST_LABEL, job.node.digest)):
        found = image.labels.get(label)
        if found != wanted:
            problems.append(f"label {label} is {found!r}, expected {wanted!r}")
    for label, wanted in sorted(spec.labels.items()):
        if image.labels.get(label) != wanted:
            problems.append(f"label {label} is {image.labels.get(label)!r}, expected {wanted!r}")
    if spec.cmd and image.cmd != spec.cmd:
        problems.append(f"Cmd is {list(image.cmd)}, expected {list(spec.cmd)}")
    return problems


def _layer_problems(job: Job, spec: ImageSpec, image: skopeo.Image) -> list[str]:
    layout, tag = layout_of(job, spec.base)
    base = skopeo.inspect(skopeo.oci(layout, tag))
    count = len(base.layers)
    if image.layers[:count] != base.layers:
        return [
            f"the first {count} layers {list(image.layers[:count])} are not the layers of "
            f"{spec.base} ({job.inputs[spec.base].compose_id}): {list(base.layers)}"
        ]
    if len(image.layers) != count + 1:
        return [f"{len(image.layers) - count} layers on top of {spec.base}, expected exactly 1"]
    return []
