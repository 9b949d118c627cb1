"""Git's packed-refs file, edited in batches: adding compose tags, listing names by prefix.

A loose ref costs a file each (creating files is what made finishing a batch of 1,000 composes
slow); one packed-refs rewrite per batch does not. The file is edited as a list of lines found
by bisection, never parsed line by line in Python, and read through mmap (with 100,000 compose
tags it holds 13 MB).
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

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


def packed_targets(path: Path, prefix: str) -> dict[str, str]:
    """Name -> target (hex) of the refs under prefix in a packed-refs file (its peeled `^` lines
    are not targets)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    needle = b" " + prefix.encode()
    found = {}
    for line in data.splitlines():
        if needle in line and line[:1] not in (b"^", b"#"):
            target, _, name = line.partition(b" ")
            if name.startswith(needle[1:]):
                found[name.decode()] = target.decode()
    return found


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
