"""dnf: install packages into an empty root from local repositories (`--installroot`), and
resolve what such an install would bring in without installing it (`resolve`).

Debian traps handled here (see TOOLCHAIN.md): Debian's rpm keeps its database in ~/.rpmdb, so
dnf runs with a HOME whose .rpmmacros puts the installroot's database where Fedora puts it;
the platform ID is given so dnf does not guess it; librepo leaves a gpg-agent running per
installroot, which is stopped afterwards. dnf 4.14 keeps repository metadata and its solv
files in the cachedir as given, not under the installroot, keyed by the repository's id: every
install gets a cachedir of its own, or two installs from repos with the same id (each compose's
`variant`) running at once, or one path reused by another compose, read each other's metadata.
"""

from __future__ import annotations

import gc
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipeline import run
from pipeline.core.errors import OperationFailed
from pipeline.tools import gpg, rpm

RPMDB = "/usr/lib/sysimage/rpm"
SHM = Path("/dev/shm")
SCRATCH_FREE = 2 << 30  # an install root that could not fit goes to the disk instead
# libdnf is not known to be thread-safe: one in-process use at a time (checks run in worker
# threads while the executor resolves image package sets on its own thread).
LIBDNF_LOCK = threading.Lock()


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


def scratch_dir() -> Path | None:
    """Where throw-away install roots go: /dev/shm (memory) when it has SCRATCH_FREE bytes free,
    else None (the system's temporary directory).

    An install check's root is written once and deleted: in memory, rpm's writes and the
    removal cost ~30% less CPU and less than half the wall time than on the disk (measured with
    200 packages on ext4: 1.25 s against 1.8 s of CPU, 3 s against 7 s).
    """
    try:
        usage = os.statvfs(SHM)
    except OSError:
        return None
    free = usage.f_bavail * usage.f_frsize
    return SHM if free >= SCRATCH_FREE and os.access(SHM, os.W_OK) else None


def resolve(
    repos: Sequence[Repo], packages: Sequence[str], *, releasever: str, platform: str
) -> tuple[tuple[str, str], ...]:
    """What `install` of packages into an empty root would install: (NEVRA, sha256 of the RPM
    file) of each package, sorted, read from the repositories' metadata. Nothing is installed.

    It is dnf's own depsolver (libsolv through dnf's Python API, in this process: ~25 ms
    instead of a dnf process per call), with the settings of `install_argv`: the same platform
    and modular filtering, no weak dependencies. Raises OperationFailed when a package is
    missing or the set does not resolve.
    """
    module, hawkey = _dnf()
    with (
        LIBDNF_LOCK,
        _collecting_new_objects_only(),
        tempfile.TemporaryDirectory(prefix="factory-dnf-resolve-") as scratch,
    ):
        base = module.Base()
        try:
            conf = base.conf
            conf.installroot = str(Path(scratch, "root"))
            conf.cachedir = str(Path(scratch, "cache"))
            conf.reposdir = []
            conf.module_platform_id = f"platform:{platform}"
            conf.install_weak_deps = False
            conf.substitutions["releasever"] = releasever
            for repo in repos:
                base.repos.add_new_repo(repo.id, conf, baseurl=[f"file://{repo.path}"], gpgcheck=False)
            base.fill_sack(load_system_repo=False)
            for name in packages:
                base.install(name)
            base.resolve()
            return tuple(sorted(_described(p, hawkey) for p in base.transaction.install_set))
        except module.exceptions.Error as exc:
            raise OperationFailed(
                f"dnf cannot resolve {', '.join(packages)} from {', '.join(str(r.path) for r in repos)}: {exc}",
                code="depsolve-failed",
            ) from exc
        finally:
            base.close()


@contextmanager
def _collecting_new_objects_only() -> Iterator[None]:
    """dnf.Base runs a full `gc.collect()` at every reset (twice per resolve), which in a compose
    process walks every object it holds (~0.1 s each time). Frozen first, the objects that were
    there before are left out of those collections, which then walk only what dnf made; they
    go back to the collector afterwards."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _described(package: Any, hawkey: Any) -> tuple[str, str]:
    kind, value = package.chksum
    name = hawkey.chksum_name(kind)
    if name != "sha256":
        raise OperationFailed(
            f"{package.location}: the repository gives a {name} checksum, not sha256", code="not-sha256"
        )
    nevra = f"{package.name}-{package.epoch}:{package.version}-{package.release}.{package.arch}"
    return nevra, bytes(value).hex()


def _dnf() -> tuple[Any, Any]:
    try:
        import dnf  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import dnf.exceptions  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import hawkey  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise OperationFailed(
            "dnf's Python API is not available to this python",
            hint="apt-get install dnf, and use a venv made with /usr/bin/python3 -m venv --system-site-packages",
            code="dnf-missing",
        ) from exc
    return dnf, hawkey


def installed(root: Path) -> list[str]:
    """NEVRAs of the packages installed in root, sorted."""
    return rpm.installed(root, RPMDB)


@cache
def version() -> str:
    """dnf's version, e.g. `4.14.0`: what `dnf --version` prints first, read from its Python
    API (`dnf.const.VERSION`) instead of starting a dnf process (~0.35 s of CPU) per call."""
    module, _ = _dnf()
    return str(module.const.VERSION)


def _stop_agents(*tops: Path) -> None:
    homes = {p.parent for top in tops if top.exists() for p in top.rglob("pubring.*")}
    for home in sorted(homes):
        gpg.kill_agent(home)
