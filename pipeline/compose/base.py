"""The contract between the executor and the composers of each artifact kind.

The executor hands a composer a `Job` (`pipeline.core.job`, the contract composers and checks
share; importable from here too): the node, its compose ID, the validated definitions,
the latest good compose of each input (with where its outputs are), and an empty work
directory. The composer makes the artifact there with the real tools and returns the list of
files it made. It never touches Git lineage and never decides whether to run. It writes only
into `job.workdir`, with two deliberate exceptions: the builder's workdir is its slot in the
content-addressed build store, and the OSTree composer commits into the variant's shared
OSTree repository (`ostree/<Variant>/repo`, under a lock), because a ref's history is the
point of OSTree; its workdir then holds `ostree.json` naming the commit. Input files may be
hard links to the artifact store's blobs: a composer replaces files, never edits one in place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from pipeline.core.job import InputCompose as InputCompose
from pipeline.core.job import Job as Job
from pipeline.core.records import OutputFile
from pipeline.core.upstream import UpstreamRpm


class Composer(Protocol):
    """Makes the artifact of one kind of node."""

    kind: str
    # The version of the composer's own output: part of every compose key of its kind, in place
    # of factory's version, so a factory release that makes the same bytes recomposes nothing.
    # Bump it when the composer makes something else from the same inputs.
    format: int

    def tools(self) -> Mapping[str, str]:
        """Names and versions of the external tools it uses (part of every compose key)."""
        ...

    def compose(self, job: Job) -> list[OutputFile]:
        """Make the artifact in job.workdir; return every file made (raise FactoryError on failure)."""
        ...


@runtime_checkable
class Traced(Protocol):
    """A composer that knows where the files of a compose came from (the binary composer): its
    lineage record keeps it, per RPM (`core.upstream`)."""

    def upstream(self, job: Job) -> tuple[UpstreamRpm, ...]:
        """Where each RPM of the compose just made in job.workdir came from."""
        ...


def tool_versions(composer: Composer) -> dict[str, str]:
    """What makes a composer's output besides its inputs: its tools' versions and its format
    number (`format`), as a compose key and a lineage record hold them."""
    return {**composer.tools(), "format": str(composer.format)}


def describe_file(output_dir: Path, path: Path) -> OutputFile:
    """An OutputFile for a file under output_dir (streams the file for its sha256)."""
    with path.open("rb") as handle:
        sha256 = hashlib.file_digest(handle, "sha256").hexdigest()
    return OutputFile(path.relative_to(output_dir).as_posix(), path.stat().st_size, sha256)


def describe_tree(output_dir: Path, root: Path) -> list[OutputFile]:
    """OutputFiles for every regular file under root, sorted by path."""
    return [
        describe_file(output_dir, p) for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()
    ]
