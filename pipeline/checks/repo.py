"""Checks of yum repositories: `repoclosure` (module and variant repos) and `install` (variants).

repoclosure: every requirement of every RPM in the repo is provided by the repo or the repos it
is meant to be used with. A variant's flat repo must be closed on its own; a module repo holds
only the module's own builds, so it is checked against itself plus the modules it requires,
transitively (the module's `requires`, from the definitions). Those modules are taken as their
builds at the pins of the definitions composed (latest good build composes, from lineage:
a module node's inputs are its own builds only, and the modules it requires usually compose in
the same tier), or, when a build is missing, as the latest good compose of the module. dnf-plugins-core's
`dnf repoclosure` is not on Debian, so the check asks libdnf's solver itself (hawkey, the
system python's binding; the venv sees it), in-process: under 10 ms per repo. No modular
filtering applies: closure is about packages, and a module repo has no defaults.

install: the profiles a variant selects of every module (its default profiles) install with
dnf into an empty root from the variant's repo (for this machine's architecture). When no
selected profile holds a package there is nothing to install: NOT_APPLICABLE, never PASSED. A passed
install of the very same resolved package set by an earlier compose is reused, not run again,
and the result says from which compose (`pipeline/checks/install_cache.py`).

A failure names the broken packages and, for a variant, the modules they come from and those
modules' maintainers, so the failure report reaches the owners.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.checks import install_cache
from pipeline.core.errors import FactoryError
from pipeline.core.gate import CheckResult
from pipeline.core.graph import build_id
from pipeline.core.job import InputCompose, Job
from pipeline.core.model import Definitions
from pipeline.core.records import OutputFile
from pipeline.core.states import CheckState
from pipeline.records.lineage import Lineage
from pipeline.run import CommandFailed
from pipeline.tools import dnf

REPOMD = "repodata/repomd.xml"
_NS = {"repo": "http://linux.duke.edu/metadata/repo"}
_ARCHES = {"x86_64", "aarch64", "ppc64le", "s390x", "i686", "armv7hl"}
_SHOWN = 10  # unresolved requirements listed in a message


@dataclass(frozen=True, slots=True)
class Unresolved:
    """One requirement of one package that nothing provides."""

    package: str  # NEVRA
    file: str  # the RPM's file name
    requirement: str


def repo_dirs(job: Job, outputs: Sequence[OutputFile]) -> list[Path]:
    """The binary yum repos a compose made (directories holding repodata/repomd.xml); source
    repos are left out."""
    found = []
    for output in outputs:
        if output.path.endswith("/" + REPOMD):
            top = PurePosixPath(output.path).parent.parent
            if "source" not in top.parts:
                found.append(job.output_dir / top)
    return sorted(found)


def required_modules(defs: Definitions, nsid: str) -> list[str]:
    """The module streams a module requires at run time, transitively, without itself."""
    seen: list[str] = []
    todo = [nsid]
    while todo:
        module = defs.modules.get(todo.pop())
        for name, stream in module.requires if module is not None else ():
            dep = f"{name}:{stream}"
            if dep != nsid and dep not in seen:
                seen.append(dep)
                todo.append(dep)
    return sorted(seen)


def closure(
    check: Sequence[Path], also: Sequence[Path], rpms: Sequence[Path] = (), *, arch: str | None = None
) -> list[Unresolved]:
    """The requirements of the RPMs in the `check` repos that neither they, the `also` repos nor
    the `rpms` files provide.

    libdnf's hawkey sack, loaded straight from each repo's primary and filelists: no
    dnf.Base, whose every reset runs a full `gc.collect()` of the whole (compose) process.
    """
    import hawkey  # type: ignore[import-untyped,import-not-found,unused-ignore]

    with dnf.LIBDNF_LOCK, tempfile.TemporaryDirectory(prefix="factory-closure-") as tmp:
        sack = hawkey.Sack(cachedir=tmp, make_cache_dir=True, **({"arch": arch} if arch else {}))
        mine = [f"r{n}" for n in range(len(check))]
        for n, path in enumerate([*check, *also]):
            _load_repo(sack, f"r{n}", path, hawkey)
        for path in rpms:
            sack.add_cmdline_package(str(path))
        every = hawkey.Query(sack).available()
        broken = []
        for pkg in every.filter(reponame=mine):
            for req in pkg.requires:
                text = str(req)
                if not text.startswith("rpmlib(") and not every.filter(provides=req):
                    broken.append(Unresolved(str(pkg), PurePosixPath(pkg.location).name, text))
        return sorted(set(broken), key=lambda u: (u.package, u.requirement))


def _load_repo(sack: Any, name: str, path: Path, hawkey: Any) -> None:
    """Load one repo's primary and filelists metadata into the sack."""
    repomd = path / REPOMD
    try:
        root = ET.parse(repomd).getroot()
    except (OSError, ET.ParseError) as exc:
        raise CheckError(f"cannot read {repomd}: {exc}", code="unreadable-repomd") from exc
    # The C class: hawkey.Repo only adds a deprecation warning (dnf.repo.Repo needs a dnf.Base),
    # and switches every DeprecationWarning of the process to "always" while at it.
    repo = hawkey._hawkey.Repo(name)
    repo.repomd_fn = str(repomd)
    for data in root.findall("repo:data", _NS):
        location = data.find("repo:location", _NS)
        href = path / (location.get("href", "") if location is not None else "")
        if data.get("type") == "primary":
            repo.primary_fn = str(href)
        elif data.get("type") == "filelists":
            repo.filelists_fn = str(href)
    sack.load_repo(repo, load_filelists=True)


def owners_of(job: Job, files: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Module stream -> maintainers, for the input modules that shipped these RPM file names."""
    wanted = set(files)
    found: dict[str, tuple[str, ...]] = {}
    for node, compose in sorted(job.inputs.items()):
        if not node.startswith("module:"):
            continue
        if any(PurePosixPath(o.path).name in wanted for o in compose.outputs):
            nsid = node.removeprefix("module:")
            module = job.defs.modules.get(nsid)
            found[nsid] = module.maintainers if module is not None else ()
    return found


def _owners_text(owners: dict[str, tuple[str, ...]]) -> str:
    return "; ".join(
        f"module {nsid} (maintainers: {', '.join(people) or 'none listed'})"
        for nsid, people in owners.items()
    )


class RepoClosure:
    """Every requirement of every RPM is satisfied by the repo (and, for a module, by the
    modules it requires)."""

    name = "repoclosure"
    kinds = frozenset({"module", "repo"})

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        try:
            repos = repo_dirs(job, outputs)
            if not repos:
                return CheckResult(self.name, CheckState.ERROR, "the compose made no yum repository")
            also, rpms = self._required(job) if job.node.kind == "module" else ([], [])
            arches = {r.parent.name for r in repos} & _ARCHES
            broken = closure(repos, also, rpms, arch=arches.pop() if len(arches) == 1 else None)
        except FactoryError as exc:
            return CheckResult(self.name, CheckState.ERROR, exc.message)
        if not broken:
            return CheckResult(self.name, CheckState.PASSED)
        shown = "; ".join(f"{u.package} requires {u.requirement}" for u in broken[:_SHOWN])
        more = f" (and {len(broken) - _SHOWN} more)" if len(broken) > _SHOWN else ""
        message = f"{len(broken)} unresolved requirements: {shown}{more}"
        owners = owners_of(job, (u.file for u in broken))
        if owners:
            message += f"; from {_owners_text(owners)}"
        return CheckResult(self.name, CheckState.FAILED, message)

    def _required(self, job: Job) -> tuple[list[Path], list[Path]]:
        """The modules this module requires: repos of latest good module composes, and RPMs of
        latest good builds (preferred: they are what the definitions composed pin)."""
        repos: list[Path] = []
        rpms: list[Path] = []
        for made, files in required_composes(job):
            if made.node.startswith("module:"):
                repos += repo_dirs(job, files)
            else:
                rpms += [job.output_dir / o.path for o in files]
        return repos, rpms


def required_composes(job: Job) -> list[tuple[InputCompose, list[OutputFile]]]:
    """What repoclosure reads of the modules a module requires: per latest good compose (a
    build's, or a module's when one of its builds has none), the files it reads (binary RPMs, or
    the module's whole compose). Lineage of the release composed; the files may not be local."""
    needed = required_modules(job.defs, job.node.id.removeprefix("module:"))
    if not needed:
        return []
    # its own handle (checks run in worker threads), on the release composed
    lineage = Lineage(job.source_root, job.defs.config.release.version)
    try:
        latest = lineage.latest()
        found: list[tuple[InputCompose, list[OutputFile]]] = []
        for nsid in needed:
            pins = job.defs.modules[nsid].components
            builds = [(build_id(pin), latest.get(build_id(pin))) for pin in pins]
            if all(cid for _, cid in builds):
                for node, cid in builds:
                    outputs = lineage.get(str(cid)).outputs
                    rpms = [o for o in outputs if o.path.endswith(".rpm") and not o.path.endswith(".src.rpm")]
                    found.append((InputCompose(node, str(cid), outputs), rpms))
                continue
            module_compose = latest.get(f"module:{nsid}")
            if module_compose is None:
                raise CheckError(
                    f"required module {nsid} has no good compose and no good builds", code="missing-input"
                )
            outputs = lineage.get(module_compose).outputs
            found.append((InputCompose(f"module:{nsid}", module_compose, outputs), list(outputs)))
        return found
    finally:
        lineage.close()


class CheckError(FactoryError):
    """A check could not run (recorded as ERROR)."""


class InstallCheck:
    """The profiles the variant selects of each module install into an empty root."""

    name = "install"
    kinds = frozenset({"repo"})

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        variant = job.defs.variants.get(job.node.id.removeprefix("repo:"))
        arch = os.uname().machine
        repos = [r for r in repo_dirs(job, outputs) if r.parent.name == arch]
        if variant is None or not repos:
            return CheckResult(
                self.name, CheckState.ERROR, f"no {arch} repository of {job.node.id} to install from"
            )
        wanted: dict[str, tuple[str, ...]] = {}
        for selection in variant.modules:
            module = job.defs.modules.get(selection.module)
            profiles = [module.profile(p) for p in selection.profiles or ("default",)] if module else []
            rpms = tuple(dict.fromkeys(r for p in profiles if p is not None for r in p.rpms))
            if rpms:
                wanted[selection.module] = rpms
        if not wanted:
            # Nothing was installed, so nothing passed: the gate decides what that means.
            return CheckResult(
                self.name, CheckState.NOT_APPLICABLE, "no profile selects a package: nothing to install"
            )
        everything = tuple(dict.fromkeys(r for rpms in wanted.values() for r in rpms))
        config = job.defs.config
        key = install_cache.install_key(
            repos[0], everything, releasever=config.release.version, platform=config.dist.lstrip(".")
        )
        reused = install_cache.lookup(job.source_root, key) if key is not None else None
        if reused is not None and key is not None:
            return CheckResult(
                self.name,
                CheckState.PASSED,
                f"{reused.message} (not run again: the result of {reused.compose_id}, whose install"
                f" brought in the same {len(key.packages)} packages, by NEVRA and sha256)",
            )
        if self._install(job, repos[0], everything) is None:
            message = f"{len(everything)} packages of {len(wanted)} modules install"
            if key is not None:
                install_cache.remember(job.source_root, key, job.compose_id, message)
            return CheckResult(self.name, CheckState.PASSED, message)
        failures = []  # one transaction failed: find the modules whose profiles fail on their own
        for nsid, rpms in wanted.items():
            error = self._install(job, repos[0], rpms)
            if error is not None:
                module = job.defs.modules[nsid]
                people = ", ".join(module.maintainers) or "none listed"
                failures.append(f"module {nsid} (maintainers: {people}): {error}")
        if not failures:
            failures.append(self._install(job, repos[0], everything) or "the profiles conflict together")
        return CheckResult(self.name, CheckState.FAILED, "install failed: " + "; ".join(failures))

    def _install(self, job: Job, repo: Path, rpms: Sequence[str]) -> str | None:
        """None when rpms install, else the last lines dnf said."""
        config = job.defs.config
        with tempfile.TemporaryDirectory(prefix="factory-install-", dir=dnf.scratch_dir()) as tmp:
            try:
                dnf.install(
                    Path(tmp) / "root",
                    [dnf.Repo("variant", repo)],
                    rpms,
                    releasever=config.release.version,
                    platform=config.dist.lstrip("."),
                )
            except CommandFailed as exc:
                lines = [line.strip() for line in exc.stderr.strip().splitlines() if line.strip()]
                return " / ".join(lines[-3:]) or f"dnf exit status {exc.returncode}"
        return None
