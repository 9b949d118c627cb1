"""Component dist-git repositories: branches, heads, commits and the files of a commit.

A dist-git URL from factory.yaml is a path (relative to the definitions repository), a
`file://` URL, or a remote URL. Local ones are opened in place. Remote ones are fetched into
bare mirrors under a cache directory when a `DistGit` is given one (the bot), and are reported
as unreachable (None) otherwise, so validation never blocks on the network.

`write_history` makes deterministic dist-git repositories (the example distribution): the same
specs give the same commit hashes on every machine.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from pipeline.core.errors import InvalidInput
from pipeline.core.model import DistGitCommit
from pipeline.git.refs import create_if_absent
from pipeline.git.repo import Repository, commits_between, is_ancestor

log = logging.getLogger("factory.distgit")


class DistGit:
    """Reads component dist-git repositories; implements consistency.BranchLookup."""

    def __init__(self, root: Path, mirrors: Path | None = None) -> None:
        self.root = root
        self.mirrors = mirrors
        self._repos: dict[str, pygit2.Repository | None] = {}
        self.problems: dict[str, str] = {}  # url -> why it could not be read

    def _open(self, url: str) -> pygit2.Repository | None:
        if url not in self._repos:
            path = url.removeprefix("file://")
            if "://" in path:
                found = self.mirror(url) if self.mirrors is not None else None
                self._repos[url] = None if found is None else pygit2.Repository(str(found))
            else:
                self._repos[url] = self._local(url, self.root / path)
        return self._repos[url]

    def _local(self, url: str, full: Path) -> pygit2.Repository | None:
        if not full.exists():
            self.problems[url] = f"{full} does not exist"
            return None
        try:
            return pygit2.Repository(str(full))
        except pygit2.GitError:
            self.problems[url] = f"{full} is not a Git repository"
            return None

    def mirror(self, url: str) -> Path | None:
        """Fetch every branch of url into a bare mirror under the cache; its path, None on failure."""
        if self.mirrors is None:
            raise InvalidInput(f"no cache to mirror {url} into", code="no-mirror-cache")
        name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:40]
        where = self.mirrors / f"{slug}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.git"
        try:
            if where.exists():
                repo = pygit2.Repository(str(where))
            else:
                where.parent.mkdir(parents=True, exist_ok=True)
                repo = pygit2.init_repository(str(where), bare=True)
                repo.remotes.create("origin", url, "+refs/heads/*:refs/heads/*")
            repo.remotes["origin"].fetch(prune=pygit2.enums.FetchPrune.PRUNE)
        except (pygit2.GitError, OSError) as exc:
            log.warning("cannot fetch %s: %s", url, exc)
            self.problems[url] = f"cannot fetch {url}: {exc}"
            return None
        return where

    def reachable(self, url: str) -> bool:
        """Whether the repository at url can be read (fetched once per instance when remote)."""
        return self._open(url) is not None

    def branches(self, url: str) -> frozenset[str] | None:
        repo = self._open(url)
        return None if repo is None else frozenset(repo.branches.local)

    def has_commit(self, url: str, ref: str) -> bool | None:
        repo = self._open(url)
        if repo is None:
            return None
        try:
            return isinstance(repo.get(ref), pygit2.Commit)
        except ValueError:
            return False

    def head(self, url: str, branch: str) -> str | None:
        """The commit a branch points to now, or None when unknown."""
        repo = self._open(url)
        found = None if repo is None else repo.branches.local.get(branch)
        return None if found is None else str(found.target)

    def descends(self, url: str, ref: str, head: str) -> bool:
        """Whether head is ref or one of its descendants (False when either is unknown)."""
        repo = self._open(url)
        return repo is not None and is_ancestor(Repository(repo), ref, head)

    def create_branch(self, url: str, branch: str, start: str) -> bool:
        """Create `branch` at commit `start` in the local dist-git at url, unless it exists (then
        it is left as it is, moved on or not): True when made. Only local repositories: a
        remote one is branched through its forge."""
        if "://" in url.removeprefix("file://"):
            raise InvalidInput(
                f"{url} is not a local repository: factory cannot branch it here", code="remote-distgit"
            )
        repo = self._open(url)
        if repo is None:
            raise InvalidInput(
                f"cannot branch {url}: {self.problems.get(url, 'not readable')}", code="unreachable-distgit"
            )
        if not isinstance(repo.get(start), pygit2.Commit):
            raise InvalidInput(f"{url} has no commit {start}", code="unknown-ref")
        made = create_if_absent(Repository(repo), f"refs/heads/{branch}", start)
        if made is None:
            raise InvalidInput(f"{url}: refs/heads/{branch} is locked by another process", code="ref-locked")
        return made

    def commits(self, url: str, head: str, since: list[str]) -> list[DistGitCommit]:
        """The commits up to head that none of since contains, newest first."""
        repo = self._open(url)
        if repo is None:
            return []
        return [
            DistGitCommit(c.id, c.message.split("\n", 1)[0].strip(), c.message)
            for c in commits_between(Repository(repo), head, since)
        ]


# -- the files of one commit (builders) ---------------------------------------------------------------


def _commit_in(repo_path: Path, ref: str) -> tuple[pygit2.Repository, pygit2.Commit]:
    try:
        repo = pygit2.Repository(str(repo_path))
    except pygit2.GitError as exc:
        raise InvalidInput(f"{repo_path} is not a Git repository", code="not-a-repository") from exc
    try:
        commit = repo.revparse_single(ref).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        raise InvalidInput(f"{repo_path} has no commit {ref}", code="unknown-revision") from exc
    return repo, commit


def commit_time(repo_path: Path, ref: str) -> int:
    """The commit time (seconds since the epoch) of a commit of the repository at repo_path."""
    return int(_commit_in(repo_path, ref)[1].commit_time)


def export_tree(repo_path: Path, ref: str, dest: Path) -> None:
    """Write the files of a commit into dest (created), with Git's modes; no .git, no checkout."""
    repo, commit = _commit_in(repo_path, ref)
    dest.mkdir(parents=True, exist_ok=True)
    _export(repo, commit.tree, dest)


def _export(repo: pygit2.Repository, tree: pygit2.Tree, dest: Path) -> None:
    for entry in tree:
        name = str(entry.name)
        if name in ("", ".", "..", ".git") or "/" in name:
            raise InvalidInput(f"refusing to export a tree entry named {name!r}", code="unsafe-tree")
        target = dest / name
        if entry.filemode == pygit2.GIT_FILEMODE_TREE:
            target.mkdir()
            _export(repo, repo[entry.id].peel(pygit2.Tree), target)
        elif entry.filemode == pygit2.GIT_FILEMODE_LINK:
            target.symlink_to(repo[entry.id].peel(pygit2.Blob).data.decode())
        elif entry.filemode in (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE):
            target.write_bytes(repo[entry.id].peel(pygit2.Blob).data)
            target.chmod(0o755 if entry.filemode == pygit2.GIT_FILEMODE_BLOB_EXECUTABLE else 0o644)
        # submodules (commit entries) carry no content of this repository


# -- deterministic histories (the example distribution) -------------------------------------------


@dataclass(frozen=True, slots=True)
class CommitSpec:
    """One commit to write: its branch, message, files and time.

    Its parent is `parent` (the key of an earlier spec) when given, else the previous commit
    written on the same branch.
    """

    key: str
    branch: str
    message: str
    files: Mapping[str, bytes]
    time: int
    parent: str | None = None


def write_history(
    dest: Path,
    commits: list[CommitSpec],
    extra_branches: Mapping[str, str],
    author: tuple[str, str],
) -> dict[str, str]:
    """Make dest a bare repository whose branches hold exactly these commits; branch -> head.

    Author, committer and times come from the specs, so the hashes are the same on every
    machine and every run; rerunning over an existing repository resets its branches.
    """
    if dest.exists():
        repo = pygit2.Repository(str(dest))
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        repo = pygit2.init_repository(str(dest), bare=True)
    made: dict[str, str] = {}
    heads: dict[str, str] = {}
    for spec in commits:
        parent = made[spec.parent] if spec.parent else heads.get(spec.branch)
        signature = pygit2.Signature(author[0], author[1], spec.time, 0)
        tree = _tree(repo, spec.files)
        oid = repo.create_commit(None, signature, signature, spec.message, tree, [parent] if parent else [])
        made[spec.key] = heads[spec.branch] = str(oid)
    for branch, key in extra_branches.items():
        heads[branch] = made[key]
    for branch, head in sorted(heads.items()):
        repo.references.create(f"refs/heads/{branch}", head, force=True)
    for branch in [b for b in repo.branches.local if b not in heads]:
        repo.branches.local.delete(branch)
    repo.set_head(f"refs/heads/{commits[0].branch}")
    return heads


def _tree(repo: pygit2.Repository, files: Mapping[str, bytes]) -> pygit2.Oid:
    nested: dict[str, dict[str, bytes] | bytes] = {}
    for path, data in files.items():
        parts = path.split("/")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[parts[-1]] = data
    return _write_tree(repo, nested)


def _write_tree(repo: pygit2.Repository, nested: Mapping[str, object]) -> pygit2.Oid:
    builder = repo.TreeBuilder()
    for name, value in sorted(nested.items()):
        if isinstance(value, bytes):
            builder.insert(name, repo.create_blob(value), pygit2.GIT_FILEMODE_BLOB)
        else:
            assert isinstance(value, Mapping)
            builder.insert(name, _write_tree(repo, value), pygit2.GIT_FILEMODE_TREE)
    return builder.write()
