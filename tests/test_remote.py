"""`factory lineage push|pull`: many clones record composes and push to one bare remote at once."""

from __future__ import annotations

import hashlib
import multiprocessing
import subprocess
from pathlib import Path

import pygit2
import pytest

from pipeline import cli
from pipeline.core.records import Record, outputs_digest
from pipeline.core.states import ComposeStatus
from pipeline.git import notes
from pipeline.git import repo as gitrepo
from pipeline.git.repo import Repository
from pipeline.records.lineage import NOTES_REF, Lineage
from pipeline.records.remote import LineageConflict, Remote
from tests.conftest import commit_tree, example_tree

PROCESSES = 8
COMPOSES_EACH = 3
DATE = "20261121"


def git(*argv: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote holding one commit of the example definitions."""
    work = tmp_path / "seed"
    commit_tree(work, example_tree(), "Example definitions\n")
    bare = tmp_path / "remote.git"
    git("clone", "--quiet", "--bare", str(work), str(bare))
    return bare


def clone(remote: Path, dest: Path) -> Path:
    git("clone", "--quiet", str(remote), str(dest))
    return dest


def compose(repo: Path, node: str, name: str, finished: str = "2026-11-21T10:00:00Z") -> str:
    """Record one FINISHED compose of `node` as the executor would, and make it latest good."""
    lineage = Lineage(repo)
    commit = gitrepo.resolve(lineage.repo, "HEAD").id
    cid = lineage.reserve("FL", "42", name, DATE, "ci", commit)
    lineage.finish([_record(cid, node, commit, finished)])
    lineage.promote(node, cid)
    lineage.close()
    return cid


def _record(cid: str, node: str, commit: str, finished: str) -> Record:
    return Record(
        compose_id=cid,
        node=node,
        input_digest="0" * 64,
        key=hashlib.sha256(cid.encode()).hexdigest(),
        commit=commit,
        inputs=(),
        pins=(),
        outputs=(),
        outputs_digest=outputs_digest(()),
        tools=(("factory", "test"),),
        started=finished,
        finished=finished,
        status=ComposeStatus.FINISHED,
    )


def _runner(repo: str, number: int, start: multiprocessing.synchronize.Barrier) -> None:
    for n in range(COMPOSES_EACH):
        compose(Path(repo), f"build:c{number}x{n}@0123abcd", f"c{number}x{n}-0123abcd")
    start.wait()
    Remote(repo).push()


def test_eight_runners_pushing_at_once_lose_no_record(remote: Path, tmp_path: Path) -> None:
    clones = [clone(remote, tmp_path / f"runner{i}") for i in range(PROCESSES)]
    context = multiprocessing.get_context("fork")
    start = context.Barrier(PROCESSES)
    workers = [context.Process(target=_runner, args=(str(c), i, start)) for i, c in enumerate(clones)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    expected = PROCESSES * COMPOSES_EACH
    tags = git("tag", "-l", "compose/*", cwd=remote).split()
    assert len(tags) == expected
    notes = git("notes", f"--ref={NOTES_REF}", "list", cwd=remote).splitlines()
    assert len(notes) == expected
    latest = git("for-each-ref", "--format=%(refname)", "refs/composes/latest/", cwd=remote).split()
    assert len(latest) == expected
    # Every clone that pulls sees every record.
    fresh = clone(remote, tmp_path / "reader")
    Remote(fresh).pull()
    assert len(Lineage(fresh).latest()) == expected
    for tag in tags:
        assert Lineage(fresh).get(tag.removeprefix("compose/")).status == "FINISHED"


def test_push_then_pull_through_the_cli(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    cid = compose(a, "module:base-runtime:f42", "base-runtime-f42")
    assert cli.main(["lineage", "push", "--repo", str(a), "--remote", "origin"]) == 0
    assert cli.main(["lineage", "pull", "--repo", str(b)]) == 0
    assert Lineage(b).latest() == {"module:base-runtime:f42": cid}
    assert cli.main(["lineage", cid, "--repo", str(b), "--json"]) == 0
    assert cid in capsys.readouterr().out


def test_latest_good_merges_three_ways(remote: Path, tmp_path: Path) -> None:
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    first = compose(a, "repo:Server", "Server", "2026-11-21T10:00:00Z")
    Remote(a).push()
    Remote(b).pull()
    second = compose(b, "repo:Server", "Server", "2026-11-21T11:00:00Z")
    assert second != first
    Remote(b).push()
    # a still holds `first`, the value it last exchanged: the remote's newer one wins.
    Remote(a).push()
    assert Lineage(a).latest()["repo:Server"] == second
    assert git("rev-parse", "refs/composes/latest/42/repo/Server", cwd=remote).strip() == str(
        pygit2.Repository(str(b)).references["refs/tags/compose/" + second].target
    )


def test_two_composes_with_one_id_are_a_conflict(remote: Path, tmp_path: Path) -> None:
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    compose(a, "repo:Server", "Server", "2026-11-21T10:00:00Z")
    compose(b, "repo:Server", "Server", "2026-11-21T10:05:00Z")  # the same ID, not pulled first
    Remote(a).push()
    with pytest.raises(LineageConflict):
        Remote(b).push()


def test_notes_merge_is_the_union_of_both_sides(remote: Path, tmp_path: Path) -> None:
    a = clone(remote, tmp_path / "a")
    compose(a, "build:one@0123abcd", "one-0123abcd")
    repo = pygit2.Repository(str(a))
    base = str(repo.references[NOTES_REF].target)
    compose(a, "build:two@0123abcd", "two-0123abcd")
    ours = str(repo.references[NOTES_REF].target)
    repo.references[NOTES_REF].set_target(pygit2.Oid(hex=base))
    compose(a, "build:three@0123abcd", "three-0123abcd")
    theirs = str(pygit2.Repository(str(a)).references[NOTES_REF].target)
    repo = pygit2.Repository(str(a))
    merged = notes.merge(Repository(repo), ours, theirs, NOTES_REF)
    commit = repo.get(merged)
    assert isinstance(commit, pygit2.Commit)
    assert [str(p) for p in commit.parent_ids] == [ours, theirs]
    repo.references[NOTES_REF].set_target(pygit2.Oid(hex=merged))
    assert len(git("notes", f"--ref={NOTES_REF}", "list", cwd=a).splitlines()) == 3
    assert notes.merge(Repository(repo), merged, ours, NOTES_REF) == merged  # ours already holds theirs


def refnames(prefix: str, cwd: Path) -> list[str]:
    return git("for-each-ref", "--format=%(refname)", prefix, cwd=cwd).split()


def test_a_retirement_travels_and_is_never_undone_by_a_pull(remote: Path, tmp_path: Path) -> None:
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    cid = compose(a, "repo:Workstation", "Workstation")
    kept = compose(a, "repo:Server", "Server")
    Remote(a).push()
    Remote(b).pull()
    assert Lineage(b).latest() == {"repo:Server": kept, "repo:Workstation": cid}
    # b retires Workstation and pushes: the remote loses the latest-good ref, gains the retired one.
    assert Lineage(b).retire("repo:Workstation") == cid
    Remote(b).push()
    assert refnames("refs/composes/latest/", remote) == ["refs/composes/latest/42/repo/Server"]
    assert refnames("refs/composes/retired/", remote) == ["refs/composes/retired/42/repo/Workstation"]
    # a still has the old ref and did not move it: the remote's deletion wins on its next pull...
    Remote(a).pull()
    assert Lineage(a).latest() == {"repo:Server": kept}
    assert Lineage(a).retired() == {"repo:Workstation": cid}
    # ...and b's own pull never brings it back.
    Remote(b).push()
    Remote(b).pull()
    assert Lineage(b).latest() == {"repo:Server": kept}
    assert refnames("refs/composes/latest/", remote) == ["refs/composes/latest/42/repo/Server"]


def test_a_ref_moved_after_the_base_wins_over_a_deletion(remote: Path, tmp_path: Path) -> None:
    a, b = clone(remote, tmp_path / "a"), clone(remote, tmp_path / "b")
    compose(a, "repo:Server", "Server", "2026-11-21T10:00:00Z")
    Remote(a).push()
    Remote(b).pull()
    newer = compose(a, "repo:Server", "Server", "2026-11-21T11:00:00Z")
    Remote(a).push()
    Lineage(b).retire("repo:Server")  # from the value it pulled, which a has moved since
    Remote(b).push()
    assert Lineage(b).latest() == {"repo:Server": newer}
