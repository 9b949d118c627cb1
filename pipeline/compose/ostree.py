"""Composer of `ostree` nodes: an OSTree commit of a variant's packages, one ref per arch.

The OSTree repository outlives composes, so refs have history: it is an archive-mode repo at
`<output_dir>/ostree/<Variant>/repo`, shared by every compose of the variant's ostree nodes.
A compose's own directory holds `ostree.json` (the repo path relative to output_dir, and per
arch the ref, commit, the compose that made the commit and the package set); its outputs are
that file and every object a consumer needs: the commit object and its tree. On a fresh runner
the repository holds only what was fetched: the previous latest good compose's commit object
(`pipeline.transfer`), so the new commit's parent is that commit.

The package set decides, not the compose: the packages are installed with dnf from the
variant repo (the latest good `repo:<Variant>` compose), resolved to NEVRA + sha256 of the
RPM file, and digested. When the ref's head already carries that digest
(`factory.package-set-digest`), no commit is made and ostree.json comes out byte-identical,
so a module rebuild that changes no package of the tree stops here (early cutoff).

Tree preparation, kept simple: /etc moves to /usr/etc (ostree's default configuration),
/var and /tmp are emptied (state, created at deploy), and the rpm database (SQLite, with
install times) is replaced by a sorted NEVRA list at /usr/share/factory/rpms.txt, so the same
packages always give the same tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.compose.base import InputCompose, Job, describe_file
from pipeline.compose.variant import os_path
from pipeline.core.canonical import digest, pretty_json
from pipeline.core.errors import OperationFailed
from pipeline.core.graph import repo_id
from pipeline.core.model import Output, Variant
from pipeline.core.records import OutputFile
from pipeline.tools import dnf, ostree

OSTREE_JSON = "ostree.json"
COMPOSE_ID, INPUT_DIGEST, PACKAGE_SET = (
    "factory.compose-id",
    "factory.input-digest",
    "factory.package-set-digest",
)
RPMS_TXT = "usr/share/factory/rpms.txt"


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package: its NEVRA and the sha256 of its RPM file in the variant repo."""

    nevra: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Commit:
    """One arch's commit, as ostree.json records it."""

    arch: str
    ref: str
    commit: str
    compose_id: str  # the compose that made the commit (earlier than the current one if reused)
    package_set_digest: str
    packages: tuple[Package, ...]


@dataclass(frozen=True, slots=True)
class OstreeCompose:
    """What an ostree compose made: the repository (relative to output_dir) and its commits."""

    repo: str
    commits: tuple[Commit, ...]

    def to_json(self) -> str:
        return pretty_json(
            {
                "repo": self.repo,
                "commits": [
                    {
                        "arch": c.arch,
                        "ref": c.ref,
                        "commit": c.commit,
                        "compose_id": c.compose_id,
                        "package_set_digest": c.package_set_digest,
                        "packages": [{"nevra": p.nevra, "sha256": p.sha256} for p in c.packages],
                    }
                    for c in self.commits
                ],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> OstreeCompose:
        data = json.loads(text)
        commits = tuple(
            Commit(
                c["arch"],
                c["ref"],
                c["commit"],
                c["compose_id"],
                c["package_set_digest"],
                tuple(Package(p["nevra"], p["sha256"]) for p in c["packages"]),
            )
            for c in data["commits"]
        )
        return cls(data["repo"], commits)


class OstreeComposer:
    """Commits a variant's `ostree` output into the variant's persistent OSTree repository."""

    kind = "ostree"
    format = 1  # bump when what this composer makes from the same inputs changes

    def tools(self) -> Mapping[str, str]:
        """ostree and dnf, with their versions."""
        return {"ostree": ostree.version(), "dnf": dnf.version()}

    def compose(self, job: Job) -> list[OutputFile]:
        """Install, commit (unless the package set is unchanged), update the summary.

        The parent of a new commit is the commit of the node's previous latest good compose (its
        `ostree.json` and commit objects are local: the executor fetched them), else the ref's
        head in the local repository. The outputs are `ostree.json` and every object a consumer
        needs: each commit object and its tree.
        """
        variant, output = variant_output(job)
        repo_dir = repository(job.output_dir, variant.uid)
        before = previous_commits(job)
        commits = []
        with _locked(repo_dir):
            ostree.init(repo_dir)
            for arch in variant.arches:
                commits.append(_commit_arch(job, variant, output, repo_dir, arch, before.get(arch)))
            ostree.update_summary(repo_dir)
            made = OstreeCompose(repo_dir.relative_to(job.output_dir).as_posix(), tuple(commits))
            manifest = job.workdir / OSTREE_JSON
            manifest.write_text(made.to_json(), encoding="utf-8")
            outputs = [describe_file(job.output_dir, manifest)]
            for commit in commits:
                reused = before.get(commit.arch)
                if reused is not None and reused.commit == commit.commit and job.previous is not None:
                    # Taken again: its objects are the previous compose's (maybe not local here).
                    outputs += [o for o in job.previous.outputs if not o.path.endswith(f"/{OSTREE_JSON}")]
                    continue
                for path in ostree.objects(repo_dir, commit.commit):
                    outputs.append(describe_file(job.output_dir, repo_dir / path))
        return sorted({o.path: o for o in outputs}.values(), key=lambda o: o.path)


def previous_commits(job: Job) -> dict[str, Commit]:
    """The commits of the node's previous latest good compose, by arch (none before the first)."""
    if job.previous is None:
        return {}
    return {c.arch: c for c in load(job, job.previous).commits}


def repository(output_dir: Path, variant_uid: str) -> Path:
    """The persistent archive repository of a variant's OSTree commits."""
    return output_dir / "ostree" / variant_uid / "repo"


def default_ref(job: Job, output: Output, arch: str) -> str:
    """`<short>/<version>/<arch>/<name>`, e.g. `FL/42/x86_64/host`, unless options.ref says otherwise."""
    release = job.defs.config.release
    ref: str = output.option("ref") or f"{release.short}/{release.version}/{arch}/{output.name}"
    return ref


def variant_output(job: Job) -> tuple[Variant, Output]:
    """The variant and output an image node (`kind:<Variant>/<name>`) is made from."""
    uid, _, name = job.node.id.split(":", 1)[1].partition("/")
    variant = job.defs.variants[uid]
    return variant, next(o for o in variant.outputs if o.name == name)


def variant_tree(job: Job, variant_uid: str, arch: str) -> Path:
    """The `os/` directory of the variant repo compose among the job's inputs, for arch."""
    made = job.inputs.get(repo_id(variant_uid))
    if made is None:
        raise OperationFailed(
            f"{job.node.id}: no compose of {repo_id(variant_uid)} among its inputs", code="missing-input"
        )
    suffix = f"/compose/{os_path(variant_uid, arch)}/repodata/repomd.xml"
    repomd = next((o for o in made.outputs if o.path.endswith(suffix)), None)
    if repomd is None:
        raise OperationFailed(
            f"{job.node.id}: {made.compose_id} has no {os_path(variant_uid, arch)} repository",
            code="no-variant-repo",
        )
    return job.input_path(repomd).parent.parent


def ostree_input(job: Job) -> OstreeCompose | None:
    """The ostree compose among the job's inputs (an output layered on one), if any."""
    for made in job.inputs.values():
        if made.node.startswith("ostree:"):
            return load(job, made)
    return None


def load(job: Job, made: InputCompose) -> OstreeCompose:
    """The ostree.json of an ostree compose."""
    found = next((o for o in made.outputs if o.path.endswith(f"/{OSTREE_JSON}")), None)
    if found is None:
        raise OperationFailed(f"{made.compose_id} has no {OSTREE_JSON}", code="no-ostree-json")
    return OstreeCompose.from_json(job.input_path(found).read_text(encoding="utf-8"))


def rpm_filename(nevra: str) -> str:
    """The file name of the RPM of `name-epoch:version-release.arch` (no epoch in file names)."""
    rest, _, arch = nevra.rpartition(".")
    name, epoch_version, release = rest.rsplit("-", 2)
    return f"{name}-{epoch_version.partition(':')[2] or epoch_version}-{release}.{arch}.rpm"


def package_set(job: Job, variant_uid: str, arch: str, nevras: Sequence[str]) -> tuple[Package, ...]:
    """The installed NEVRAs with the sha256 of their files in the variant repo compose."""
    made = job.inputs[repo_id(variant_uid)]
    prefix = f"/compose/{os_path(variant_uid, arch)}/Packages/"
    files = {o.path.rsplit("/", 1)[1]: o for o in made.outputs if prefix in o.path}
    packages = []
    for nevra in sorted(nevras):
        found = files.get(rpm_filename(nevra))
        if found is None:
            raise OperationFailed(
                f"{job.node.id}: installed {nevra}, which is not in {made.compose_id}", code="foreign-package"
            )
        packages.append(Package(nevra, found.sha256))
    return tuple(packages)


def _commit_arch(
    job: Job, variant: Variant, output: Output, repo_dir: Path, arch: str, before: Commit | None
) -> Commit:
    ref = default_ref(job, output, arch)
    names = [str(p) for p in output.option("packages", [])]
    with tempfile.TemporaryDirectory(prefix=".ostree-root-", dir=job.workdir) as scratch:
        root = Path(scratch) / "root"
        source = dnf.Repo(f"factory-{variant.uid}", variant_tree(job, variant.uid, arch))
        dnf.install(root, [source], names, releasever=variant.release, platform=platform_id(job))
        packages = package_set(job, variant.uid, arch, dnf.installed(root))
        set_digest = digest([[p.nevra, p.sha256] for p in packages])
        if before is not None and before.ref == ref:
            if before.package_set_digest == set_digest:
                ostree.set_ref(repo_dir, ref, before.commit)  # its commit object was fetched
                return replace(before, packages=packages)
            previous: str | None = before.commit
        else:
            previous = ostree.head(repo_dir, ref)
            if previous is not None and ostree.metadata(repo_dir, previous, PACKAGE_SET) == set_digest:
                made_by = ostree.metadata(repo_dir, previous, COMPOSE_ID) or ""
                return Commit(arch, ref, previous, made_by, set_digest, packages)
        prepare_tree(root, packages)
        metadata = {COMPOSE_ID: job.compose_id, INPUT_DIGEST: job.node.digest, PACKAGE_SET: set_digest}
        release = job.defs.config.release
        checksum = ostree.commit(
            repo_dir,
            root,
            ref,
            subject=f"{release.name} {release.version} {variant.uid} {output.name} {arch} ({job.compose_id})",
            metadata=metadata,
            timestamp=job.source_date_epoch,
            parent=previous,
        )
    return Commit(arch, ref, checksum, job.compose_id, set_digest, packages)


def prepare_tree(root: Path, packages: Sequence[Package]) -> None:
    """Make a dnf installroot an OSTree tree: /usr/etc, empty /var and /tmp, no rpm database."""
    _remove_nested_cache(root)
    for state in ("var", "tmp", "run"):
        shutil.rmtree(root / state, ignore_errors=True)
        (root / state).mkdir(mode=0o1777 if state == "tmp" else 0o755)
    shutil.rmtree(root / dnf.RPMDB.lstrip("/"), ignore_errors=True)
    if (root / "etc").is_dir():
        (root / "usr").mkdir(exist_ok=True)
        (root / "etc").rename(root / "usr" / "etc")
    listing = root / RPMS_TXT
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"{p.nevra}\n" for p in packages), encoding="utf-8")


def _remove_nested_cache(root: Path) -> None:
    # dnf takes --setopt=cachedir inside the installroot: it lands at <root>/<root>/var/cache/dnf.
    nested = root / root.relative_to(root.anchor)
    if not nested.exists():
        return
    shutil.rmtree(nested)
    parent = nested.parent
    while parent != root and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def platform_id(job: Job) -> str:
    """The dnf platform of the release, e.g. `fl42` (module_platform_id `platform:fl42`)."""
    release = job.defs.config.release
    return f"{release.short.lower()}{release.version}"


@contextlib.contextmanager
def _locked(repo_dir: Path) -> Iterator[None]:
    # One writer per repository at a time: two CI jobs may compose outputs of one variant.
    repo_dir.parent.mkdir(parents=True, exist_ok=True)
    with (repo_dir.parent / "repo.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
