"""The `createrepo_c` and `modifyrepo_c` programs: yum repository metadata (repodata/).

Deterministic output: the same packages and metadata files give byte-identical repodata.
- `--revision R --set-timestamp-to-revision` puts R (the compose's SOURCE_DATE_EPOCH) in
  repomd.xml's revision and in every record's timestamp, instead of the time of the run;
- checksum, compression and file naming are pinned (`sha256`, `gz`, unique names) and the
  sqlite databases left out (`--no-database`; dnf reads the XML), so a newer createrepo_c
  with other defaults does not change the bytes silently;
- `modifyrepo_c` 0.17 stamps the record it adds with the time it runs and has no option
  against it, so `make_repo` adds extra metadata with modifyrepo_c and then lets
  `createrepo_c --update --keep-all-metadata` re-stamp every record with the revision.
Package times in primary.xml are the RPM files' mtimes: builders set them to their
SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline import run

PINNED = (
    "--no-database",
    "--checksum=sha256",
    "--repomd-checksum=sha256",
    "--general-compress-type=gz",
    "--unique-md-filenames",
)


@dataclass(frozen=True, slots=True)
class Metadata:
    """An extra metadata file for repodata/ and its type: `modules` (modulemd) or `group` (comps)."""

    path: Path
    mdtype: str


def createrepo_argv(directory: Path, revision: int, *, update: bool = False) -> list[str]:
    """The command line that writes directory/repodata for the RPMs under directory.

    With update, existing repodata is read back and its extra records (modules, group) kept.
    """
    again = ["--update", "--keep-all-metadata"] if update else []
    return [
        "createrepo_c",
        "--quiet",
        *PINNED,
        f"--revision={revision}",
        "--set-timestamp-to-revision",
        *again,
        str(directory),
    ]


def modifyrepo_argv(metadata: Metadata, repodata: Path) -> list[str]:
    """The command line that adds one metadata file to repodata (compressed, sha256-named)."""
    return [
        "modifyrepo_c",
        f"--mdtype={metadata.mdtype}",
        "--compress-type=gz",
        "--checksum=sha256",
        "--unique-md-filenames",
        str(metadata.path),
        str(repodata),
    ]


def make_repo(directory: Path, revision: int, extra: Sequence[Metadata] = ()) -> None:
    """Write directory/repodata for the RPMs under directory, with extra metadata added.

    Files named in extra must lie outside directory (createrepo_c would index them otherwise).
    """
    env = _env(revision)
    run.run(createrepo_argv(directory, revision), env=env)
    if not extra:
        return
    for metadata in extra:
        run.run(modifyrepo_argv(metadata, directory / "repodata"), env=env)
    run.run(createrepo_argv(directory, revision, update=True), env=env)


def update_repo(directory: Path, revision: int) -> None:
    """Write directory/repodata again for the RPMs as they are now (after signing them), keeping
    its extra metadata (modules, group) and giving it `revision`."""
    run.run(createrepo_argv(directory, revision, update=True), env=_env(revision))


def _env(revision: int) -> dict[str, str]:
    # Read by newer createrepo_c releases for the same purpose as --set-timestamp-to-revision.
    return {**os.environ, "SOURCE_DATE_EPOCH": str(revision), "LC_ALL": "C"}


@cache
def version() -> str:
    """The version of createrepo_c, e.g. `0.17.3`."""
    return run.run(["createrepo_c", "--version"]).split()[1]


@cache
def modifyrepo_version() -> str:
    """The version of modifyrepo_c (it prints createrepo_c's version)."""
    return run.run(["modifyrepo_c", "--version"]).split()[1]
