"""The storage beneath lineage: notes trees, packs, packed-refs, and the SQLite index.

Notes trees: the tree of `refs/notes/lineage` maps each compose tag object to its note blob
with a 2/38 fan-out (`ab/cdef...`). `notes_tree` adds notes by rewriting only the touched
subtrees and the root, as raw tree objects; the readers accept any fan-out, since git's CLI
writes its own when it edits notes.

Packs and packed-refs: a batch of new objects becomes one pack (`write_pack`) and a batch of
compose tags one packed-refs rewrite (`add_packed_refs`), because on disk every loose object or
loose ref is a file, and creating files is what limits a batch of 1,000 composes.

The index: the notes are the source of truth; the index is a cache in
`<git dir>/factory/lineage.sqlite` that remembers the notes commit it was built from. Before
every query `LineageIndex.refresh` compares that commit with the notes ref: when the ref moved
forward, only the notes that differ between the two notes trees are read (the trees are walked
in parallel, and subtrees with equal ids are skipped); when the ref was rewritten (the old commit
is not an ancestor), the index is rebuilt from scratch. An update is applied in one SQLite
transaction only if the index still says what it said when the update was computed, so
processes refreshing at once never leave it half way. Tables: composes(compose_id, tag, node,
key, status, commit, finished, json), pins(component, commit, compose_id),
inputs(compose_id, input_compose_id).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import itertools
import json
import logging
import mmap
import os
import random
import re
import sqlite3
import struct
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2

from pipeline.core.errors import OperationFailed

log = logging.getLogger("factory.lineage")

NOTES_REF = "refs/notes/lineage"
SCHEMA = "1"
REFRESH_ATTEMPTS = 20
CHUNK = 2000

TREE_MODE = b"40000"
NOTE_MODE = b"100644"
_LEAF = 66  # one 2/38 fan-out leaf entry: b"100644 " + 38 hex digits + b"\0" + 20-byte id
_NOTE_NAME = re.compile(r"[0-9a-f]{40}").fullmatch

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS composes(compose_id TEXT PRIMARY KEY, tag TEXT NOT NULL, node TEXT NOT NULL,"
    ' key TEXT NOT NULL, status TEXT NOT NULL, "commit" TEXT NOT NULL, finished TEXT NOT NULL, json TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS pins(component TEXT NOT NULL, "commit" TEXT NOT NULL, compose_id TEXT NOT NULL)',
    "CREATE TABLE IF NOT EXISTS inputs(compose_id TEXT NOT NULL, input_compose_id TEXT NOT NULL)",
)
_INDEXES = {  # dropped during a rebuild and made again after it: sorting beats random inserts
    "composes_tag": "composes(tag)",
    "composes_key": "composes(node, key, status)",
    "pins_commit": 'pins(component, "commit")',
    "pins_compose": "pins(compose_id)",
    "inputs_input": "inputs(input_compose_id)",
    "inputs_compose": "inputs(compose_id)",
}

_WHY = """
WITH RECURSIVE hit(compose_id) AS (
    SELECT compose_id FROM pins WHERE component = ? AND "commit" >= ? AND "commit" < ?
    UNION
    SELECT inputs.compose_id FROM inputs JOIN hit ON inputs.input_compose_id = hit.compose_id
)
SELECT composes.json FROM hit JOIN composes USING (compose_id) ORDER BY composes.compose_id
"""


class LineageIndex:
    """The SQLite index of the lineage notes of one repository."""

    def __init__(self, repo: pygit2.Repository, path: Path) -> None:
        self.repo = repo
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # persistent: set once
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-65536")  # 64 MiB: a rebuild of 100,000 notes fits
        self.db.execute("PRAGMA journal_size_limit=67108864")  # a rebuild leaves no huge WAL behind
        self.db.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            schema = None
            if "meta" in tables:
                schema = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if schema is None or schema[0] != SCHEMA:
                for table in sorted(tables & {"meta", "composes", "pins", "inputs"}):
                    self.db.execute(f"DROP TABLE {table}")
            for statement in _TABLES:
                self.db.execute(statement)
            self._indexes("CREATE")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    # -- keeping up with the notes -----------------------------------------------------------------

    def built_from(self) -> str | None:
        """The notes commit the index reflects (None: no notes)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'notes'").fetchone()
        return None if row is None else str(row[0])

    def refresh(self) -> None:
        """Bring the index up to date with the notes ref, reading only what changed."""
        for _ in range(REFRESH_ATTEMPTS):
            head = self.repo.references.get(NOTES_REF)
            current = None if head is None else str(head.target)
            built = self.built_from()
            if built == current:
                return
            changes = self._changes(built, current)
            if changes is None:
                tree = None if current is None else _tree_of(self.repo, current)
                notes = iter(()) if tree is None else notes_below(self.repo, tree, "")
                done = self.apply(built, current, self._texts(notes), (), reset=True)
            else:
                upserts, deletes = changes
                done = self.apply(built, current, self._texts(iter(upserts.items())), deletes, reset=False)
            if done:
                return
        raise OperationFailed("the lineage index kept moving under us", code="lineage-contention")

    def _changes(self, built: str | None, current: str | None) -> tuple[dict[str, bytes], list[str]] | None:
        """Notes added or changed, and removed, from `built` to `current`; None: rebuild."""
        if built is None or current is None:
            return None
        try:
            if not self.repo.descendant_of(pygit2.Oid(hex=current), pygit2.Oid(hex=built)):
                return None
            old, new = _tree_of(self.repo, built), _tree_of(self.repo, current)
            before, after = notes_diff(self.repo, old, new, "")
        except (pygit2.GitError, KeyError, ValueError, OperationFailed):
            return None  # the old commit is gone or damaged: rebuild
        upserts = {tag: blob for tag, blob in after.items() if before.get(tag) != blob}
        return upserts, sorted(before.keys() - after.keys())

    def _texts(self, notes: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, str]]:
        for tag, blob in notes:
            yield tag, self.repo.odb.read(pygit2.Oid(raw=blob))[1].decode("utf-8")

    def apply(
        self,
        base: str | None,
        head: str | None,
        upserts: Iterable[tuple[str, str]],
        deletes: Iterable[str],
        *,
        reset: bool,
    ) -> bool:
        """Apply notes (tag hex, JSON text) and removals in one transaction, moving the index from
        `base` to `head`; False (and nothing done) if the index is no longer at `base`."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.built_from() != base:
                self.db.execute("ROLLBACK")
                return False
            if reset:
                self._indexes("DROP")
                for table in ("composes", "pins", "inputs"):
                    self.db.execute(f"DELETE FROM {table}")
            for tag in deletes:
                self._forget("tag", tag)
            self._add(upserts, fresh=reset)
            if reset:
                self._indexes("CREATE")
            if head is None:
                self.db.execute("DELETE FROM meta WHERE key = 'notes'")
            else:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('notes', ?)", (head,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return True

    def _indexes(self, verb: str) -> None:
        for name, on in _INDEXES.items():
            self.db.execute(
                f"DROP INDEX IF EXISTS {name}"
                if verb == "DROP"
                else f"CREATE INDEX IF NOT EXISTS {name} ON {on}"
            )

    def _forget(self, column: str, value: str) -> None:
        rows = self.db.execute(f"SELECT compose_id FROM composes WHERE {column} = ?", (value,)).fetchall()
        for (cid,) in rows:
            self.db.execute("DELETE FROM composes WHERE compose_id = ?", (cid,))
            self.db.execute("DELETE FROM pins WHERE compose_id = ?", (cid,))
            self.db.execute("DELETE FROM inputs WHERE compose_id = ?", (cid,))

    def _add(self, notes: Iterable[tuple[str, str]], *, fresh: bool) -> None:
        """Index notes in chunks (one executemany per table and chunk is what makes it fast)."""
        todo = iter(notes)
        while chunk := list(itertools.islice(todo, CHUNK)):
            rows: list[tuple[str, ...]] = []
            pins: list[tuple[str, str, str]] = []
            inputs: list[tuple[str, str]] = []
            for tag, text in chunk:
                try:
                    data: dict[str, Any] = json.loads(text)
                    cid = str(data["compose_id"])
                    fields = (data["node"], data["key"], data["status"], data["commit"], data["finished"])
                    pinned = [(str(c), str(commit).lower(), cid) for c, commit in data["pins"]]
                    consumed = [(cid, str(i["compose_id"])) for i in data["inputs"]]
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("lineage note on %s is not a lineage record (%s); not indexed", tag, exc)
                    if not fresh:
                        self._forget("tag", tag)  # whatever it said before, it says nothing now
                    continue
                rows.append((cid, tag, *map(str, fields), text))
                pins.extend(pinned)
                inputs.extend(consumed)
            if not fresh:
                for table in ("pins", "inputs"):
                    self.db.executemany(f"DELETE FROM {table} WHERE compose_id = ?", [(r[0],) for r in rows])
            self.db.executemany("INSERT OR REPLACE INTO composes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self.db.executemany("INSERT INTO pins VALUES (?, ?, ?)", pins)
            self.db.executemany("INSERT INTO inputs VALUES (?, ?)", inputs)

    # -- queries (call refresh first) --------------------------------------------------------------

    def record_json(self, compose_id: str) -> str | None:
        """The note of a compose, or None."""
        row = self.db.execute("SELECT json FROM composes WHERE compose_id = ?", (compose_id,)).fetchone()
        return None if row is None else str(row[0])

    def why(self, component: str, prefix: str) -> list[str]:
        """Notes of composes pinning component at a commit starting with prefix (lower-case hex),
        and of every compose consuming one of them, transitively; by compose ID."""
        rows = self.db.execute(_WHY, (component, prefix, prefix + "g")).fetchall()
        return [str(text) for (text,) in rows]

    def find_by_key(self, node: str, key: str) -> str | None:
        """The note of the latest FINISHED compose of node with this key, or None."""
        row = self.db.execute(
            "SELECT json FROM composes WHERE node = ? AND key = ? AND status = 'FINISHED'"
            " ORDER BY finished DESC, compose_id DESC LIMIT 1",
            (node, key),
        ).fetchone()
        return None if row is None else str(row[0])


# -- reading notes trees, at any fan-out -------------------------------------------------------------------


def parse_tree(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """The entries of a raw tree object: (mode, name, raw id)."""
    entries, pos = [], 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        entries.append((data[pos:space], data[space + 1 : nul], data[nul + 1 : nul + 21]))
        pos = nul + 21
    return entries


def read_tree(repo: pygit2.Repository, oid: bytes) -> bytes:
    """The raw data of a tree object of the notes."""
    kind, data = repo.odb.read(pygit2.Oid(raw=oid))
    if kind != pygit2.enums.ObjectType.TREE:
        raise OperationFailed(f"{oid.hex()} in {NOTES_REF} is not a tree", code="bad-notes")
    return data


def is_note_name(path: str) -> bool:
    """Whether a path (fan-out levels joined) names an annotated object: 40 hex digits."""
    return _NOTE_NAME(path) is not None


def notes_below(repo: pygit2.Repository, oid: bytes, prefix: str) -> Iterator[tuple[str, bytes]]:
    """Every note under a notes (sub)tree, at any fan-out: (annotated object hex, raw blob id)."""
    for mode, name, child in parse_tree(read_tree(repo, oid)):
        path = prefix + name.decode("utf-8", "replace")
        if mode == TREE_MODE:
            yield from notes_below(repo, child, path)
        elif is_note_name(path):
            yield path, child


def notes_diff(
    repo: pygit2.Repository, old: bytes, new: bytes, prefix: str
) -> tuple[dict[str, bytes], dict[str, bytes]]:
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


def note_blob(repo: pygit2.Repository, tree_id: pygit2.Oid, hexid: str) -> bytes | None:
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


@dataclass(frozen=True, slots=True)
class GitObject:
    """A Git object not written yet: its kind (b"tree", ...), data and raw SHA-1."""

    kind: bytes
    data: bytes
    oid: bytes

    @classmethod
    def make(cls, kind: bytes, data: bytes) -> GitObject:
        header = kind + b" %d\0" % len(data)
        return cls(kind, data, hashlib.sha1(header + data, usedforsecurity=False).digest())


def notes_tree(
    repo: pygit2.Repository, base: pygit2.Oid | None, notes: Mapping[str, bytes]
) -> tuple[bytes, list[GitObject]]:
    """The notes tree `base` with `notes` (annotated object hex -> raw blob id) added or replaced:
    the new root's id and the new tree objects.

    Only the touched 2-hex subtrees and the root are rewritten; notes found at another fan-out
    (git's CLI writes flat trees for few notes) are moved to 2/38 when their subtree is.
    """
    root: dict[bytes, tuple[bytes, bytes]] = {}
    merged: dict[str, bytes] = {}
    if base is not None:
        for mode, name, oid in parse_tree(read_tree(repo, base.raw)):
            if mode != TREE_MODE and is_note_name(name.decode("utf-8", "replace")):
                merged[name.decode()] = oid  # a flat note: moved into the fan-out
            else:
                root[name] = (mode, oid)
    merged.update(notes)
    groups: dict[bytes, list[bytes]] = {}
    for hexid, blob in merged.items():
        groups.setdefault(hexid[:2].encode(), []).append(NOTE_MODE + b" " + hexid[2:].encode() + b"\0" + blob)
    made = []
    for fan, leaves in sorted(groups.items()):
        entries = _leaf_entries(repo, root.get(fan), fan.decode())
        for leaf in sorted(leaves):
            at = bisect.bisect_left(entries, leaf[:45])
            if at < len(entries) and entries[at][:45] == leaf[:45]:
                entries[at] = leaf
            else:
                entries.insert(at, leaf)
        subtree = GitObject.make(b"tree", b"".join(entries))
        made.append(subtree)
        root[fan] = (TREE_MODE, subtree.oid)
    ordered = sorted(root.items(), key=lambda e: e[0] + (b"/" if e[1][0] == TREE_MODE else b""))
    top = GitObject.make(b"tree", b"".join(mode + b" " + name + b"\0" + oid for name, (mode, oid) in ordered))
    return top.oid, [*made, top]


def _leaf_entries(repo: pygit2.Repository, entry: tuple[bytes, bytes] | None, fan: str) -> list[bytes]:
    """The sorted 66-byte entries of the 2/38 subtree `fan`, normalising any other layout."""
    if entry is None:
        return []
    mode, oid = entry
    if mode != TREE_MODE:
        raise OperationFailed(f"{NOTES_REF}: {fan} is not a tree", code="bad-notes")
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


# -- packs and packed-refs -------------------------------------------------------------------------

_PACK_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}


def write_pack(pack_dir: Path, objects: Sequence[GitObject]) -> None:
    """Write objects as a new pack and its index (v2), atomically, as git does: .pack, then .idx.

    Loose objects would cost a file each (at 100,000 composes: 2.5 GB and minutes, see
    TOOLCHAIN.md). libgit2 rescans the pack directory when it misses an object, so every
    process finds them at once.
    """
    unique = {o.oid: o for o in objects}
    if not unique:
        return
    body = bytearray(b"PACK" + struct.pack(">II", 2, len(unique)))
    entries = []
    for obj in unique.values():
        offset, size = len(body), len(obj.data)
        header = bytearray()
        byte = (_PACK_TYPES[obj.kind] << 4) | (size & 0x0F)
        size >>= 4
        while size:
            header.append(byte | 0x80)
            byte, size = size & 0x7F, size >> 7
        header.append(byte)
        packed = bytes(header) + zlib.compress(obj.data, 1)
        body += packed
        entries.append((obj.oid, zlib.crc32(packed), offset))
    checksum = hashlib.sha1(body, usedforsecurity=False).digest()
    body += checksum
    entries.sort()
    fanout = [0] * 256
    for oid, _, _ in entries:
        fanout[oid[0]] += 1
    for n in range(1, 256):
        fanout[n] += fanout[n - 1]
    small: list[int] = []
    large: list[int] = []  # offsets past 2 GiB go to the 8-byte table
    for _, _, offset in entries:
        small.append(offset if offset < 0x80000000 else 0x80000000 | len(large))
        if offset >= 0x80000000:
            large.append(offset)
    index = bytearray(b"\xfftOc" + struct.pack(">I", 2) + struct.pack(">256I", *fanout))
    index += b"".join(oid for oid, _, _ in entries)
    index += struct.pack(f">{len(entries)}I", *(crc for _, crc, _ in entries))
    index += struct.pack(f">{len(entries)}I", *small) + struct.pack(f">{len(large)}Q", *large)
    index += checksum
    index += hashlib.sha1(index, usedforsecurity=False).digest()
    pack_dir.mkdir(parents=True, exist_ok=True)
    name = f"pack-{checksum.hex()}"
    _write_file(pack_dir, f"{name}.pack", bytes(body))
    _write_file(pack_dir, f"{name}.idx", bytes(index))


def _write_file(directory: Path, name: str, data: bytes) -> None:
    tmp = directory / f"tmp_{name}_{os.getpid()}_{random.getrandbits(32):08x}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / name)


_TRAITS = b"# pack-refs with:"


def add_packed_refs(
    common_dir: Path, refs: Mapping[str, tuple[str, str]], drop: Collection[str]
) -> dict[str, str]:
    """Add annotated tag refs (name -> (tag object, commit)) to packed-refs, as `git pack-refs`
    writes them, and remove the packed refs named in `drop`, under packed-refs.lock (O_EXCL;
    FileExistsError while someone holds it).

    A loose ref costs a file each (creating files is what made finishing slow at scale); one
    packed-refs rewrite per batch does not. The file is edited as a list of lines found by
    bisection, never parsed line by line in Python. Refs that exist already (loose or packed)
    are left alone and returned with their values.
    """
    path, lock = common_dir / "packed-refs", common_dir / "packed-refs.lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        traits, lines = _packed_lines(path.read_bytes() if path.exists() else b"")
        existing: dict[str, str] = {}
        edits: list[tuple[int, int, list[bytes]]] = []  # replace lines[start:end] with these
        for name in drop:
            at = _position(lines, name.encode())
            if at < len(lines) and _name(lines, at) == name.encode():
                edits.append((at, at + 1 + _peel(lines, at), []))
        for name, (target, peeled) in sorted(refs.items()):
            at = _position(lines, name.encode())
            loose = common_dir / name
            if loose.is_file():
                existing[name] = loose.read_text().strip()
            elif at < len(lines) and _name(lines, at) == name.encode():
                existing[name] = lines[at].split(b" ", 1)[0].decode()
            else:
                edits.append((at, at, [f"{target} {name}".encode(), f"^{peeled}".encode()]))
        if edits:
            pieces: list[bytes] = []
            done = 0
            for begin, stop, added in sorted(edits, key=lambda e: e[:2]):
                pieces.extend(lines[done:begin])
                pieces.extend(added)
                done = max(done, stop)
            pieces.extend(lines[done:])
            header = _TRAITS + b"".join(b" " + trait for trait in traits) + b" "
            os.write(fd, b"\n".join([header, *pieces]) + b"\n")
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        lock.unlink()
        raise
    os.close(fd)
    if edits:
        os.replace(lock, path)
    else:
        lock.unlink()
    return existing


def _packed_lines(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """The traits and the lines (refs, each followed by its `^` peel line if any, sorted by name)
    of a packed-refs file."""
    if not data:
        return [b"peeled", b"fully-peeled", b"sorted"], []
    lines = data.split(b"\n")
    traits = lines.pop(0)[len(_TRAITS) :].split() if lines[0].startswith(_TRAITS) else []
    if lines and not lines[-1]:
        lines.pop()
    if b"sorted" not in traits:  # git has written sorted files since 2.0; sort an old one once
        entries: list[list[bytes]] = []
        for line in lines:
            if line.startswith(b"^") and entries:
                entries[-1].append(line)
            elif not line.startswith(b"#"):
                entries.append([line])
        entries.sort(key=lambda e: e[0].partition(b" ")[2])
        lines = [line for entry in entries for line in entry]
        traits.append(b"sorted")
    return traits, lines


def _name(lines: Sequence[bytes], at: int) -> bytes:
    """The ref name of line `at` (a `^` peel line belongs to the ref above it)."""
    line = lines[at - 1] if lines[at].startswith(b"^") and at else lines[at]
    return line.partition(b" ")[2]


def _peel(lines: Sequence[bytes], at: int) -> int:
    """1 if the ref at line `at` has a peel line, else 0."""
    return int(at + 1 < len(lines) and lines[at + 1].startswith(b"^"))


def _position(lines: Sequence[bytes], name: bytes) -> int:
    """The first line whose ref name is not before `name` (always a ref line, or the end)."""
    lo, hi = 0, len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        if _name(lines, mid) < name:
            lo = mid + 1
        else:
            hi = mid
    return lo


def packed_names(path: Path, prefix: str) -> list[str]:
    """The names under prefix in a packed-refs file, found by bisection when the file says it is
    sorted (it is mapped, not read: with 100,000 compose tags it holds 13 MB)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with (
        handle,
        contextlib.suppress(ValueError),  # an empty file cannot be mapped
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
    ):
        needle = prefix.encode()
        header = data[: data.find(b"\n") + 1]
        ordered = header.startswith(_TRAITS) and b" sorted " in header
        lo, hi = 0, len(data) if ordered else 0  # not sorted: read every line
        while lo < hi:  # the first position whose next ref line is at or after the prefix
            mid = (lo + hi) // 2
            name, _ = _ref_line(data, mid)
            if name is None or name >= needle:
                hi = mid
            else:
                lo = mid + 1
        names = []
        name, pos = _ref_line(data, lo)
        while name is not None and (name.startswith(needle) or not ordered):
            if name.startswith(needle):
                names.append(name.decode())
            name, pos = _ref_line(data, pos)
        return names
    return []


def _ref_line(data: mmap.mmap, pos: int) -> tuple[bytes | None, int]:
    """The name in the first ref line starting at or after pos, and where the line after it starts."""
    if pos and data[pos - 1 : pos] != b"\n":
        pos = data.find(b"\n", pos) + 1 or len(data)
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        line, pos = data[pos:end], end + 1
        if line[:1] not in (b"^", b"#") and b" " in line:
            return line.split(b" ", 1)[1], pos
    return None, len(data)


def _tree_of(repo: pygit2.Repository, commit: str) -> bytes:
    found = repo.get(commit)
    if not isinstance(found, pygit2.Commit):
        raise OperationFailed(f"{NOTES_REF} points at {commit}, which is not a commit", code="bad-notes")
    return found.tree_id.raw
