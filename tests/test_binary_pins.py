"""Packages built elsewhere: a module of binary pins composes from yum repositories and Koji tags,
with the real tools (rpmbuild and createrepo_c make the sources, librepo reads them over HTTP
and from files, rpmkeys checks signatures, dnf installs from the composed repo and reads its
advisories back).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.compose.binary import BinaryComposer
from pipeline.records.lineage import Lineage
from pipeline.tools import dnf
from tests import binary_world as world
from tests import upstream_repo as up
from tests.conftest import commit_tree

HELLO_NODE = f"binary:{world.HELLO}"
TOOLS_NODE = f"binary:{world.TOOLS}"
EXTRA_NODE = f"binary:{world.EXTRA}"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[world.Upstream]:
    yield from world.make_upstream(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def env(upstream: world.Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in upstream.env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def dist(upstream: world.Upstream, tmp_path: Path, env: None) -> Path:
    local = world.make_distgit(upstream.top)
    return world.make_repo(tmp_path / "dist", world.definitions(upstream, local), tmp_path / "remote.git")


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def composed(capsys: pytest.CaptureFixture[str], root: Path, *nodes: str) -> dict[str, dict[str, str]]:
    code, out, err = factory(capsys, "compose", *nodes, "--repo", str(root), "--json")
    result = json.loads(out)
    assert code == 0, (result, err)
    return {n["node"]: n for n in result["nodes"]}


def variant_tree(root: Path) -> Path:
    lineage = Lineage(root, "42")
    record = lineage.get(lineage.latest()["repo:Base"])
    repomd = next(o.path for o in record.outputs if o.path.endswith("/x86_64/os/repodata/repomd.xml"))
    return root / ".factory" / "output" / repomd.removesuffix("/repodata/repomd.xml")


def dnf_argv(root: Path, tree: Path, home: Path) -> list[str]:
    return [
        "dnf", "-q", f"--installroot={root}", "--releasever=42", "--setopt=reposdir=/nonexistent",
        "--setopt=module_platform_id=platform:tl42", f"--setopt=cachedir={home}/cache",
        f"--repofrompath=base,{tree.as_uri()}", "--repo=base", "--setopt=base.gpgcheck=0",
    ]  # fmt: skip


def test_a_module_of_binary_pins_composes_and_dnf_installs_it_with_its_advisory(
    dist: Path, upstream: world.Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = factory(capsys, "validate", "--repo", str(dist))
    assert code == 0, err
    assert "warning" not in err
    nodes = composed(capsys, dist)
    assert {n: nodes[n]["status"] for n in (HELLO_NODE, TOOLS_NODE, EXTRA_NODE)} == dict.fromkeys(
        (HELLO_NODE, TOOLS_NODE, EXTRA_NODE), "COMPOSED"
    )
    assert nodes["module:base:f42"]["status"] == nodes["repo:Base"]["status"] == "COMPOSED"
    # librepo read f42-updates over HTTP: its repomd.xml, primary.xml and the RPMs.
    asked = upstream.served.paths(200)
    assert "/repos/f42-updates/latest/x86_64/repodata/repomd.xml" in asked
    assert "/repos/f42-updates/latest/x86_64/hello-1.0-2.fc42.x86_64.rpm" in asked

    tree = variant_tree(dist)
    shipped = sorted(p.name for p in (tree / "Packages").iterdir())
    # The build's RPMs of its arch and noarch; no debuginfo, no i686 multilib.
    assert shipped == [
        "extra-0.1-1.noarch.rpm",
        "hello-1.0-2.fc42.x86_64.rpm",
        "hello-doc-1.0-2.fc42.noarch.rpm",
        "hello-libs-1.0-2.fc42.x86_64.rpm",
        "local-1-1.tl42.noarch.rpm",
        "tools-2.0-1.fc42.noarch.rpm",
    ]
    source = tree.parent.parent / "source" / "tree"
    assert sorted(p.name for p in (source / "Packages").iterdir()) == [
        "local-1-1.tl42.src.rpm",
        "tools-2.0-1.fc42.src.rpm",  # from f42's source_baseurl, where the build was found
    ]
    assert (source / "MISSING-SOURCES").read_text().splitlines()[-2:] == [
        "  extra-0.1-1.src.rpm",
        "  hello-1.0-2.fc42.src.rpm",
    ]

    root, home = tmp_path / "root", tmp_path / "home"
    dnf.install(root, [dnf.Repo("base", tree)], ["hello", "hello-doc", "tools", "extra", "local"],
                releasever="42", platform="tl42")  # fmt: skip
    names = {nevra.rsplit("-", 2)[0] for nevra in dnf.installed(root)}
    assert names == {"hello", "hello-doc", "tools", "extra", "local"}
    assert "hello-0:1.0-2.fc42.x86_64" in dnf.installed(root)
    home.mkdir()
    (home / ".rpmmacros").write_text("%_dbpath /usr/lib/sysimage/rpm\n")
    shown = subprocess.run(
        [*dnf_argv(root, tree, home), "updateinfo", "info", "--all", world.SECURITY],
        env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in shown.splitlines()) if v}
    assert (fields["Update ID"], fields["Type"], fields["Severity"], fields["CVEs"]) == (
        world.SECURITY, "security", "Important", world.CVE,
    )  # fmt: skip
    # Its package list is cut to what the repo ships: no debuginfo, no i686, no checksum.
    notes = next((tree / "repodata").glob("*-updateinfo.xml.gz"))
    text = subprocess.run(["zcat", str(notes)], capture_output=True, text=True, check=True).stdout
    assert "i686" not in text and "debuginfo" not in text and "<sum " not in text
    assert "hello-1.0-2.fc42.x86_64.rpm" in text and "hello-doc-1.0-2.fc42.noarch.rpm" in text

    # A second compose composes nothing.
    again = composed(capsys, dist)
    assert {n["status"] for n in again.values()} == {"SKIPPED"}


def test_the_lineage_note_records_each_rpm_its_source_key_and_repository_state(
    dist: Path, upstream: world.Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    composed(capsys, dist, HELLO_NODE, TOOLS_NODE, EXTRA_NODE)
    lineage = Lineage(dist, "42")
    notes = {}
    for node in (HELLO_NODE, TOOLS_NODE, EXTRA_NODE):
        compose_id = lineage.latest()[node]
        notes[node] = json.loads(world.git(dist, "notes", "--ref=lineage", "show", f"compose/{compose_id}"))
    hello = {u["nevra"]: u for u in notes[HELLO_NODE]["upstream"]}
    assert sorted(hello) == [
        "hello-0:1.0-2.fc42.x86_64",
        "hello-doc-0:1.0-2.fc42.noarch",
        "hello-libs-0:1.0-2.fc42.x86_64",
    ]
    entry = hello["hello-0:1.0-2.fc42.x86_64"]
    repo = upstream.updates.latest("x86_64")
    repomd = (repo / "repodata" / "repomd.xml").read_bytes()
    assert entry["source"] == "f42-updates"
    assert (
        entry["url"] == f"{upstream.served.url}/repos/f42-updates/latest/x86_64/hello-1.0-2.fc42.x86_64.rpm"
    )
    assert entry["sha256"] == hashlib.sha256((repo / "hello-1.0-2.fc42.x86_64.rpm").read_bytes()).hexdigest()
    assert entry["key"] == upstream.key.short_id
    assert entry["repomd"]["sha256"] == hashlib.sha256(repomd).hexdigest()
    assert entry["repomd"]["revision"] in repomd.decode()
    # Koji's repo.json beside the arch directories: tag, repo id, event.
    assert entry["koji"] == {
        "tag": "f42-updates",
        "id": upstream.updates.ids[-1],
        "event_id": 40000 + upstream.updates.ids[-1],
    }
    tools = {u["nevra"]: u for u in notes[TOOLS_NODE]["upstream"]}
    assert set(tools) == {"tools-0:2.0-1.fc42.noarch", "tools-0:2.0-1.fc42.src"}
    assert {u["source"] for u in tools.values()} == {"f42"}  # inherited
    assert tools["tools-0:2.0-1.fc42.src"]["url"].endswith("/repos/f42/latest/src/tools-2.0-1.fc42.src.rpm")
    assert tools["tools-0:2.0-1.fc42.noarch"]["koji"]["tag"] == "f42"
    (extra,) = notes[EXTRA_NODE]["upstream"]
    # An unsigned source read through the variable that overrides its baseurl: the record names
    # the variable and factory.yaml's URL, never the mirror's path.
    assert extra["key"] == "unsigned" and extra["via"] == world.EXTRAS_VARIABLE
    assert extra["url"] == "/nonexistent/mirror/extras/x86_64/extra-0.1-1.noarch.rpm"
    assert "koji" not in extra
    assert str(upstream.extras) not in json.dumps(notes[EXTRA_NODE])
    assert notes[HELLO_NODE]["pins"] == []  # no dist-git commit went into it
    # The status of the module and of the component name the binary pin node.
    for asked in ("base", "hello"):
        code, out, _ = factory(capsys, "status", asked, "--repo", str(dist))
        assert code == 0 and f"{HELLO_NODE}  current" in out, out


def test_validate_reads_a_sources_primary_xml_once_per_repomd_checksum(
    dist: Path, upstream: world.Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    primary = "/repos/f42-updates/latest/x86_64/repodata/"
    for _ in range(2):
        before = list(upstream.served.paths(200))
        assert factory(capsys, "validate", "--repo", str(dist))[0] == 0
        asked = upstream.served.paths(200)[len(before) :]
        assert f"{primary}repomd.xml" in asked
        reads = [p for p in asked if p.startswith(primary) and p.endswith("-primary.xml.gz")]
        assert len(reads) == (1 if _ == 0 else 0), asked


def test_the_same_build_from_another_source_plans_and_composes_nothing(
    dist: Path, upstream: world.Upstream, capsys: pytest.CaptureFixture[str]
) -> None:
    composed(capsys, dist)
    # tools comes from f42 by inheritance; pinned from f42 itself, it is the same build.
    tree = world.definitions(upstream, world.make_distgit(upstream.top))
    tree["modules/base/f42.yaml"] = tree["modules/base/f42.yaml"].replace(
        b"      source: f42-updates  # inherited from f42", b"      source: f42"
    )
    commit_tree(dist, tree, "tools from f42 itself\n")
    code, out, _ = factory(
        capsys, "plan", "--base", "HEAD~1", "--head", "HEAD", "--repo", str(dist), "--json"
    )
    assert code == 0 and json.loads(out)["tiers"] == []
    assert {n["status"] for n in composed(capsys, dist).values()} == {"SKIPPED"}
    # CI's check finds every node composed, binary pins keyed by the RPMs their composes took.
    code, out, _ = factory(
        capsys, "ci", "check", "--base", "none", "--repo", str(dist), "--no-pull", "--json"
    )
    report = json.loads(out)
    assert code == 0 and report["ok"], report
    assert {n["node"] for n in report["nodes"]} >= {HELLO_NODE, TOOLS_NODE, EXTRA_NODE}


def test_a_build_its_source_dropped_composes_again_from_the_store_on_a_fresh_clone(
    dist: Path, upstream: world.Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    composed(capsys, dist)
    assert cli.main(["lineage", "push", "--repo", str(dist)]) == 0
    store = (dist / ".factory" / "store").as_uri()
    # Koji's f42-updates repository moves on: hello-1.0-2 is untagged, only hello-1.0-1 is left.
    upstream.updates.regen([upstream.builds["hello-old"]], with_src=False)
    try:
        clone = tmp_path / "clone"
        world.git(tmp_path, "clone", "-q", str(tmp_path / "remote.git"), str(clone))
        assert cli.main(["lineage", "pull", "--repo", str(clone)]) == 0
        monkeypatch.setenv("FACTORY_STORE", store)
        code, _, err = factory(capsys, "validate", "--repo", str(clone))
        assert code == 0, err
        assert (
            "warning[build-left-source]" in err
            and "hello-1.0-2.fc42 is no longer in source f42-updates" in err
        )
        # A change to the module: it and the variant repo compose again, on a clone whose
        # .factory/ is empty, with hello's RPMs from the artifact store.
        tree = world.definitions(upstream, world.make_distgit(upstream.top))
        tree["modules/base/f42.yaml"] = world.module_yaml(
            world.make_distgit(upstream.top), extra_profile="  minimal:\n    rpms: [hello]\n"
        ).encode()
        commit_tree(clone, tree, "A minimal profile\n")
        assert sorted(p.name for p in (clone / ".factory").iterdir()) == ["cache"]  # validate's readings
        nodes = composed(capsys, clone)
        assert nodes[HELLO_NODE]["status"] == "SKIPPED"
        assert nodes["module:base:f42"]["status"] == nodes["repo:Base"]["status"] == "COMPOSED"
        assert "hello-1.0-2.fc42.x86_64.rpm" in {p.name for p in (variant_tree(clone) / "Packages").iterdir()}
        # A newer factory makes binary pins otherwise (its format number): hello composes again,
        # its RPMs from its previous compose in the store, still recorded as from f42-updates.
        monkeypatch.setattr(BinaryComposer, "format", BinaryComposer.format + 1)
        nodes = composed(capsys, clone, HELLO_NODE)
        assert nodes[HELLO_NODE]["status"] == "COMPOSED"
        lineage = Lineage(clone, "42")
        record = lineage.get(lineage.latest()[HELLO_NODE])
        assert {u.source for u in record.upstream} == {"f42-updates"}
        root = tmp_path / "root"
        dnf.install(
            root, [dnf.Repo("base", variant_tree(clone))], ["hello"], releasever="42", platform="tl42"
        )
        assert "hello-0:1.0-2.fc42.x86_64" in dnf.installed(root)
    finally:
        upstream.updates.regen([upstream.builds[world.HELLO]], [up.Advisory(
            world.SECURITY, "security", "Important", (world.CVE,), upstream.builds[world.HELLO].rpms)], with_src=False)  # fmt: skip


def test_a_release_signs_them_with_the_release_key_and_lineage_keeps_the_upstream_key(
    dist: Path, upstream: world.Upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    composed(capsys, dist)
    release = up.make_key(
        tmp_path / "release-gnupg", "Test Linux release <release@example.invalid>", "ed25519"
    )
    try:
        lineage = Lineage(dist, "42")
        code, _, err = factory(
            capsys, "release", lineage.latest()["repo:Base"], "--to", str(tmp_path / "released"),
            "--gnupghome", str(release.home), "--key", release.fingerprint, "--repo", str(dist),
        )  # fmt: skip
        assert code == 0, err
    finally:
        up.kill_agent(release)
    released = next((tmp_path / "released" / "latest").rglob("hello-1.0-2.fc42.x86_64.rpm"))

    def checked(key: up.Key) -> subprocess.CompletedProcess[str]:
        db = tmp_path / f"db-{key.fingerprint[-8:]}"
        db.mkdir(exist_ok=True)
        subprocess.run(
            ["rpm", "--dbpath", str(db), "--import", str(key.public)], check=True, capture_output=True
        )
        return subprocess.run(
            ["rpm", "--dbpath", str(db), "-K", str(released)], capture_output=True, text=True, check=False
        )

    assert checked(release).returncode == 0 and "signatures OK" in checked(release).stdout
    assert checked(upstream.key).returncode != 0  # the upstream signature was replaced
    # The lineage of the binary pin keeps the key Koji signed it with.
    hello = lineage.latest()[HELLO_NODE]
    assert {u.key for u in lineage.get(hello).upstream} == {upstream.key.short_id}
    code, out, _ = factory(capsys, "lineage", hello, "--repo", str(dist))
    assert code == 0
    assert f"hello-0:1.0-2.fc42.x86_64  source f42-updates  key {upstream.key.short_id}" in out
    assert f"Koji tag f42-updates repo {upstream.updates.ids[-1]}" in out


def test_when_a_source_does_not_answer_its_pins_keep_their_composes(
    dist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    composed(capsys, dist)
    monkeypatch.setenv(world.EXTRAS_VARIABLE, str(tmp_path / "unmounted") + "/{arch}/")
    code, _, err = factory(capsys, "validate", "--repo", str(dist))
    assert code == 0 and "warning[unreachable-source]: source extras (x86_64): " in err
    # Its key comes from the latest good compose's lineage: nothing to compose.
    assert {n["status"] for n in composed(capsys, dist).values()} == {"SKIPPED"}
