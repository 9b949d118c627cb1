"""Garbage collection of compose outputs: `factory gc`.

What it removes, in the output directory factory.yaml names at HEAD, for every compose that no
retention reason keeps (`pipeline.core.retention`: latest good of any release, last good of a
retired node, live release, the `keep` newest of its node in its release, recent):
- the compose's own directories: `composes/<id>/`, `signed/<id>/` and, for a build, its slot in
  the build store `builds/<key>/`, unless a kept compose names a file there (two builds with
  one key share a slot);
- in each OSTree repository of the output directory (`ostree/<Variant>/repo`), the commits
  below the oldest commit a kept compose made, on every ref (`ostree prune --refs-only`
  with a depth per ref), with the objects only they use.
Release directories are never touched: a release is a copy, and what is live stays live.
An artifact store given in `stores` (`pipeline.artifacts.store`, opened by the caller: `factory
gc --store URL`) is collected by the same rule, over every compose lineage knows
(`pipeline.release.gc_store`): manifests deleted, unreferenced blobs swept.

A file's bytes count as freed only when every hard link to it goes (the build store's RPMs are
linked into the repos made of them). A directory is renamed out of sight (`.gc-<name>`) before
it is removed, and what a killed run left is removed by the next. Each collected compose is
marked in `refs/notes/gc` (`pipeline.records.collected`); its lineage stays. With `dry_run`,
nothing changes and the same report says what would be freed (an OSTree repository is pruned
in a copy of hard links to measure it).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.artifacts.store import ArtifactStore
from pipeline.core import retention
from pipeline.core.kinds import BUILD
from pipeline.core.records import Record, parse_compose_id, utc_seconds
from pipeline.records import collected, paths
from pipeline.records.lineage import Lineage
from pipeline.records.refs import RETIRED
from pipeline.release import publications
from pipeline.release.gc_ostree import GONE, Pruned, commit_paths, files, prune_ostree
from pipeline.release.gc_store import StoreSwept, collect_store
from pipeline.workspace import Workspace

DAY = 86400


@dataclass(frozen=True, slots=True)
class Removed:
    """A collected compose: the bytes freed and the paths removed (relative to the output dir)."""

    compose_id: str
    node: str
    bytes: int
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Report:
    output_dir: Path
    dry_run: bool
    removed: tuple[Removed, ...]
    pruned: tuple[Pruned, ...]
    kept: tuple[retention.Verdict, ...]
    leftovers: int = 0  # bytes of what an earlier, killed gc left
    stores: tuple[StoreSwept, ...] = ()

    @property
    def freed(self) -> int:
        local = sum(r.bytes for r in self.removed) + sum(p.bytes for p in self.pruned) + self.leftovers
        return local + sum(s.freed for s in self.stores)


def collect(
    ws: Workspace,
    lineage: Lineage,
    *,
    keep: int = 2,
    older_than_days: float = 0,
    dry_run: bool = False,
    now: float | None = None,
    stores: Sequence[ArtifactStore] = (),
) -> Report:
    """Collect the output directory of HEAD's factory.yaml, and the stores given (see the module
    docstring)."""
    output_dir = _output_dir(ws, "HEAD")
    when = int(now if now is not None else dt.datetime.now(dt.UTC).timestamp())
    root = paths.checkout(lineage.repo)
    gone_before = {
        cid
        for cid, entries in collected.every(lineage).items()
        if any((d := e.directory(root)) is not None and d.resolve() == output_dir for e in entries)
    }
    dirs: dict[str, Path] = {}
    records = []
    every = lineage.every()
    # Every release's latest good, not only HEAD's: a release/42 branch composes 42 apart.
    latest_good = {cid for nodes in lineage.latest_everywhere().values() for cid in nodes.values()}
    retired = {p.compose_id for p in lineage.pointers(RETIRED)}
    live = {r.compose_id for r in publications.releases(lineage) if publications.live(r)}

    def verdicts_of(candidates: Sequence[Record]) -> list[retention.Verdict]:
        return retention.decide(
            [
                retention.Candidate(
                    r.compose_id, r.node, parse_compose_id(r.compose_id).version, r.status, _finished(r)
                )
                for r in candidates
            ],
            latest_good=latest_good,
            live=live,
            retired=retired,
            keep=keep,
            older_than=int(older_than_days * DAY),
            now=when,
        )

    for record in every:
        if record.compose_id in gone_before:
            continue
        commit_dir = dirs.get(record.commit)
        if commit_dir is None:
            commit_dir = dirs[record.commit] = _output_dir(ws, record.commit)
        if commit_dir == output_dir:
            records.append(record)
    verdicts = verdicts_of(records)
    kept_ids = {v.compose_id for v in verdicts if v.kept}
    kept = [r for r in records if r.compose_id in kept_ids]
    doomed = [r for r in records if r.compose_id not in kept_ids]
    leftovers = _leftovers(output_dir, dry_run)
    removed = _remove_homes(output_dir, kept, doomed, dry_run)
    pruned, commits_gone = prune_ostree(output_dir, kept, dry_run)
    by_id = {r.compose_id: r for r in removed}
    for record in doomed:
        pruned_commits = [p for p in commit_paths(record) if p in commits_gone]
        if pruned_commits:
            done = by_id.get(record.compose_id, Removed(record.compose_id, record.node, 0, ()))
            by_id[record.compose_id] = Removed(
                done.compose_id, done.node, done.bytes, (*done.paths, *pruned_commits)
            )
    result = tuple(by_id[r.compose_id] for r in doomed if r.compose_id in by_id)
    stamp = dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    marks = {
        r.compose_id: [collected.in_directory(root, output_dir, stamp, r.bytes, r.paths)] for r in result
    }
    swept: list[StoreSwept] = []
    for store in stores:
        gone = {
            cid
            for cid, entries in collected.every(lineage).items()
            if any(e.where == store.url for e in entries)
        }
        candidates = [r for r in every if r.compose_id not in gone]
        keep_ids = {v.compose_id for v in verdicts_of(candidates) if v.kept}
        from_store = collect_store(store, keep=keep_ids, known={r.compose_id for r in every}, dry_run=dry_run)
        swept.append(from_store)
        for cid in from_store.deleted:
            marks.setdefault(cid, []).append(
                collected.Collection(store.url, stamp, from_store.owned.get(cid, 0), (collected.MANIFEST,))
            )
    if not dry_run and marks:
        collected.record(lineage, marks)
    kept_verdicts = tuple(v for v in verdicts if v.kept)
    return Report(output_dir, dry_run, result, tuple(pruned), kept_verdicts, leftovers, tuple(swept))


def _output_dir(ws: Workspace, rev: str) -> Path:
    path = Path(ws.config(rev).output.dir)
    return (path if path.is_absolute() else ws.root / path).resolve()


def _finished(record: Record) -> int:
    return utc_seconds(record.finished) if record.finished else 0


def _homes(record: Record) -> set[str]:
    """The directories a compose owns, relative to the output directory."""
    homes = {f"composes/{record.compose_id}", f"signed/{record.compose_id}"}
    if BUILD.of(record.node):
        homes.add(f"builds/{record.key}")
    for output in record.outputs:
        parts = output.path.split("/")
        if parts[0] in ("composes", "builds") and len(parts) > 2:
            homes.add("/".join(parts[:2]))
    return homes


def _remove_homes(
    output_dir: Path, kept: Sequence[Record], doomed: Sequence[Record], dry_run: bool
) -> list[Removed]:
    protected = {home for r in kept for home in _homes(r)}
    named = {o.path for r in kept for o in r.outputs}
    plan: list[tuple[Record, list[str]]] = []
    taken: set[str] = set()
    for record in doomed:
        homes = sorted(
            home
            for home in _homes(record) - protected - taken
            if (output_dir / home).is_dir() and not any(p.startswith(home + "/") for p in named)
        )
        taken.update(homes)
        plan.append((record, homes))
    freed = _freed_by_owner([(r.compose_id, [output_dir / h for h in homes]) for r, homes in plan])
    removed = []
    for record, homes in plan:
        if not homes:
            continue
        if not dry_run:
            for home in homes:
                _remove(output_dir / home)
        removed.append(Removed(record.compose_id, record.node, freed.get(record.compose_id, 0), tuple(homes)))
    return removed


def _freed_by_owner(owned: Sequence[tuple[str, Sequence[Path]]]) -> dict[str, int]:
    """Bytes freed by removing all these directories, by owner: a file counts when every one of
    its hard links is among them, for the first owner holding one."""
    links: dict[tuple[int, int], list[int]] = {}  # inode -> [links seen, links it has, size]
    first: dict[tuple[int, int], str] = {}
    for owner, folders in owned:
        for path in files(folders):
            stat = path.lstat()
            inode = (stat.st_dev, stat.st_ino)
            seen = links.setdefault(inode, [0, stat.st_nlink, stat.st_size])
            seen[0] += 1
            first.setdefault(inode, owner)
    freed: dict[str, int] = {}
    for inode, (count, nlink, size) in links.items():
        if count >= nlink:
            freed[first[inode]] = freed.get(first[inode], 0) + size
    return freed


def _remove(path: Path) -> None:
    """Out of sight first (a killed gc leaves a `.gc-` directory, never half a compose)."""
    hidden = path.with_name(GONE + path.name)
    if hidden.exists():
        shutil.rmtree(hidden)
    os.rename(path, hidden)
    shutil.rmtree(hidden)


def _leftovers(output_dir: Path, dry_run: bool) -> int:
    """Remove what a killed gc left (`.gc-*` directories); the bytes."""
    found = [p for top in ("", "composes", "builds", "signed") for p in (output_dir / top).glob(f"{GONE}*")]
    found = [p for p in found if p.is_dir() and not p.is_symlink()]
    size = sum(_freed_by_owner([("", found)]).values())
    if not dry_run:
        for path in found:
            shutil.rmtree(path)
    return size
