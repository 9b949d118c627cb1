"""Git objects written by factory itself: identity, object data, and packs.

Lineage writes thousands of small objects per batch (tags, note blobs, notes trees, one notes
commit); as loose objects each would be a file (at 100,000 composes: 2.5 GB and minutes, see
TOOLCHAIN.md), so a batch becomes one pack (`write_pack`). Every commit and tag factory makes
names one identity, `IDENTITY`.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IDENTITY = ("factory", "factory@localhost")


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


def commit_data(tree: bytes, parents: Sequence[str], when: int, message: str) -> bytes:
    """The data of a commit by factory (author and committer) at `when` (seconds, UTC)."""
    ident = f"{IDENTITY[0]} <{IDENTITY[1]}> {when} +0000"
    lines = [f"tree {tree.hex()}", *(f"parent {p}" for p in parents)]
    return "\n".join([*lines, f"author {ident}", f"committer {ident}", "", message]).encode()


def tag_data(target: str, name: str, when: int, message: str) -> bytes:
    """The data of an annotated tag `name` on commit `target`, by factory at `when`."""
    return (
        f"object {target}\ntype commit\ntag {name}\n"
        f"tagger {IDENTITY[0]} <{IDENTITY[1]}> {when} +0000\n\n{message}"
    ).encode()


# -- packs -------------------------------------------------------------------------------------

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
