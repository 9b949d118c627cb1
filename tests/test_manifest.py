"""The pure parts of the artifact store: the manifest format, OCI tags, credentials, layouts."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.artifacts.oci import MANIFEST_LIMIT, _oci_manifest
from pipeline.artifacts.oci_names import compose_for, tag_for
from pipeline.core.credentials import STORE, registry_credentials
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.manifest import Manifest, ManifestFile
from pipeline.core.records import OutputFile, outputs_digest

CID = "FL-42-base-runtime-f42-20261121.n.0"
SHA = "ab" * 32


def small() -> Manifest:
    return Manifest.of(
        CID,
        [
            ManifestFile("composes/x/repo/repodata/repomd.xml", 1200, 0o644, "12" * 32),
            ManifestFile("builds/k/bash-5.2-1.fl42.x86_64.rpm", 1_500_000, 0o644, SHA),
            ManifestFile("composes/x/logs/rerun.sh", 40, 0o755, "cd" * 32),
        ],
    )


def test_a_manifest_is_canonical_json_with_its_format_and_sorted_files() -> None:
    data = small().to_bytes()
    assert data.endswith(b"}\n") and b" " not in data
    value = json.loads(data)
    assert value["format"] == 1 and value["compose_id"] == CID
    assert [f["path"] for f in value["files"]] == sorted(f["path"] for f in value["files"])
    assert value["files"][2] == {
        "path": "composes/x/repo/repodata/repomd.xml",
        "size": 1200,
        "mode": "0644",
        "sha256": "12" * 32,
    }
    assert value["files"][1]["mode"] == "0755"


def test_dump_load_dump_is_byte_identical() -> None:
    data = small().to_bytes()
    assert Manifest.from_bytes(data).to_bytes() == data
    assert Manifest.from_bytes(data) == small()


paths = st.lists(
    st.text(alphabet="abcz019._+-", min_size=1, max_size=8).filter(lambda s: s not in (".", "..")),
    min_size=1,
    max_size=4,
).map("/".join)
files = st.builds(
    ManifestFile,
    paths,
    st.integers(min_value=0, max_value=1 << 40),
    st.integers(min_value=0, max_value=0o777),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)


@given(st.lists(files, max_size=20, unique_by=lambda f: f.path))
def test_any_sound_manifest_survives_dump_load_dump(listed: list[ManifestFile]) -> None:
    try:
        manifest = Manifest.of(CID, listed)
    except InvalidInput:  # e.g. a path that is also another's directory
        return
    data = manifest.to_bytes()
    assert Manifest.from_bytes(data).to_bytes() == data
    assert Manifest.from_json(json.loads(data)) == manifest


def test_the_digest_is_the_sha256_of_the_bytes_and_sees_every_field() -> None:
    manifest = small()
    assert manifest.digest() == hashlib.sha256(manifest.to_bytes()).hexdigest()
    first = manifest.files[0]
    changed = [
        Manifest.of(CID.replace("20261121", "20261122"), manifest.files),
        Manifest.of(
            CID, [ManifestFile(first.path + "x", first.size, first.mode, first.sha256), *manifest.files[1:]]
        ),
        Manifest.of(
            CID, [ManifestFile(first.path, first.size + 1, first.mode, first.sha256), *manifest.files[1:]]
        ),
        Manifest.of(CID, [ManifestFile(first.path, first.size, 0o600, first.sha256), *manifest.files[1:]]),
        Manifest.of(CID, [ManifestFile(first.path, first.size, first.mode, "ef" * 32), *manifest.files[1:]]),
    ]
    assert len({manifest.digest(), *(m.digest() for m in changed)}) == 6


def test_the_outputs_are_what_a_lineage_record_lists() -> None:
    outputs = small().outputs()
    assert outputs[0] == OutputFile("builds/k/bash-5.2-1.fl42.x86_64.rpm", 1_500_000, SHA)
    assert outputs_digest(outputs) == outputs_digest(sorted(outputs, key=lambda o: o.sha256))


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ([ManifestFile("/etc/passwd", 1, 0o644, SHA)], "not a relative path"),
        ([ManifestFile("a/../../x", 1, 0o644, SHA)], "not a relative path"),
        ([ManifestFile("a//b", 1, 0o644, SHA)], "not a relative path"),
        ([ManifestFile("a/./b", 1, 0o644, SHA)], "not a relative path"),
        ([ManifestFile("", 1, 0o644, SHA)], "not a relative path"),
        ([ManifestFile("a", 1, 0o644, SHA), ManifestFile("a", 1, 0o644, SHA)], "listed twice"),
        (
            [ManifestFile("a", 1, 0o644, SHA), ManifestFile("a/b", 1, 0o644, SHA)],
            "both a file and a directory",
        ),
        ([ManifestFile("a", -1, 0o644, SHA)], "negative size"),
        ([ManifestFile("a", 1, 0o4755, SHA)], "not permission bits"),
        ([ManifestFile("a", 1, 0o644, SHA.upper())], "not a sha256"),
    ],
)
def test_an_unsound_manifest_is_refused(files: list[ManifestFile], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as refused:
        Manifest.of(CID, files)
    assert refused.value.code == "invalid-manifest"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"format": 2, "compose_id": "x", "files": []}', "unsupported format 2"),
        (b'{"format": 1, "compose_id": "nope", "files": []}', "not a compose ID"),
        (b'{"format": 1, "compose_id": "' + CID.encode() + b'", "files": [{"path": "a"}]}', r"files\[0\]"),
        (
            b'{"format": 1, "compose_id": "' + CID.encode() + b'", "files": '
            b'[{"path": "a", "size": 1, "mode": "644", "sha256": "' + SHA.encode() + b'"}]}',
            "mode",
        ),
    ],
)
def test_a_stored_manifest_that_is_not_one_is_invalid(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        Manifest.from_bytes(data)


# -- OCI tags, credentials and layout --------------------------------------------------------------


@pytest.mark.parametrize(
    ("cid", "tag"),
    [
        (CID, CID),
        ("FL-42-my_module-f42-20261121.n.0", "FL-42-my__module-f42-20261121.n.0"),
        ("FL-42-gtk+-3-20261121.0", "FL-42-gtk_x-3-20261121.0"),
        ("FL-42-a__b+_c-20261121.t.3", "FL-42-a____b_x__c-20261121.t.3"),
    ],
)
def test_a_compose_id_has_a_legal_tag_that_gives_it_back(cid: str, tag: str) -> None:
    assert tag_for(cid) == tag
    assert compose_for(tag) == cid


def test_a_compose_id_too_long_for_a_tag_is_tagged_by_its_hash() -> None:
    long = f"FL-42-{'x' * 130}-20261121.n.0"
    tag = tag_for(long)
    assert tag == "_h" + hashlib.sha256(long.encode()).hexdigest()
    assert compose_for(tag) is None  # the store reads the compose ID from the manifest's annotation


def test_tags_that_are_not_composes_are_ignored() -> None:
    assert compose_for("latest") is None
    assert compose_for("FL-42-x_y-20261121.0") is None  # '_' alone is no escape


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"FACTORY_STORE_USER": "u", "FACTORY_STORE_PASSWORD": "p"}, ("u", "p")),
        (
            {
                "CI_REGISTRY": "registry.example.com:5050",
                "CI_REGISTRY_USER": "gitlab-ci-token",
                "CI_REGISTRY_PASSWORD": "j",
            },
            ("gitlab-ci-token", "j"),
        ),
        # GitLab's credentials are for GitLab's registry only, never sent to another one
        (
            {
                "CI_REGISTRY": "registry.gitlab.example",
                "CI_REGISTRY_USER": "gitlab-ci-token",
                "CI_REGISTRY_PASSWORD": "j",
            },
            None,
        ),
        ({"CI_REGISTRY_USER": "gitlab-ci-token", "CI_REGISTRY_PASSWORD": "j"}, None),
        # the store's own variables win
        (
            {
                "CI_REGISTRY": "registry.example.com:5050",
                "CI_REGISTRY_USER": "g",
                "CI_REGISTRY_PASSWORD": "j",
                "FACTORY_STORE_USER": "u",
                "FACTORY_STORE_PASSWORD": "p",
            },
            ("u", "p"),
        ),
    ],
)
def test_credentials_come_from_the_environment(env: dict[str, str], expected: tuple[str, str] | None) -> None:
    assert registry_credentials(env, "registry.example.com:5050", prefix=STORE) == expected


def test_half_a_login_names_the_missing_variable_and_never_the_value() -> None:
    with pytest.raises(InvalidInput) as half:
        registry_credentials({"FACTORY_STORE_USER": "u"}, "r", prefix=STORE)
    assert half.value.message == "FACTORY_STORE_PASSWORD is not set, but FACTORY_STORE_USER is"
    assert half.value.code == "store-credentials"
    with pytest.raises(InvalidInput) as other:
        registry_credentials({"FACTORY_STORE_PASSWORD": "hunter2"}, "r", prefix=STORE)
    assert "hunter2" not in other.value.message + other.value.hint


def big(count: int, distinct: int) -> Manifest:
    return Manifest.of(
        CID,
        [
            ManifestFile(f"ostree/repo/objects/{n:06d}/{'p' * 60}.file", 10, 0o644, f"{n % distinct:064x}")
            for n in range(count)
        ],
    )


def test_an_oci_manifest_annotates_each_layer_with_its_path_and_mode() -> None:
    oci = json.loads(_oci_manifest(small(), len(small().to_bytes())))
    assert oci["config"] == {
        "mediaType": "application/vnd.factory.manifest.v1+json",
        "digest": f"sha256:{small().digest()}",
        "size": len(small().to_bytes()),
    }
    assert [layer["annotations"] for layer in oci["layers"]] == [
        {"org.opencontainers.image.title": f.path, "io.factory.mode": f"{f.mode:04o}"} for f in small().files
    ]


def test_a_compose_too_big_for_annotations_lists_each_blob_once() -> None:
    manifest = big(30_000, 1_000)
    body = _oci_manifest(manifest, 1)
    assert len(body) <= MANIFEST_LIMIT
    layers = json.loads(body)["layers"]
    assert len(layers) == 1_000 and all("annotations" not in layer for layer in layers)


def test_a_compose_with_too_many_distinct_files_for_one_oci_manifest_is_refused() -> None:
    with pytest.raises(OperationFailed, match="30000 distinct files") as refused:
        _oci_manifest(big(30_000, 30_000), 1)
    assert "file:// store" in refused.value.hint
