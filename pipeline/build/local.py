"""The local builder: rpmbuild on this machine, into the content-addressed build store.

A build node names a component and a dist-git commit. The builder exports that commit's tree
(no checkout, no .git) and runs a reproducible `rpmbuild -ba` on it. Its work directory is the
build's place in the store (`<output>/builds/<key>`), and a build that exists is never redone:
results are moved in from a staging directory beside it and a `.complete` marker is written
last, so a killed build is never taken as done.

Reproducibility: the source RPM header keeps the parsed spec, with `%{buildroot}` expanded,
so rpmbuild's top directory must be the same path for every build of a pin. It is
`<scratch>/<first 16 hex of the node's input digest>`, under a lock, so two builds of the
same pin (two stores, two processes) take turns there and give byte-identical RPMs. The RPM
files' mtimes are set to SOURCE_DATE_EPOCH (the dist-git commit time), which createrepo_c
puts in primary.xml.
"""

from __future__ import annotations

import fcntl
import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from pipeline import run
from pipeline.compose.base import Job, describe_tree
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.model import Definitions, Pin
from pipeline.core.records import OutputFile
from pipeline.formats.gitlab_ci import LOG_PATHS
from pipeline.git.distgit import commit_time, export_tree
from pipeline.tools import rpmbuild

COMPLETE = ".complete"
LOG = "build.log"
DEFAULT_SCRATCH = Path("/var/tmp/factory-rpmbuild")
LOG_TAIL_LINES = 30


class LocalBuilder:
    """Composer of `build` nodes with the local rpmbuild."""

    kind = "build"
    format = 1  # bump when what this composer makes from the same inputs changes

    def __init__(self, scratch: Path = DEFAULT_SCRATCH) -> None:
        self.scratch = scratch

    def tools(self) -> Mapping[str, str]:
        """rpmbuild and its version."""
        return {"rpmbuild": rpmbuild.version()}

    def compose(self, job: Job) -> list[OutputFile]:
        """Build the node's pin into job.workdir, or return the build already there."""
        if is_complete(job.workdir):
            return outputs(job)
        definition = job.node.definition
        pin = find_pin(
            job.defs, str(definition["component"]), str(definition["ref"]), str(definition.get("branch", ""))
        )
        distgit = distgit_path(job.defs.config.distgit_for(pin), job.source_root)
        key = job.node.digest[:16]
        self.scratch.mkdir(parents=True, exist_ok=True)
        with _locked(self.scratch / f"{key}.lock"):
            if is_complete(job.workdir):  # another process built it while we waited
                return outputs(job)
            job.workdir.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=job.workdir.parent, prefix=f".{job.workdir.name}."))
            topdir = self.scratch / key
            try:
                _build(pin, distgit, str(definition["dist"]), topdir, staging)
            except run.CommandFailed as exc:
                log = _keep_log(staging, job.workdir)
                where = log_location(log, job.output_dir) if log else ""
                raise BuildFailed(pin, log, where, exc, topdir) from exc
            else:
                _publish(staging, job.workdir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                shutil.rmtree(topdir, ignore_errors=True)
        return outputs(job)


def is_complete(workdir: Path) -> bool:
    """Whether workdir holds a finished build."""
    return (workdir / COMPLETE).is_file()


def outputs(job: Job) -> list[OutputFile]:
    """The artifacts of the finished build in job.workdir: its RPMs and source RPM.

    The build log stays beside them but is not an output: it names temporary files, so it
    differs between two otherwise byte-identical builds and would defeat early cutoff.
    """
    skipped = (f"/{COMPLETE}", f"/{LOG}")
    return [f for f in describe_tree(job.output_dir, job.workdir) if not f.path.endswith(skipped)]


def find_pin(defs: Definitions, component: str, ref: str, branch: str = "") -> Pin:
    """A module's pin of component at ref (it tells where the dist-git lives).

    A pin that follows `branch` without a ref stands for whatever the executor resolved the
    branch's head to: it is returned with that ref.
    """
    modules = sorted(defs.modules.values(), key=lambda m: m.nsid)
    for module in modules:
        for pin in module.components:
            if pin.component == component and pin.ref == ref:
                return pin
    for module in modules:
        for pin in module.components:
            if pin.component == component and pin.follows_head and pin.branch == branch:
                return replace(pin, ref=ref)
    raise InvalidInput(f"no module pins {component} at {ref}", code="unknown-pin")


def distgit_path(url: str, source_root: Path) -> Path:
    """The local dist-git repository of a URL from factory.yaml (relative to source_root)."""
    path = url.removeprefix("file://")
    if "://" in path:
        raise InvalidInput(
            f"the local builder reads dist-git from this machine only, not {url}",
            hint="materialize or clone the dist-git repositories and point distgit.url at them",
            code="remote-distgit",
        )
    return source_root / path


def _build(pin: Pin, distgit: Path, dist: str, topdir: Path, staging: Path) -> None:
    shutil.rmtree(topdir, ignore_errors=True)  # left over by a killed build
    layout = rpmbuild.Layout.under(topdir)
    export_tree(distgit, pin.ref, layout.sourcedir)
    epoch = commit_time(distgit, pin.ref)
    spec = _spec(layout.sourcedir, pin.component)
    rpmbuild.build(spec, layout, dist, epoch, staging / LOG)
    built = sorted(layout.rpmdir.rglob("*.rpm")) + sorted(layout.srcrpmdir.glob("*.rpm"))
    for path in built:
        target = staging / path.name
        shutil.move(path, target)
        os.utime(target, (epoch, epoch))


def _spec(sourcedir: Path, component: str) -> Path:
    named = sourcedir / f"{component}.spec"
    if named.is_file():
        return named
    found = sorted(sourcedir.glob("*.spec"))
    if len(found) != 1:
        raise OperationFailed(
            f"{component}: expected {component}.spec or one spec file in dist-git, found {len(found)}",
            code="no-spec",
        )
    return found[0]


def _publish(staging: Path, workdir: Path) -> None:
    # A workdir without the marker is a killed build (or the empty directory the executor made).
    if workdir.exists():
        shutil.rmtree(workdir)
    staging.chmod(0o755)  # mkdtemp made it private; the store is read by others
    os.rename(staging, workdir)
    marker = workdir / f"{COMPLETE}.tmp"
    marker.write_text("complete\n", encoding="utf-8")
    os.replace(marker, workdir / COMPLETE)


def _keep_log(staging: Path, workdir: Path) -> Path | None:
    """Move the log of a failed build to workdir/build.log (without the marker); its new path."""
    log = staging / LOG
    if not log.is_file():
        return None
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.move(log, workdir / LOG)
    return workdir / LOG


def log_location(log: Path, output_dir: Path, env: Mapping[str, str] = os.environ) -> str:
    """Where a reader opens a failed build's log, never a path of this machine: in a GitLab CI
    job that keeps it as an artifact (the generated jobs keep `LOG_PATHS`, also when they fail),
    its page among the job's artifacts, `$CI_JOB_URL/artifacts/file/<path in the project>`;
    elsewhere its place in the output directory, `builds/<key>/build.log`."""
    job_url, project = env.get("CI_JOB_URL", ""), env.get("CI_PROJECT_DIR", "")
    if job_url and project:
        try:
            inside = log.resolve().relative_to(Path(project).resolve()).as_posix()
        except ValueError:
            inside = ""
        if inside and any(fnmatch.fnmatchcase(inside, kept) for kept in LOG_PATHS):
            return f"{job_url.rstrip('/')}/artifacts/file/{inside}"
    return f"{log.relative_to(output_dir).as_posix()} in the output directory"


class BuildFailed(OperationFailed):
    """rpmbuild failed; the message names where the kept build log is (`log_location`) and ends
    with its tail, rpmbuild's top directory on this machine written `%{_topdir}`."""

    def __init__(
        self, pin: Pin, log: Path | None, where: str, failure: run.CommandFailed, topdir: Path
    ) -> None:
        text = log.read_text(encoding="utf-8", errors="replace") if log is not None else failure.stderr
        tail = "\n".join(text.splitlines()[-LOG_TAIL_LINES:]).replace(str(topdir), "%{_topdir}")
        where = f"log: {where}" if log is not None else "no log"
        super().__init__(
            f"rpmbuild of {pin.component} at {pin.ref[:12]} failed ({where}):\n{tail}",
            code="build-failed",
        )
        self.log = log


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
