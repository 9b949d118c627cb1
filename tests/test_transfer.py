"""The executor's traffic with the artifact store (pipeline.transfer), on a `file://` store.

A "runner" is a fresh output directory: what it has is only what it made or fetched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.artifacts.store import open_store
from pipeline.compose.base import InputCompose, describe_file
from pipeline.core.errors import OperationFailed
from pipeline.tools import ostree
from pipeline.transfer import Transfer, open_transfer, reads, store_url

CID = "FL-42-base-runtime-f42-20261121.ci.0"


def made_on_a_runner(output: Path) -> InputCompose:
    """A compose of two files, put into the store by the runner that made it."""
    files = {"composes/c/a.txt": b"alpha\n", "composes/c/sub/b.txt": b"beta beta\n"}
    for path, data in files.items():
        (output / path).parent.mkdir(parents=True, exist_ok=True)
        (output / path).write_bytes(data)
    return InputCompose(
        "module:base-runtime:f42", CID, tuple(describe_file(output, output / p) for p in files)
    )


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


def transfer(store_dir: Path, output: Path) -> Transfer:
    return Transfer(open_store(f"file://{store_dir}", root=output, env={}), output)


def test_a_fresh_runner_fetches_exactly_the_files_it_lacks_and_they_are_the_recorded_bytes(
    tmp_path: Path, store_dir: Path
) -> None:
    made = made_on_a_runner(tmp_path / "one")
    transfer(store_dir, tmp_path / "one").store.put(CID, tmp_path / "one", made.outputs)
    fresh = tmp_path / "two"
    (fresh / "composes/c").mkdir(parents=True)
    (fresh / "composes/c/a.txt").write_bytes(b"alpha\n")  # this one is here already
    moving = transfer(store_dir, fresh)
    moving.ensure(made)
    assert (fresh / "composes/c/sub/b.txt").read_bytes() == b"beta beta\n"
    assert (moving.moved.fetched.files, moving.moved.fetched.bytes) == (1, len(b"beta beta\n"))
    moving.ensure(made)  # all local now: nothing more
    assert moving.moved.fetched.files == 1


def test_a_compose_the_store_lacks_is_an_error_naming_the_compose_and_a_file(
    tmp_path: Path, store_dir: Path
) -> None:
    made = made_on_a_runner(tmp_path / "one")  # never put
    with pytest.raises(
        OperationFailed,
        match=rf"compose {CID} \(module:base-runtime:f42\) is not in the "
        r"artifact store .*its file composes/c/a.txt is not in",
    ):
        transfer(store_dir, tmp_path / "two").ensure(made)


def test_a_corrupt_blob_is_an_error_naming_the_compose_and_the_file(tmp_path: Path, store_dir: Path) -> None:
    made = made_on_a_runner(tmp_path / "one")
    transfer(store_dir, tmp_path / "one").store.put(CID, tmp_path / "one", made.outputs)
    blob = next(p for p in (store_dir / "blobs").rglob("*") if p.is_file() and p.stat().st_size == 10)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"beta BETA\n")
    fresh = tmp_path / "two"
    with pytest.raises(OperationFailed, match=rf"compose {CID}: file composes/c/sub/b.txt: .*corrupt"):
        transfer(store_dir, fresh).ensure(made)
    assert not (fresh / "composes/c/sub/b.txt").exists()  # nothing half-written


def test_a_store_manifest_other_than_the_lineage_record_is_refused(tmp_path: Path, store_dir: Path) -> None:
    made = made_on_a_runner(tmp_path / "one")
    transfer(store_dir, tmp_path / "one").store.put(CID, tmp_path / "one", made.outputs[:1])
    with pytest.raises(OperationFailed, match="does not list the files its lineage record lists"):
        transfer(store_dir, tmp_path / "two").ensure(made)


def test_put_returns_the_digest_of_the_stored_manifest(tmp_path: Path, store_dir: Path) -> None:
    made = made_on_a_runner(tmp_path / "one")
    moving = transfer(store_dir, tmp_path / "one")
    digest = moving.put(CID, made.outputs)
    stored = moving.store.manifest(CID)
    assert stored is not None and stored.digest() == digest
    assert (moving.moved.put.files, moving.moved.put.bytes) == (2, 16)


def test_the_store_variable_wins_over_factory_yaml(tmp_path: Path) -> None:
    assert store_url("file:.factory/store", {"FACTORY_STORE": "oci://127.0.0.1:5000/f"}) == (
        "oci://127.0.0.1:5000/f"
    )
    assert store_url("file:.factory/store", {}) == "file:.factory/store"
    opened = open_transfer("file:.factory/store", root=tmp_path, output_dir=tmp_path / "out", env={})
    assert opened.store.url == "file:.factory/store"


def test_ostree_objects_of_a_commit_are_parsed_from_ls() -> None:
    listing = (
        "d00755 0 0      0 " + "d2" * 32 + " " + "44" * 32 + " /\n"
        "-00644 0 0      3 " + "fb" * 32 + " /a/f\n"
        "l00777 0 0      0 " + "43" * 32 + " /a/l -> f\n"
    )
    assert ostree.parse_ls_objects(listing) == sorted(
        [
            ostree.object_path("d2" * 32, "dirtree"),
            ostree.object_path("44" * 32, "dirmeta"),
            ostree.object_path("fb" * 32, "filez"),
            ostree.object_path("43" * 32, "filez"),
        ]
    )
    assert ostree.object_path("ab" + "c" * 62, "commit") == f"objects/ab/{'c' * 62}.commit"


def test_an_image_reads_the_binary_trees_of_its_variant_repo_and_a_repo_reads_everything() -> None:
    source = "composes/FL-42-Server-20261121.ci.0/compose/Server/source/tree/Packages/o/openssl-3.src.rpm"
    binary = "composes/FL-42-Server-20261121.ci.0/compose/Server/x86_64/os/Packages/o/openssl-3.x86_64.rpm"
    for kind in ("ostree", "container", "iso"):
        assert reads(kind, "repo:Server", binary) and not reads(kind, "repo:Server", source)
    assert reads("repo", "module:base-runtime:f42", source.replace("compose/Server", "x"))
