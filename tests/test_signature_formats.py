"""The pure parts of signing: CHECKSUM text, containers/image's names and files, the records a
release writes, and the command lines of the signing tools (exact lists, no process started)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from pipeline.compose.iso import kickstart
from pipeline.core.signatures import Signature, SignatureKind, counts, ordered
from pipeline.formats import checksum, containers
from pipeline.release.container_registry import image_of, tag_for
from pipeline.release.sign import signable
from pipeline.tools import gpg, skopeo, xorriso

SHA = "0b16b39616784da2760b5a6066ec1d82c2468294f8d8d1d494fdfb054208c1bc"


def test_a_checksum_file_is_fedoras_bsd_style_and_reads_back() -> None:
    entries = [checksum.Entry("b.iso", 2048, SHA), checksum.Entry("a.tar", 10, "1" * 64)]
    text = checksum.render(entries)
    assert text == (
        f"# a.tar: 10 bytes\nSHA256 (a.tar) = {'1' * 64}\n# b.iso: 2048 bytes\nSHA256 (b.iso) = {SHA}\n"
    )
    assert checksum.render(reversed(entries)) == text
    clearsigned = f"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{text}-----BEGIN PGP SIGNATURE-----\n"
    assert checksum.parse(clearsigned) == {"a.tar": "1" * 64, "b.iso": SHA}
    assert checksum.checksum_name("FL-42-AtomicHost-installer-20261121.t.0-x86_64") == (
        "FL-42-AtomicHost-installer-20261121.t.0-x86_64-CHECKSUM"
    )
    with pytest.raises(ValueError):
        checksum.render([checksum.Entry("sub/b.iso", 1, SHA)])


def test_image_names_lookaside_paths_and_loopback() -> None:
    repo = containers.repository("127.0.0.1:5000/fl", "Cloud", "base")
    assert repo == "127.0.0.1:5000/fl/cloud/base"
    assert (
        containers.by_digest(repo, f"sha256:{SHA}") == f"docker://127.0.0.1:5000/fl/cloud/base@sha256:{SHA}"
    )
    assert containers.by_tag(repo, "FL-42-Cloud-base-20261121.t.0").endswith(
        "/cloud/base:FL-42-Cloud-base-20261121.t.0"
    )
    # containers/image's lookaside layout: the repository path without its host.
    assert containers.lookaside_path(repo, f"sha256:{SHA}") == f"fl/cloud/base@sha256={SHA}/signature-1"
    assert containers.registry_host("registry.gitlab.example/dist/factory") == "registry.gitlab.example"
    assert containers.is_loopback("127.0.0.1:5000/fl") and containers.is_loopback("localhost:5000")
    assert not containers.is_loopback("registry.gitlab.example/dist") and not containers.is_loopback(
        "10.0.0.1:5000"
    )
    assert image_of("container:Cloud/httpd") == ("Cloud", "httpd")
    assert tag_for("FL-42-Cloud-base-20261121.t.0") == "FL-42-Cloud-base-20261121.t.0"
    assert tag_for("FL-42+x-Cloud-base-20261121.0") == "FL-42_x-Cloud-base-20261121.0"


def test_registries_d_and_policy_are_what_containers_image_reads() -> None:
    scope = "127.0.0.1:5000/fl/cloud/base"
    read = yaml.safe_load(containers.registries_d(scope, lookaside="file:///r/sigstore"))
    assert read == {"docker": {scope: {"lookaside": "file:///r/sigstore"}}}
    staging = yaml.safe_load(containers.registries_d(scope, staging="file:///s"))
    assert staging == {"docker": {scope: {"lookaside-staging": "file:///s"}}}
    key = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n...\n"
    policy = json.loads(containers.signed_by_policy(scope, key))
    assert policy == {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                scope: [{"type": "signedBy", "keyType": "GPGKeys", "keyData": base64.b64encode(key).decode()}]
            }
        },
    }
    assert containers.repository_of(f"docker://{scope}@sha256:{'0' * 64}") == scope
    push = json.loads(containers.push_policy())
    assert push["default"] == [{"type": "reject"}] and list(push["transports"]) == ["oci-archive"]


def test_signature_records_round_trip_and_say_only_what_they_hold() -> None:
    rpm = Signature(SignatureKind.RPM, "Packages/a.rpm", "FPR", path="Packages/a.rpm")
    commit = Signature(
        SignatureKind.OSTREE_COMMIT, "/ostree/repo/objects/ab/cd.commitmeta", "FPR", path="/ostree/repo",
        ref="FL/42/x86_64/host", commit="abcd", within="compose/AtomicHost/x86_64/iso/installer.iso",
    )  # fmt: skip
    sums = Signature(SignatureKind.CHECKSUM, "d/X-CHECKSUM", "FPR", path="d/X-CHECKSUM", files=("d/a.iso",))
    assert rpm.to_json() == {
        "kind": "rpm",
        "signature": "Packages/a.rpm",
        "key": "FPR",
        "path": "Packages/a.rpm",
    }
    for record in (rpm, commit, sums):
        assert Signature.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert [s.kind for s in ordered([sums, rpm, commit])] == ["checksum", "ostree-commit", "rpm"]
    assert counts([rpm, rpm, sums]) == {"checksum": 1, "rpm": 2}


def test_what_factory_signs_is_known_from_the_output_paths() -> None:
    assert signable(["composes/X/repo/Packages/a-1-1.noarch.rpm"])
    assert signable(["composes/X/compose/Server/x86_64/os/repodata/repomd.xml"])
    assert signable(["composes/X/ostree.json"])
    assert signable(["composes/X/compose/AtomicHost/x86_64/iso/installer.iso"])
    assert signable(["composes/X/compose/Cloud/x86_64/images/base.tar"])
    assert not signable(["composes/X/notes.txt", "composes/X/compose/metadata/composeinfo.json"])


def test_the_signing_command_lines_keep_secrets_in_files() -> None:
    push = skopeo.Push(
        policy=Path("/p/policy.json"), registries_d=Path("/p/registries.d"), sign_by="FPR",
        digestfile=Path("/p/digest"), authfile=Path("/p/auth.json"), passphrase_file=Path("/p/pass"),
        tls_verify=False,
    )  # fmt: skip
    assert skopeo.push_argv("oci-archive:/a.tar", "docker://127.0.0.1:5000/fl/cloud/base:T", push) == [
        "skopeo", "--policy", "/p/policy.json", "--registries.d", "/p/registries.d", "copy", "--quiet",
        "--preserve-digests", "--sign-by", "FPR", "--digestfile", "/p/digest", "--dest-tls-verify=false",
        "--dest-authfile", "/p/auth.json", "--sign-passphrase-file", "/p/pass",
        "oci-archive:/a.tar", "docker://127.0.0.1:5000/fl/cloud/base:T",
    ]  # fmt: skip
    anonymous = skopeo.Push(Path("/p"), Path("/d"), "FPR", Path("/g"))
    assert "--dest-tls-verify=true" in skopeo.push_argv("a", "b", anonymous)
    assert "--dest-authfile" not in skopeo.push_argv("a", "b", anonymous)
    assert gpg.clearsign_argv(Path("/h"), "FPR", Path("/in"), Path("/out"), None)[7:10] == [
        "--passphrase", "", "--yes",
    ]  # fmt: skip
    assert gpg.clearsign_argv(Path("/h"), "FPR", Path("/in"), Path("/out"), Path("/pp")) == [
        "/usr/bin/gpg", "--homedir", "/h", "--batch", "--no-tty", "--pinentry-mode", "loopback",
        "--passphrase-file", "/pp", "--yes", "--local-user", "FPR", "--clearsign", "--output", "/out", "/in",
    ]  # fmt: skip
    assert xorriso.extract_argv(Path("/x.iso"), "/ostree/repo", Path("/d")) == [
        "xorriso", "-osirrox", "on", "-indev", "/x.iso", "-extract", "/ostree/repo", "/d",
    ]  # fmt: skip
    assert xorriso.remaster_argv(Path("/a.iso"), Path("/b.iso"), [(Path("/r"), "/ostree/repo")]) == [
        "xorriso", "-indev", "/a.iso", "-outdev", "/b.iso", "-boot_image", "any", "keep",
        "-map", "/r", "/ostree/repo", "-commit",
    ]  # fmt: skip


def test_the_installer_kickstart_verifies_with_the_key_the_image_carries() -> None:
    text = kickstart("FL/42/x86_64/host")
    assert "--nogpg" not in text
    assert "ostreesetup --osname=factory --remote=factory --url=file:///run/install/repo/ostree/repo " in text
    assert text.index("ostreesetup") < text.index("%pre")  # commands first, then sections
    assert text.endswith(
        "%pre\nmkdir -p /usr/share/ostree/trusted.gpg.d\n"
        "cp /run/install/repo/ostree/trusted.gpg.d/*.gpg /usr/share/ostree/trusted.gpg.d/\n%end\n"
    )


def test_pykickstart_reads_the_kickstart_as_anaconda_would() -> None:
    """anaconda's own parser: ostreesetup with gpg verification on, and the %pre that trusts the key."""
    from pykickstart.constants import KS_SCRIPT_PRE  # type: ignore[import-untyped]
    from pykickstart.parser import KickstartParser  # type: ignore[import-untyped]
    from pykickstart.version import makeVersion  # type: ignore[import-untyped]

    parser = KickstartParser(makeVersion())
    parser.readKickstartFromString(kickstart("FL/42/x86_64/host"))
    setup = parser.handler.ostreesetup
    assert (setup.osname, setup.remote, setup.ref) == ("factory", "factory", "FL/42/x86_64/host")
    assert setup.url == "file:///run/install/repo/ostree/repo" and setup.nogpg is False
    [pre] = parser.handler.scripts
    assert pre.type == KS_SCRIPT_PRE
    assert pre.script == (
        "mkdir -p /usr/share/ostree/trusted.gpg.d\n"
        "cp /run/install/repo/ostree/trusted.gpg.d/*.gpg /usr/share/ostree/trusted.gpg.d/\n"
    )
