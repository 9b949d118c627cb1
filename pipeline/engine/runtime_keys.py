"""What an image node consumes of its variant repo, resolved: the part of its compose key that
stands for the repo.

A variant repo compose holds every package of every module the variant ships, and its
metadata names the compose: keyed by that, every image would be made again whenever any
package of the variant changed. An image consumes only what goes into it, so its key holds
only that (the Atomic Host's "rebuilt only when something in their package manifest changed"):

- an OSTree commit (`ostree:V/name`) and a container image (`container:V/name`): the package
  set its `packages` resolve to against the repo (dnf's depsolver on the repo's metadata: the
  NEVRA and sha256 of every RPM an install would bring in), per arch. What else they consume
  stays in the key as its content digest: a layered image's base image;
- an installer ISO layered on an OSTree commit (`iso:V/installer`, `from: host`): the package
  set of its own `packages` (the installer's); the commit comes in through the ostree input;
- a DVD ISO (not layered): the whole `os/` tree of each arch (packages and repodata), which
  is what it copies, by content, without the repo compose's metadata that names it.

The resolution runs after the repo compose exists and before the node is decided: the
executor computes it (`consumed`) and passes the digests to `decide`, which stays pure. A
resolution that fails leaves the repo's whole content digest in the key (the composer then
fails with dnf's own message).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.core.canonical import digest
from pipeline.core.config import Config
from pipeline.core.errors import OperationFailed
from pipeline.core.graph import Node, repo_id
from pipeline.core.kinds import CONTAINER, ISO, OSTREE
from pipeline.core.records import OutputFile
from pipeline.tools import dnf

IMAGE_KINDS = ("ostree", "container", "iso")

PackageSet = tuple[tuple[str, str], ...]  # (NEVRA, sha256 of the RPM file), sorted
Resolve = Callable[[Sequence[dnf.Repo], Sequence[str], str, str], PackageSet]


class Resolver:
    """dnf's resolution of package lists against repo composes, each asked once per run.

    A repo compose never changes once made, so (its tree, the packages, releasever and
    platform) decide the answer: two images of a variant asking the same is one depsolve.
    """

    def __init__(self, resolve: Resolve | None = None) -> None:
        self._resolve = resolve or _dnf_resolve
        self._known: dict[tuple[Path, tuple[str, ...], str, str], PackageSet] = {}

    def package_set(self, tree: Path, packages: Sequence[str], releasever: str, platform: str) -> PackageSet:
        """What installing packages from the yum repository at tree brings in."""
        key = (tree, tuple(sorted(packages)), releasever, platform)
        if key not in self._known:
            repo = dnf.Repo("factory-resolve", tree)
            self._known[key] = self._resolve([repo], key[1], releasever, platform)
        return self._known[key]


def _dnf_resolve(
    repos: Sequence[dnf.Repo], packages: Sequence[str], releasever: str, platform: str
) -> PackageSet:
    return dnf.resolve(repos, packages, releasever=releasever, platform=platform)


def variant_repo(node: Node) -> str | None:
    """The variant repo an image node consumes a part of (None: not an image node)."""
    if node.kind not in IMAGE_KINDS:
        return None
    repo = repo_id(str(node.definition["variant"]["uid"]))
    return repo if repo in node.inputs else None


def consumed(
    node: Node, repo_outputs: tuple[OutputFile, ...], output_dir: Path, config: Config, resolver: Resolver
) -> dict[str, str]:
    """Input node -> the digest that stands for it in node's compose key, for the input an image
    consumes only a part of (its variant repo, whose compose made `repo_outputs`); empty for
    other nodes."""
    repo = variant_repo(node)
    if repo is None:
        return {}
    definition = node.definition
    variant = definition["variant"]
    uid, arches, release = str(variant["uid"]), [str(a) for a in variant["arches"]], str(variant["release"])
    packages = [str(p) for p in (definition["output"].get("options") or {}).get("packages", [])]
    layered = any(OSTREE.of(i) for i in node.inputs)
    if node.kind == ISO and not layered:
        return {repo: tree_digest(repo_outputs, uid, arches)}
    platform = platform_of(node.kind, config)
    sets: dict[str, list[list[str]]] = {}
    try:
        for arch in arches:
            tree = output_dir / os_tree(repo_outputs, uid, arch)
            found = resolver.package_set(tree, packages, release, platform) if packages else ()
            sets[arch] = [list(p) for p in found]
    except OperationFailed:
        return {}
    return {repo: digest({"packages": sets})}


def platform_of(kind: str, config: Config) -> str:
    """The dnf platform an image composer installs with (as its composer gives it to dnf)."""
    if kind == CONTAINER:
        return config.dist.lstrip(".")
    return f"{config.release.short.lower()}{config.release.version}"


def os_tree(outputs: tuple[OutputFile, ...], variant_uid: str, arch: str) -> str:
    """The `os/` tree of arch in a repo compose, relative to the output directory."""
    suffix = f"/compose/{variant_uid}/{arch}/os/repodata/repomd.xml"
    found = next((o.path for o in outputs if o.path.endswith(suffix)), None)
    if found is None:
        raise OperationFailed(f"the repo compose has no {variant_uid}/{arch}/os tree", code="no-variant-repo")
    return found.removesuffix("/repodata/repomd.xml")


def tree_digest(outputs: tuple[OutputFile, ...], variant_uid: str, arches: Sequence[str]) -> str:
    """The content of the `os/` trees of a repo compose (paths inside each tree, sha256)."""
    marks = {arch: f"/compose/{variant_uid}/{arch}/os/" for arch in arches}
    return digest(
        {
            arch: sorted([o.path.split(mark, 1)[1], o.sha256] for o in outputs if mark in o.path)
            for arch, mark in sorted(marks.items())
        }
    )
