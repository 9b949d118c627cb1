"""Garbage collection with the real tools: what it frees, what it keeps, what clients still get.

The module fixture composes the example Server repo and Atomic Host commit, releases both
(signed), bumps openssl (CVE-2026-1234), composes and releases both again: the first composes
are then neither latest good nor live. `factory gc --keep 1` must free their files (and the
first OSTree commit in the output directory's repository), mark them in `refs/notes/gc`, keep
their lineage, leave every live release verifying with dnf and ostree, and make the executor
compose again what a revert would otherwise have reused from files that are gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline import cli
from pipeline.artifacts.store import open_store
from pipeline.core.records import OutputFile, node_ref
from pipeline.core.retention import Candidate, Reason, decide
from pipeline.core.states import ComposeStatus
from pipeline.records import collected
from pipeline.records.lineage import Lineage
from pipeline.release import sign
from pipeline.release.gc_store import collect_store
from pipeline.tools import dnf, gpg, ostree
from tests import registry as oci_registry
from tests.bumped_dist import FIXED, HOST, MODULE, SERVER, VULNERABLE
from tests.conftest import commit_tree, materialize_example
from tests.test_checks_repo import gated_tree
from tests.test_sign_release import key

__all__ = ["key"]  # the session signing key, shared

REF = "FL/42/x86_64/host"
FACTORY = [sys.executable, "-m", "pipeline.cli"]
TARGETS = {SERVER: "Server", HOST: "AtomicHost-host"}  # release directories


def test_retention_keeps_latest_good_live_newest_and_recent() -> None:
    def made(cid: str, node: str, finished: int, status: ComposeStatus = ComposeStatus.FINISHED) -> Candidate:
        return Candidate(cid, node, "42", status, finished)

    composes = [
        made("a1", "repo:A", 100),
        made("a2", "repo:A", 200),
        made("a3", "repo:A", 300, ComposeStatus.FAILED),
        made("a4", "repo:A", 400),
        made("b1", "repo:B", 150),
    ]
    verdicts = {v.compose_id: v.reasons for v in decide(composes, latest_good={"a2"}, live={"b1"}, keep=1,
                                                           older_than=150, now=500)}  # fmt: skip
    assert verdicts == {
        "a1": (),
        "a2": (Reason.LATEST_GOOD,),
        "a3": (),  # failed: never among the newest; old enough
        "a4": (Reason.NEWEST, Reason.RECENT),
        "b1": (Reason.LIVE_RELEASE, Reason.NEWEST),
    }
    assert [v.compose_id for v in decide(composes, latest_good=(), live=(), keep=0, older_than=0, now=500)
            if v.kept] == []  # fmt: skip


def test_retention_keeps_each_releases_newest_and_the_last_good_of_retired_nodes() -> None:
    composes = [
        Candidate("a42-1", "repo:A", "42", ComposeStatus.FINISHED, 100),
        Candidate("a42-2", "repo:A", "42", ComposeStatus.FINISHED, 200),
        Candidate("a43-1", "repo:A", "43", ComposeStatus.FINISHED, 300),
        Candidate("a43-2", "repo:A", "43", ComposeStatus.FINISHED, 400),
        Candidate("w42-1", "repo:W", "42", ComposeStatus.FINISHED, 100),
        Candidate("w42-2", "repo:W", "42", ComposeStatus.FINISHED, 50),
    ]
    verdicts = {v.compose_id: v.reasons for v in decide(composes, latest_good=set(), live=set(),
                                                           retired={"w42-2"}, keep=1, older_than=0, now=500)}  # fmt: skip
    assert verdicts == {
        "a42-1": (),
        "a42-2": (Reason.NEWEST,),  # composing 43 does not push 42's newest out
        "a43-1": (),
        "a43-2": (Reason.NEWEST,),
        "w42-1": (Reason.NEWEST,),
        "w42-2": (Reason.RETIRED,),
    }


def small_compose(output: Path, compose_id: str, files: dict[str, bytes]) -> list[OutputFile]:
    """A compose of a few small files under output/composes/<id>/."""
    made = []
    for name, data in files.items():
        path = output / "composes" / compose_id / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        made.append(
            OutputFile(path.relative_to(output).as_posix(), len(data), hashlib.sha256(data).hexdigest())
        )
    return made


def age(store_dir: Path, seconds: float) -> None:
    """Make every blob of a file:// store look written `seconds` ago (past the sweep's grace)."""
    then = time.time() - seconds
    for blob in (store_dir / "blobs").rglob("*"):
        if blob.is_file():
            os.utime(blob, (then, then))


@pytest.mark.parametrize("kind", ["file", "oci"])
def test_a_store_loses_the_manifests_retention_drops_and_the_blobs_only_they_held(
    kind: str, tmp_path: Path
) -> None:
    a1, a2, b1, foreign = (f"FL-42-{n}-20261121.n.0" for n in ("A", "A2", "B", "Foreign"))
    x, y, z, shared, f = b"x" * 10, b"y" * 20, b"z" * 30, b"s" * 5, b"f" * 7
    contents = {a1: {"x": x, "s": shared}, a2: {"y": y, "s": shared}, b1: {"z": z}, foreign: {"f": f}}
    registry = oci_registry.start(tmp_path / "registry") if kind == "oci" else None
    try:
        url = f"oci://{registry.address}/factory/gc" if registry else (tmp_path / "store").as_uri()
        store = open_store(url, root=tmp_path, env={}, cache=tmp_path / "cache")
        for cid, files in contents.items():
            store.put(cid, tmp_path / "out", small_compose(tmp_path / "out", cid, files))
        age(tmp_path / "store", 7200)
        age(tmp_path / "cache", 7200)
        known, keep = {a1, a2, b1}, {a2, b1}
        dry = collect_store(store, keep=keep, known=known, dry_run=True)
        assert (dry.deleted, dry.owned, dry.freed) == ((a1,), {a1: 10}, 10)
        assert store.composes() == sorted(contents)  # a dry run deletes nothing
        done = collect_store(store, keep=keep, known=known, dry_run=False)
        assert done.deleted == (a1,) and done.owned == {a1: 10}
        assert store.composes() == sorted([a2, b1, foreign])  # a compose lineage does not know stays
        x_sha = hashlib.sha256(x).hexdigest()
        if registry is None:
            assert (
                done.freed == 10
                and not (tmp_path / "store" / "blobs" / "sha256" / x_sha[:2] / x_sha).exists()
            )
        else:  # the registry frees x once its own garbage collector runs (put left no local cache)
            assert done.freed == 0 and registry.blob_data(x_sha).exists()
            registry.garbage_collect()
            assert not registry.blob_data(x_sha).exists()
        # What is kept comes back whole, the shared blob with it, on a fresh machine.
        fresh = open_store(url, root=tmp_path, env={}, cache=tmp_path / "fresh-cache")
        for cid in (a2, b1, foreign):
            manifest = fresh.manifest(cid)
            assert manifest is not None
            fresh.fetch(manifest, tmp_path / "fetched")
            for name, data in contents[cid].items():
                assert (tmp_path / "fetched" / "composes" / cid / name).read_bytes() == data
    finally:
        if registry is not None:
            registry.stop()


@dataclass
class Collectable:
    root: Path
    releases: Path
    tree: dict[str, bytes]
    old: dict[str, str]  # node -> compose ID, before the bump
    new: dict[str, str]

    @property
    def output(self) -> Path:
        return self.root / ".factory" / "output"


def factory(*argv: str) -> None:
    assert cli.main(list(argv)) == 0


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, key: tuple[Path, str]) -> Collectable:
    root = tmp_path_factory.mktemp("collectable")
    releases = root / "releases"
    tree = gated_tree()
    commit_tree(root, tree, "Example definitions, gated\n")
    materialize_example(root)
    home, fingerprint = key

    def compose_and_release() -> dict[str, str]:
        factory("compose", "--repo", str(root), "--type", "test", "--json", SERVER, HOST)
        latest = Lineage(root).latest()
        for node in (SERVER, HOST):
            factory("release", latest[node], "--repo", str(root), "--to", str(releases / TARGETS[node]),
                    "--gnupghome", str(home), "--key", fingerprint)  # fmt: skip
        return latest

    old = compose_and_release()
    fixed = {**tree, MODULE: tree[MODULE].replace(VULNERABLE, FIXED)}
    commit_tree(root, fixed, "openssl: the CVE-2026-1234 backport\n")
    return Collectable(root, releases, fixed, old, compose_and_release())


def inodes(root: Path) -> dict[tuple[int, int], int]:
    """Every file under root by inode: its size (hard links counted once)."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            stat = os.lstat(os.path.join(folder, name))
            found[(stat.st_dev, stat.st_ino)] = stat.st_size
    return found


def gc(root: Path, *argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [*FACTORY, "gc", "--repo", str(root), "--json", *argv],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def collected_ids(report: dict[str, object]) -> set[str]:
    items = report["collected"]
    assert isinstance(items, list)
    return {str(item["compose_id"]) for item in items}


def test_a_dry_run_says_what_gc_frees_and_removes_nothing(dist: Collectable) -> None:
    before = inodes(dist.output)
    report = gc(dist.root, "--keep", "1", "--dry-run")
    assert inodes(dist.output) == before
    assert report["dry_run"] is True and isinstance(report["freed"], int) and report["freed"] > 0
    assert {dist.old[SERVER], dist.old[HOST], dist.old["module:base-runtime:f42"]} <= collected_ids(report)
    assert collected.every(Lineage(dist.root)) == {}


def test_gc_keeps_every_releases_latest_good_and_the_last_good_of_a_retired_node(dist: Collectable) -> None:
    module = "module:base-runtime:f42"
    lineage = Lineage(dist.root)
    # The definitions move on to release 43 (as `factory branch-release 43` leaves them): 42's
    # latest good is no longer HEAD's, and still kept.
    commit_tree(dist.root, {**dist.tree, "factory.yaml": dist.tree["factory.yaml"].replace(b'version: "42"', b'version: "43"')},
                "Release 43\n")  # fmt: skip
    try:
        assert Lineage(dist.root).latest() == {}  # nothing composed for 43 yet
        report = gc(dist.root, "--keep", "0", "--dry-run")
        kept = {str(v["compose_id"]): v["reasons"] for v in report["kept"]}
        assert kept[dist.new[module]] == ["latest good"]
        assert dist.new[module] not in collected_ids(report)
    finally:
        commit_tree(dist.root, dist.tree, "Back to 42\n")
    # The module retired: its latest good moves to refs/composes/retired/42/, and stays kept.
    assert lineage.retire(module) == dist.new[module]
    try:
        report = gc(dist.root, "--keep", "0", "--dry-run")
        kept = {str(v["compose_id"]): v["reasons"] for v in report["kept"]}
        assert kept[dist.new[module]] == ["last good of a retired node"]
    finally:
        git_ref = ["git", "-C", str(dist.root)]
        tag = subprocess.run([*git_ref, "rev-parse", f"refs/tags/compose/{dist.new[module]}"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        name = "refs/composes/retired/42/" + node_ref(module)
        subprocess.run([*git_ref, "update-ref", "-d", name], check=True)
        lineage.promote(module, dist.new[module])
        assert ref_target_of(dist.root, "refs/composes/latest/42/" + node_ref(module)) == tag
    assert Lineage(dist.root).latest()[module] == dist.new[module]


def ref_target_of(root: Path, name: str) -> str:
    return subprocess.run(["git", "-C", str(root), "rev-parse", name], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def test_gc_frees_what_nothing_keeps_and_every_live_release_still_verifies(
    dist: Collectable, key: tuple[Path, str], tmp_path: Path
) -> None:
    lineage = Lineage(dist.root)
    latest = lineage.latest()
    (dist.output / "composes" / ".gc-killed").mkdir()  # what a killed gc left
    (dist.output / "composes" / ".gc-killed" / "half").write_bytes(b"x" * 1000)
    # Every compose is in an artifact store too (file://), written long enough ago to be swept.
    store_dir = tmp_path / "store"
    store = open_store(store_dir.as_uri(), root=dist.root, env={})
    for record in lineage.every():
        store.put(record.compose_id, dist.output, record.outputs)
    age(store_dir, 7200)
    dry = gc(dist.root, "--keep", "1", "--dry-run", "--store", store_dir.as_uri())
    before, stored = inodes(dist.output), inodes(store_dir / "blobs")
    report = gc(dist.root, "--keep", "1", "--store", store_dir.as_uri())
    after, still_stored = inodes(dist.output), inodes(store_dir / "blobs")
    # What it says it freed is what left the disk, byte for byte, and what the dry run foresaw:
    # in the output directory, and in the store's blobs (its small manifest files are not counted).
    gone = sum(size for inode, size in before.items() if inode not in after)
    swept = sum(size for inode, size in stored.items() if inode not in still_stored)
    (from_store,) = report["stores"]
    assert from_store["freed"] == swept and swept > 0
    assert report["freed"] == gone + swept == dry["freed"] and gone > 1000
    assert report["leftovers"] == 1000
    assert set(from_store["deleted"]) == collected_ids(report)  # the same rule: the same composes
    assert set(store.composes()) == {r.compose_id for r in lineage.every()} - collected_ids(report)
    for compose_id in latest.values():  # what is kept comes back whole from the store
        manifest = store.manifest(compose_id)
        assert manifest is not None
        store.fetch(manifest, tmp_path / "fetched")
    ids = collected_ids(report)
    assert {dist.old[SERVER], dist.old[HOST], dist.old["module:base-runtime:f42"]} <= ids
    assert not set(latest.values()) & ids
    assert not (dist.output / "composes" / dist.old[SERVER]).exists()
    # The first OSTree commit left the output directory's repository; the latest is whole.
    repos = report["ostree"]
    assert isinstance(repos, list) and len(repos) == 1
    pruned = repos[0]
    assert pruned["repo"] == "ostree/AtomicHost/repo" and pruned["commits"] == 1 and pruned["bytes"] > 0
    repo = dist.output / "ostree" / "AtomicHost" / "repo"
    assert [e.commit for e in ostree.history(repo, REF)] == [ostree.rev_parse(repo, REF)]
    ostree.fsck(repo)
    # Every latest good compose still has every file it recorded, unchanged.
    for compose_id in latest.values():
        for output in lineage.get(compose_id).outputs:
            path = dist.output / output.path
            assert hashlib.sha256(path.read_bytes()).hexdigest() == output.sha256, output.path
    # Lineage is kept, and says the files are gone.
    assert lineage.get(dist.old[SERVER]).node == SERVER
    assert [c.where for c in collected.read(lineage, dist.old[SERVER])] == [
        dist.output.relative_to(dist.root).as_posix(),  # inside the checkout: relative to it
        store_dir.as_uri(),
    ]
    shown = subprocess.run(
        [*FACTORY, "lineage", dist.old[SERVER], "--repo",
         str(dist.root)], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"files     gone: removed from {dist.output.resolve()} by gc" in shown
    assert f"files     gone: manifest deleted from {store_dir.as_uri()} by gc" in shown
    # Again: nothing left to free.
    again = gc(dist.root, "--keep", "1")
    assert again["freed"] == 0 and collected_ids(again) == set()
    said = subprocess.run([*FACTORY, "gc", "--repo", str(dist.root), "--keep", "1", "--store", store_dir.as_uri()],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert (
        f"  {store_dir.as_uri()}: 0 manifests deleted (0 bytes of blobs only they held), 0 bytes swept\n"
        in said
    )

    # The live releases verify with their clients: dnf checking packages and metadata...
    server = dist.releases / TARGETS[SERVER] / "latest"
    tree = server / "compose" / "Server" / "x86_64" / "os"
    root = tmp_path / "installed"
    repo_ = dnf.Repo("server", tree, gpgkey=server / sign.PUBLIC_KEY, repo_gpgcheck=True)
    dnf.install(root, [repo_], ["httpd", "openssl"], releasever="42", platform="fl42")
    assert any(n.startswith("openssl-") for n in dnf.installed(root))
    # ...and ostree checking commits and summary.
    home, fingerprint = key
    keyring = tmp_path / "key.gpg"
    gpg.export(home, fingerprint, keyring, armor=False)
    host = tmp_path / "host"
    subprocess.run(["ostree", "init", f"--repo={host}", "--mode=bare-user"], check=True)
    served = dist.releases / TARGETS[HOST] / "ostree" / "repo"
    subprocess.run(
        ["ostree", f"--repo={host}", "remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=true",
         f"--set=gpgkeypath={keyring}", "origin", served.as_uri()],
        check=True,
    )  # fmt: skip
    subprocess.run(["ostree", f"--repo={host}", "pull", "origin", REF], check=True, capture_output=True)
    assert ostree.metadata(host, f"origin:{REF}", "factory.compose-id") == dist.new[HOST]


def test_after_gc_a_revert_composes_again_what_it_would_have_reused(dist: Collectable) -> None:
    assert collected.read(Lineage(dist.root), dist.old["module:base-runtime:f42"])  # the test above ran
    commit_tree(dist.root, {**dist.tree, MODULE: dist.tree[MODULE].replace(FIXED, VULNERABLE)}, "Revert\n")
    try:
        done = subprocess.run(
            [*FACTORY, "compose", SERVER, "--repo",
             str(dist.root), "--type", "test", "--json"], capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        nodes = {n["node"]: n for n in json.loads(done.stdout)["nodes"]}
        assert nodes["module:base-runtime:f42"]["status"] == "COMPOSED"  # not the collected compose
        assert nodes["module:base-runtime:f42"]["compose_id"] != dist.old["module:base-runtime:f42"]
        assert nodes[SERVER]["status"] == "COMPOSED"
    finally:
        commit_tree(dist.root, dist.tree, "Back to the backport\n")
