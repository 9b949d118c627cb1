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
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import cli, example
from pipeline.core.retention import Candidate, Reason, decide
from pipeline.core.states import ComposeStatus
from pipeline.engine.workspace import Workspace
from pipeline.release import gc as gc_module
from pipeline.release import sign
from pipeline.release.gc_store import collect_store
from pipeline.store import collected
from pipeline.store.lineage import Lineage
from pipeline.tools import dnf, gpg, ostree
from tests.bumped_dist import FIXED, HOST, MODULE, SERVER, VULNERABLE
from tests.conftest import ROOT, commit_tree
from tests.test_checks_repo import gated_tree
from tests.test_sign_release import key

__all__ = ["key"]  # the session signing key, shared

REF = "FL/42/x86_64/host"
FACTORY = [sys.executable, "-m", "pipeline.cli"]
TARGETS = {SERVER: "Server", HOST: "AtomicHost-host"}  # release directories


def test_retention_keeps_latest_good_live_newest_and_recent() -> None:
    def made(cid: str, node: str, finished: int, status: ComposeStatus = ComposeStatus.FINISHED) -> Candidate:
        return Candidate(cid, node, status, finished)

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
    example.materialize(ROOT / "examples" / "distgit", root / ".factory" / "distgit")
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


def gc(root: Path, *argv: str) -> dict[str, object]:
    done = subprocess.run(
        [*FACTORY, "gc", "--repo", str(root), "--json", *argv],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
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


def test_gc_frees_what_nothing_keeps_and_every_live_release_still_verifies(
    dist: Collectable, key: tuple[Path, str], tmp_path: Path
) -> None:
    lineage = Lineage(dist.root)
    latest = lineage.latest()
    (dist.output / "composes" / ".gc-killed").mkdir()  # what a killed gc left
    (dist.output / "composes" / ".gc-killed" / "half").write_bytes(b"x" * 1000)
    dry = gc(dist.root, "--keep", "1", "--dry-run")
    before = inodes(dist.output)
    report = gc(dist.root, "--keep", "1")
    after = inodes(dist.output)
    # What it says it freed is what left the disk, byte for byte, and what the dry run foresaw.
    gone = sum(size for inode, size in before.items() if inode not in after)
    assert report["freed"] == gone == dry["freed"] and gone > 1000
    assert report["leftovers"] == 1000
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
    assert [c.where for c in collected.read(lineage, dist.old[SERVER])] == [str(dist.output.resolve())]
    shown = subprocess.run(
        [*FACTORY, "lineage", dist.old[SERVER], "--repo",
         str(dist.root)], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"files     gone: removed from {dist.output.resolve()} by gc" in shown
    # Again: nothing left to free.
    again = gc(dist.root, "--keep", "1")
    assert again["freed"] == 0 and collected_ids(again) == set()

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


@dataclass
class BlobStore:
    """The interface gc needs of an artifact store (`pipeline.release.gc_store.ArtifactStore`)
    over dictionaries: issue 10's store is not on the main branch yet, so this stands in for it
    to pin what gc asks of a store. Manifests map sha256 -> size; `swept` records the keep sets."""

    url: str
    manifests: dict[str, dict[str, int]]
    blobs: dict[str, int]
    swept: list[set[str]]

    def composes(self) -> list[str]:
        return sorted(self.manifests)

    def manifest(self, compose_id: str) -> Held | None:
        found = self.manifests.get(compose_id)
        return None if found is None else Held(found)

    def delete(self, compose_id: str) -> bool:
        return self.manifests.pop(compose_id, None) is not None

    def sweep(self, keep: set[str], *, grace: float = 3600.0) -> int:
        self.swept.append(set(keep))
        gone = [sha for sha in self.blobs if sha not in keep]
        return sum(self.blobs.pop(sha) for sha in gone)


@dataclass
class Held:
    found: dict[str, int]

    def blobs(self) -> dict[str, int]:
        return dict(self.found)


def test_a_store_loses_the_manifests_retention_drops_and_the_blobs_only_they_held() -> None:
    manifests = {"a1": {"x": 10, "s": 5}, "a2": {"y": 20, "s": 5}, "b1": {"z": 30}, "foreign": {"f": 7}}
    store = BlobStore("file:///srv/store", {k: dict(v) for k, v in manifests.items()}, {"x": 10, "y": 20, "z": 30, "s": 5, "f": 7}, [])  # fmt: skip
    dry = collect_store(store, keep={"a2", "b1"}, known={"a1", "a2", "b1"}, dry_run=True)
    assert (dry.deleted, dry.freed) == (("a1",), 10) and store.manifests.keys() == manifests.keys()
    done = collect_store(store, keep={"a2", "b1"}, known={"a1", "a2", "b1"}, dry_run=False)
    assert done.deleted == ("a1",) and done.owned == {"a1": 10} and done.freed == 10
    assert sorted(store.manifests) == ["a2", "b1", "foreign"]  # a compose lineage does not know stays
    assert store.swept == [{"y", "s", "z", "f"}]


def test_gc_collects_a_store_by_the_same_rule_over_every_compose(dist: Collectable) -> None:
    lineage = Lineage(dist.root)
    every = [r.compose_id for r in gc_module._records(lineage)]
    store = BlobStore("file:///srv/store", {cid: {cid: 1} for cid in every}, {cid: 1 for cid in every}, [])
    ws = Workspace.open(dist.root)
    report = gc_module.collect(ws, lineage, keep=1, dry_run=True, stores=[store])
    (swept,) = report.stores
    latest = set(lineage.latest().values())
    assert swept.deleted and not set(swept.deleted) & latest
    assert {dist.old[SERVER], dist.old[HOST]} <= set(swept.deleted)
    assert len(store.manifests) == len(every)  # a dry run deletes nothing
