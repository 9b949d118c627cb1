"""`factory retire`: carve what reached its End Of Life out of the release tree; keep its lineage.

A module stream or variant is retired in the definitions (`retired: true`, by `factory eol`'s
merge request); from then on the artifact graph leaves its nodes out, and `retire` (run by the
main pipeline after its composes) takes each of those nodes (`lifecycle.retired_nodes`: the
nodes its definition would make that no live definition makes) out of what is served:

1. its releases: every release directory DIR where a compose of the node was released (the
   paths recorded in `refs/notes/releases`) loses the node's releases `DIR/<compose-id>/` and,
   when it points at one of them, `DIR/latest`: each is renamed into the archive, by default
   `DIR/../archive/<DIR name>/` (`--archive ROOT`: `ROOT/<DIR name>/`). `latest` goes first, so
   the release is no longer live before anything else moves. Each move is recorded on the
   compose's note in `refs/notes/releases` (`archived`, where from, where to);
2. its OSTree refs: when nothing else is released in DIR, every ref of the served repository
   `DIR/ostree/repo` (and its version refs) moves under `archive/` in the same repository
   (`archive/FL/42/x86_64/host`), so its commits stay, reachable and never pruned, while
   clients no longer find the ref; the summary is regenerated and signed again;
3. its latest good moves from `refs/composes/latest/<release>/` to `refs/composes/retired/
   <release>/` (`Lineage.retire`), last, so a run interrupted before it is carried on by the
   next one.

Nothing is deleted: the archive keeps the released files, the served repository keeps the
commits, and lineage keeps every note and tag, so `factory lineage`, `why` and `lineage --tree`
answer for everything a retired node ever composed. Run twice, the second run finds nothing to
move. Container images a release pushed to a registry stay there: retire does not delete tags
from a registry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.core import lifecycle
from pipeline.core.errors import FactoryError, OperationFailed
from pipeline.core.records import parse_compose_id
from pipeline.core.states import ReleaseStatus
from pipeline.records import releases as release_notes
from pipeline.records.lineage import Lineage
from pipeline.release.release_dir import LATEST, MANIFEST, fsync_tree
from pipeline.release.signer import Signer
from pipeline.tools import ostree
from pipeline.workspace import Workspace

ARCHIVE = "archive"  # beside the release directories: DIR/../archive/<DIR name>/
ARCHIVE_REFS = "archive/"  # the served OSTree repository keeps a retired ref under archive/<ref>
SERVED = Path("ostree") / "repo"  # a release directory's served OSTree repository


@dataclass(frozen=True, slots=True)
class Moved:
    """One release entry (a release, or `latest`) moved from the release tree to the archive."""

    source: Path
    target: Path


@dataclass(frozen=True, slots=True)
class Carved:
    """What retiring one node did (or, in a dry run, would do)."""

    node: str
    release: str
    latest: str | None  # the compose ID whose latest-good ref moved to refs/composes/retired/
    moved: tuple[Moved, ...]
    ostree_refs: tuple[tuple[Path, str], ...]  # (served repository, ref) moved under archive/

    @property
    def changed(self) -> bool:
        return bool(self.latest or self.moved or self.ostree_refs)


SigningKey = Callable[[], contextlib.AbstractContextManager[Signer]]


def retire(
    ws: Workspace,
    *,
    archive: Path | None = None,
    signing: SigningKey | None = None,
    dry_run: bool = False,
    rev: str = "HEAD",
) -> list[Carved]:
    """Carve out every node of the retired definitions of `rev`; what was carved, per node.

    `signing` gives the key that re-signs an OSTree summary (asked for only when a served
    repository changes; None: refuse to change one)."""
    defs = ws.load(rev, check_distgit=False)
    lineage = Lineage(ws.root, defs.config.release.version)
    try:
        carved = []
        for node in lifecycle.retired_nodes(defs):
            moved: list[Moved] = []
            archived_refs: list[tuple[Path, str]] = []
            for release_dir in _release_dirs(lineage, node):
                moved += _move_releases(lineage, node, release_dir, archive, dry_run)
                archived_refs += _archive_ostree(release_dir, signing, dry_run, moved)
            current = lineage.latest(node).get(node)
            if current is not None and not dry_run:
                current = lineage.retire(node)
            carved.append(Carved(node, lineage.release, current, tuple(moved), tuple(archived_refs)))
        return carved
    finally:
        lineage.close()


def _release_dirs(lineage: Lineage, node: str) -> list[Path]:
    """Every release directory a compose of the node was released into, that exists here."""
    root = release_notes.checkout(lineage)
    found: set[Path] = set()
    for record in lineage.history(node):
        for entry in release_notes.read(lineage, record.compose_id).released():
            release_dir = entry.location(root).parent
            if release_dir.is_dir():
                found.add(release_dir)
    return sorted(found)


def _move_releases(
    lineage: Lineage, node: str, release_dir: Path, archive: Path | None, dry_run: bool
) -> list[Moved]:
    """Move the node's releases (and `latest`, when it points at one) into the archive."""
    ours = [child for child in sorted(release_dir.iterdir()) if _is_release_of(lineage, child, node)]
    if not ours:
        return []
    where = (archive if archive is not None else release_dir.parent / ARCHIVE) / release_dir.name
    link = release_dir / LATEST
    moves = []
    if link.is_symlink() and os.readlink(link) in {c.name for c in ours}:
        moves.append(Moved(link, where / LATEST))
    moves += [Moved(child, where / child.name) for child in ours]
    if dry_run:
        return moves
    where.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for move in moves:
        _move(move)
    archived = {
        m.source.name: [
            release_notes.ReleaseEntry(
                ReleaseStatus.ARCHIVED,
                release_notes.recorded_path(lineage, m.target),
                now,
                moved_from=release_notes.recorded_path(lineage, m.source),
            )
        ]
        for m in moves
        if m.source.name != LATEST
    }
    release_notes.append(lineage, archived, "Archived releases")
    return moves


def _is_release_of(lineage: Lineage, child: Path, node: str) -> bool:
    if child.name.startswith(".") or child.is_symlink() or not (child / MANIFEST).is_file():
        return False
    try:
        parse_compose_id(child.name)
        return lineage.get(child.name).node == node
    except FactoryError:
        return False


def _move(move: Moved) -> None:
    """Rename into the archive; across file systems, copy beside the target, then rename."""
    if move.target.exists() or move.target.is_symlink():
        raise OperationFailed(
            f"cannot archive {move.source}: {move.target} exists already",
            hint="compare the two and remove one, then run factory retire again",
            code="archive-exists",
        )
    try:
        os.rename(move.source, move.target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise OperationFailed(
                f"cannot archive {move.source}: {exc.strerror}", code="archive-move"
            ) from exc
    staging = move.target.with_name(f".staging-{move.target.name}")
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(staging)
    shutil.copytree(move.source, staging, symlinks=True)
    fsync_tree(staging)
    os.rename(staging, move.target)
    if move.source.is_symlink():
        move.source.unlink()
    else:
        shutil.rmtree(move.source)


def _archive_ostree(
    release_dir: Path, signing: SigningKey | None, dry_run: bool, moved: list[Moved]
) -> Iterator[tuple[Path, str]]:
    """Move every ref of the served OSTree repository under archive/ and sign the summary again,
    once the release directory holds no release any more."""
    repo = release_dir / SERVED
    if not (repo / "config").is_file():
        return
    leaving = {m.source for m in moved}
    if any(
        c not in leaving and not c.is_symlink() and (c / MANIFEST).is_file() for c in release_dir.iterdir()
    ):
        return  # other releases are still served from this directory
    live = [ref for ref in ostree.refs(repo) if not ref.startswith(ARCHIVE_REFS)]
    if not live:
        return
    if dry_run:
        yield from ((repo, ref) for ref in live)
        return
    if signing is None:
        raise OperationFailed(
            f"{repo} serves {', '.join(live)}: archiving them needs the key that signs its summary",
            hint="give --gnupghome and --key, set signing: in factory.yaml, or FACTORY_SIGNING_KEY",
            code="no-signing-key",
        )
    for ref in live:
        commit = ostree.head(repo, ref)
        if commit is not None:
            ostree.set_ref(repo, ARCHIVE_REFS + ref, commit)
        ostree.delete_ref(repo, ref)
    ostree.update_summary(repo)
    with signing() as signer:
        ostree.sign_summary(repo, signer.key, signer.home)
    yield from ((repo, ref) for ref in live)
