"""Where the CLI meets the repository: load definitions at a revision, with caches.

Parsed definition files are cached across runs by (path, Git blob id) in `.git/factory/`,
so a second `plan` over mostly unchanged trees parses nothing again.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

from pipeline import __version__, definitions, gitrepo
from pipeline.canonical import digest
from pipeline.definitions import ParseCache
from pipeline.graph import Graph
from pipeline.graph import build as build_graph
from pipeline.model import Definitions

WORKTREE = "worktree"  # the revision name of the checked-out files, uncommitted changes included


def _cache_version() -> str:
    schemas = {p.name: p.read_text() for p in sorted(definitions.SCHEMA_DIR.glob("*.json"))}
    return digest({"factory": __version__, "schemas": schemas})


@dataclass
class Workspace:
    """One definitions repository and its caches."""

    repo: pygit2.Repository
    root: Path
    cache: dict[tuple[str, str], Any] = field(default_factory=dict)
    _loaded: int = 0
    _used: set[tuple[str, str]] = field(default_factory=set)
    _cache_file: Path | None = None

    @classmethod
    def open(cls, path: str | Path = ".") -> Workspace:
        repo = gitrepo.open_repo(path)
        root = Path(repo.workdir) if repo.workdir else Path(repo.path)
        ws = cls(repo, root)
        ws._cache_file = Path(repo.path) / "factory" / f"parse-cache-{_cache_version()[:16]}.pickle"
        ws._read_cache()
        return ws

    def files(self, rev: str) -> list[definitions.SourceFile]:
        if rev == WORKTREE:
            return gitrepo.worktree_files(gitrepo.workdir(self.repo))
        return gitrepo.tree_files(self.repo, rev)

    def load(self, rev: str = WORKTREE, *, check_distgit: bool = True) -> Definitions:
        """Validated definitions of a revision (`worktree` for the files on disk)."""
        parse_cache: ParseCache = self.cache
        lookup = gitrepo.DistGit(self.root) if check_distgit else None
        files = self.files(rev)
        self._used.update((f.path, f.blob_id) for f in files)
        return definitions.load(files, cache=parse_cache, branches=lookup)

    def graph(self, rev: str = WORKTREE) -> Graph:
        return build_graph(self.load(rev, check_distgit=False))

    def save(self) -> None:
        """Write the parse cache back when it changed (atomically: a reader never sees half).

        Only the entries this run used are kept, so the cache never outgrows the trees in use.
        """
        kept = {k: v for k, v in self.cache.items() if k in self._used}
        if self._cache_file is None or (len(kept) == len(self.cache) == self._loaded):
            return
        self.cache = kept
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._cache_file.parent, prefix=".parse-cache-")
        with os.fdopen(fd, "wb") as out:
            pickle.dump(self.cache, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self._cache_file)
        self._loaded = len(self.cache)

    def _read_cache(self) -> None:
        if self._cache_file is None or not self._cache_file.exists():
            return
        try:
            with self._cache_file.open("rb") as handle:
                loaded = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return  # a damaged cache is only a slower run
        if isinstance(loaded, dict):
            self.cache = loaded
            self._loaded = len(loaded)
