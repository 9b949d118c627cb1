"""Files and directories named on the command line: a missing one is named as missing.

`error[missing-file]: comps file /tmp/comps.xml does not exist` (exit 2) instead of what a tool
would make of it later (xmllint's "failed to load external entity", a traceback).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import InvalidInput


def existing_file(path: str | Path, what: str = "file") -> Path:
    """The path of a file that must exist; InvalidInput naming it when it does not."""
    found = Path(path)
    if not found.exists():
        raise InvalidInput(f"{what} {found} does not exist", code="missing-file")
    if not found.is_file():
        raise InvalidInput(f"{what} {found} is not a file", code="not-a-file")
    return found


def existing_directory(path: str | Path, what: str = "directory") -> Path:
    """The path of a directory that must exist; InvalidInput naming it when it does not."""
    found = Path(path)
    if not found.exists():
        raise InvalidInput(f"{what} {found} does not exist", code="missing-directory")
    if not found.is_dir():
        raise InvalidInput(f"{what} {found} is not a directory", code="not-a-directory")
    return found


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of a file that must exist: missing, not a file and unreadable are told apart."""
    found = existing_file(path, what)
    try:
        return found.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {found}: {exc.strerror}", code="unreadable-file") from exc
