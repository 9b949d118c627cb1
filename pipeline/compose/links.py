"""Helpers the repo-making composers share: gathering input RPMs and hard-linking them.

RPMs enter composes as hard links of the files in the build store (never copies), so a repo
costs no space and a file's bytes are the bytes that were built.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.compose.base import Job
from pipeline.core.errors import OperationFailed
from pipeline.core.nevra import Rpm
from pipeline.core.records import OutputFile
from pipeline.tools import rpm


@dataclass(frozen=True, slots=True)
class InputRpm:
    """One RPM among a compose's inputs: its file and its header."""

    path: Path
    header: Rpm


def input_rpms(job: Job, outputs: Iterable[OutputFile]) -> list[InputRpm]:
    """The RPM files among outputs of the job's inputs, with their headers, one per file name.

    The same file name twice with different content is an error (two builds of one package).
    """
    chosen: dict[str, OutputFile] = {}
    for output in sorted(outputs, key=lambda o: o.path):
        if not output.path.endswith(".rpm"):
            continue
        name = Path(output.path).name
        seen = chosen.get(name)
        if seen is not None and seen.sha256 != output.sha256:
            raise OperationFailed(
                f"{job.node.id}: two different files named {name}: {seen.path} and {output.path}",
                code="rpm-clash",
            )
        chosen.setdefault(name, output)
    paths = [job.input_path(o) for o in sorted(chosen.values(), key=lambda o: Path(o.path).name)]
    return [InputRpm(p, h) for p, h in zip(paths, rpm.headers(paths), strict=True)]


def built_at(rpms: Iterable[InputRpm]) -> int:
    """The SOURCE_DATE_EPOCH of what is made from these RPMs: the newest build time among them
    (0 for none). It depends on the inputs only, never on when or from which definitions commit
    a compose runs, so the same RPMs give the same repodata and modulemd bytes."""
    return max((r.header.buildtime for r in rpms), default=0)


def link(source: Path, target: Path) -> None:
    """Hard-link source at target (directories made); an error, not a copy, across file systems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError as exc:
        raise OperationFailed(
            f"cannot hard-link {source} to {target}: {exc.strerror}",
            hint="the build store and the composes must be on one file system (output.dir)",
            code="link-failed",
        ) from exc
