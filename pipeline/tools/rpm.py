"""The `rpm` program: reading package headers (`rpm -qp --qf`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from pipeline import run
from pipeline.core.nevra import Rpm

BATCH = 512  # files per rpm process: keeps the command line short

# One tab-separated line per package. A missing epoch reads as 0 and a missing SOURCERPM (a
# source package) as empty, so every line has the same eight fields; the license is last (the
# one free-text field).
QUERY_FORMAT = (
    "%{NAME}\\t%|EPOCH?{%{EPOCH}}:{0}|\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}"
    "\\t%|SOURCERPM?{%{SOURCERPM}}:{}|\\t%|BUILDTIME?{%{BUILDTIME}}:{0}|\\t%{LICENSE}\\n"
)


def query_argv(paths: Sequence[Path]) -> list[str]:
    """The command line that prints the header fields of RPM files, one line each, in order."""
    return ["rpm", "-qp", "--nosignature", "--nodigest", "--qf", QUERY_FORMAT, *map(str, paths)]


def parse_query(output: str) -> list[Rpm]:
    """The packages described by the output of `query_argv`."""
    rpms = []
    for line in output.splitlines():
        if not line:
            continue
        name, epoch, version, release, arch, sourcerpm, buildtime, license_ = line.split("\t", 7)
        rpms.append(Rpm(name, int(epoch), version, release, arch, license_, sourcerpm, int(buildtime)))
    return rpms


def headers(paths: Sequence[Path]) -> list[Rpm]:
    """The header of each RPM file, in the order given (one `rpm` process per BATCH files)."""
    rpms: list[Rpm] = []
    for start in range(0, len(paths), BATCH):
        batch = paths[start : start + BATCH]
        found = parse_query(run.run(query_argv(batch), env={**os.environ, "LC_ALL": "C"}))
        if len(found) != len(batch):
            raise run.CommandFailed(query_argv(batch), 0, f"expected {len(batch)} headers, got {len(found)}")
        rpms += found
    return rpms


def installed_argv(root: Path, dbpath: str) -> list[str]:
    """The command line that lists the NEVRAs installed in a root (its database at dbpath)."""
    return [
        "rpm", "--root", str(root), "--dbpath", dbpath,
        "-qa", "--qf", "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n",
    ]  # fmt: skip


def installed(root: Path, dbpath: str) -> list[str]:
    """NEVRAs of the packages installed in root, sorted."""
    return sorted(run.run(installed_argv(root, dbpath)).split())


@cache
def version() -> str:
    """The version of rpm, e.g. `4.18.0`."""
    return run.run(["rpm", "--version"]).split()[-1]
