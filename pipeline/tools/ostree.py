"""ostree: archive repositories, commits with metadata, refs, fsck, checkout, summary, history
(re-commits on a parent, static deltas, pruning by depth).

Command lines are built by pure functions (tested by exact equality); the runners below start
them through `pipeline.run`. Commit metadata is written as strings (`--add-metadata-string`)
and read back with `ostree show --print-metadata-key`, which prints GVariant text; history is
read from `ostree log` (`parse_log`).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline import run

NO_SUCH_KEY = "No such metadata key"


def init_argv(repo: Path) -> list[str]:
    """Make an archive-mode repository (the mode that is served over HTTP and pulled from)."""
    return ["ostree", "init", "--mode=archive", f"--repo={repo}"]


def commit_argv(
    repo: Path,
    tree: Path,
    ref: str,
    *,
    subject: str,
    metadata: Mapping[str, str],
    timestamp: int,
    parent: str | None = None,
) -> list[str]:
    """Commit the directory tree on ref; files owned by root, permissions canonical.

    The timestamp is pinned (the definitions commit time), so the commit object depends only
    on the tree, the metadata and the parent.
    """
    argv = [
        "ostree",
        "commit",
        f"--repo={repo}",
        f"--branch={ref}",
        f"--tree=dir={tree}",
        f"--subject={subject}",
        f"--timestamp=@{timestamp}",
        "--owner-uid=0",
        "--owner-gid=0",
        "--canonical-permissions",
    ]
    argv += [f"--add-metadata-string={key}={metadata[key]}" for key in sorted(metadata)]
    if parent is not None:
        argv.append(f"--parent={parent}")
    return argv


def refs_argv(repo: Path) -> list[str]:
    return ["ostree", "refs", f"--repo={repo}"]


def rev_parse_argv(repo: Path, ref: str) -> list[str]:
    return ["ostree", "rev-parse", f"--repo={repo}", ref]


def log_argv(repo: Path, ref: str) -> list[str]:
    return ["ostree", "log", f"--repo={repo}", ref]


def show_metadata_argv(repo: Path, rev: str, key: str) -> list[str]:
    return ["ostree", "show", f"--repo={repo}", f"--print-metadata-key={key}", rev]


def fsck_argv(repo: Path) -> list[str]:
    return ["ostree", "fsck", f"--repo={repo}"]


def checkout_argv(repo: Path, rev: str, destination: Path) -> list[str]:
    """Check out as the calling user (`-U`): no root needed, ownership not applied."""
    return ["ostree", "checkout", f"--repo={repo}", "-U", rev, str(destination)]


def summary_argv(repo: Path) -> list[str]:
    return ["ostree", "summary", f"--repo={repo}", "-u"]


def gpg_sign_argv(repo: Path, commit: str, key: str, home: Path) -> list[str]:
    """Add a detached GPG signature to a commit."""
    return ["ostree", f"--repo={repo}", "gpg-sign", f"--gpg-homedir={home}", commit, key]


def signed_summary_argv(repo: Path, key: str, home: Path) -> list[str]:
    """Regenerate the summary and sign it."""
    return ["ostree", f"--repo={repo}", "summary", "-u", f"--gpg-sign={key}", f"--gpg-homedir={home}"]


def ls_argv(repo: Path, rev: str, path: str = "/") -> list[str]:
    """List a commit's tree recursively, names only (`-R -C` prints checksums too: not used)."""
    return ["ostree", "ls", f"--repo={repo}", "-R", "--nul-filenames-only", rev, path]


def ls_objects_argv(repo: Path, rev: str) -> list[str]:
    """List a commit's tree recursively with the checksums of its objects (`-C`)."""
    return ["ostree", "ls", f"--repo={repo}", "-R", "-C", rev]


def pull_local_argv(repo: Path, source: Path, rev: str) -> list[str]:
    """Copy one commit (without its history: `--depth=0`) from another local repository."""
    return ["ostree", "pull-local", f"--repo={repo}", "--depth=0", str(source), rev]


def create_ref_argv(repo: Path, ref: str, commit: str) -> list[str]:
    return ["ostree", "refs", f"--repo={repo}", f"--create={ref}", commit]


def recommit_argv(
    repo: Path,
    source: str,
    *,
    refs: Sequence[str],
    parent: str | None,
    subject: str,
    metadata: Mapping[str, str],
    timestamp: int,
    key: str | None = None,
    home: Path | None = None,
) -> list[str]:
    """A new commit of the tree of commit `source` (already in repo) on `parent`, bound to `refs`.

    `--orphan`: no ref moves yet (the caller moves it once the delta exists). The binding is
    what a client pulling one of `refs` with gpg-verify checks; with a key the commit is signed
    in the same transaction, so it is never there unsigned.
    """
    argv = [
        "ostree",
        "commit",
        f"--repo={repo}",
        "--orphan",
        f"--tree=ref={source}",
        f"--parent={parent or 'none'}",
        *(f"--bind-ref={ref}" for ref in refs),
        f"--subject={subject}",
        f"--timestamp=@{timestamp}",
    ]
    argv += [f"--add-metadata-string={name}={metadata[name]}" for name in sorted(metadata)]
    if key is not None and home is not None:
        argv += [f"--gpg-sign={key}", f"--gpg-homedir={home}"]
    return argv


def set_ref_argv(repo: Path, ref: str, commit: str) -> list[str]:
    """Point ref at commit, creating or moving it (ostree writes the ref file by rename)."""
    return ["ostree", "refs", f"--repo={repo}", f"--create={ref}", "--force", commit]


def delete_ref_argv(repo: Path, ref: str) -> list[str]:
    return ["ostree", "refs", f"--repo={repo}", "--delete", ref]


def static_delta_argv(repo: Path, source: str, target: str) -> list[str]:
    """A static delta from commit source to commit target (none made when it exists)."""
    return [
        "ostree",
        "static-delta",
        "generate",
        f"--repo={repo}",
        "--if-not-exists",
        f"--from={source}",
        f"--to={target}",
    ]


def static_deltas_argv(repo: Path) -> list[str]:
    return ["ostree", "static-delta", "list", f"--repo={repo}"]


def prune_argv(repo: Path, retain: Mapping[str, int], *, dry_run: bool = False) -> list[str]:
    """Delete what no ref reaches within its depth: `retain` gives the parents kept per ref
    (`--retain-branch-depth`); every other ref keeps its own commit only (`--depth=0`)."""
    argv = ["ostree", "prune", f"--repo={repo}", "--refs-only", "--depth=0"]
    argv += [f"--retain-branch-depth={ref}={retain[ref]}" for ref in sorted(retain)]
    return [*argv, "--no-prune"] if dry_run else argv


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One commit of `ostree log`: its checksum, parent (None: none recorded), time and version."""

    commit: str
    parent: str | None
    timestamp: int
    version: str | None


def parse_log(output: str) -> tuple[list[LogEntry], bool]:
    """The commits `ostree log` printed, newest first, and whether the history goes on beyond
    the last one (a parent that is not in the repository: pruned, or never pulled)."""
    entries: list[LogEntry] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        if fields:
            when = dt.datetime.strptime(fields["Date"], "%Y-%m-%d %H:%M:%S %z")
            entries.append(
                LogEntry(fields["commit"], fields.get("Parent"), int(when.timestamp()), fields.get("Version"))
            )
            fields.clear()

    truncated = False
    for line in output.splitlines():
        if line.startswith("commit "):
            flush()
            fields["commit"] = line.split(None, 1)[1].strip()
        elif line.startswith("<< History beyond this commit not fetched"):
            truncated = True
        elif fields and not line.startswith(" ") and ":" in line:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip(), value.strip())
    flush()
    return entries, truncated


def parse_refs(output: str) -> list[str]:
    """The refs `ostree refs` printed, sorted."""
    return sorted(line.strip() for line in output.splitlines() if line.strip())


def parse_gvariant_string(text: str) -> str:
    """The value of a GVariant text string such as `'FL-42-...'` (quotes and escapes removed)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        body = text[1:-1]
        out, escaped = [], False
        for char in body:
            if escaped or char != "\\":
                out.append(char)
                escaped = False
            else:
                escaped = True
        return "".join(out)
    return text


def parse_ls_objects(output: str) -> list[str]:
    """The objects `ls_objects_argv` names, as `objects/` paths of an archive repository, sorted.

    A directory line holds its dirtree and dirmeta checksums, any other line its file object's:
    `d00755 0 0 0 <dirtree> <dirmeta> /usr`, `-00644 0 0 3 <file> /usr/a`.
    """
    found = set()
    for line in output.splitlines():
        fields = line.split(None, 6)
        if len(fields) < 6:
            continue
        if fields[0].startswith("d"):
            found.update({object_path(fields[4], "dirtree"), object_path(fields[5], "dirmeta")})
        else:
            found.add(object_path(fields[4], "filez"))
    return sorted(found)


def object_path(checksum: str, kind: str) -> str:
    """Where an archive repository keeps an object: `objects/ab/cdef….dirtree`."""
    return f"objects/{checksum[:2]}/{checksum[2:]}.{kind}"


def parse_ls(output: str) -> list[str]:
    """Paths printed by `ls_argv` (NUL-separated), sorted."""
    return sorted(p for p in output.split("\0") if p)


def init(repo: Path) -> None:
    """Make an archive repository at repo, unless one is already there.

    Objects fetched from the artifact store may be there before the repository is made, and
    `ostree init` refuses a directory holding some: the repository is then made beside it and
    what it lacks (config last) moved in.
    """
    if (repo / "config").is_file():
        return
    repo.mkdir(parents=True, exist_ok=True)
    if not any(repo.iterdir()):
        run.run(init_argv(repo))
        return
    with tempfile.TemporaryDirectory(prefix=".ostree-init-", dir=repo.parent) as scratch:
        fresh = Path(scratch) / "repo"
        run.run(init_argv(fresh))
        for item in sorted(fresh.iterdir(), key=lambda p: p.name == "config"):
            if not (repo / item.name).exists():
                os.replace(item, repo / item.name)


def commit(
    repo: Path,
    tree: Path,
    ref: str,
    *,
    subject: str,
    metadata: Mapping[str, str],
    timestamp: int,
    parent: str | None = None,
) -> str:
    """Commit tree on ref; the new commit's checksum."""
    argv = commit_argv(
        repo, tree, ref, subject=subject, metadata=metadata, timestamp=timestamp, parent=parent
    )
    return run.run(argv).strip()


def gpg_sign(repo: Path, commit: str, key: str, home: Path) -> None:
    run.run(gpg_sign_argv(repo, commit, key, home), env={**os.environ, "GNUPGHOME": str(home)})


def sign_summary(repo: Path, key: str, home: Path) -> None:
    run.run(signed_summary_argv(repo, key, home), env={**os.environ, "GNUPGHOME": str(home)})


def refs(repo: Path) -> list[str]:
    """Every ref of the repository, sorted."""
    return parse_refs(run.run(refs_argv(repo)))


def rev_parse(repo: Path, ref: str) -> str:
    """The commit checksum a ref points at (CommandFailed if there is no such ref)."""
    return run.run(rev_parse_argv(repo, ref)).strip()


def head(repo: Path, ref: str) -> str | None:
    """The commit a ref points at, or None when the repository or the ref does not exist."""
    if not (repo / "config").is_file() or ref not in refs(repo):
        return None
    return rev_parse(repo, ref)


def log(repo: Path, ref: str) -> str:
    """`ostree log` of a ref: every commit of its history, newest first."""
    return run.run(log_argv(repo, ref))


def metadata(repo: Path, rev: str, key: str) -> str | None:
    """One string of a commit's metadata, or None when the commit has no such key."""
    try:
        return parse_gvariant_string(run.run(show_metadata_argv(repo, rev, key)))
    except run.CommandFailed as exc:
        if NO_SUCH_KEY in exc.stderr:
            return None
        raise


def fsck(repo: Path) -> str:
    """Check every object of the repository; its report (CommandFailed on corruption)."""
    return run.run(fsck_argv(repo))


def checkout(repo: Path, rev: str, destination: Path) -> None:
    run.run(checkout_argv(repo, rev, destination))


def update_summary(repo: Path) -> None:
    run.run(summary_argv(repo))


def ls(repo: Path, rev: str, path: str = "/") -> list[str]:
    """Every path in a commit's tree under path (directories too), sorted."""
    return parse_ls(run.run(ls_argv(repo, rev, path)))


def objects(repo: Path, commit: str) -> list[str]:
    """Every object a consumer of the commit needs, as paths relative to the repository: the
    commit object (with its detached metadata, if any) and its tree's objects. Not its parents:
    the compose that made a parent holds it (and a consumer of a commit needs no parent)."""
    own = [object_path(commit, kind) for kind in ("commit", "commitmeta")]
    found = [path for path in own if (repo / path).is_file()]
    return sorted({*found, *parse_ls_objects(run.run(ls_objects_argv(repo, commit)))})


def pull_local(repo: Path, source: Path, commit: str, ref: str) -> None:
    """Copy one commit from another local repository and point ref at it.

    By checksum, not by ref: the source's ref may have moved on since the commit was recorded.
    """
    run.run(pull_local_argv(repo, source, commit))
    run.run(create_ref_argv(repo, ref, commit))


def history(repo: Path, ref: str) -> list[LogEntry]:
    """The commits of a ref, newest first, as far as the repository holds them."""
    return parse_log(log(repo, ref))[0]


def pull_objects(repo: Path, source: Path, commit: str) -> None:
    """Copy one commit and its objects (not its parents) from another local repository; no ref."""
    run.run(pull_local_argv(repo, source, commit))


def recommit(
    repo: Path,
    source: str,
    *,
    refs: Sequence[str],
    parent: str | None,
    subject: str,
    metadata: Mapping[str, str],
    timestamp: int,
    key: str | None = None,
    home: Path | None = None,
) -> str:
    """Commit the tree of `source` again on `parent` (see `recommit_argv`); the new checksum."""
    argv = recommit_argv(
        repo,
        source,
        refs=refs,
        parent=parent,
        subject=subject,
        metadata=metadata,
        timestamp=timestamp,
        key=key,
        home=home,
    )
    env = {**os.environ, "GNUPGHOME": str(home)} if home is not None else None
    return run.run(argv, env=env).strip()


def set_ref(repo: Path, ref: str, commit: str) -> None:
    run.run(set_ref_argv(repo, ref, commit))


def delete_ref(repo: Path, ref: str) -> None:
    run.run(delete_ref_argv(repo, ref))


def static_delta(repo: Path, source: str, target: str) -> None:
    run.run(static_delta_argv(repo, source, target))


def static_deltas(repo: Path) -> list[str]:
    """The static deltas of the repository (`FROM-TO`, or `TO` for one from scratch), sorted."""
    return [d for d in parse_refs(run.run(static_deltas_argv(repo))) if not d.startswith("(")]


def prune(repo: Path, retain: Mapping[str, int]) -> None:
    """Delete every object no ref reaches within its depth (see `prune_argv`)."""
    run.run(prune_argv(repo, retain))


@cache
def version() -> str:
    """The version of ostree, e.g. `2022.7`."""
    for line in run.run(["ostree", "--version"]).splitlines():
        if line.strip().startswith("Version:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    raise run.CommandFailed(["ostree", "--version"], 0, "no Version: line in the output")
