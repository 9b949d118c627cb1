"""Refs moved by compare-and-swap: the one way factory changes a ref other processes may change.

Many processes (a worker pool, CI jobs sharing a clone, the bot) write lineage, check results,
branch history and merge request records at once. Every such ref moves by `update_ref`: read the
ref, compute its new value, swap it in only if the ref still holds what was read, and otherwise
try again after a short random backoff, a bounded number of times.

Not `references.create(force=False)`: libgit2 checks that the ref is absent *before* it takes
the lock, so two processes can both "create" the same ref (a concurrency test caught it). A
transaction holds `<ref>.lock` (made with O_EXCL, as git does) from the comparison to the
write, so no writer that takes the lock (git, libgit2) slips in between. pygit2 1.21 cannot
pass a reflog signature to a transaction (TypeError), so reflogs name the repository's identity.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pygit2

from pipeline import retry
from pipeline.core.errors import OperationFailed
from pipeline.git.packed_refs import add_packed_refs, packed_names, packed_targets
from pipeline.git.repo import Repository, ref_target

log = logging.getLogger("factory.git")

ATTEMPTS = 100


class _Moved(Exception):
    """The ref does not hold what the caller expected."""


class Contention(OperationFailed):
    """Other processes kept moving a ref: every compare-and-swap attempt lost."""


# Between two attempts at a ref another process moves: random, growing, at most 50 ms.
BACKOFF = retry.Backoff(first=0.001, most=0.05, least=0.0005, jitter=True)


def tries(attempts: int = ATTEMPTS) -> Iterator[retry.Attempt]:
    """The attempts at a contended ref (`pipeline.retry`, waiting BACKOFF between them)."""
    return retry.attempts(attempts, BACKOFF)


def compare_and_swap(repo: Repository, name: str, new: str, expected: str | None) -> bool:
    """Point ref `name` at `new` if it points at `expected` (None: if it does not exist).

    True when done; False when the ref holds something else or another process holds its lock.
    """
    raw = repo.raw
    want = None if expected is None else pygit2.Oid(hex=expected)
    try:
        with raw.transaction() as transaction:
            transaction.lock_ref(name)
            ref = raw.references.get(name)
            if (None if ref is None else ref.target) != want:
                raise _Moved
            transaction.set_target(name, pygit2.Oid(hex=new), None, "factory")
    except _Moved:
        return False
    except (pygit2.GitError, OSError) as exc:  # the lock is held by someone else
        log.debug("ref %s is locked: %s", name, exc)
        return False
    return True


def compare_and_delete(repo: Repository, name: str, expected: str) -> bool:
    """Delete ref `name` if it points at `expected`, under its lock (True: deleted; False: it holds
    something else, is gone, or another process holds its lock). Packed refs go too."""
    raw = repo.raw
    try:
        with raw.transaction() as transaction:
            transaction.lock_ref(name)
            ref = raw.references.get(name)
            if ref is None or ref.target != pygit2.Oid(hex=expected):
                raise _Moved
            transaction.remove(name)
    except _Moved:
        return False
    except (pygit2.GitError, OSError) as exc:
        log.debug("ref %s is locked: %s", name, exc)
        return False
    return True


def update_ref(
    repo: Repository,
    name: str,
    change: Callable[[str | None], str | None],
    *,
    attempts: int = ATTEMPTS,
    code: str = "ref-contention",
) -> str | None:
    """Move ref `name` to `change(current)` by compare-and-swap, retrying while others move it.

    `change` gets the ref's current target (None: no ref) and returns the new one; returning the
    current value (or None) leaves the ref alone. It may raise to give up, and is called again
    on every attempt, so it must compute from what it is given. Returns what the ref holds after.
    """
    for _ in tries(attempts):
        current = ref_target(repo, name)
        new = change(current)
        if new is None or new == current:
            return current
        if compare_and_swap(repo, name, new, current):
            return new
    raise Contention(f"{name} kept moving: gave up after {attempts} attempts", code=code)


def create_if_absent(repo: Repository, name: str, target: str, blockers: Sequence[str] = ()) -> bool | None:
    """Create ref `name` if neither it nor any ref in `blockers` exists, under name's lock.

    True: created; False: it or a blocker exists; None: another process holds the lock now.
    """
    raw = repo.raw
    if name in raw.references or any(b in raw.references for b in blockers):
        return False
    try:
        with raw.transaction() as transaction:
            transaction.lock_ref(name)
            if name in raw.references or any(b in raw.references for b in blockers):
                raise _Moved
            transaction.set_target(name, pygit2.Oid(hex=target), None, "factory")
    except _Moved:
        return False
    except (pygit2.GitError, OSError):
        return None
    return True


def claim(
    repo: Repository,
    candidates: Iterable[str],
    target: Callable[[str], str],
    blockers: Callable[[str], Sequence[str]] = lambda _: (),
) -> str | None:
    """Create the first candidate ref that is free (neither it nor its blockers exist) pointing at
    `target(name)`, under its lock, so racing processes never claim one name twice; its name.

    A candidate whose lock another process holds is tried again after a backoff; one held for
    ATTEMPTS tries raises Contention. None when the candidates run out.
    """
    for name in candidates:
        for _ in tries():  # None: its lock is held right now, someone is taking this name
            made = create_if_absent(repo, name, target(name), blockers(name))
            if made is not None:
                break
        else:
            raise Contention(
                f"cannot create {name}: it stays locked",
                hint=f"remove {repo.common_dir / name}.lock if no git or factory process is running",
                code="ref-locked",
            )
        if made:
            return name
    return None


def names(repo: Repository, prefix: str) -> list[str]:
    """The names of the refs under prefix, loose or packed, sorted.

    pygit2 has no glob for refs, and listing every ref costs 0.4 s per 20,000 refs: read the
    loose refs' directory and packed-refs instead (names only).
    """
    common = repo.common_dir
    found = {
        Path(folder, file).relative_to(common).as_posix()
        for folder, _, files in os.walk(common / prefix)
        for file in files
        if not file.endswith(".lock")
    }
    found.update(packed_names(common / "packed-refs", prefix))
    return sorted(found)


def targets(repo: Repository, prefix: str) -> dict[str, str]:
    """Name -> target (hex) of the direct refs under prefix, loose (which win) or packed, read
    from the files: looking 24,000 refs up one by one through the library costs a second.
    Symbolic refs are left out."""
    common = str(repo.common_dir)
    found = packed_targets(repo.common_dir / "packed-refs", prefix)
    start = len(common) + 1
    for folder, _, files in os.walk(os.path.join(common, prefix)):
        for file in files:
            if file.endswith(".lock"):
                continue
            path = os.path.join(folder, file)  # plain strings: pathlib costs more than the reading
            try:
                with open(path, "rb") as handle:
                    text = handle.read().strip()
            except FileNotFoundError:  # deleted meanwhile
                continue
            if not text.startswith(b"ref:"):
                found[path[start:].replace(os.sep, "/")] = text.decode("ascii", "replace")
    return dict(sorted(found.items()))


def exists(repo: Repository, name: str) -> bool:
    return name in repo.raw.references


def add_packed(repo: Repository, tags: Mapping[str, tuple[str, str]], drop: Sequence[str]) -> dict[str, str]:
    """Add annotated tag refs (name -> (tag object, commit)) to packed-refs in one rewrite and
    remove the refs named in `drop` (packed and loose), waiting while another process holds
    packed-refs.lock. Refs that exist already are left alone and returned with their values.

    `drop` is only for refs that are never rewritten once made (compose ID reservations).
    """
    for _ in tries():
        try:
            existing = add_packed_refs(repo.common_dir, tags, drop)
        except FileExistsError:  # packed-refs.lock is held: someone else writes refs
            continue
        for name in drop:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(repo.common_dir / name)
        return existing
    raise OperationFailed(
        "packed-refs stays locked",
        hint=f"remove {repo.common_dir / 'packed-refs.lock'} if no git or factory process is running",
        code="packed-refs-locked",
    )
