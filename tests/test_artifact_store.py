"""The artifact store, on both backends: a `file://` directory and a real OCI registry.

Every behaviour test runs twice, against a directory and against Debian's docker-registry on
127.0.0.1 (tests/registry.py), with a small compose of real RPMs and createrepo_c repodata.
A "runner" is a fresh output directory and, for the registry, a fresh local blob cache: what a
GitLab job on a new machine has.
"""

from __future__ import annotations

import base64
import itertools
import logging
import os
import random
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import oras.client  # type: ignore[import-untyped]
import pytest

from pipeline.artifacts.oci_names import tag_for
from pipeline.artifacts.store import ArtifactStore, StoreReporter, open_store, referenced
from pipeline.compose.base import describe_tree
from pipeline.core.errors import FactoryError, InvalidInput, OperationFailed
from pipeline.core.records import OutputFile
from pipeline.tools import createrepo, dnf
from tests import registry as oci_registry
from tests.registry_token import TokenServer

A = "FL-42-base-runtime-f42-20261121.n.0"
B = "FL-42-base-runtime-f42-20261122.n.0"
EPOCH = 1767225600
_names = itertools.count()


# -- fixtures: real RPMs, a registry, stores ------------------------------------------------------


SPEC = """Name: %{pkgname}
Version: 1
Release: 1
Summary: a package of the store tests
License: MIT
BuildArch: noarch
Source0: %{pkgname}.bin
%description
A payload of random bytes.
%install
mkdir -p %{buildroot}/usr/share/%{name}
cp %{SOURCE0} %{buildroot}/usr/share/%{name}/payload.bin
%files
/usr/share/%{name}/payload.bin
"""


@pytest.fixture(scope="module")
def rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four noarch RPMs of about 1 MB each (random, so incompressible), built with rpmbuild."""
    top = tmp_path_factory.mktemp("rpmbuild")
    (top / "SOURCES").mkdir()
    spec = top / "payload.spec"
    spec.write_text(SPEC, encoding="utf-8")
    built = {}
    for n, name in enumerate(["alpha", "bravo", "charlie", "delta"]):
        (top / "SOURCES" / f"{name}.bin").write_bytes(random.Random(n).randbytes(900_000 + n * 1000))
        subprocess.run(
            [
                "rpmbuild",
                "-bb",
                "--quiet",
                "--define",
                f"_topdir {top}",
                "--define",
                f"pkgname {name}",
                "--define",
                "_binary_payload w1.gzdio",
                str(spec),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)},
        )
        built[name] = next((top / "RPMS" / "noarch").glob(f"{name}-1-1.noarch.rpm"))
    return built


def make_compose(
    output_dir: Path, compose_id: str, rpms: dict[str, Path], names: list[str]
) -> list[OutputFile]:
    """A module-like compose under output_dir/composes/<id>: RPMs, repodata, and three odd files
    (an empty one, an executable one, and one file's bytes at a second path)."""
    work = output_dir / "composes" / compose_id
    packages = work / "repo" / "Packages"
    packages.mkdir(parents=True)
    for name in names:
        shutil.copyfile(rpms[name], packages / rpms[name].name)
    createrepo.make_repo(work / "repo", EPOCH)
    (work / "logs").mkdir()
    (work / "logs" / "empty.log").write_bytes(b"")
    script = work / "logs" / "rerun.sh"
    script.write_text(f"#!/bin/sh\necho {compose_id}\n", encoding="utf-8")
    script.chmod(0o755)
    shutil.copyfile(packages / rpms[names[0]].name, work / "first.rpm")
    return describe_tree(output_dir, work)


class Counting(StoreReporter):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.uploads: list[str] = []
        self.skipped: list[str] = []
        self.downloads: list[str] = []

    def uploaded(self, sha256: str, size: int) -> None:
        with self.lock:
            self.uploads.append(sha256)

    def already_stored(self, sha256: str, size: int) -> None:
        with self.lock:
            self.skipped.append(sha256)

    def downloaded(self, sha256: str, size: int) -> None:
        with self.lock:
            self.downloads.append(sha256)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[oci_registry.Registry]:
    """A registry of the test's own: blobs are shared by every repository of a registry, and
    tests corrupt, remove and garbage-collect them."""
    running = oci_registry.start(tmp_path / "registry")
    yield running
    running.stop()


@dataclass
class Backend:
    """Opens stores on one backend; every `runner()` is a fresh machine (own output and cache)."""

    kind: str
    url: str
    tmp: Path
    registry: oci_registry.Registry | None
    env: dict[str, str] = field(default_factory=dict)

    def open(self, reporter: StoreReporter | None = None, cache: Path | None = None) -> ArtifactStore:
        return open_store(
            self.url,
            root=self.tmp,
            env=self.env,
            cache=cache or self.tmp / f"cache-{next(_names)}",
            reporter=reporter,
        )

    def runner(self) -> Path:
        out = self.tmp / f"runner-{next(_names)}" / "output"
        out.mkdir(parents=True)
        return out

    def remove_blob(self, sha256: str) -> None:
        self._blob(sha256).unlink()

    def corrupt_blob(self, sha256: str) -> None:
        blob = self._blob(sha256)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.chmod(0o644)
        blob.write_bytes(bytes(data))

    def _blob(self, sha256: str) -> Path:
        if self.registry is not None:
            return self.registry.blob_data(sha256)
        return self.tmp / "store" / "blobs" / "sha256" / sha256[:2] / sha256


@pytest.fixture(params=["file", "oci"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "file":
        return Backend("file", (tmp_path / "store").as_uri(), tmp_path, None)
    running: oci_registry.Registry = request.getfixturevalue("registry")
    return Backend("oci", f"oci://{running.address}/factory/test{next(_names)}", tmp_path, running)


def tree(output_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Every regular file under output_dir: path -> (bytes, mode)."""
    return {
        p.relative_to(output_dir).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(output_dir.rglob("*"))
        if p.is_file()
    }


# -- both backends ---------------------------------------------------------------------------------


def test_a_compose_put_is_fetched_whole_on_a_fresh_runner(backend: Backend, rpms: dict[str, Path]) -> None:
    builder = backend.runner()
    outputs = make_compose(builder, A, rpms, ["alpha", "bravo", "charlie"])
    store = backend.open()
    assert not store.has(A)
    manifest = store.put(A, builder, outputs)
    assert manifest.outputs() == tuple(sorted(outputs, key=lambda o: o.path))
    assert store.has(A) and store.composes() == [A]
    assert store.manifest(A) == manifest

    runner = backend.runner()
    fresh = backend.open()
    report = fresh.fetch(fresh.manifest(A) or manifest, runner)
    assert tree(runner) == tree(builder)
    assert report.fetched.files + report.cached.files == len(outputs)
    if backend.kind == "oci":  # a blob at two paths is downloaded once
        assert report.fetched.bytes == sum(manifest.blobs().values()) > 2_500_000
    else:
        assert report.fetched.bytes == manifest.size
    print(f"\n{backend.kind}: {report.summary()}")

    # dnf installs from the fetched repository: RPMs and repodata came back whole.
    repo = runner / "composes" / A / "repo"
    dnf.install(
        runner.parent / "root", [dnf.Repo("fetched", repo)], ["bravo"], releasever="42", platform="fl42"
    )
    assert dnf.installed(runner.parent / "root") == ["bravo-0:1-1.noarch"]

    again = fresh.fetch(manifest, runner)
    assert (again.fetched.files, again.cached.files, again.present.files) == (0, 0, len(outputs))


def test_fetched_files_are_hard_links_of_local_blobs(backend: Backend, rpms: dict[str, Path]) -> None:
    builder = backend.runner()
    outputs = make_compose(builder, A, rpms, ["alpha"])
    backend.open().put(A, builder, outputs)
    cache = backend.tmp / "shared-cache"
    first, second = backend.runner(), backend.runner()
    manifest = backend.open(cache=cache).manifest(A)
    assert manifest is not None
    one = backend.open(cache=cache).fetch(manifest, first)
    two = backend.open(cache=cache).fetch(manifest, second)
    executable = 1  # logs/rerun.sh (0755) cannot share the 0644 blob's inode: it is copied
    assert one.linked == two.linked == len(outputs) - executable
    if backend.kind == "oci":  # the second runner on the machine downloads nothing
        assert (two.fetched.files, two.cached.files) == (0, len(outputs))
    rpm = f"composes/{A}/repo/Packages/{rpms['alpha'].name}"
    assert (first / rpm).stat().st_ino == (second / rpm).stat().st_ino
    assert (second / f"composes/{A}/logs/rerun.sh").stat().st_mode & 0o777 == 0o755


def test_a_second_compose_uploads_only_the_files_the_store_lacks(
    backend: Backend, rpms: dict[str, Path]
) -> None:
    builder = backend.runner()
    first = make_compose(builder, A, rpms, ["alpha", "bravo", "charlie"])
    second = make_compose(builder, B, rpms, ["alpha", "bravo", "delta"])
    counting = Counting()
    store = backend.open(counting)
    store.put(A, builder, first)
    uploads_before = backend.registry.requests("PUT", r"/blobs/uploads/", 201) if backend.registry else 0
    counting.uploads.clear()
    store.put(B, builder, second)
    new = {o.sha256 for o in second} - {o.sha256 for o in first}
    shared = {o.sha256 for o in second} & {o.sha256 for o in first}
    assert sorted(counting.uploads) == sorted(new)
    assert set(counting.skipped) >= shared and len(shared) >= 3  # two RPMs and the empty log
    if backend.registry is not None:  # what the registry itself served: the new blobs and B's manifest
        uploads = backend.registry.requests("PUT", r"/blobs/uploads/", 201) - uploads_before
        assert uploads == len(new) + 1
    print(f"\n{backend.kind}: {len(new)} new blobs uploaded, {len(shared)} shared ones not sent again")

    counting.uploads.clear()
    assert store.put(B, builder, second) == store.manifest(B)  # the same put again: nothing moves
    assert counting.uploads == []


def test_a_missing_blob_is_an_error_naming_the_compose_and_the_file(
    backend: Backend, rpms: dict[str, Path]
) -> None:
    builder = backend.runner()
    outputs = make_compose(builder, A, rpms, ["alpha", "bravo"])
    manifest = backend.open().put(A, builder, outputs)
    bravo = next(o for o in outputs if o.path.endswith(rpms["bravo"].name))
    backend.remove_blob(bravo.sha256)
    runner = backend.runner()
    with pytest.raises(OperationFailed) as failed:
        backend.open().fetch(manifest, runner)
    assert A in failed.value.message and bravo.path in failed.value.message
    assert "missing" in failed.value.message
    assert not (runner / bravo.path).exists()


def test_a_corrupt_blob_is_an_error_naming_the_compose_and_the_file(
    backend: Backend, rpms: dict[str, Path]
) -> None:
    builder = backend.runner()
    outputs = make_compose(builder, A, rpms, ["alpha", "bravo"])
    manifest = backend.open().put(A, builder, outputs)
    bravo = next(o for o in outputs if o.path.endswith(rpms["bravo"].name))
    backend.corrupt_blob(bravo.sha256)
    runner = backend.runner()
    with pytest.raises(OperationFailed) as failed:
        backend.open().fetch(manifest, runner, only=[bravo.path])
    assert A in failed.value.message and bravo.path in failed.value.message
    assert "corrupt" in failed.value.message
    assert list(runner.rglob("*.rpm")) == []  # nothing half-written


def test_a_file_that_changed_since_it_was_described_is_not_stored(
    backend: Backend, rpms: dict[str, Path]
) -> None:
    builder = backend.runner()
    outputs = make_compose(builder, A, rpms, ["alpha"])
    changed = builder / f"composes/{A}/logs/rerun.sh"
    changed.write_text(changed.read_text().replace("echo", "ECHO"))  # same size, other bytes
    store = backend.open()
    with pytest.raises(OperationFailed) as failed:
        store.put(A, builder, outputs)
    assert A in failed.value.message and f"composes/{A}/logs/rerun.sh" in failed.value.message
    assert not store.has(A)


def test_concurrent_puts_of_the_same_blobs_lose_nothing(backend: Backend, rpms: dict[str, Path]) -> None:
    builder = backend.runner()
    ids = [f"FL-42-node{n}-20261121.n.0" for n in range(8)]
    outputs = {cid: make_compose(builder, cid, rpms, ["alpha", "bravo"]) for cid in ids}
    with ThreadPoolExecutor(max_workers=8) as pool:
        manifests = list(pool.map(lambda cid: backend.open().put(cid, builder, outputs[cid]), ids))
    store = backend.open()
    assert store.composes() == sorted(ids)
    runner = backend.runner()
    for manifest in manifests:
        assert store.manifest(manifest.compose_id) == manifest
        store.fetch(manifest, runner)
    assert tree(runner) == tree(builder)


def test_only_fetches_the_files_asked_for(backend: Backend, rpms: dict[str, Path]) -> None:
    builder = backend.runner()
    outputs = make_compose(builder, A, rpms, ["alpha", "bravo"])
    manifest = backend.open().put(A, builder, outputs)
    repodata = [o.path for o in outputs if "/repodata/" in o.path]
    runner = backend.runner()
    report = backend.open().fetch(manifest, runner, only=repodata)
    assert report.fetched.files == len(repodata)
    assert sorted(tree(runner)) == sorted(repodata)
    with pytest.raises(InvalidInput, match="has no file composes/nope"):
        backend.open().fetch(manifest, runner, only=["composes/nope"])


def test_a_compose_id_names_one_manifest(backend: Backend, rpms: dict[str, Path]) -> None:
    builder = backend.runner()
    outputs = make_compose(builder, A, rpms, ["alpha"])
    store = backend.open()
    store.put(A, builder, outputs)
    with pytest.raises(OperationFailed, match=r"already in the store .* with other files"):
        store.put(A, builder, outputs[:-1])


def test_deleted_composes_free_their_blobs_and_keep_the_others(
    backend: Backend, rpms: dict[str, Path]
) -> None:
    builder = backend.runner()
    first = make_compose(builder, A, rpms, ["alpha", "charlie"])
    second = make_compose(builder, B, rpms, ["alpha", "bravo"])
    store = backend.open()
    store.put(A, builder, first)
    kept = store.put(B, builder, second)
    assert store.delete(A) is True and store.delete(A) is False
    assert store.composes() == [B] and store.manifest(A) is None
    only_a = {o.sha256 for o in first} - {o.sha256 for o in second}
    if backend.registry is None:
        freed = store.sweep(referenced(store), grace=0)
        assert freed == sum(o.size for o in first if o.sha256 in only_a)
    else:  # the registry's own garbage collector frees what no manifest references
        backend.registry.garbage_collect()
    for sha in only_a:
        assert not backend._blob(sha).exists()
    runner = backend.runner()
    backend.open().fetch(kept, runner)
    assert tree(runner) == {p: v for p, v in tree(builder).items() if p.startswith(f"composes/{B}/")}


# -- the OCI registry only -------------------------------------------------------------------------


def test_oras_pull_lays_out_a_stored_compose(
    registry: oci_registry.Registry, rpms: dict[str, Path], tmp_path: Path
) -> None:
    """The field's own client reads a compose: every file at its path (annotations carry it)."""
    builder = tmp_path / "output"
    outputs = make_compose(builder, A, rpms, ["alpha"])
    open_store(f"oci://{registry.address}/factory/pulled", root=tmp_path, env={}).put(A, builder, outputs)
    client = oras.client.OrasClient(hostname=registry.address, insecure=True)
    pulled = tmp_path / "pulled"
    client.pull(target=f"{registry.address}/factory/pulled:{tag_for(A)}", outdir=str(pulled))
    assert {p: data for p, (data, _) in tree(pulled).items()} == {
        p: data for p, (data, _) in tree(builder).items()
    }


def test_a_corrupt_blob_in_the_local_cache_is_downloaded_again(
    registry: oci_registry.Registry, rpms: dict[str, Path], tmp_path: Path
) -> None:
    url, cache = f"oci://{registry.address}/factory/cached", tmp_path / "cache"
    builder = tmp_path / "output"
    outputs = make_compose(builder, A, rpms, ["alpha"])
    manifest = open_store(url, root=tmp_path, env={}, cache=cache).put(A, builder, outputs)
    open_store(url, root=tmp_path, env={}, cache=cache).fetch(manifest, tmp_path / "one")
    rerun = next(o for o in outputs if o.path.endswith("rerun.sh"))
    blob = cache / "blobs" / "sha256" / rerun.sha256[:2] / rerun.sha256
    blob.write_bytes(blob.read_bytes().upper())  # same size, other bytes
    report = open_store(url, root=tmp_path, env={}, cache=cache).fetch(manifest, tmp_path / "two")
    assert (report.fetched.files, report.cached.files) == (1, len(outputs) - 1)
    assert tree(tmp_path / "two") == tree(builder)


def test_registry_credentials_are_used_and_never_shown(
    tmp_path: Path, rpms: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-Pa55word"
    guarded = oci_registry.start(tmp_path / "registry", users={"factory": secret})
    try:
        caplog.set_level(logging.DEBUG)
        url = f"oci://{guarded.address}/factory/guarded"
        builder = tmp_path / "output"
        outputs = make_compose(builder, A, rpms, ["alpha"])
        env = {"FACTORY_STORE_USER": "factory", "FACTORY_STORE_PASSWORD": secret}
        manifest = open_store(url, root=tmp_path, env=env).put(A, builder, outputs)
        gitlab = {
            "CI_REGISTRY": guarded.address,
            "CI_REGISTRY_USER": "factory",
            "CI_REGISTRY_PASSWORD": secret,
        }
        open_store(url, root=tmp_path, env=gitlab, cache=tmp_path / "c1").fetch(manifest, tmp_path / "runner")

        errors: list[FactoryError] = []
        for env in (
            {},
            {"FACTORY_STORE_USER": "factory", "FACTORY_STORE_PASSWORD": secret + "x"},
            {
                "CI_REGISTRY": "registry.example.com",
                "CI_REGISTRY_USER": "factory",
                "CI_REGISTRY_PASSWORD": secret,
            },
        ):
            with pytest.raises(OperationFailed) as refused:
                open_store(url, root=tmp_path, env=env, cache=tmp_path / "c2").manifest(A)
            assert refused.value.code == "store-auth"
            errors.append(refused.value)
        with pytest.raises(InvalidInput) as half:
            open_store(url, root=tmp_path, env={"FACTORY_STORE_PASSWORD": secret}).manifest(A)
        assert "FACTORY_STORE_USER is not set" in half.value.message
        errors.append(half.value)
    finally:
        guarded.stop()
    basic = base64.b64encode(f"factory:{secret}".encode()).decode()
    shown = "\n".join([*(f"{e.message}\n{e.hint}" for e in errors), caplog.text])
    assert "refused access without credentials" in errors[0].message
    assert secret not in shown and basic not in shown
    assert secret not in guarded.log.read_text()


def test_a_registry_with_bearer_tokens_gets_one_for_each_scope_it_asks(
    tmp_path: Path, rpms: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """GitLab's registry flow: 401 with a Bearer challenge, a token from the realm for the scope
    asked (pull for a HEAD, then pull,push for an upload), the token sent back."""
    secret = "t0ken-Pa55word"
    tokens = TokenServer(tmp_path / "tokens", {"gitlab-ci-token": secret})
    guarded = oci_registry.start(tmp_path / "registry", token=tokens)
    try:
        caplog.set_level(logging.DEBUG)
        url = f"oci://{guarded.address}/group/project/store"
        env = {
            "CI_REGISTRY": guarded.address,
            "CI_REGISTRY_USER": "gitlab-ci-token",
            "CI_REGISTRY_PASSWORD": secret,
        }
        builder = tmp_path / "output"
        outputs = make_compose(builder, A, rpms, ["alpha"])
        manifest = open_store(url, root=tmp_path, env=env, cache=tmp_path / "c1").put(A, builder, outputs)
        runner = tmp_path / "runner"
        open_store(url, root=tmp_path, env=env, cache=tmp_path / "c2").fetch(manifest, runner)
        assert tree(runner) == tree(builder)
        with pytest.raises(OperationFailed) as refused:
            open_store(url, root=tmp_path, env={}, cache=tmp_path / "c3").manifest(A)
        assert refused.value.code == "store-auth"
    finally:
        guarded.stop()
        tokens.stop()
    assert "repository:group/project/store:pull" in tokens.granted
    assert "repository:group/project/store:pull,push" in tokens.granted
    shown = "\n".join([refused.value.message, refused.value.hint, caplog.text])
    assert (
        secret not in shown and base64.b64encode(f"gitlab-ci-token:{secret}".encode()).decode() not in shown
    )


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the source of a route outwards), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
            address: str = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_plain_http_is_refused_for_a_registry_not_on_loopback(tmp_path: Path) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    open_registry = oci_registry.start(tmp_path / "registry", listen="0.0.0.0")
    probes = open_registry.requests("GET", r"^/v2/")  # the fixture's own, waiting for it to start
    try:
        store = open_store(f"oci://{address}:{open_registry.port}/factory/x", root=tmp_path, env={})
        with pytest.raises(OperationFailed) as refused:
            store.has(A)
    finally:
        open_registry.stop()
    assert refused.value.code == "store-tls"
    assert "plain HTTP only to a registry on this machine" in refused.value.hint
    assert open_registry.requests("GET", r"^/v2/") == probes  # not one plain HTTP request was sent


# -- pure parts ------------------------------------------------------------------------------------


def test_store_urls_choose_the_backend(tmp_path: Path) -> None:
    absolute = open_store((tmp_path / "s").as_uri(), root=Path("/elsewhere"), env={})
    assert absolute.directory == tmp_path / "s"  # type: ignore[attr-defined]
    relative = open_store("file:.factory/store", root=tmp_path, env={})
    assert relative.directory == tmp_path / ".factory/store"  # type: ignore[attr-defined]
    oci = open_store("oci://localhost:5000/group/project/store", root=tmp_path, env={})
    assert oci.location.registry == "localhost:5000" and oci.location.repository == "group/project/store"  # type: ignore[attr-defined]
    assert oci.location.plain_http  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        "s3://bucket/store",
        "/var/store",
        "file://server/share",
        "oci://registry.example.com",
        "oci://registry.example.com/UpperCase",
        "oci://registry.example.com:notaport/store",
        "oci://user:hunter2@registry.example.com/store",
        "oci://registry.example.com/store?x=1",
    ],
)
def test_a_bad_store_url_is_invalid_input_naming_it(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as bad:
        open_store(url, root=tmp_path, env={})
    assert bad.value.code == "invalid-store-url"
    assert "hunter2" not in bad.value.message
    assert url.replace("user:hunter2", "[redacted]") in bad.value.message


@pytest.mark.parametrize(
    ("host", "plain_http"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("[::1]", True),
        ("192.0.2.2", False),
        ("10.0.0.1", False),
        ("registry.example.com", False),
        ("127.0.0.1.example.com", False),
        ("localhost.example.com", False),
        ("[::2]", False),
    ],
)
def test_plain_http_only_for_a_loopback_registry(host: str, plain_http: bool, tmp_path: Path) -> None:
    store = open_store(f"oci://{host}:5000/factory", root=tmp_path, env={})
    assert store.location.plain_http is plain_http  # type: ignore[attr-defined]
