"""All access to Git goes through here (pygit2).

Reading a definitions tree at a revision, listing a dist-git's branches, and writing
deterministic commits (the example dist-git). Errors come out as FactoryError subclasses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from pipeline.core.definitions import SourceFile, is_definition
from pipeline.core.errors import InvalidInput
from pipeline.git.cli import NO_REVISION as NO_REVISION  # `--base none`: an empty tree


def open_repo(path: str | Path) -> pygit2.Repository:
    """The Git repository containing path."""
    found = pygit2.discover_repository(str(path))
    if found is None:
        raise InvalidInput(f"{path} is not inside a Git repository", code="not-a-repository")
    return pygit2.Repository(found)


def workdir(repo: pygit2.Repository) -> Path:
    if repo.workdir is None:
        raise InvalidInput(f"{repo.path} is a bare repository; pass --rev", code="bare-repository")
    return Path(repo.workdir)


def resolve(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    """The commit a revision names (`HEAD~1`, a branch, a hash, ...)."""
    try:
        obj = repo.revparse_single(rev)
        commit = obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        raise InvalidInput(f"unknown revision {rev!r}", code="unknown-revision") from exc
    return commit


def tree_id(repo: pygit2.Repository, rev: str) -> str | None:
    """The id of a commit's root tree (None for `none`, the empty revision)."""
    if rev == NO_REVISION:
        return None
    return str(resolve(repo, rev).tree.id)


def folder_files(repo: pygit2.Repository, rev: str, folder: str) -> list[tuple[str, bytes]]:
    """(path, bytes) of the files directly in a top-level folder of a commit (none: [])."""
    tree = resolve(repo, rev).tree
    try:
        sub = tree[folder]
    except KeyError:
        return []
    if not isinstance(sub, pygit2.Tree):
        return []
    return [(f"{folder}/{item.name}", item.data) for item in sub if isinstance(item, pygit2.Blob)]


def tree_files(repo: pygit2.Repository, rev: str) -> list[SourceFile]:
    """The definition files of a commit, read lazily from Git objects (no checkout)."""
    if rev == NO_REVISION:
        return []
    tree = resolve(repo, rev).tree
    return [
        SourceFile(path, str(blob_id), _reader(repo, blob_id))
        for path, blob_id in _walk(tree, "")
        if is_definition(path)
    ]


def _reader(repo: pygit2.Repository, blob_id: pygit2.Oid) -> _BlobReader:
    return _BlobReader(repo, blob_id)


@dataclass(frozen=True, slots=True)
class _BlobReader:
    repo: pygit2.Repository
    blob_id: pygit2.Oid

    def __call__(self) -> bytes:
        blob = self.repo[self.blob_id]
        assert isinstance(blob, pygit2.Blob)
        return blob.data


def _walk(tree: pygit2.Tree, prefix: str) -> Iterator[tuple[str, pygit2.Oid]]:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if isinstance(entry, pygit2.Tree):
            if not prefix and entry.name not in ("modules", "variants"):
                continue
            yield from _walk(entry, f"{path}/")
        elif isinstance(entry, pygit2.Blob):
            yield path, entry.id


def worktree_files(root: Path) -> list[SourceFile]:
    """The definition files of a working tree, with the blob ids Git would give them."""
    files = []
    candidates = [root / "factory.yaml"]
    for top in ("modules", "variants"):
        base = root / top
        if base.is_dir():
            candidates.extend(p for p in sorted(base.rglob("*")) if p.is_file())
    for path in candidates:
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if not is_definition(rel):
            continue
        data = path.read_bytes()
        files.append(SourceFile(rel, blob_id(data), _constant(data)))
    return files


def _constant(data: bytes) -> _Bytes:
    return _Bytes(data)


@dataclass(frozen=True, slots=True)
class _Bytes:
    data: bytes

    def __call__(self) -> bytes:
        return self.data


def blob_id(data: bytes) -> str:
    """The id Git gives a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


# -- dist-git ----------------------------------------------------------------------------------


class DistGit:
    """Reads component dist-git repositories on this machine; implements consistency.BranchLookup.

    URLs that are not local paths (or `file://` URLs) are reported as unreachable (None), so
    validation never blocks on the network.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self._repos: dict[str, pygit2.Repository | None] = {}

    def _open(self, url: str) -> pygit2.Repository | None:
        if url not in self._repos:
            path = url.removeprefix("file://")
            repo = None
            if "://" not in path:
                full = self.base / path
                if full.exists():
                    try:
                        repo = pygit2.Repository(str(full))
                    except pygit2.GitError:
                        repo = None
            self._repos[url] = repo
        return self._repos[url]

    def branches(self, url: str) -> frozenset[str] | None:
        repo = self._open(url)
        if repo is None:
            return None
        return frozenset(repo.branches.local)

    def has_commit(self, url: str, ref: str) -> bool | None:
        repo = self._open(url)
        if repo is None:
            return None
        try:
            return isinstance(repo.get(ref), pygit2.Commit)
        except ValueError:
            return False

    def head(self, url: str, branch: str) -> str | None:
        """The commit a branch points to, or None when unknown."""
        repo = self._open(url)
        if repo is None:
            return None
        found = repo.branches.local.get(branch)
        return None if found is None else str(found.target)


# -- deterministic commits ------------------------------------------------------------------------


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


def worktree_differs(repo: pygit2.Repository) -> bool:
    """Whether the definition files on disk differ from those of HEAD."""
    if repo.workdir is None or repo.head_is_unborn:
        return False
    committed = {f.path: f.blob_id for f in tree_files(repo, "HEAD")}
    on_disk = {f.path: f.blob_id for f in worktree_files(Path(repo.workdir))}
    return committed != on_disk


# -- component sources ------------------------------------------------------------------------------


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


# -- commits of files and records (branch history, the local forge) -------------------------------

FACTORY_IDENTITY = ("factory", "factory@localhost")


def _signature(when: int) -> pygit2.Signature:
    return pygit2.Signature(FACTORY_IDENTITY[0], FACTORY_IDENTITY[1], when, 0)


def ref_target(repo: pygit2.Repository, name: str) -> str | None:
    """The commit a direct ref points to, or None when the ref does not exist."""
    ref = repo.references.get(name)
    if ref is None:
        return None
    return str(ref.resolve().target)


def file_at(repo: pygit2.Repository, rev: str, path: str) -> bytes | None:
    """The bytes of path in the commit rev names, or None when there is no such file."""
    try:
        entry = resolve(repo, rev).tree[path]
    except KeyError:
        return None
    blob = repo[entry.id]
    return blob.data if isinstance(blob, pygit2.Blob) else None


def commit_files(
    repo: pygit2.Repository, parent: str, files: Mapping[str, bytes], message: str, when: int
) -> str:
    """A new commit (no ref moved): parent's tree with files (path -> bytes) replaced or added."""
    base = resolve(repo, parent)
    tree = _replace(repo, base.tree, {tuple(p.split("/")): d for p, d in files.items()})
    sig = _signature(when)
    return str(repo.create_commit(None, sig, sig, message, tree, [base.id]))


def _replace(
    repo: pygit2.Repository, tree: pygit2.Tree | None, files: Mapping[tuple[str, ...], bytes]
) -> pygit2.Oid:
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    here = {parts[0]: data for parts, data in files.items() if len(parts) == 1}
    below: dict[str, dict[tuple[str, ...], bytes]] = {}
    for parts, data in files.items():
        if len(parts) > 1:
            below.setdefault(parts[0], {})[parts[1:]] = data
    for name, data in here.items():
        builder.insert(name, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    for name, nested in below.items():
        old = builder.get(name)
        subtree = repo[old.id] if old is not None and old.filemode == pygit2.GIT_FILEMODE_TREE else None
        assert subtree is None or isinstance(subtree, pygit2.Tree)
        builder.insert(name, _replace(repo, subtree, nested), pygit2.GIT_FILEMODE_TREE)
    return builder.write()


def record_commit(
    repo: pygit2.Repository, parent: str | None, name: str, data: bytes, message: str, when: int
) -> str:
    """A new commit (no ref moved) whose tree holds one file, `name`, with data; after parent."""
    builder = repo.TreeBuilder()
    builder.insert(name, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    sig = _signature(when)
    parents = [pygit2.Oid(hex=parent)] if parent else []
    return str(repo.create_commit(None, sig, sig, message, builder.write(), parents))


def is_ancestor(repo: pygit2.Repository, ancestor: str, descendant: str) -> bool:
    """Whether ancestor is descendant or one of its ancestors (False when either is unknown)."""
    if ancestor == descendant:
        return isinstance(_object(repo, ancestor), pygit2.Commit)
    if not isinstance(_object(repo, ancestor), pygit2.Commit):
        return False
    if not isinstance(_object(repo, descendant), pygit2.Commit):
        return False
    return bool(repo.descendant_of(descendant, ancestor))


def _object(repo: pygit2.Repository, sha: str) -> pygit2.Object | None:
    try:
        return repo.get(sha)
    except (ValueError, KeyError):
        return None


def commits_between(repo: pygit2.Repository, head: str, hide: list[str]) -> list[pygit2.Commit]:
    """The commits reachable from head and from none of hide, newest first."""
    walker = repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME)
    for sha in hide:
        if isinstance(_object(repo, sha), pygit2.Commit):
            walker.hide(pygit2.Oid(hex=sha))
    return list(walker)


def merge_commit(repo: pygit2.Repository, target: str, source: str, message: str, when: int) -> str | None:
    """What target becomes to include source: source itself when a fast-forward is possible, else
    a new merge commit; None when the two conflict."""
    if is_ancestor(repo, target, source):
        return source
    if is_ancestor(repo, source, target):
        return target
    index = repo.merge_commits(target, source)
    if index.conflicts is not None:
        return None
    sig = _signature(when)
    tree = index.write_tree(repo)
    return str(
        repo.create_commit(None, sig, sig, message, tree, [pygit2.Oid(hex=target), pygit2.Oid(hex=source)])
    )


def checked_out_branch(repo: pygit2.Repository) -> str | None:
    """The branch the working tree has checked out (None: bare, detached or unborn)."""
    if repo.is_bare or repo.head_is_detached or repo.head_is_unborn:
        return None
    return str(repo.head.shorthand)


def worktree_clean(repo: pygit2.Repository) -> bool:
    """Whether the index and tracked files match HEAD (untracked files do not count)."""
    ignored = {pygit2.enums.FileStatus.WT_NEW, pygit2.enums.FileStatus.IGNORED}
    return all(flags in ignored for flags in repo.status().values())


def checkout_commit(repo: pygit2.Repository, commit: str) -> None:
    """Make the index and tracked files those of commit (the branch ref is moved by the caller)."""
    tree = resolve(repo, commit).tree
    repo.checkout_tree(tree, strategy=pygit2.enums.CheckoutStrategy.FORCE)  # type: ignore[no-untyped-call]
