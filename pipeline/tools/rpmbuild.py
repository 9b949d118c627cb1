"""The `rpmbuild` program: reproducible binary and source RPMs from a spec file.

Reproducible means: the same spec and sources, built under the same top directory with the
same rpmbuild, give byte-identical RPMs. Build time and file times come from
SOURCE_DATE_EPOCH (the dist-git commit time), the build host is a constant, and `%dist` is
the release's (Debian's rpm does not define it). The top directory matters because a source
RPM's header keeps the parsed spec, in which `%{buildroot}` is expanded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline import run

REPRODUCIBLE_DEFINES = (
    ("use_source_date_epoch_as_buildtime", "1"),
    ("clamp_mtime_to_source_date_epoch", "1"),
    ("_buildhost", "reproducible"),
)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one build reads and writes: topdir holds BUILD/ and BUILDROOT/."""

    topdir: Path
    sourcedir: Path  # the dist-git tree: spec file and sources
    rpmdir: Path  # binary RPMs land in rpmdir/<arch>/
    srcrpmdir: Path

    @classmethod
    def under(cls, topdir: Path) -> Layout:
        """The usual layout: SOURCES/, RPMS/ and SRPMS/ under topdir."""
        return cls(topdir, topdir / "SOURCES", topdir / "RPMS", topdir / "SRPMS")


def build_argv(spec: Path, layout: Layout, dist: str) -> list[str]:
    """The command line that builds binary and source RPMs (`-ba`) of spec."""
    defines = [
        ("_topdir", str(layout.topdir)),
        ("_sourcedir", str(layout.sourcedir)),
        ("_specdir", str(layout.sourcedir)),
        ("_rpmdir", str(layout.rpmdir)),
        ("_srcrpmdir", str(layout.srcrpmdir)),
        # rpmbuild's script files: a failed build leaves them, so keep them in the scratch topdir
        ("_tmppath", str(layout.topdir / "tmp")),
        ("dist", dist),
        *REPRODUCIBLE_DEFINES,
    ]
    argv = ["rpmbuild", "-ba"]
    for name, value in defines:
        argv += ["--define", f"{name} {value}"]
    return [*argv, str(spec)]


def build_env(source_date_epoch: int, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a build: base with SOURCE_DATE_EPOCH, and a fixed time zone and locale."""
    return {**base, "SOURCE_DATE_EPOCH": str(source_date_epoch), "TZ": "UTC", "LC_ALL": "C"}


def build(spec: Path, layout: Layout, dist: str, source_date_epoch: int, log: Path) -> None:
    """Build spec; rpmbuild's whole output goes to log. Raises run.CommandFailed on failure."""
    for directory in (layout.topdir / "tmp", layout.sourcedir, layout.rpmdir, layout.srcrpmdir):
        directory.mkdir(parents=True, exist_ok=True)
    run.run(
        build_argv(spec, layout, dist),
        cwd=layout.topdir,
        env=build_env(source_date_epoch, os.environ),
        output_log=log,
    )


@cache
def version() -> str:
    """The version of rpmbuild, e.g. `4.18.0`."""
    return run.run(["rpmbuild", "--version"]).split()[-1]
