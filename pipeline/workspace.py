"""Where the commands meet the repository: definitions and graphs of a revision, with caches.

Two caches live in `.git/factory/`, both keyed by content so they can never be stale:
- parsed definition files by (path, Git blob id), so a tree that differs from a cached one
  in one file parses one file;
- the artifact graph of a whole definitions tree by the digest of its (path, blob id) list
  (graphcache.py), so planning between two known trees parses nothing at all.
Both include the factory version and the schemas in their key.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import __version__, schemas
from pipeline.core import definitions, policies
from pipeline.core.canonical import digest
from pipeline.core.config import Config
from pipeline.core.definitions import ParseCache, SourceFile
from pipeline.core.gate import Policy
from pipeline.core.graph import Graph, ModuleMemo
from pipeline.core.graph import build as build_graph
from pipeline.core.model import Definitions
from pipeline.git import cli as gitcli
from pipeline.graphcache import GraphCache, write_atomically

if TYPE_CHECKING:
    from pipeline.git.repo import Repository

WORKTREE = "worktree"  # the revision name of the checked-out files, uncommitted changes included


@cache
def _cache_version() -> str:
    from pipeline.plugins import kind_names

    # The artifact kinds installed decide what validates, so they are part of every cache key.
    return digest({"factory": __version__, "schemas": schemas.shipped(), "kinds": list(kind_names())})


@dataclass
class Workspace:
    """One definitions repository and its caches.

    The repository is only opened (and the Git library imported) when a command needs more
    than cached graphs (`repo`).
    """

    git_dir: Path
    root: Path
    cache_dir: Path
    _parsed: dict[tuple[str, str], Any] | None = None
    _loaded: int = 0
    _used: set[tuple[str, str]] = field(default_factory=set)
    _memo: ModuleMemo = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path = ".") -> Workspace:
        git_dir, root = gitcli.discover(path)
        return cls(git_dir, root, git_dir / "factory")

    @cached_property
    def repo(self) -> Repository:
        from pipeline.git import repo as gitrepo

        return gitrepo.open_repo(self.git_dir)

    @cached_property
    def _graphs(self) -> GraphCache:
        return GraphCache(self.cache_dir / "graphs")

    def files(self, rev: str) -> list[SourceFile]:
        from pipeline.git import repo as gitrepo

        if rev == WORKTREE:
            return gitrepo.worktree_files(gitrepo.workdir(self.repo))
        return gitrepo.tree_files(self.repo, rev)

    def config(self, rev: str = WORKTREE) -> Config:
        """The typed factory.yaml of a revision (`worktree`: the file on disk), read alone.

        It goes through the same parser and schema as `load`, so a bad file is refused with
        its file, line and rule (InvalidDefinitions, exit 2); nothing else parses factory.yaml.
        """
        from pipeline.git import repo as gitrepo

        path = definitions.CONFIG_PATH
        if rev == WORKTREE:
            on_disk = self.root / path
            raw = on_disk.read_bytes() if on_disk.is_file() else None
        else:
            raw = gitrepo.file_at(self.repo, rev, path)
        if raw is None:
            return definitions.load_config(None)
        return definitions.load_config(SourceFile(path, gitrepo.blob_id(raw), lambda: raw))

    def policy(self, rev: str) -> Policy:
        """The gating policies and waivers of a commit (`policies/*.yaml`, `waivers/*.yaml`)."""
        from pipeline.git import repo as gitrepo

        return policies.parse(
            (path, data)
            for folder in (policies.POLICIES, policies.WAIVERS)
            for path, data in gitrepo.folder_files(self.repo, rev, folder.rstrip("/"))
            if path.endswith((".yaml", ".yml"))
        )

    def load(self, rev: str = WORKTREE, *, check_distgit: bool = True) -> Definitions:
        """Validated definitions of a revision (`worktree` for the files on disk)."""
        return self._load(self.files(rev), check_distgit=check_distgit)

    def load_files(self, files: list[SourceFile], *, check_distgit: bool = False) -> Definitions:
        """Validated definitions of a tree given file by file (what a merge request would make,
        before it exists); InvalidDefinitions with every error, as `load`."""
        return self._load(files, check_distgit=check_distgit)

    def _load(self, files: list[SourceFile], *, check_distgit: bool) -> Definitions:
        from pipeline.git.distgit import DistGit

        lookup = DistGit(self.root) if check_distgit else None
        self._used.update((f.path, f.blob_id) for f in files)
        parsed: ParseCache = self._parse_cache()
        from pipeline.plugins import kind_names

        return definitions.load(
            files, cache=parsed, branches=lookup, parse_many=_parse_in_parallel, kinds=kind_names()
        )

    def graph(self, rev: str = WORKTREE) -> Graph:
        """The artifact graph of a revision, from the graph cache when this tree was seen before.

        The cache key is the content of the definition files; for a commit, its tree id leads
        to that key without listing the files (an alias is kept per tree id).
        """
        tree = None if rev == WORKTREE else gitcli.tree_id(self.git_dir, rev)
        key = self._graphs.alias(tree, _cache_version()) if tree else None
        if key is not None:
            cached = self._graphs.get(key)
            if cached is not None:
                return cached
        files = self.files(rev)
        key = digest({"version": _cache_version(), "files": sorted((f.path, f.blob_id) for f in files)})
        if tree:
            self._graphs.set_alias(tree, _cache_version(), key)
        cached = self._graphs.get(key)
        if cached is not None:
            return cached
        graph = build_graph(self._load(files, check_distgit=False), self._memo)
        self._graphs.put(key, graph)
        return graph

    def save(self) -> None:
        """Write the parse cache back when it changed (atomically: a reader never sees half).

        Only the entries this run used are kept, so the cache never outgrows the trees in use.
        """
        if self._parsed is None:
            return
        kept = {k: v for k, v in self._parsed.items() if k in self._used}
        if len(kept) == len(self._parsed) == self._loaded:
            return
        self._parsed = kept
        write_atomically(self._parse_cache_file(), pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL))
        self._loaded = len(kept)

    def _parse_cache_file(self) -> Path:
        return self.cache_dir / f"parse-cache-{_cache_version()[:16]}.pickle"

    def _parse_cache(self) -> dict[tuple[str, str], Any]:
        if self._parsed is None:
            self._parsed = {}
            try:
                loaded = pickle.loads(self._parse_cache_file().read_bytes())
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
                loaded = None  # no cache, or a damaged one: only a slower run
            if isinstance(loaded, dict):
                self._parsed = loaded
                self._loaded = len(loaded)
        return self._parsed


_PARALLEL_FROM = 256  # files; below this, starting processes costs more than it saves


def _parse_in_parallel(items: list[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
    """Parse many definition files on every core (forked workers), in order."""
    workers = len(os.sched_getaffinity(0))
    if len(items) < _PARALLEL_FROM or workers < 2:
        return list(definitions.parse_files(items))
    chunk = -(-len(items) // (workers * 4))
    batches = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [result for batch in pool.map(definitions.parse_files, batches) for result in batch]
