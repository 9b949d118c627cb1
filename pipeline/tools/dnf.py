"""dnf: install packages into an empty root from local repositories (`--installroot`).

Debian traps handled here (see TOOLCHAIN.md): Debian's rpm keeps its database in ~/.rpmdb, so
dnf runs with a HOME whose .rpmmacros puts the installroot's database where Fedora puts it;
the platform ID is given so dnf does not guess it; librepo leaves a gpg-agent running per
installroot, which is stopped afterwards. dnf 4.14 keeps repository metadata and its solv
files in the cachedir as given, not under the installroot, keyed by the repository's id: every
install gets a cachedir of its own, or two installs from repos with the same id (each compose's
`variant`) running at once, or one path reused by another compose, read each other's metadata.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import run
from pipeline.tools import gpg, rpm

RPMDB = "/usr/lib/sysimage/rpm"


@dataclass(frozen=True, slots=True)
class Repo:
    """A yum repository on this machine."""

    id: str
    path: Path
    gpgkey: Path | None = None  # with a key, packages must be signed by it (gpgcheck=1)
    repo_gpgcheck: bool = False  # check repomd.xml.asc too


def install_argv(
    root: Path,
    repos: Sequence[Repo],
    packages: Sequence[str],
    *,
    releasever: str,
    platform: str,
    cachedir: Path,
) -> list[str]:
    """The dnf command line that installs packages (with their dependencies) into root, with the
    metadata cache in `cachedir` (its own: see the module docstring)."""
    argv = [
        "dnf",
        "-y",
        "-q",
        f"--installroot={root}",
        f"--releasever={releasever}",
        "--setopt=reposdir=/nonexistent",
        f"--setopt=module_platform_id=platform:{platform}",
        "--setopt=install_weak_deps=False",
        "--setopt=tsflags=nodocs",
        f"--setopt=cachedir={cachedir}",
    ]
    for repo in repos:
        argv += [f"--repofrompath={repo.id},file://{repo.path}", f"--repo={repo.id}"]
        if repo.gpgkey is not None:
            argv += [f"--setopt={repo.id}.gpgcheck=1", f"--setopt={repo.id}.gpgkey=file://{repo.gpgkey}"]
        else:
            argv.append(f"--setopt={repo.id}.gpgcheck=0")
        argv.append(f"--setopt={repo.id}.repo_gpgcheck={int(repo.repo_gpgcheck)}")
    return [*argv, "install", *packages]


def install(
    root: Path,
    repos: Sequence[Repo],
    packages: Sequence[str],
    *,
    releasever: str,
    platform: str,
    source_date_epoch: int | None = None,
) -> str:
    """Install packages into root; dnf's output. Raises run.CommandFailed when dnf fails.

    With source_date_epoch, rpm records it as every package's install time, so the rpm
    database comes out the same on every run.
    """
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="factory-dnf-home-") as home:
        Path(home, ".rpmmacros").write_text(f"%_dbpath {RPMDB}\n", encoding="utf-8")
        env = {**os.environ, "HOME": home}
        if source_date_epoch is not None:
            env["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
        try:
            return run.run(
                install_argv(
                    root,
                    repos,
                    packages,
                    releasever=releasever,
                    platform=platform,
                    cachedir=Path(home) / "cache",
                ),
                env=env,
            )
        finally:
            _stop_agents(root, Path(home))


def installed(root: Path) -> list[str]:
    """NEVRAs of the packages installed in root, sorted."""
    return rpm.installed(root, RPMDB)


def version() -> str:
    return run.run(["dnf", "--version"]).splitlines()[0].strip()


def _stop_agents(*tops: Path) -> None:
    homes = {p.parent for top in tops if top.exists() for p in top.rglob("pubring.*")}
    for home in sorted(homes):
        gpg.kill_agent(home)
