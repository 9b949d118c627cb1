"""Garbage collection in the OSTree repositories of an output directory (`factory gc`).

An `ostree:` compose's commits live in its variant's repository (`ostree/<Variant>/repo`), one
chain per ref, each commit's parent the previous compose's. The commits a kept compose made stay,
with everything above them on their ref (`ostree prune --refs-only --depth=0
--retain-branch-depth=REF=DEPTH`, DEPTH the position of the oldest kept commit); a repository
where a kept commit is on no ref is left alone. A dry run prunes a copy whose objects are hard
links, to measure what would go.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.records import Record
from pipeline.tools import ostree

GONE = ".gc-"  # prefix of a directory being removed


@dataclass(frozen=True, slots=True)
class Pruned:
    """An OSTree repository pruned (or skipped, with why): commits and bytes it frees."""

    repo: str
    commits: int
    bytes: int
    skipped: str = ""


def files(folders: Iterable[Path]) -> Iterable[Path]:
    """Every file under the folders, symlinks left out."""
    for folder in folders:
        for parent, _, names in os.walk(folder):
            for name in names:
                path = Path(parent, name)
                if not path.is_symlink():
                    yield path


def commit_paths(record: Record) -> list[str]:
    return [o.path for o in record.outputs if o.path.endswith(".commit") and "/objects/" in o.path]


def _checksum(path: str) -> str:
    """The commit checksum of an object path `.../objects/ab/cdef....commit`."""
    prefix, rest = path.split("/objects/", 1)[1].split("/", 1)
    return prefix + rest.removesuffix(".commit")


def prune_ostree(output_dir: Path, kept: Sequence[Record], dry_run: bool) -> tuple[list[Pruned], set[str]]:
    """Prune each OSTree repository of the output directory below the commits kept composes
    made; what was (or would be) freed, and the object paths (relative) of the commits gone."""
    wanted = {_checksum(p) for r in kept for p in commit_paths(r)}
    pruned: list[Pruned] = []
    gone: set[str] = set()
    for config in sorted((output_dir / "ostree").glob("*/repo/config")):
        repo = config.parent
        relative = repo.relative_to(output_dir).as_posix()
        chains = {ref: [e.commit for e in ostree.history(repo, ref)] for ref in ostree.refs(repo)}
        everything = {c for chain in chains.values() for c in chain}
        missing = sorted(c for c in wanted if _has_commit(repo, c) and c not in everything)
        if missing:
            pruned.append(Pruned(relative, 0, 0, f"kept commit {missing[0]} is on no ref: not pruned"))
            continue
        depth = {
            ref: max([i for i, c in enumerate(chain) if c in wanted], default=0)
            for ref, chain in chains.items()
        }
        staying = {c for ref, chain in chains.items() for c in chain[: depth[ref] + 1]}
        leaving = everything - staying
        if not leaving:
            continue
        target = repo
        if dry_run:
            target = output_dir / f"{GONE}ostree-{os.getpid()}"
            _link_copy(repo, target)
        before = _object_sizes(target)
        ostree.prune(target, depth)
        after = _object_sizes(target)
        if dry_run:
            shutil.rmtree(target)
        pruned.append(
            Pruned(relative, len(leaving), sum(size for p, size in before.items() if p not in after))
        )
        gone.update(f"{relative}/objects/{c[:2]}/{c[2:]}.commit" for c in leaving)
    return pruned, gone


def _has_commit(repo: Path, commit: str) -> bool:
    return (repo / "objects" / commit[:2] / f"{commit[2:]}.commit").is_file()


def _object_sizes(repo: Path) -> dict[str, int]:
    return {
        p.relative_to(repo).as_posix(): p.lstat().st_size
        for top in ("objects", "deltas")
        for p in files([repo / top])
    }


def _link_copy(repo: Path, dest: Path) -> None:
    """A copy of an OSTree repository whose objects are hard links (pruning it unlinks them in the
    copy only; every other file is a real copy, so nothing written there reaches the repository)."""
    if dest.exists():
        shutil.rmtree(dest)

    def copy(source: str, target: str) -> None:
        inside = Path(source).relative_to(repo).parts[0]
        if inside in ("objects", "deltas"):
            os.link(source, target)
        else:
            shutil.copy2(source, target)

    shutil.copytree(repo, dest, symlinks=True, copy_function=copy)
