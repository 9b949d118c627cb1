"""How a record names a place on disk: never by a path of the machine that wrote it.

Notes travel (`lineage push`, a copied or moved checkout, runners whose build directories
differ), so a release directory, a mirror or an output directory inside the checkout is
recorded relative to the checkout (`.factory/releases/repo-Server/FL-42-...`), and read back
relative to the checkout of whoever reads it. One outside the checkout is recorded as given
(absolute: `/srv/releases/...`), and so are the absolute paths older notes hold: both still
read. `in_checkout` says which a recorded path is.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline.git.repo import Repository


def checkout(repo: Repository) -> Path | None:
    """The checkout relative paths are recorded against: the repository's working tree (None
    for a bare repository, whose records name every path as given)."""
    return repo.workdir


def recorded(root: Path | None, path: Path) -> str:
    """How a record names `path` (absolute, or relative to the current directory): relative
    to the checkout `root` when inside it, else absolute."""
    where = path.resolve()
    if root is not None and where.is_relative_to(root.resolve()):
        return where.relative_to(root.resolve()).as_posix() or "."
    return str(where)


def located(root: Path | None, text: str) -> Path:
    """The path a record names, on this machine: a relative one taken from the checkout."""
    path = Path(text)
    if path.is_absolute() or root is None:
        return path
    return root / path


def in_checkout(text: str) -> bool:
    """Whether a recorded path is relative to the checkout (else it is absolute, as given)."""
    return bool(text) and not PurePosixPath(text).is_absolute()
