"""Git through its own command line, for the one hot path where that is cheaper than pygit2.

A warm `factory plan` needs only the tree ids of two revisions to find both graphs in the cache;
importing pygit2 takes longer than the rest of that command. Pushing and fetching lineage
(`remote.py`) also goes through `git` here. Everything else goes through `gitrepo` (pygit2).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pipeline import run
from pipeline.core.errors import InvalidInput

NO_REVISION = "none"  # `--base none`: compare against an empty tree


def git(git_dir: Path, *argv: str, env: Mapping[str, str] | None = None) -> str:
    """Run `git --git-dir=GIT_DIR ARGV...`; its stdout (run.CommandFailed when it fails)."""
    return run.run(["git", f"--git-dir={git_dir}", *argv], env=env)


def discover(path: str | Path) -> tuple[Path, Path]:
    """(the Git directory, the top of the working tree, or the Git directory when bare)."""
    try:
        out = run.run(["git", "-C", str(path), "rev-parse", "--absolute-git-dir", "--is-bare-repository"])
    except run.CommandFailed as exc:
        raise InvalidInput(f"{path} is not inside a Git repository", code="not-a-repository") from exc
    git_dir, bare = out.split()
    if bare == "true":
        return Path(git_dir), Path(git_dir)
    top = run.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"]).strip()
    return Path(git_dir), Path(top)


def tree_id(git_dir: Path, rev: str) -> str | None:
    """The root tree id of a revision, or None when Git cannot name it (the caller falls back)."""
    if rev == NO_REVISION:
        return None
    try:
        return (
            run.run(["git", f"--git-dir={git_dir}", "rev-parse", "--verify", "-q", f"{rev}^{{tree}}"]).strip()
            or None
        )
    except run.CommandFailed:
        return None
