"""Lineage in Git: compose IDs, node refs, records, and tags/notes/refs in real repositories.

Every repository here is a real one made in tmp_path, and git's own CLI reads what pygit2
wrote. The concurrency test races 8 processes on one repository.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pygit2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.core.canonical import canonical_json
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.records import (
    COMPOSE_TYPES,
    InputRef,
    OutputFile,
    Record,
    check_record,
    compose_id,
    node_ref,
    outputs_digest,
    parse_compose_id,
)
from pipeline.core.states import ComposeStatus
from pipeline.git import refs as refs_module
from pipeline.git.packed_refs import packed_names
from pipeline.git.refs import compare_and_swap
from pipeline.git.repo import Repository
from pipeline.records.lineage import NOTES_REF, Lineage
from pipeline.records.refs import LATEST, node_from_ref
from pipeline.run import run
from tests.conftest import commit_tree, example_tree

OPENSSL_A = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
OPENSSL_B = "ffeeddccbbaa99887766554433221100ffeeddcc"
DATE = "20261121"


def git(repo: Path, *args: str) -> str:
    return run(
        ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@example.invalid", *args]
    )


@pytest.fixture
def defs(tmp_path: Path) -> tuple[Path, str]:
    """A definitions repository with one commit: (path, commit hash)."""
    path = tmp_path / "defs"
    return path, commit_tree(
        path, {"factory.yaml": b"release: {short: FL, version: '42'}\n"}, "Definitions\n"
    )


def record(
    cid: str,
    node: str,
    commit: str,
    *,
    inputs: tuple[Record, ...] = (),
    pins: tuple[tuple[str, str], ...] = (),
    status: str = "FINISHED",
    key: str = "k" * 64,
    finished: str = "2026-11-21T10:05:00Z",
) -> Record:
    outputs = (
        OutputFile(f"composes/{cid}/out.bin", 3, "a" * 64),
        OutputFile(f"composes/{cid}/b", 1, "b" * 64),
    )
    return Record(
        compose_id=cid,
        node=node,
        input_digest="d" * 64,
        key=key,
        commit=commit,
        inputs=tuple(InputRef(r.node, r.compose_id, r.outputs_digest) for r in inputs),
        pins=pins,
        outputs=outputs,
        outputs_digest=outputs_digest(outputs),
        tools=(("createrepo_c", "0.17.3"), ("rpmbuild", "4.18.0")),
        started="2026-11-21T10:00:00Z",
        finished=finished,
        status=ComposeStatus(status),
        message="" if status == "FINISHED" else "rpmbuild failed",
        manifest="f" * 64 if status == "FINISHED" else "",
    )


def chain(lineage: Lineage, commit: str) -> tuple[Record, Record, Record]:
    """A build pinning openssl@A, a module made of it, a variant repo made of the module."""
    build = record(
        lineage.reserve("FL", "42", "openssl-1a2b3c4d", DATE, "nightly", commit),
        "build:openssl@1a2b3c4d",
        commit,
        pins=(("openssl", OPENSSL_A),),
    )
    module = record(
        lineage.reserve("FL", "42", "base-runtime-f42", DATE, "nightly", commit),
        "module:base-runtime:f42",
        commit,
        inputs=(build,),
        pins=(("glibc", "0" * 40), ("openssl", OPENSSL_A)),
    )
    repo = record(
        lineage.reserve("FL", "42", "Server", DATE, "nightly", commit),
        "repo:Server",
        commit,
        inputs=(module, build),
    )
    lineage.finish([build, module, repo])
    return build, module, repo


# -- compose IDs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("FL", "42", "base-runtime-f42", DATE, "nightly", 0), "FL-42-base-runtime-f42-20261121.n.0"),
        (("FL", "42", "Server", DATE, "production", 0), "FL-42-Server-20261121.0"),
        (("FL", "42", "Server", DATE, "test", 3), "FL-42-Server-20261121.t.3"),
        (("FL", "42.1", "openssl-1a2b3c4d", DATE, "ci", 12), "FL-42.1-openssl-1a2b3c4d-20261121.ci.12"),
    ],
)
def test_compose_id_format_and_parse(parts: tuple[str, str, str, str, str, int], expected: str) -> None:
    assert compose_id(*parts) == expected
    assert parse_compose_id(expected) == parts


@given(
    short=st.from_regex(r"[A-Z][A-Za-z0-9]{0,5}", fullmatch=True),
    version=st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2})?", fullmatch=True),
    name=st.from_regex(r"[a-z0-9][a-z0-9+_-]{0,20}", fullmatch=True),
    day=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    type_=st.sampled_from(sorted(COMPOSE_TYPES)),
    respin=st.integers(min_value=0, max_value=10_000),
)
def test_compose_id_round_trips(
    short: str, version: str, name: str, day: dt.date, type_: str, respin: int
) -> None:
    date = day.strftime("%Y%m%d")
    assert parse_compose_id(compose_id(short, version, name, date, type_, respin)) == (
        short,
        version,
        name,
        date,
        type_,
        respin,
    )


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "FL-42-Server",
        "FL-42-Server-2026112.n.0",  # 7-digit date
        "FL-42-Server-20261321.n.0",  # month 13
        "FL-42-Server-20261121.x.0",  # unknown type
        "FL-42-Server-20261121.n.01",  # leading zero respin
        "FL-42-Server-20261121.n",
        "FL-42-20261121.n.0",  # no name
        "FL-42-Ser ver-20261121.n.0",
        "FL-42-a..b-20261121.n.0",
        "FL-42-Server-20261121.n.0\n",
    ],
)
def test_parse_compose_id_rejects_garbage(garbage: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_compose_id(garbage)
    assert caught.value.code == "invalid-compose-id"


@pytest.mark.parametrize(
    "parts",
    [
        ("FL", "42", "Server", DATE, "weekly", 0),
        ("F-L", "42", "Server", DATE, "nightly", 0),
        ("FL", "42", "Server/dvd", DATE, "nightly", 0),
        ("FL", "42", "Server", "2026-11-21", "nightly", 0),
        ("FL", "42", "Server", DATE, "nightly", -1),
    ],
)
def test_compose_id_refuses_bad_parts(parts: tuple[str, str, str, str, str, int]) -> None:
    with pytest.raises(InvalidInput):
        compose_id(*parts)


# -- node refs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "ref"),
    [
        ("build:openssl@1a2b3c4d", "build/openssl@1a2b3c4d"),
        ("module:base-runtime:f42", "module/base-runtime/f42"),
        ("repo:Server", "repo/Server"),
        ("ostree:AtomicHost/host", "ostree/AtomicHost/host"),
        ("container:Cloud/base", "container/Cloud/base"),
        ("iso:Server/dvd", "iso/Server/dvd"),
        ("build:libstdc++@00aa11bb", "build/libstdc++@00aa11bb"),
        ("module:python3.12:3.12", "module/python3.12/3.12"),
        ("module:odd/name:1", "module/odd%2Fname/1"),
        ("iso:Server/dvd:live", "iso/Server/dvd%3Alive"),
        ("repo:.hidden", "repo/%2Ehidden"),
        ("repo:x.lock", "repo/x%2Elock"),
        ("repo:a..b", "repo/a%2E%2Eb"),
        ("repo:100%~^?*[\\ {@}", "repo/100%25%7E%5E%3F%2A%5B%5C%20%7B@%7D"),
        ("repo:Café", "repo/Caf%C3%A9"),
    ],
)
def test_node_ref_round_trips_and_git_accepts_it(node: str, ref: str) -> None:
    assert node_ref(node) == ref
    assert node_from_ref(ref) == node
    assert node_from_ref(LATEST + ref) == node
    run(["git", "check-ref-format", LATEST + ref])


@pytest.mark.parametrize("bad", ["", "Server", "repo:", ":x", "iso:Server//dvd", "module:a::b", "Repo:x"])
def test_node_ref_refuses_what_is_not_a_node(bad: str) -> None:
    with pytest.raises(InvalidInput):
        node_ref(bad)


# -- records ---------------------------------------------------------------------------------------


def test_record_dump_load_dump_is_byte_identical() -> None:
    build = record("FL-42-openssl-1a2b3c4d-20261121.n.0", "build:openssl@1a2b3c4d", "c" * 40)
    original = record(
        "FL-42-Server-20261121.n.0", "repo:Server", "c" * 40, inputs=(build,), pins=(("x", "y"),)
    )
    dumped = canonical_json(original.to_json())
    loaded = Record.from_json(json.loads(dumped))
    assert loaded == original
    assert canonical_json(loaded.to_json()) == dumped
    assert original.note() == (dumped + "\n").encode()


def test_a_format_1_note_of_an_older_factory_still_reads_without_a_manifest() -> None:
    original = record("FL-42-Server-20261121.n.0", "repo:Server", "c" * 40)
    old = {k: v for k, v in original.to_json().items() if k != "manifest"} | {"format": 1}
    loaded = Record.from_json(old)
    assert loaded == replace(original, manifest="")
    assert loaded.to_json()["format"] == 2 and loaded.to_json()["manifest"] == ""


def test_a_record_names_its_manifest_by_sha256_or_is_refused() -> None:
    good = record("FL-42-Server-20261121.n.0", "repo:Server", "c" * 40)
    check_record(good)
    with pytest.raises(InvalidInput, match="manifest 'nope' is not a sha256"):
        check_record(replace(good, manifest="nope"))


@pytest.mark.parametrize(
    "change",
    [
        {"format": 3},
        {"manifest": None},
        {"inputs": [{"node": "x"}]},
        {"pins": [["a"]]},
        {"outputs": [{"path": "p", "size": True, "sha256": "s"}]},
        {"status": None},
    ],
)
def test_record_from_json_refuses_what_is_not_a_record(change: dict[str, Any]) -> None:
    data = record("FL-42-Server-20261121.n.0", "repo:Server", "c" * 40).to_json() | change
    with pytest.raises(InvalidInput) as caught:
        Record.from_json(data)
    assert caught.value.code == "invalid-record"


# -- reserving and finishing -----------------------------------------------------------------------


def test_reserve_takes_the_next_respin(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    assert lineage.reserve("FL", "42", "Server", DATE, "nightly", commit) == "FL-42-Server-20261121.n.0"
    assert (
        Lineage(path, "42").reserve("FL", "42", "Server", DATE, "nightly", commit)
        == "FL-42-Server-20261121.n.1"
    )
    assert lineage.reserve("FL", "42", "Server", DATE, "production", commit) == "FL-42-Server-20261121.0"
    assert git(path, "rev-parse", "refs/composes/ids/FL-42-Server-20261121.n.1").strip() == commit
    with pytest.raises(InvalidInput) as caught:
        lineage.reserve("FL", "42", "Server", DATE, "nightly", "0" * 40)
    assert caught.value.code == "unknown-commit"


def test_finish_writes_a_tag_and_a_note_git_reads(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)

    assert git(path, "tag", "-l", "compose/*").split() == sorted(
        f"compose/{r.compose_id}" for r in (build, module, repo)
    )
    shown = git(path, "notes", "--ref=lineage", "show", f"compose/{module.compose_id}")
    assert shown == module.note().decode()
    assert git(path, "cat-file", "-t", f"compose/{module.compose_id}").strip() == "tag"
    tag = git(path, "cat-file", "-p", f"compose/{module.compose_id}")
    assert f"object {commit}\ntype commit\ntag compose/{module.compose_id}\n" in tag
    assert "tagger factory <factory@localhost> 1795255500 +0000" in tag
    assert f"Compose {module.compose_id}: module:base-runtime:f42 FINISHED" in tag
    assert git(path, "rev-list", "--count", NOTES_REF).strip() == "1"  # one notes commit per batch
    assert lineage.get(repo.compose_id) == repo
    git(path, "fsck", "--strict", "--no-dangling")  # the packs, tags, trees and commit are sound


def test_notes_tree_is_fanned_out_2_38(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    chain(lineage, commit)
    more = [
        record(lineage.reserve("FL", "42", f"x{n}", DATE, "ci", commit), f"repo:X{n}", commit)
        for n in range(20)
    ]
    lineage.finish(more[:10])
    lineage.finish(more[10:])
    assert git(path, "rev-list", "--count", NOTES_REF).strip() == "3"
    paths = git(path, "ls-tree", "-r", "--name-only", NOTES_REF).split()
    assert len(paths) == 23
    assert all(re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{38}", p) for p in paths)
    top = git(path, "ls-tree", NOTES_REF).splitlines()
    assert all(re.fullmatch(r"040000 tree [0-9a-f]{40}\t[0-9a-f]{2}", line) for line in top)
    assert len(git(path, "notes", "--ref=lineage", "list").splitlines()) == 23


def test_tags_are_packed_as_git_packs_them(defs: tuple[Path, str]) -> None:
    path, commit = defs
    git(path, "pack-refs", "--all")  # a packed-refs file of git's own, to be kept
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)
    tags = [f"refs/tags/compose/{r.compose_id}" for r in (build, module, repo)]
    listed = git(path, "show-ref").splitlines()
    assert [line.split()[1] for line in listed] == ["refs/heads/master", NOTES_REF, *sorted(tags)]
    peeled = git(path, "for-each-ref", "--format=%(*objectname)", "refs/tags/compose/")
    assert peeled.split() == [commit] * 3
    assert git(path, "rev-parse", f"compose/{repo.compose_id}^{{commit}}").strip() == commit

    def tag_lines() -> list[str]:
        lines = (path / ".git" / "packed-refs").read_text().splitlines()
        return [f"{a}\n{b}" for a, b in itertools.pairwise(lines) if "refs/tags/compose/" in a]

    ours = tag_lines()
    git(path, "pack-refs", "--all")
    assert tag_lines() == ours and len(ours) == 3
    assert (
        (path / ".git" / "packed-refs")
        .read_text()
        .startswith("# pack-refs with: peeled fully-peeled sorted \n")
    )


@pytest.mark.parametrize(
    "text",
    [
        "# pack-refs with: peeled fully-peeled sorted \n{a} refs/heads/main\n{b} refs/tags/compose/X.0\n^{a}\n"
        "{b} refs/tags/compose/Y.0\n^{a}\n{a} refs/tags/composer\n{a} refs/tags/zzz\n",
        "{b} refs/tags/compose/Y.0\n^{a}\n{a} refs/tags/zzz\n{b} refs/tags/compose/X.0\n{a} refs/heads/main\n",
        "",
    ],
)
def test_packed_names_finds_a_prefix_sorted_or_not(tmp_path: Path, text: str) -> None:
    path = tmp_path / "packed-refs"
    path.write_text(text.format(a="a" * 40, b="b" * 40))
    expected = ["refs/tags/compose/X.0", "refs/tags/compose/Y.0"] if text else []
    assert sorted(packed_names(path, "refs/tags/compose/")) == expected
    assert packed_names(path, "refs/notes/") == []
    assert packed_names(tmp_path / "missing", "refs/") == []


def test_finish_drops_the_reservations_and_their_ids_stay_taken(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    chain(lineage, commit)
    assert git(path, "for-each-ref", "refs/composes/ids/") == ""
    assert (
        Lineage(path, "42").reserve("FL", "42", "Server", DATE, "nightly", commit)
        == "FL-42-Server-20261121.n.1"
    )
    git(path, "pack-refs", "--all")  # a packed reservation goes with the next packed-refs rewrite
    cid = "FL-42-Server-20261121.n.1"
    Lineage(path, "42").finish([record(cid, "repo:Server", commit)])
    assert git(path, "for-each-ref", "refs/composes/ids/") == ""
    assert (
        Lineage(path, "42").reserve("FL", "42", "Server", DATE, "nightly", commit)
        == "FL-42-Server-20261121.n.2"
    )


def test_a_stale_packed_refs_lock_is_reported(
    defs: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, commit = defs
    monkeypatch.setattr(refs_module, "ATTEMPTS", 2)
    lineage = Lineage(path, "42")
    done = record(lineage.reserve("FL", "42", "Server", DATE, "nightly", commit), "repo:Server", commit)
    lock = path / ".git" / "packed-refs.lock"
    lock.write_text("")
    with pytest.raises(OperationFailed) as caught:
        lineage.finish([done])
    assert caught.value.code == "lineage-locked"
    assert str(lock) in caught.value.hint
    lock.unlink()
    lineage.finish([done])
    assert lineage.get(done.compose_id) == done


def test_finish_again_is_harmless_but_another_record_is_refused(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)
    head = git(path, "rev-parse", NOTES_REF)
    lineage.finish([build, module, repo])
    assert git(path, "rev-parse", NOTES_REF) == head
    with pytest.raises(InvalidInput) as caught:
        lineage.finish([replace(build, message="another")])
    assert caught.value.code == "compose-exists"


def test_finish_refuses_an_unfinished_record_and_writes_nothing(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    draft = record(lineage.reserve("FL", "42", "Server", DATE, "nightly", commit), "repo:Server", commit)
    for bad in (
        replace(draft, status=ComposeStatus.RUNNING),
        replace(draft, finished=""),
        replace(draft, finished="2026-11-21T10:05:00+01:00"),
        replace(draft, outputs_digest=""),
        replace(draft, commit="1" * 40),
    ):
        with pytest.raises(InvalidInput):
            lineage.finish([draft, bad])
    assert git(path, "tag", "-l") == ""
    assert lineage.reserved_unfinished() == [draft.compose_id]


def test_a_failed_compose_is_tagged_and_noted_but_never_latest_good(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    cid = lineage.reserve("FL", "42", "openssl-1a2b3c4d", DATE, "nightly", commit)
    failed = record(cid, "build:openssl@1a2b3c4d", commit, status="FAILED", pins=(("openssl", OPENSSL_A),))
    lineage.finish([failed])
    assert lineage.get(cid) == failed
    assert git(path, "tag", "-l", "compose/*").split() == [f"compose/{cid}"]
    with pytest.raises(InvalidInput) as caught:
        lineage.promote(failed.node, cid)
    assert caught.value.code == "compose-failed"
    assert lineage.latest() == {}
    assert lineage.find_by_key(failed.node, failed.key) is None
    assert lineage.reserved_unfinished() == []


# -- latest good -----------------------------------------------------------------------------------


def test_promote_and_latest(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)
    again = record(
        lineage.reserve("FL", "42", "base-runtime-f42", DATE, "nightly", commit), module.node, commit
    )
    lineage.finish([again])

    lineage.promote(module.node, module.compose_id)
    lineage.promote(build.node, build.compose_id)
    assert lineage.latest() == {build.node: build.compose_id, module.node: module.compose_id}
    lineage.promote(module.node, again.compose_id)
    assert lineage.latest(module.node) == {module.node: again.compose_id}
    assert lineage.latest(repo.node) == {}
    ref = "refs/composes/latest/42/module/base-runtime/f42"
    assert git(path, "rev-parse", ref) == git(path, "rev-parse", f"refs/tags/compose/{again.compose_id}")
    assert git(path, "cat-file", "-t", ref).strip() == "tag"
    with pytest.raises(InvalidInput) as caught:
        lineage.promote(repo.node, module.compose_id)
    assert caught.value.code == "node-mismatch"
    with pytest.raises(InvalidInput) as caught:
        lineage.promote(repo.node, "FL-42-Nothing-20261121.n.0")
    assert caught.value.code == "unknown-compose"


def test_latest_good_is_kept_per_release(defs: tuple[Path, str]) -> None:
    path, commit = defs
    ours, theirs = Lineage(path, "42"), Lineage(path, "43")
    old = record(ours.reserve("FL", "42", "Server", DATE, "nightly", commit), "repo:Server", commit)
    new = record(theirs.reserve("FL", "43", "Server", DATE, "nightly", commit), "repo:Server", commit)
    ours.finish([old, new])
    ours.promote(old.node, old.compose_id)
    theirs.promote(new.node, new.compose_id)
    assert ours.latest() == {"repo:Server": old.compose_id}
    assert theirs.latest() == {"repo:Server": new.compose_id}
    assert Lineage(path, "44").latest() == {}
    assert ours.latest_everywhere() == {
        "42": {"repo:Server": old.compose_id},
        "43": {"repo:Server": new.compose_id},
    }
    names = git(path, "for-each-ref", "--format=%(refname)", "refs/composes/latest/").split()
    assert names == ["refs/composes/latest/42/repo/Server", "refs/composes/latest/43/repo/Server"]


def test_a_release_may_reuse_another_releases_compose(defs: tuple[Path, str]) -> None:
    path, commit = defs
    made = record(
        Lineage(path, "42").reserve("FL", "42", "Server", DATE, "nightly", commit), "repo:Server", commit
    )
    Lineage(path, "42").finish([made])
    Lineage(path, "43").promote(made.node, made.compose_id)  # the same key: the executor skips
    assert Lineage(path, "43").latest() == {"repo:Server": made.compose_id}
    assert Lineage(path, "42").latest() == {}


def test_refs_without_a_release_are_read_for_the_release_their_compose_names(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, _ = chain(lineage, commit)
    # The layout before releases had their own namespace: refs/composes/latest/<node>.
    for made in (build, module):
        git(path, "update-ref", f"refs/composes/latest/{node_ref(made.node)}", lineage.tag(made.compose_id))
    assert lineage.latest() == {build.node: build.compose_id, module.node: module.compose_id}
    assert lineage.latest(module.node) == {module.node: module.compose_id}
    assert Lineage(path, "43").latest() == {}  # FL-42-... composes: not release 43's
    again = record(
        lineage.reserve("FL", "42", "base-runtime-f42", DATE, "nightly", commit), module.node, commit
    )
    lineage.finish([again])
    lineage.promote(module.node, again.compose_id)  # the release's own ref wins from now on
    assert lineage.latest() == {build.node: build.compose_id, module.node: again.compose_id}


def test_a_release_named_like_a_node_kind_is_not_mistaken_for_one(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "module")
    made = record(lineage.reserve("FL", "module", "x-1", DATE, "nightly", commit), "module:x:1", commit)
    lineage.finish([made])
    lineage.promote(made.node, made.compose_id)  # refs/composes/latest/module/module/x/1
    assert lineage.latest() == {"module:x:1": made.compose_id}
    assert Lineage(path, "42").latest() == {}


def test_retire_moves_latest_good_to_the_retired_namespace(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)
    for made in (build, module, repo):
        lineage.promote(made.node, made.compose_id)
    git(path, "update-ref", "refs/composes/latest/repo/Server", lineage.tag(repo.compose_id))  # legacy too
    assert lineage.retire(repo.node) == repo.compose_id
    assert lineage.retire(repo.node) is None  # idempotent
    assert repo.node not in lineage.latest()
    assert lineage.retired() == {repo.node: repo.compose_id}
    assert git(path, "rev-parse", "refs/composes/retired/42/repo/Server") == git(
        path, "rev-parse", f"refs/tags/compose/{repo.compose_id}"
    )
    names = git(path, "for-each-ref", "--format=%(refname)", "refs/composes/latest/").split()
    assert "refs/composes/latest/repo/Server" not in names and len(names) == 2
    # Lineage still answers for every compose it made.
    assert next(r.compose_id for _, r in lineage.tree(repo.compose_id)) == repo.compose_id


def test_the_release_of_a_handle_is_heads_by_default(tmp_path: Path) -> None:
    path = tmp_path / "defs"
    commit_tree(path, example_tree(), "Definitions\n")
    assert Lineage(path).release == "42"
    bare = tmp_path / "nothing"
    commit_tree(bare, {"README": b"no definitions\n"}, "Nothing\n")
    with pytest.raises(InvalidInput) as caught:
        _ = Lineage(bare).release
    assert caught.value.code == "no-release"


def test_latest_reads_packed_refs_too(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, _ = chain(lineage, commit)
    lineage.promote(build.node, build.compose_id)
    git(path, "pack-refs", "--all")
    lineage.promote(module.node, module.compose_id)
    assert lineage.latest() == {build.node: build.compose_id, module.node: module.compose_id}
    assert lineage.reserved_unfinished() == []


def test_latest_read_through_the_index_is_what_latest_says(defs: tuple[Path, str]) -> None:
    path, commit = defs
    ours, theirs = Lineage(path, "42"), Lineage(path, "43")
    build, module, repo = chain(ours, commit)
    ours.promote(build.node, build.compose_id)
    git(path, "pack-refs", "--all")  # packed, then loose
    ours.promote(module.node, module.compose_id)
    other = record(theirs.reserve("FL", "43", "Server", DATE, "nightly", commit), "repo:Server", commit)
    theirs.finish([other])
    theirs.promote(other.node, other.compose_id)  # another release's latest good
    # The layout before releases: read for the release its compose names, its own ref wins.
    git(path, "update-ref", f"refs/composes/latest/{node_ref(repo.node)}", ours.tag(repo.compose_id))
    git(path, "update-ref", f"refs/composes/latest/{node_ref(build.node)}", ours.tag(module.compose_id))
    expected = {build.node: build.compose_id, module.node: module.compose_id, repo.node: repo.compose_id}
    assert ours.latest() == expected
    assert ours.latest_indexed() == expected
    assert theirs.latest_indexed() == theirs.latest() == {"repo:Server": other.compose_id}
    assert Lineage(path, "44").latest_indexed() == {}


def test_compare_and_swap_fails_when_the_ref_moved_or_is_locked(defs: tuple[Path, str]) -> None:
    path, commit = defs
    repo = pygit2.Repository(str(path))
    made_from = repo.get(commit)
    assert isinstance(made_from, pygit2.Commit)
    signature = pygit2.Signature("Test", "test@example.invalid", 1767225600, 0)
    other = str(repo.create_commit(None, signature, signature, "Other\n", made_from.tree_id, []))
    name = "refs/composes/test"
    wrapped = Repository(repo)
    assert compare_and_swap(wrapped, name, commit, None)
    assert not compare_and_swap(wrapped, name, other, None)  # exists already
    assert not compare_and_swap(wrapped, name, other, other)  # stale expectation
    held = repo.references[name]  # libgit2 set_target is a CAS too: read before a move, refused
    assert compare_and_swap(Repository(pygit2.Repository(str(path))), name, other, commit)
    with pytest.raises(pygit2.GitError):
        held.set_target(commit)
    lock = path / ".git" / f"{name}.lock"
    lock.write_text("")
    assert not compare_and_swap(wrapped, name, commit, other)  # another process holds the lock
    lock.unlink()
    assert compare_and_swap(wrapped, name, commit, other)
    assert git(path, "rev-parse", name).strip() == commit


# -- reading ---------------------------------------------------------------------------------------


def test_get_an_unknown_compose(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    cid = lineage.reserve("FL", "42", "Server", DATE, "nightly", commit)
    for unknown in (cid, "FL-42-Nothing-20261121.n.0"):
        with pytest.raises(InvalidInput) as caught:
            lineage.get(unknown)
        assert caught.value.code == "unknown-compose"
    with pytest.raises(InvalidInput) as caught:
        lineage.tree(cid)
    assert caught.value.code == "unknown-compose"


def test_tree_and_why(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)
    other = record(
        lineage.reserve("FL", "42", "openssl-ffeeddcc", DATE, "nightly", commit),
        "build:openssl@ffeeddcc",
        commit,
        pins=(("openssl", OPENSSL_B),),
    )
    lineage.finish([other])

    assert lineage.tree(repo.compose_id) == [(0, repo), (1, module), (2, build)]
    assert lineage.tree(build.compose_id) == [(0, build)]
    expected = sorted([build, module, repo], key=lambda r: r.compose_id)
    assert lineage.why("openssl", OPENSSL_A[:8]) == expected
    assert lineage.why("openssl", OPENSSL_A.upper()) == expected
    assert lineage.why("openssl", OPENSSL_B[:7]) == [other]
    assert lineage.why("glibc", "0" * 7) == sorted([module, repo], key=lambda r: r.compose_id)
    assert lineage.why("openssl", "abcdef0") == []
    assert lineage.why("nss", OPENSSL_A) == []
    for bad in ("1a2b3c", "xyzxyzx"):
        with pytest.raises(InvalidInput) as caught:
            lineage.why("openssl", bad)
        assert caught.value.code == "invalid-commit"


def test_find_by_key_gives_the_latest_finished(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    node = "module:base-runtime:f42"

    def made(finished: str, status: str = "FINISHED") -> Record:
        cid = lineage.reserve("FL", "42", "base-runtime-f42", DATE, "nightly", commit)
        return record(cid, node, commit, key="K" * 64, finished=finished, status=status)

    first, second = made("2026-11-21T10:00:00Z"), made("2026-11-21T11:00:00Z")
    failed = made("2026-11-21T12:00:00Z", "FAILED")
    assert lineage.find_by_key(node, "K" * 64) is None
    lineage.finish([first, second, failed])
    assert lineage.find_by_key(node, "K" * 64) == second
    assert lineage.find_by_key(node, "other") is None
    assert lineage.find_by_key("module:other:1", "K" * 64) is None


def test_history_lists_every_compose_failed_ones_too_oldest_first(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    node = "module:base-runtime:f42"

    def made(finished: str, status: str = "FINISHED") -> Record:
        cid = lineage.reserve("FL", "42", "base-runtime-f42", DATE, "nightly", commit)
        return record(cid, node, commit, finished=finished, status=status)

    late, early = made("2026-11-21T12:00:00Z", "FAILED"), made("2026-11-21T10:00:00Z")
    build = record(
        lineage.reserve("FL", "42", "openssl-1a2b3c4d", DATE, "nightly", commit),
        "build:openssl@1a2b3c4d",
        commit,
        finished="2026-11-21T11:00:00Z",
    )
    assert lineage.history() == []
    lineage.finish([late, early, build])
    assert lineage.history() == [early, build, late]
    assert lineage.history(node) == [early, late]
    assert lineage.history("module:other:1") == []


def test_reserved_unfinished_lists_killed_composes(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    assert lineage.reserved_unfinished() == []
    done = lineage.reserve("FL", "42", "Server", DATE, "nightly", commit)
    killed = [lineage.reserve("FL", "42", name, DATE, "nightly", commit) for name in ("Server", "Cloud")]
    lineage.finish([record(done, "repo:Server", commit)])
    assert lineage.reserved_unfinished() == sorted(killed)


def test_the_index_follows_the_notes(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)
    assert len(lineage.why("openssl", OPENSSL_A)) == 3
    index = path / ".git" / "factory" / "lineage.sqlite"
    assert index.is_file()

    # grown: only the new notes are read
    reader = Lineage(path, "42")
    reader.why("openssl", OPENSSL_A)
    more = record(
        lineage.reserve("FL", "42", "Everything", DATE, "nightly", commit),
        "repo:Everything",
        commit,
        inputs=(module,),
    )
    lineage.finish([more])
    assert [r.compose_id for r in reader.why("openssl", OPENSSL_A)] == sorted(
        r.compose_id for r in (build, module, repo, more)
    )

    # a note changed by git's CLI (which writes the notes tree its own way) is seen, and the
    # next finish puts the tree back to 2/38
    changed = replace(repo, message="checked by hand")
    git(
        path,
        "notes",
        "--ref=lineage",
        "add",
        "-f",
        "-m",
        canonical_json(changed.to_json()),
        f"compose/{repo.compose_id}",
    )
    assert reader.get(repo.compose_id) == changed
    assert reader.tree(repo.compose_id)[0] == (0, changed)
    late = record(lineage.reserve("FL", "42", "Late", DATE, "nightly", commit), "repo:Late", commit)
    lineage.finish([late])
    paths = git(path, "ls-tree", "-r", "--name-only", NOTES_REF).split()
    assert len(paths) == 5
    assert all(re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{38}", p) for p in paths)
    assert reader.get(repo.compose_id) == changed
    assert reader.tree(late.compose_id) == [(0, late)]

    # rewritten: the old notes commit is no ancestor any more, so the index is rebuilt
    pygit2.Repository(str(path)).references.delete(NOTES_REF)
    alone = record(lineage.reserve("FL", "42", "Alone", DATE, "nightly", commit), "repo:Alone", commit)
    lineage.finish([alone])
    assert reader.why("openssl", OPENSSL_A) == []
    assert reader.tree(alone.compose_id) == [(0, alone)]
    index.unlink()
    assert Lineage(path, "42").tree(alone.compose_id) == [(0, alone)]


def test_notes_that_are_not_records_are_skipped_by_the_index(defs: tuple[Path, str]) -> None:
    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)
    assert len(lineage.why("openssl", OPENSSL_A)) == 3  # indexed, so the next query is incremental
    git(path, "notes", "--ref=lineage", "add", "-m", "not json", commit)  # a note on the commit itself
    git(path, "notes", "--ref=lineage", "add", "-f", "-m", '{"format": 1}', f"compose/{build.compose_id}")
    assert lineage.why("openssl", OPENSSL_A) == sorted([module, repo], key=lambda r: r.compose_id)
    (path / ".git" / "factory" / "lineage.sqlite").unlink()
    assert Lineage(path, "42").why("openssl", OPENSSL_A) == sorted([module, repo], key=lambda r: r.compose_id)
    with pytest.raises(InvalidInput) as caught:
        lineage.get(build.compose_id)
    assert caught.value.code == "invalid-record"


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        Lineage(tmp_path)
    assert caught.value.code == "not-a-repository"


def test_a_bare_repository(tmp_path: Path, defs: tuple[Path, str]) -> None:
    source, commit = defs
    bare = tmp_path / "bare.git"
    run(["git", "clone", "-q", "--bare", str(source), str(bare)])
    lineage = Lineage(bare)
    _, module, repo = chain(lineage, commit)
    assert lineage.get(module.compose_id) == module
    assert len(lineage.tree(repo.compose_id)) == 3
    assert (bare / "factory" / "lineage.sqlite").is_file()
    assert git(bare, "notes", "--ref=lineage", "show", f"compose/{repo.compose_id}") == repo.note().decode()


# -- concurrency -----------------------------------------------------------------------------------

WORKERS, PER_WORKER, BATCH = 8, 50, 10


def _worker(path: str, commit: str, worker: int, barrier: Any) -> None:
    lineage = Lineage(path, "42")
    barrier.wait()
    for start in range(0, PER_WORKER, BATCH):
        batch = []
        for n in range(start, start + BATCH):
            cid = lineage.reserve("FL", "42", "Server", DATE, "ci", commit)
            batch.append(record(cid, f"repo:W{worker}", commit, pins=((f"c{worker}", f"{n:040x}"),)))
        lineage.finish(batch)
        lineage.promote(f"repo:W{worker}", batch[-1].compose_id)
        assert [r.compose_id for r in lineage.why(f"c{worker}", f"{start:040x}")] == [batch[0].compose_id]


def test_eight_processes_race_and_lose_nothing(defs: tuple[Path, str]) -> None:
    path, commit = defs
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    workers = [context.Process(target=_worker, args=(str(path), commit, n, barrier)) for n in range(WORKERS)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
    assert [p.exitcode for p in workers] == [0] * WORKERS

    total = WORKERS * PER_WORKER
    tags = git(path, "tag", "-l", "compose/*").split()
    assert len(tags) == len(set(tags)) == total
    notes = git(path, "notes", "--ref=lineage", "list").splitlines()
    assert len(notes) == total
    ids = {t.removeprefix("compose/") for t in tags}
    assert ids == {f"FL-42-Server-20261121.ci.{n}" for n in range(total)}
    lineage = Lineage(path, "42")
    assert lineage.reserved_unfinished() == []
    records = [lineage.get(cid) for cid in sorted(ids)]
    assert sorted((r.node, r.pins[0][1]) for r in records) == sorted(
        (f"repo:W{w}", f"{n:040x}") for w in range(WORKERS) for n in range(PER_WORKER)
    )
    assert len(lineage.latest()) == WORKERS
    assert all(len(lineage.why(f"c{w}", f"{7:040x}")) == 1 for w in range(WORKERS))
    git(path, "fsck", "--strict", "--no-dangling")


def test_notes_of_many_composes_are_read_at_once_as_one_by_one(defs: tuple[Path, str]) -> None:
    from pipeline.core.states import CheckState
    from pipeline.records import checks as results
    from pipeline.records import jsonnotes

    path, commit = defs
    lineage = Lineage(path, "42")
    build, module, repo = chain(lineage, commit)
    passed = results.TestResult(
        "repoclosure", CheckState.PASSED, "", "2026-11-21T10:00:00Z", "2026-11-21T10:01:00Z"
    )
    results.record(lineage, {module.compose_id: [passed], repo.compose_id: [passed]})
    many = results.read_many(lineage, [build.compose_id, module.compose_id, repo.compose_id])
    assert many == {module.compose_id: [passed], repo.compose_id: [passed]}
    assert many[module.compose_id] == results.read(lineage, module.compose_id)
    assert jsonnotes.read_notes(lineage, "refs/notes/releases", [module.compose_id]) == {}
