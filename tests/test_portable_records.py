"""Nothing factory records holds a path of the machine that wrote it.

The records travel: `lineage push` carries the notes to every runner, a checkout is copied or
moved, GitLab runners build in directories that differ from job to job. A release directory, a
mirror or an output directory inside the checkout is recorded relative to it, so a copy of the
checkout (`cp -a`) or another runner's build directory finds its own releases in the same
notes, not the original's as well (`error[ambiguous-release]` before). Every record is grepped
for the checkout's absolute path: the notes and refs, RELEASE.json, the mirror's state.

The distribution is `tests.bumped_dist`'s (two composes of the Server repo), copied; the notes
other tests wrote on it (their releases, outside the checkout) are dropped from the copy first.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.core.states import ReleaseStatus
from pipeline.records import releases
from pipeline.records.lineage import Lineage
from tests.bumped_dist import SERVER, Bumped, bumped
from tests.test_lineage import chain, defs
from tests.test_sign_release import key

__all__ = ["bumped", "defs", "key"]  # fixtures, shared

FACTORY_REFS = ("refs/notes/", "refs/tags/compose/", "refs/composes/", "refs/history/", "refs/factory/")
RELEASES = ".factory/releases/repo-Server"
MIRROR = ".factory/mirror/repo-Server"


def git(cwd: Path, *argv: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["git", *argv], cwd=cwd, input=stdin, capture_output=True, check=True).stdout


def factory(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """factory run in `cwd`, as a user runs it there, with this interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *argv], cwd=cwd, capture_output=True, text=True, check=False
    )


def ok(cwd: Path, *argv: str) -> str:
    done = factory(cwd, *argv)
    assert done.returncode == 0, done.stderr
    return done.stdout


def copy_of(made: Bumped, where: Path) -> Path:
    """A copy of the composed checkout with no release or publication recorded yet."""
    where.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(made.root), str(where)], check=True)
    for ref in ("refs/notes/releases", "refs/notes/mirrors", "refs/notes/gc"):
        git(where, "update-ref", "-d", ref)
    return where


def release(cwd: Path, compose_id: str, signing: tuple[Path, str]) -> None:
    home, fingerprint = signing
    ok(cwd, "release", compose_id, "--to", RELEASES, "--gnupghome", str(home), "--key", fingerprint)


def recorded(root: Path) -> bytes:
    """Every record factory keeps in the repository: its refs' names and every object they
    reach (notes, their commits, tags), then RELEASE.json of each release and the mirrors'
    files (their state, the files factory wrote for them) in the checkout."""
    names = git(root, "for-each-ref", "--format=%(refname)").decode().split()
    ours = [n for n in names if n.startswith(FACTORY_REFS)]
    listed = git(root, "rev-list", "--objects", "--no-object-names", *ours)
    objects = git(root, "cat-file", "--batch", stdin=listed)
    files = [p.read_bytes() for p in sorted((root / ".factory").rglob("RELEASE.json"))]
    files += [p.read_bytes() for p in sorted((root / ".factory" / "mirror").rglob("*")) if p.is_file()]
    return b"\n".join([*(n.encode() for n in ours), objects, *files])


def machine_paths(root: Path, *checkouts: Path) -> list[str]:
    """The checkouts' absolute paths that the records of `root` hold."""
    found = recorded(root)
    return [str(c) for c in checkouts for p in {c, c.resolve()} if str(p).encode() in found]


def test_a_copied_checkout_releases_and_publishes_its_own_releases(
    bumped: Bumped, key: tuple[Path, str], tmp_path: Path
) -> None:
    first, second = bumped.server
    original = copy_of(bumped, tmp_path / "original")
    release(original, first, key)
    said = ok(original, "publish", SERVER, "--to", MIRROR, "--json")
    assert json.loads(said)["compose_id"] == first
    note = json.loads(git(original, "notes", "--ref=releases", "show", f"compose/{first}"))
    assert note["releases"][-1]["path"] == f"{RELEASES}/{first}"  # relative to the checkout
    mirrors = json.loads(git(original, "notes", "--ref=mirrors", "show", f"compose/{first}"))
    assert (mirrors["publications"][-1]["mirror"], mirrors["publications"][-1]["release"]) == (
        MIRROR,
        f"{RELEASES}/{first}",
    )
    assert machine_paths(original, original) == []

    # The copy (another machine's checkout, a moved one) reads the same notes as its own.
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    again = json.loads(ok(copy, "publish", SERVER, "--to", MIRROR, "--json"))
    assert again["compose_id"] == first and again["release"] == str(copy / RELEASES / first)
    release(copy, second, key)
    done = factory(copy, "publish", SERVER, "--to", MIRROR, "--json")
    assert done.returncode == 0, done.stderr  # not ambiguous-release: one directory, the copy's
    assert json.loads(done.stdout)["compose_id"] == second
    (node,) = json.loads(ok(copy, "status", SERVER, "--json"))["nodes"]
    live = [(r["compose_id"], r["path"]) for r in node["released"] if r["live"]]
    assert live == [(second, str(copy / RELEASES / second))]  # the copy's own, by the one definition of live
    ok(copy, "gc", "--keep", "1")  # marks what it collected from the output directory
    gone = json.loads(ok(copy, "lineage", first, "--json"))["collected"]
    assert sorted(c["where"] for c in gone) == [".factory/output", "file:.factory/store"]
    assert f"removed from {copy / '.factory' / 'output'} by gc" in ok(copy, "lineage", first)
    assert machine_paths(copy, original, copy) == []
    # The original is unchanged by the copy's work: its release is still the one it publishes.
    assert json.loads(ok(original, "publish", SERVER, "--to", MIRROR, "--json"))["compose_id"] == first


def test_a_runner_in_another_build_directory_finds_its_releases_in_the_pulled_notes(
    bumped: Bumped, key: tuple[Path, str], tmp_path: Path
) -> None:
    """Two jobs of one project on runners whose build directories differ: lineage goes through
    the Git remote, the release directories through the runners' cache (`.factory/`)."""
    first, second = bumped.server
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    one = copy_of(bumped, tmp_path / "builds" / "0" / "project")
    git(one, "remote", "add", "origin", str(remote))
    git(one, "push", "-q", "origin", "HEAD:refs/heads/main")
    release(one, first, key)
    ok(one, "lineage", "push")

    two = tmp_path / "builds" / "1" / "project"
    git(tmp_path, "clone", "-q", "-b", "main", str(remote), str(two))
    for cached in ("output", "distgit", "releases"):
        shutil.copytree(one / ".factory" / cached, two / ".factory" / cached, symlinks=True)
    ok(two, "lineage", "pull")
    release(two, second, key)
    done = factory(two, "publish", SERVER, "--to", str(tmp_path / "mirror"), "--json")
    assert done.returncode == 0, done.stderr
    published = json.loads(done.stdout)
    assert (published["compose_id"], published["release"]) == (second, str(two / RELEASES / second))
    ok(two, "lineage", "push")
    assert machine_paths(two, one, two) == []
    assert machine_paths(remote, one, two) == []


def test_notes_written_with_absolute_paths_still_read(defs: tuple[Path, str], tmp_path: Path) -> None:
    """A release note written before the rule (its directory as an absolute path) reads as one
    outside the checkout: found where it says, live by the same definition as a relative one."""
    path, commit = defs
    lineage = Lineage(path, "42")
    _, _, repo = chain(lineage, commit)
    inside, outside = path / ".factory" / "releases" / "repo", tmp_path / "elsewhere" / "repo"
    for where in (inside, outside):
        (where / repo.compose_id).mkdir(parents=True)
        (where / "latest").symlink_to(repo.compose_id)
    old = {"status": "released", "path": str(outside / repo.compose_id), "time": "2026-11-21T10:00:00Z"}
    git(path, "notes", "--ref=releases", "add", "-m", json.dumps(
        {"format": 1, "compose_id": repo.compose_id, "releases": [old]}), f"compose/{repo.compose_id}")  # fmt: skip
    entry = releases.ReleaseEntry(
        ReleaseStatus.RELEASED, releases.recorded_path(lineage, inside / repo.compose_id), "t"
    )
    releases.append(lineage, {repo.compose_id: [entry]})
    note = releases.read(Lineage(path, "42"), repo.compose_id)
    assert [(e.path, e.in_checkout) for e in note.entries] == [
        (str(outside / repo.compose_id), False),  # as it was written
        (f".factory/releases/repo/{repo.compose_id}", True),  # relative to the checkout
    ]
    root = releases.checkout(lineage)
    assert [e.location(root) for e in note.entries] == [outside / repo.compose_id, path / entry.path]
    assert [e.live(root) for e in note.entries] == [True, True]
    (outside / "latest").unlink()
    assert [e.live(root) for e in releases.read(lineage, repo.compose_id).entries] == [False, True]
