"""The definitions repository through pygit2: revisions, files, commits, refs, the working tree.

Everything of factory that reads or writes Git goes through `pipeline/git/` (this module, refs,
notes, objects, packed_refs, distgit and the git CLI in cli.py); nothing else imports pygit2.
A `Repository` is an opaque handle: callers pass it back to these functions and never touch
the pygit2 object inside. Object ids cross this door as hex strings; errors come out as
FactoryError subclasses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pygit2

from pipeline.core.definitions import SourceFile, is_definition
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.git.cli import NO_REVISION as NO_REVISION  # `--base none`: an empty tree
from pipeline.git.objects import IDENTITY


@dataclass(frozen=True, eq=False)
class Repository:
    """One Git repository (non-bare or bare); `raw` is for pipeline/git/ only."""

    raw: pygit2.Repository

    @cached_property
    def git_dir(self) -> Path:
        return Path(self.raw.path)

    @cached_property
    def common_dir(self) -> Path:
        """Where refs and objects live: the git dir, or a linked worktree's common dir."""
        common = self.git_dir / "commondir"
        return (self.git_dir / common.read_text().strip()).resolve() if common.exists() else self.git_dir

    @property
    def workdir(self) -> Path | None:
        return None if self.raw.workdir is None else Path(self.raw.workdir)


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """A commit as factory reads it."""

    id: str
    tree: str
    parents: tuple[str, ...]
    commit_time: int
    message: str


def open_repo(path: str | Path) -> Repository:
    """The Git repository containing path."""
    found = pygit2.discover_repository(str(path))
    if found is None:
        raise InvalidInput(f"{path} is not inside a Git repository", code="not-a-repository")
    return Repository(pygit2.Repository(found))


def init_repo(path: Path, *, bare: bool) -> Repository:
    """A new, empty repository at path."""
    return Repository(pygit2.init_repository(str(path), bare=bare))


def reopen(repo: Repository) -> Repository:
    """The same repository opened again: sees what another process (the git CLI) just wrote."""
    return Repository(pygit2.Repository(str(repo.git_dir)))


def workdir(repo: Repository) -> Path:
    if repo.workdir is None:
        raise InvalidInput(f"{repo.git_dir} is a bare repository; pass --rev", code="bare-repository")
    return repo.workdir


def head_is_unborn(repo: Repository) -> bool:
    """Whether HEAD names a branch with no commit yet."""
    return bool(repo.raw.head_is_unborn)


# -- revisions and their files ----------------------------------------------------------------------


def _commit(repo: Repository, rev: str) -> pygit2.Commit:
    try:
        obj = repo.raw.revparse_single(rev)
        commit = obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        raise InvalidInput(f"unknown revision {rev!r}", code="unknown-revision") from exc
    return commit


def _info(commit: pygit2.Commit) -> CommitInfo:
    return CommitInfo(
        str(commit.id),
        str(commit.tree_id),
        tuple(str(p) for p in commit.parent_ids),
        int(commit.commit_time),
        str(commit.message),
    )


def resolve(repo: Repository, rev: str) -> CommitInfo:
    """The commit a revision names (`HEAD~1`, a branch, a hash, ...)."""
    return _info(_commit(repo, rev))


def is_commit(repo: Repository, sha: str) -> bool:
    """Whether the repository has a commit with this id."""
    return isinstance(_object(repo, sha), pygit2.Commit)


def commit_info(repo: Repository, sha: str) -> CommitInfo | None:
    """The commit with this id, or None when the repository has no such commit."""
    found = _object(repo, sha)
    return _info(found) if isinstance(found, pygit2.Commit) else None


def tree_id(repo: Repository, rev: str) -> str | None:
    """The id of a commit's root tree (None for `none`, the empty revision)."""
    if rev == NO_REVISION:
        return None
    return str(_commit(repo, rev).tree_id)


def folder_files(repo: Repository, rev: str, folder: str) -> list[tuple[str, bytes]]:
    """(path, bytes) of the files directly in a top-level folder of a commit (none: [])."""
    tree = _commit(repo, rev).tree
    try:
        sub = tree[folder]
    except KeyError:
        return []
    if not isinstance(sub, pygit2.Tree):
        return []
    return [(f"{folder}/{item.name}", item.data) for item in sub if isinstance(item, pygit2.Blob)]


def tree_files(repo: Repository, rev: str) -> list[SourceFile]:
    """The definition files of a commit, read lazily from Git objects (no checkout)."""
    if rev == NO_REVISION:
        return []
    tree = _commit(repo, rev).tree
    return [
        SourceFile(path, str(blob), _BlobReader(repo.raw, blob))
        for path, blob in _walk(tree, "")
        if is_definition(path)
    ]


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
        files.append(SourceFile(rel, blob_id(data), _Bytes(data)))
    return files


@dataclass(frozen=True, slots=True)
class _Bytes:
    data: bytes

    def __call__(self) -> bytes:
        return self.data


def blob_id(data: bytes) -> str:
    """The id Git gives a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def file_at(repo: Repository, rev: str, path: str) -> bytes | None:
    """The bytes of path in the commit rev names, or None when there is no such file."""
    try:
        entry = _commit(repo, rev).tree[path]
    except KeyError:
        return None
    blob = repo.raw[entry.id]
    return blob.data if isinstance(blob, pygit2.Blob) else None


def worktree_differs(repo: Repository) -> bool:
    """Whether the definition files on disk differ from those of HEAD."""
    if repo.workdir is None or repo.raw.head_is_unborn:
        return False
    committed = {f.path: f.blob_id for f in tree_files(repo, "HEAD")}
    on_disk = {f.path: f.blob_id for f in worktree_files(repo.workdir)}
    return committed != on_disk


# -- refs --------------------------------------------------------------------------------------------


def ref_target(repo: Repository, name: str) -> str | None:
    """The object a direct ref points to (hex), or None when the ref does not exist."""
    ref = repo.raw.references.get(name)
    if ref is None:
        return None
    target = ref.target
    if not isinstance(target, pygit2.Oid):
        raise OperationFailed(f"{name} is a symbolic ref", code="bad-ref")
    return str(target)


def refs(repo: Repository, prefix: str) -> dict[str, str]:
    """Name -> target (hex) of the direct refs under prefix, loose or packed."""
    found: dict[str, str] = {}
    for name in repo.raw.references:
        if name.startswith(prefix):
            target = repo.raw.references[name].target
            if isinstance(target, pygit2.Oid):
                found[name] = str(target)
    return found


def branch_tips(repo: Repository, branch: str) -> list[str]:
    """The commits a branch points to here: `refs/heads/<branch>` and its remote-tracking copy
    `refs/remotes/<remote>/<branch>` of every remote (what a CI runner's clone holds)."""
    names = [f"refs/heads/{branch}", *(f"refs/remotes/{r.name}/{branch}" for r in repo.raw.remotes)]
    found = []
    for name in names:
        ref = repo.raw.references.get(name)
        if ref is not None and isinstance(ref.target, pygit2.Oid):
            found.append(str(ref.target))
    return found


def local_branches(repo: Repository) -> list[str]:
    """The names of the local branches (`refs/heads/*`)."""
    return sorted(str(name) for name in repo.raw.branches.local)


def remote_head(repo: Repository, remote: str = "origin") -> str | None:
    """The branch `refs/remotes/<remote>/HEAD` names (the remote's default branch, as `git clone`
    records it), or None when there is no such symbolic ref."""
    ref = repo.raw.references.get(f"refs/remotes/{remote}/HEAD")
    if ref is None or isinstance(ref.target, pygit2.Oid):
        return None
    prefix = f"refs/remotes/{remote}/"
    target = str(ref.target)
    return target.removeprefix(prefix) if target.startswith(prefix) else None


def set_ref(repo: Repository, name: str, target: str) -> None:
    """Point a ref at target, whatever it held (only for refs one process owns: a local branch
    the forge moves, the remote-tracking copies of lineage refs)."""
    repo.raw.references.create(name, pygit2.Oid(hex=target), force=True)


def delete_ref(repo: Repository, name: str) -> None:
    """Delete a ref whatever it held, if it exists (only for refs one process owns: the
    remote-tracking copies of lineage refs)."""
    if name in repo.raw.references:
        repo.raw.references.delete(name)


def tag_name(repo: Repository, sha: str) -> str | None:
    """The name an annotated tag object carries (`compose/<id>`), or None if sha is no tag."""
    found = _object(repo, sha)
    return str(found.name) if isinstance(found, pygit2.Tag) else None


def tag_info(repo: Repository, sha: str) -> tuple[str, str] | None:
    """The name and message of an annotated tag object, or None if sha is no tag."""
    found = _object(repo, sha)
    if not isinstance(found, pygit2.Tag):
        return None
    return str(found.name), str(found.message or "")


# -- commits -------------------------------------------------------------------------------------------


def _signature(when: int) -> pygit2.Signature:
    return pygit2.Signature(IDENTITY[0], IDENTITY[1], when, 0)


def commit_files(
    repo: Repository,
    parent: str,
    files: Mapping[str, bytes],
    message: str,
    when: int,
    removed: Iterable[str] = (),
) -> str:
    """A new commit (no ref moved): parent's tree with files (path -> bytes) replaced or added,
    and the paths in `removed` taken out (a folder left empty goes too)."""
    base = _commit(repo, parent)
    changes: dict[tuple[str, ...], bytes | None] = {tuple(p.split("/")): None for p in removed}
    changes.update({tuple(p.split("/")): d for p, d in files.items()})
    tree = _replace(repo.raw, base.tree, changes)
    sig = _signature(when)
    return str(repo.raw.create_commit(None, sig, sig, message, tree, [base.id]))


def _replace(
    repo: pygit2.Repository, tree: pygit2.Tree | None, files: Mapping[tuple[str, ...], bytes | None]
) -> pygit2.Oid:
    """The tree with files replaced, added or (None) removed."""
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    here = {parts[0]: data for parts, data in files.items() if len(parts) == 1}
    below: dict[str, dict[tuple[str, ...], bytes | None]] = {}
    for parts, data in files.items():
        if len(parts) > 1:
            below.setdefault(parts[0], {})[parts[1:]] = data
    for name, data in here.items():
        if data is None:
            if builder.get(name) is not None:
                builder.remove(name)
        else:
            builder.insert(name, repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    for name, nested in below.items():
        old = builder.get(name)
        subtree = repo[old.id] if old is not None and old.filemode == pygit2.GIT_FILEMODE_TREE else None
        assert subtree is None or isinstance(subtree, pygit2.Tree)
        if subtree is None and all(data is None for data in nested.values()):
            continue  # nothing to remove there
        written = _replace(repo, subtree, nested)
        if len(repo[written].peel(pygit2.Tree)) == 0:
            builder.remove(name)
        else:
            builder.insert(name, written, pygit2.GIT_FILEMODE_TREE)
    return builder.write()


def record_commit(
    repo: Repository, parent: str | None, name: str, data: bytes, message: str, when: int
) -> str:
    """A new commit (no ref moved) whose tree holds one file, `name`, with data; after parent.

    Records that keep their own history (branch history, local merge requests) are chains of
    such commits under a ref.
    """
    builder = repo.raw.TreeBuilder()
    builder.insert(name, repo.raw.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    sig = _signature(when)
    parents = [pygit2.Oid(hex=parent)] if parent else []
    return str(repo.raw.create_commit(None, sig, sig, message, builder.write(), parents))


def record_tree_commit(
    repo: Repository, parent: str | None, changes: Mapping[str, bytes | None], message: str, when: int
) -> str:
    """A new commit (no ref moved) after parent whose tree is parent's (empty without one) with
    changes: path -> bytes written, None removed. Records of many small files (a source's history:
    one file per package) keep each commit as small as what changed."""
    base = _commit(repo, parent).tree if parent else None
    tree = _replace(repo.raw, base, {tuple(p.split("/")): d for p, d in changes.items()})
    sig = _signature(when)
    parents = [pygit2.Oid(hex=parent)] if parent else []
    return str(repo.raw.create_commit(None, sig, sig, message, tree, parents))


def path_id(repo: Repository, commit: str, path: str) -> str | None:
    """The id of the object at path in a commit's tree (None: no such path), read without the
    rest of the tree: one file's history over many commits stays cheap."""
    try:
        return str(_commit(repo, commit).tree[path].id)
    except KeyError:
        return None


def tree_blob_ids(repo: Repository, commit: str | None) -> dict[str, str]:
    """Every file of a commit's tree as path -> blob id (empty for None): what a record of many
    files is compared against without reading a blob."""
    if commit is None:
        return {}
    found: dict[str, str] = {}
    stack: list[tuple[pygit2.Tree, str]] = [(_commit(repo, commit).tree, "")]
    while stack:
        tree, prefix = stack.pop()
        for entry in tree:
            if isinstance(entry, pygit2.Tree):
                stack.append((entry, f"{prefix}{entry.name}/"))
            else:
                found[f"{prefix}{entry.name}"] = str(entry.id)
    return found


def read_record(repo: Repository, commit: str, name: str) -> bytes:
    """The bytes of file `name` in a record commit; OperationFailed when it has none."""
    try:
        tree = repo.raw[commit].peel(pygit2.Commit).tree
        return bytes(repo.raw[tree[name].id].peel(pygit2.Blob).data)
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise OperationFailed(f"commit {commit} holds no {name}: {exc}", code="bad-record") from exc


def is_ancestor(repo: Repository, ancestor: str, descendant: str) -> bool:
    """Whether ancestor is descendant or one of its ancestors (False when either is unknown)."""
    if ancestor == descendant:
        return isinstance(_object(repo, ancestor), pygit2.Commit)
    if not isinstance(_object(repo, ancestor), pygit2.Commit):
        return False
    if not isinstance(_object(repo, descendant), pygit2.Commit):
        return False
    return bool(repo.raw.descendant_of(descendant, ancestor))


def _object(repo: Repository, sha: str) -> pygit2.Object | None:
    try:
        return repo.raw.get(sha)
    except (ValueError, KeyError):
        return None


def commits_between(repo: Repository, head: str, hide: list[str]) -> list[CommitInfo]:
    """The commits reachable from head and from none of hide, newest first."""
    sort = pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.TIME
    walker = repo.raw.walk(pygit2.Oid(hex=head), sort)
    for sha in hide:
        if isinstance(_object(repo, sha), pygit2.Commit):
            walker.hide(pygit2.Oid(hex=sha))
    return [_info(commit) for commit in walker]


def merge_commit(repo: Repository, target: str, source: str, message: str, when: int) -> str | None:
    """What target becomes to include source: source itself when a fast-forward is possible, else
    a new merge commit; None when the two conflict."""
    if is_ancestor(repo, target, source):
        return source
    if is_ancestor(repo, source, target):
        return target
    index = repo.raw.merge_commits(target, source)
    if index.conflicts is not None:
        return None
    sig = _signature(when)
    tree = index.write_tree(repo.raw)
    parents = [pygit2.Oid(hex=target), pygit2.Oid(hex=source)]
    return str(repo.raw.create_commit(None, sig, sig, message, tree, parents))


# -- the working tree ---------------------------------------------------------------------------------


def checked_out_branch(repo: Repository) -> str | None:
    """The branch the working tree has checked out (None: bare, detached or unborn)."""
    raw = repo.raw
    if raw.is_bare or raw.head_is_detached or raw.head_is_unborn:
        return None
    return str(raw.head.shorthand)


def worktree_clean(repo: Repository) -> bool:
    """Whether the index and tracked files match HEAD (untracked files do not count)."""
    ignored = {pygit2.enums.FileStatus.WT_NEW, pygit2.enums.FileStatus.IGNORED}
    return all(flags in ignored for flags in repo.raw.status().values())


def checkout_commit(repo: Repository, commit: str) -> None:
    """Make the index and tracked files those of commit (the branch ref is moved by the caller)."""
    tree = _commit(repo, commit).tree
    repo.raw.checkout_tree(tree, strategy=pygit2.enums.CheckoutStrategy.FORCE)  # type: ignore[no-untyped-call]
