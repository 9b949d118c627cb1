"""Binary package sources that are wrong, and what factory says: at validate time an error naming
the source (or the pin's file and line) with exit status 2, a warning for what cannot be asked;
at compose time a failed node naming the RPM, the source and the reason, and nothing FINISHED.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.artifacts.store import open_store
from pipeline.records.lineage import Lineage
from tests import upstream_repo as up
from tests.conftest import commit_tree
from tests.http_files import serve

BUILD = "pkg-1.0-1.fc42"
NODE = f"binary:{BUILD}"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[up.Key, up.Key]]:
    top = tmp_path_factory.mktemp("keys")
    made = (
        up.make_key(top / "good", "Upstream <up@example.invalid>"),
        up.make_key(top / "other", "Other <o@example.invalid>"),
    )
    yield made
    for key in made:
        up.kill_agent(key)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> up.Built:
    return up.build(
        tmp_path_factory.mktemp("builds"), "pkg", "1.0", "1.fc42", noarch=True, subpackages=["extra"]
    )


def definitions(
    baseurl: str, *, gpgkey: Path | None, build: str = BUILD, source: str = "up", key_url: str = ""
) -> dict[str, bytes]:
    signing = "    gpgkey: keys/up.asc\n" if gpgkey is not None else "    allow_unsigned: true\n"
    if key_url:
        signing = f"    gpgkey: {key_url}\n"
    tree = {
        "factory.yaml": (
            "document: factory-config\nversion: 1\n"
            'release: {name: Test Linux, short: TL, version: "42"}\n'
            'dist: .tl42\ndistgit: {url: "distgit/{component}.git"}\noutput: {dir: .factory/output}\n'
            f"sources:\n  up:\n    baseurl: {baseurl}\n{signing}"
        ),
        "modules/m/1.yaml": (
            'document: factory-module\nversion: 1\nname: m\nstream: "1"\nsummary: m\ndescription: m\n'
            "license: MIT\neol: 2030-01-01\ncomponents:\n  rpms:\n    pkg:\n"
            f"      source: {source}\n      build: {build}\n"
        ),
        "variants/V.yaml": (
            'document: factory-variant\nversion: 1\nuid: V\nname: V\nrelease: "42"\neol: 2029-01-01\n'
            "arches: [x86_64]\nmodules:\n  - module: m:1\noutputs:\n  - kind: repo\n    name: os\n"
        ),
    }
    files = {path: text.encode() for path, text in tree.items()}
    if gpgkey is not None:
        files["keys/up.asc"] = gpgkey.read_bytes()
    return files


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def repository(tmp_path: Path, rpms: list[Path]) -> Path:
    return up.make_repo(tmp_path / "source" / "x86_64", rpms).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- validate ----------------------------------------------------------------------------------


def test_a_source_that_answers_404_is_an_error_naming_it(
    tmp_path: Path, built: up.Built, capsys: pytest.CaptureFixture[str]
) -> None:
    repository(tmp_path, list(built.rpms))
    with serve(tmp_path / "source") as served:
        root = tmp_path / "dist"
        commit_tree(root, definitions(f"{served.url}/no-such-tag/{{arch}}/", gpgkey=None), "defs\n")
        code, _, err = run(capsys, "validate", "--repo", str(root))
        assert served.paths(404) == ["/no-such-tag/x86_64/repodata/repomd.xml"]
    assert code == 2
    assert "factory.yaml:9:14: error[broken-source]: source up (x86_64): " in err
    assert "Status code: 404" in err
    assert not (root / ".factory" / "cache" / "sources").exists() or not any(
        (root / ".factory" / "cache" / "sources").iterdir()
    )


def test_truncated_repodata_is_an_error_naming_the_source(
    tmp_path: Path, built: up.Built, capsys: pytest.CaptureFixture[str]
) -> None:
    source = repository(tmp_path, list(built.rpms))
    primary = next((source / "x86_64" / "repodata").glob("*-primary.xml.gz"))
    primary.write_bytes(primary.read_bytes()[:60])
    root = tmp_path / "dist"
    commit_tree(root, definitions(source.as_uri() + "/{arch}", gpgkey=None), "defs\n")
    code, _, err = run(capsys, "validate", "--repo", str(root))
    assert code == 2
    assert "error[broken-source]: source up (x86_64):" in err and "Checksum mismatch" in err
    # Over HTTP too: librepo checks what it downloads against repomd.xml.
    with serve(source.parent) as served:
        commit_tree(root, definitions(f"{served.url}/source/{{arch}}/", gpgkey=None), "over http\n")
        code, _, err = run(capsys, "validate", "--repo", str(root))
    assert code == 2 and "error[broken-source]" in err


def test_a_build_naming_no_source_rpm_in_the_source_is_an_error_at_its_line(
    tmp_path: Path, built: up.Built, capsys: pytest.CaptureFixture[str]
) -> None:
    source = repository(tmp_path, list(built.rpms))
    root = tmp_path / "dist"
    commit_tree(
        root, definitions(source.as_uri() + "/{arch}/", gpgkey=None, build="pkg-1.0-9.fc42"), "defs\n"
    )
    code, _, err = run(capsys, "validate", "--repo", str(root))
    assert code == 2
    assert (
        "modules/m/1.yaml:13:14: error[unknown-build]: pkg: pkg-1.0-9.fc42 is not in source up "
        "(no RPM for x86_64 has that sourcerpm), and the artifact store has no compose of it"
    ) in err
    # Composing it fails the node, naming the build and the source; nothing is FINISHED.
    code, out, _ = run(capsys, "compose", "--repo", str(root), "--json")
    nodes = {n["node"]: n for n in json.loads(out)["nodes"]}
    assert code == 1 and nodes["binary:pkg-1.0-9.fc42"]["status"] == "FAILED"
    assert (
        "no RPM of source up for x86_64 comes from pkg-1.0-9.fc42.src.rpm"
        in nodes["binary:pkg-1.0-9.fc42"]["message"]
    )
    assert Lineage(root, "42").latest() == {}


def test_a_source_that_does_not_answer_is_a_warning_and_an_unknown_one_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "dist"
    commit_tree(root, definitions(f"http://127.0.0.1:{free_port()}/f42/{{arch}}/", gpgkey=None), "defs\n")
    code, _, err = run(capsys, "validate", "--repo", str(root))
    assert code == 0
    assert "factory.yaml:9:14: warning[unreachable-source]: source up (x86_64): " in err
    assert "cannot be reached" in err and "the builds pinned from it are not checked" in err
    # A path that is not there (an NFS mount not mounted here) does not answer either.
    commit_tree(root, definitions(str(tmp_path / "not-mounted") + "/{arch}", gpgkey=None), "a path\n")
    code, _, err = run(capsys, "validate", "--repo", str(root))
    assert (
        code == 0
        and "warning[unreachable-source]: source up (x86_64): " in err
        and "does not exist here" in err
    )
    commit_tree(root, definitions("/nowhere/{arch}", gpgkey=None, source="upstream"), "typo\n")
    code, _, err = run(capsys, "validate", "--repo", str(root))
    assert code == 2
    assert "modules/m/1.yaml:12:15: error[unknown-source]: pkg: no source 'upstream' (sources: up)" in err


# -- compose -----------------------------------------------------------------------------------


def test_a_corrupted_rpm_fails_its_node_naming_the_rpm_the_source_and_the_reason(
    tmp_path: Path, built: up.Built, capsys: pytest.CaptureFixture[str]
) -> None:
    source = repository(tmp_path, list(built.rpms))
    rpm = source / "x86_64" / "pkg-1.0-1.fc42.noarch.rpm"
    data = bytearray(rpm.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte, after createrepo_c took its checksum
    rpm.write_bytes(bytes(data))
    with serve(source) as served:
        root = tmp_path / "dist"
        commit_tree(root, definitions(f"{served.url}/{{arch}}/", gpgkey=None), "defs\n")
        code, out, _ = run(capsys, "compose", "--repo", str(root), "--json")
    nodes = {n["node"]: n for n in json.loads(out)["nodes"]}
    assert code == 1 and nodes[NODE]["status"] == "FAILED"
    message = nodes[NODE]["message"]
    assert (
        f"RPM pkg-1.0-1.fc42.noarch.rpm from source up ({served.url}/x86_64/pkg-1.0-1.fc42.noarch.rpm)"
        in message
    )
    assert "sha256" in message and "checksum doesn't match" in message
    assert nodes["module:m:1"]["status"] == "BLOCKED"
    assert_nothing_finished(root)


@pytest.mark.parametrize("signer", ["nobody", "other"])
def test_with_a_gpgkey_an_unsigned_or_wrongly_signed_rpm_fails(
    tmp_path: Path,
    built: up.Built,
    keys: tuple[up.Key, up.Key],
    signer: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, other = keys
    rpms = [tmp_path / p.name for p in built.rpms]
    for path, original in zip(rpms, built.rpms, strict=True):
        shutil.copy2(original, path)
    up.sign(rpms[:1], good)  # pkg is signed by the source's key ...
    if signer == "other":
        up.sign(rpms[1:], other)  # ... pkg-extra by another one
    source = repository(tmp_path, rpms)
    root = tmp_path / "dist"
    commit_tree(root, definitions(str(source) + "/{arch}", gpgkey=good.public), "defs\n")
    code, out, _ = run(capsys, "compose", "--repo", str(root), "--json")
    nodes = {n["node"]: n for n in json.loads(out)["nodes"]}
    assert code == 1 and nodes[NODE]["status"] == "FAILED"
    message = nodes[NODE]["message"]
    assert (
        f"RPM pkg-extra-1.0-1.fc42.noarch.rpm from source up ({source}/x86_64/pkg-extra-1.0-1.fc42.noarch.rpm)"
        in message
    )
    if signer == "nobody":
        assert "it is not signed" in message
    else:
        assert f"it is signed by another key (key ID {other.fingerprint[-8:].lower()}: NOKEY)" in message
    assert "source up takes only RPMs signed by its gpgkey" in message
    assert_nothing_finished(root)
    # Signed by the source's key, it composes.
    up.sign([source / "x86_64" / p.name for p in rpms[1:]], good)
    shutil.rmtree(source / "x86_64" / "repodata")
    up.make_repo(source / "x86_64", [])
    code, out, _ = run(capsys, "compose", "--repo", str(root), "--json")
    assert code == 0, out
    lineage = Lineage(root, "42")
    first = lineage.latest()[NODE]
    assert {u.key for u in lineage.get(first).upstream} == {good.short_id}
    # Signed again (new bytes, the same build): its key changes, it composes again.
    up.resign([source / "x86_64" / rpms[0].name], good)
    shutil.rmtree(source / "x86_64" / "repodata")
    up.make_repo(source / "x86_64", [])
    code, out, _ = run(capsys, "compose", "--repo", str(root), "--json")
    assert code == 0 and {n["node"]: n["status"] for n in json.loads(out)["nodes"]}[NODE] == "COMPOSED"
    assert Lineage(root, "42").latest()[NODE] != first


def assert_nothing_finished(root: Path) -> None:
    """The node's compose is recorded FAILED, never latest good, and the store holds nothing of it."""
    lineage = Lineage(root, "42")
    assert NODE not in lineage.latest()
    failed = [r for r in lineage.history(NODE)]
    assert failed and {r.status for r in failed} == {"FAILED"}
    store = open_store("file:.factory/store", root=root, env={})
    assert not any(store.has(r.compose_id) for r in failed)


def test_a_reading_is_cached_by_repomd_checksum_and_one_unused_for_a_week_forgotten(
    tmp_path: Path, built: up.Built
) -> None:
    from pipeline.tools import yumrepo

    source = repository(tmp_path, list(built.rpms))
    where, cache = yumrepo.Where("up", "x86_64", (source / "x86_64").as_uri()), tmp_path / "cache"
    first = yumrepo.read(where, root=tmp_path, cache=cache)
    (reading,) = cache.glob("*.json")
    assert reading.stem == first.state.repomd_sha256
    stale = cache / ("0" * 64 + ".json")
    stale.write_text("{}")
    os.utime(stale, (0, 0))
    assert yumrepo.read(where, root=tmp_path, cache=cache) == first  # from the cache
    shutil.rmtree(source / "x86_64" / "repodata")
    up.make_repo(source / "x86_64", [], [up.Advisory("FEDORA-1", "bugfix", "", (), (built.rpms[0],))])
    moved = yumrepo.read(where, root=tmp_path, cache=cache)
    assert moved.state.repomd_sha256 != first.state.repomd_sha256 and [a.id for a in moved.advisories] == [
        "FEDORA-1"
    ]
    assert sorted(p.stem for p in cache.glob("*.json")) == sorted(
        [first.state.repomd_sha256, moved.state.repomd_sha256]
    )


def test_a_gpgkey_named_by_url_is_downloaded_and_one_missing_from_the_repository_is_an_error(
    tmp_path: Path, built: up.Built, keys: tuple[up.Key, up.Key], capsys: pytest.CaptureFixture[str]
) -> None:
    good, other = keys
    rpms = [tmp_path / p.name for p in built.rpms]
    for path, original in zip(rpms, built.rpms, strict=True):
        shutil.copy2(original, path)
    up.sign(rpms, good)
    source = repository(tmp_path, rpms)
    (tmp_path / "keys").mkdir()
    shutil.copy2(good.public, tmp_path / "keys" / "good.asc")
    shutil.copy2(other.public, tmp_path / "keys" / "other.asc")
    root = tmp_path / "dist"
    with serve(tmp_path / "keys") as served:
        commit_tree(
            root, definitions(str(source) + "/{arch}", gpgkey=None, key_url=f"{served.url}/other.asc"), "d\n"
        )
        code, out, _ = run(capsys, "compose", "--repo", str(root), "--json")
        nodes = {n["node"]: n for n in json.loads(out)["nodes"]}
        assert code == 1 and "it is signed by another key" in nodes[NODE]["message"]
        commit_tree(
            root, definitions(str(source) + "/{arch}", gpgkey=None, key_url=f"{served.url}/good.asc"), "d\n"
        )
        code, out, _ = run(capsys, "compose", "--repo", str(root), "--json")
        assert code == 0, out
        assert served.paths(200).count("/good.asc") == 1
    files = definitions(str(source) + "/{arch}", gpgkey=good.public)
    del files["keys/up.asc"]
    commit_tree(root, files, "the key forgotten\n")
    code, _, err = run(capsys, "validate", "--repo", str(root))
    assert code == 2
    assert (
        "factory.yaml:10:13: error[missing-gpgkey]: source up: its gpgkey keys/up.asc is not in this repository"
        in err
    )
