"""Git notes, written in batches into a 2/38 fanned-out notes tree; the one notes-update loop.

Lineage records (`refs/notes/lineage`), check results (`refs/notes/tests`) and releases
(`refs/notes/releases`) are notes on compose tag objects. `update_notes` is the one way to
change notes: it adds a batch to the notes tree by rewriting only the touched 2-hex subtrees and
the root, as raw tree objects, writes every new object as one pack, makes one notes commit and
moves the notes ref by compare-and-swap, applying the batch again on top of whatever another
process wrote meanwhile. The readers accept any fan-out, since git's CLI writes its own when it
edits notes (`git notes --ref=lineage show compose/<id>` reads what factory writes).
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeAlias

import pygit2

from pipeline.core.errors import OperationFailed
from pipeline.git.objects import GitObject, commit_data, write_pack
from pipeline.git.refs import ATTEMPTS, Contention, compare_and_swap, tries
from pipeline.git.repo import Repository, ref_target

log = logging.getLogger("factory.git")

_Raw: TypeAlias = pygit2.Repository
TREE_MODE = b"40000"
NOTE_MODE = b"100644"
_LEAF = 66  # one 2/38 fan-out leaf entry: b"100644 " + 38 hex digits + b"\0" + 20-byte id
_NOTE_NAME = re.compile(r"[0-9a-f]{40}").fullmatch

# A change to one note: its new bytes, or a function of its old bytes (None: no note yet); a
# function that returns None removes the note (a check's RUNNING note once its result is in).
Change: TypeAlias = bytes | Callable[[bytes | None], bytes | None]


# -- reading notes trees, at any fan-out -------------------------------------------------------


def parse_tree(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """The entries of a raw tree object: (mode, name, raw id)."""
    entries, pos = [], 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        entries.append((data[pos:space], data[space + 1 : nul], data[nul + 1 : nul + 21]))
        pos = nul + 21
    return entries


def read_tree(repo: _Raw, oid: bytes) -> bytes:
    """The raw data of a tree object of the notes."""
    kind, data = repo.odb.read(pygit2.Oid(raw=oid))
    if kind != pygit2.enums.ObjectType.TREE:
        raise OperationFailed(f"{oid.hex()} in a notes tree is not a tree", code="bad-notes")
    return data


def is_note_name(path: str) -> bool:
    """Whether a path (fan-out levels joined) names an annotated object: 40 hex digits."""
    return _NOTE_NAME(path) is not None


def notes_below(repo: _Raw, oid: bytes, prefix: str) -> Iterator[tuple[str, bytes]]:
    """Every note under a notes (sub)tree, at any fan-out: (annotated object hex, raw blob id)."""
    for mode, name, child in parse_tree(read_tree(repo, oid)):
        path = prefix + name.decode("utf-8", "replace")
        if mode == TREE_MODE:
            yield from notes_below(repo, child, path)
        elif is_note_name(path):
            yield path, child


def notes_diff(repo: _Raw, old: bytes, new: bytes, prefix: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The notes on each side of the entries that differ between two notes trees."""
    before: dict[str, bytes] = {}
    after: dict[str, bytes] = {}
    old_entries = {name: (mode, oid) for mode, name, oid in parse_tree(read_tree(repo, old))}
    new_entries = {name: (mode, oid) for mode, name, oid in parse_tree(read_tree(repo, new))}
    for name in old_entries.keys() | new_entries.keys():
        was, now = old_entries.get(name), new_entries.get(name)
        if was == now:
            continue
        path = prefix + name.decode("utf-8", "replace")
        if was is not None and now is not None and was[0] == now[0] == TREE_MODE:
            older, newer = notes_diff(repo, was[1], now[1], path)
            before.update(older)
            after.update(newer)
            continue
        for side, entry in ((before, was), (after, now)):
            if entry is not None and entry[0] == TREE_MODE:
                side.update(notes_below(repo, entry[1], path))
            elif entry is not None and is_note_name(path):
                side[path] = entry[1]
    return before, after


def note_blob(repo: _Raw, tree_id: pygit2.Oid, hexid: str) -> bytes | None:
    """The note on an object (hex id), at whatever fan-out it was written; None if it has none."""
    tree = repo.get(tree_id)
    rest = hexid
    while isinstance(tree, pygit2.Tree):
        if rest in tree:
            found = tree[rest]
            return found.data if isinstance(found, pygit2.Blob) else None
        if len(rest) <= 2 or rest[:2] not in tree:
            return None
        tree, rest = tree[rest[:2]], rest[2:]
    return None


# -- writing notes trees ---------------------------------------------------------------------------


def notes_tree(
    repo: _Raw, base: bytes | None, notes: Mapping[str, bytes | None]
) -> tuple[bytes, list[GitObject]]:
    """The notes tree `base` with `notes` (annotated object hex -> raw blob id; None removes the
    note) added, replaced or removed: the new root's id and the new tree objects.

    Only the touched 2-hex subtrees and the root are rewritten; notes found at another fan-out
    (git's CLI writes flat trees for few notes) are moved to 2/38 when their subtree is.
    """
    root: dict[bytes, tuple[bytes, bytes]] = {}
    merged: dict[str, bytes | None] = {}
    if base is not None:
        for mode, name, oid in parse_tree(read_tree(repo, base)):
            if mode != TREE_MODE and is_note_name(name.decode("utf-8", "replace")):
                merged[name.decode()] = oid  # a flat note: moved into the fan-out
            else:
                root[name] = (mode, oid)
    merged.update(notes)
    groups: dict[bytes, list[tuple[bytes, bytes | None]]] = {}
    for hexid, blob in merged.items():
        name = NOTE_MODE + b" " + hexid[2:].encode()  # the first 45 bytes of its leaf entry
        groups.setdefault(hexid[:2].encode(), []).append(
            (name, None if blob is None else name + b"\0" + blob)
        )
    made = []
    for fan, leaves in sorted(groups.items()):
        entries = _leaf_entries(repo, root.get(fan), fan.decode())
        for name, leaf in sorted(leaves, key=lambda item: item[0]):
            at = bisect.bisect_left(entries, name)
            found = at < len(entries) and entries[at][:45] == name
            if leaf is None:
                if found:
                    del entries[at]
            elif found:
                entries[at] = leaf
            else:
                entries.insert(at, leaf)
        if not entries:
            root.pop(fan, None)  # git never writes an empty subtree
            continue
        subtree = GitObject.make(b"tree", b"".join(entries))
        made.append(subtree)
        root[fan] = (TREE_MODE, subtree.oid)
    ordered = sorted(root.items(), key=lambda e: e[0] + (b"/" if e[1][0] == TREE_MODE else b""))
    top = GitObject.make(b"tree", b"".join(mode + b" " + name + b"\0" + oid for name, (mode, oid) in ordered))
    return top.oid, [*made, top]


def _leaf_entries(repo: _Raw, entry: tuple[bytes, bytes] | None, fan: str) -> list[bytes]:
    """The sorted 66-byte entries of the 2/38 subtree `fan`, normalising any other layout."""
    if entry is None:
        return []
    mode, oid = entry
    if mode != TREE_MODE:
        raise OperationFailed(f"notes: {fan} is not a tree", code="bad-notes")
    data = read_tree(repo, oid)
    if _is_leaf_tree(data):
        return [data[n : n + _LEAF] for n in range(0, len(data), _LEAF)]
    return sorted(
        NOTE_MODE + b" " + hexid[2:].encode() + b"\0" + blob for hexid, blob in notes_below(repo, oid, fan)
    )


def _is_leaf_tree(data: bytes) -> bool:
    """Whether a raw tree is a 2/38 fan-out leaf: only `100644 <38 hex>` entries (fast check)."""
    count, rest = divmod(len(data), _LEAF)
    return (
        rest == 0
        and all(data[n::_LEAF] == bytes([char]) * count for n, char in enumerate(b"100644 "))
        and data[45::_LEAF] == b"\0" * count
    )


# -- the notes of a ref ------------------------------------------------------------------------


def tree_of(repo: Repository, commit: str) -> bytes:
    """The raw id of a notes commit's tree."""
    found = repo.raw.get(commit)
    if not isinstance(found, pygit2.Commit):
        raise OperationFailed(f"{commit} is not a notes commit", code="bad-notes")
    return bytes(found.tree_id.raw)


def note_in(repo: Repository, commit: str | None, annotated: str) -> bytes | None:
    """The bytes of the note on an object (hex) in a notes commit (None: no commit, no note)."""
    if commit is None:
        return None
    return note_blob(repo.raw, pygit2.Oid(raw=tree_of(repo, commit)), annotated)


def read_note(repo: Repository, ref: str, annotated: str) -> bytes | None:
    """The bytes of the note on an object (hex) in the notes ref, or None."""
    return note_in(repo, ref_target(repo, ref), annotated)


def read_blob(repo: Repository, blob: bytes) -> bytes:
    """The data of a blob by raw id (a note found by `all_notes` or `changes`)."""
    return bytes(repo.raw.odb.read(pygit2.Oid(raw=blob))[1])


def all_notes(repo: Repository, commit: str) -> Iterator[tuple[str, bytes]]:
    """Every note of a notes commit: (annotated object hex, raw blob id)."""
    return notes_below(repo.raw, tree_of(repo, commit), "")


def changes(repo: Repository, old: str, new: str) -> tuple[dict[str, bytes], list[str]] | None:
    """The notes added or changed (hex -> raw blob id) and removed from notes commit old to new;
    None when new does not descend from old (rewritten) or old is gone: read everything again.

    The two trees are walked in parallel and subtrees with equal ids are skipped, so the cost
    is that of what changed.
    """
    raw = repo.raw
    try:
        if not raw.descendant_of(pygit2.Oid(hex=new), pygit2.Oid(hex=old)):
            return None
        before, after = notes_diff(raw, tree_of(repo, old), tree_of(repo, new), "")
    except (pygit2.GitError, KeyError, ValueError, OperationFailed):
        return None
    upserts = {tag: blob for tag, blob in after.items() if before.get(tag) != blob}
    return upserts, sorted(before.keys() - after.keys())


def update_notes(
    repo: Repository,
    ref: str,
    notes: Mapping[str, Change],
    message: str,
    when: int,
    *,
    extra: Sequence[GitObject] = (),
    after_write: Callable[[], None] | None = None,
    code: str = "notes-contention",
) -> None:
    """Set the notes on objects (annotated hex -> Change) in one notes commit on `ref`.

    `extra` objects (the tags the notes annotate) go into the first pack written, and
    `after_write` runs once right after it (before the ref moves), so the notes ref never names
    an object that is not there yet. The ref moves by compare-and-swap; when another process
    moved it meanwhile, the batch is applied again on its new tree.
    """
    if not notes:
        return
    pending = list(extra)
    for _ in tries():
        parent = ref_target(repo, ref)
        base = None if parent is None else tree_of(repo, parent)
        blobs: dict[str, GitObject | None] = {}
        for annotated, change in sorted(notes.items()):
            data = (
                change
                if isinstance(change, bytes)
                else change(None if base is None else note_blob(repo.raw, pygit2.Oid(raw=base), annotated))
            )
            blobs[annotated] = None if data is None else GitObject.make(b"blob", data)
        root, trees = notes_tree(repo.raw, base, {h: None if b is None else b.oid for h, b in blobs.items()})
        changed = base is None or root != base
        commit = GitObject.make(b"commit", commit_data(root, [parent] if parent else [], when, message))
        written = [
            *pending,
            *(b for b in blobs.values() if b is not None),
            *trees,
            *([commit] if changed else []),
        ]
        write_pack(repo.common_dir / "objects" / "pack", written)
        pending = []
        if after_write is not None:
            after_write()
            after_write = None
        if not changed or compare_and_swap(repo, ref, commit.oid.hex(), parent):
            return
    raise Contention(f"{ref} kept moving: gave up after {ATTEMPTS} attempts", code=code)


def merge(repo: Repository, ours: str, theirs: str, ref: str) -> str:
    """A notes commit holding the union of two notes commits (one of them when it contains the
    other). A note both sides hold with different bytes keeps ours (logged)."""
    raw = repo.raw
    if ours == theirs or raw.descendant_of(pygit2.Oid(hex=ours), pygit2.Oid(hex=theirs)):
        return ours
    if raw.descendant_of(pygit2.Oid(hex=theirs), pygit2.Oid(hex=ours)):
        return theirs
    our_tree, their_tree = tree_of(repo, ours), tree_of(repo, theirs)
    mine = dict(notes_below(raw, our_tree, ""))
    added: dict[str, bytes] = {}
    for name, blob in notes_below(raw, their_tree, ""):
        if name not in mine:
            added[name] = blob
        elif mine[name] != blob:
            log.warning("%s: the note on %s differs between the two sides: keeping ours", ref, name)
    root, trees = notes_tree(raw, our_tree, added) if added else (our_tree, [])
    when = max(_commit_time(raw, ours), _commit_time(raw, theirs))
    commit = GitObject.make(
        b"commit", commit_data(root, [ours, theirs], when, f"Merge {len(added)} notes of {ref}\n")
    )
    write_pack(repo.common_dir / "objects" / "pack", [*trees, commit])
    return commit.oid.hex()


def _commit_time(raw: _Raw, commit: str) -> int:
    found = raw.get(commit)
    if not isinstance(found, pygit2.Commit):
        raise OperationFailed(f"{commit} is not a notes commit", code="bad-notes")
    return int(found.commit_time)
