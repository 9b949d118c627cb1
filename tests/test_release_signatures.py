"""Every released artifact signed in its field's own form, and every signature a release claims
verified by the field's own client.

The gated example distribution (test_checks_repo.py's session fixture) gets its images
composed, then the Server repo, the Atomic Host's OSTree commit and installer ISO, and both
Cloud containers are released signed, the containers pushed to Debian's docker-registry on
127.0.0.1 (tests/registry.py). `verify` walks RELEASE.json and checks each claimed signature
with the client a user has: `rpm -K` (key imported into a private --dbpath), `gpg --verify`
with only the published key, dnf with gpgcheck and repo_gpgcheck, `ostree pull` with
gpg-verify (and gpg-verify-summary), `sha256sum -c` on the clearsigned CHECKSUM files, and
`skopeo copy` under the release's own signedBy policy. A claim it cannot verify fails the test.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline import cli
from pipeline.core.errors import InvalidInput
from pipeline.core.records import OutputFile, Record, outputs_digest
from pipeline.core.signatures import Signature, SignatureKind
from pipeline.core.states import ComposeStatus
from pipeline.formats import checksum, containers
from pipeline.records import jsonnotes
from pipeline.records.lineage import Lineage
from pipeline.records.refs import RELEASE_NOTES
from pipeline.release import release_dir as publish
from pipeline.release import sign
from pipeline.release.sign_images import KEYRING
from pipeline.tools import dnf
from tests import registry as registries
from tests.conftest import ROOT, commit_tree, example_tree
from tests.http_files import serve
from tests.test_checks_repo import gated_dist, output_dir
from tests.test_sign_release import key

__all__ = ["gated_dist", "key"]  # session fixtures, shared

IMAGES = [
    "ostree:AtomicHost/host",
    "iso:AtomicHost/installer",
    "container:Cloud/base",
    "container:Cloud/httpd",
]
RELEASED = ["repo:Server", *IMAGES]
REF = "FL/42/x86_64/host"


def run(
    *argv: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, env=env, cwd=cwd)


def slug(node: str) -> str:
    return node.replace(":", "-").replace("/", "-")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registries.Registry]:
    running = registries.start(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def released(
    gated_dist: Path,
    key: tuple[Path, str],
    registry: registries.Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    """node -> its release directory (DIR/<compose-id>), every one released signed."""
    home, fingerprint = key
    assert cli.main(["compose", *IMAGES, "--repo", str(gated_dist), "--type", "test", "--json"]) == 0
    top = tmp_path_factory.mktemp("releases")
    found = {}
    latest = Lineage(gated_dist).latest()
    for node in RELEASED:
        to = top / slug(node)
        argv = ["release", latest[node], "--repo", str(gated_dist), "--to", str(to)]
        argv += ["--gnupghome", str(home), "--key", fingerprint, "--registry", f"{registry.address}/fl"]
        assert cli.main(argv) == 0, node
        found[node] = to / latest[node]
    return found


def manifest(release: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((release / publish.MANIFEST).read_text())
    return data


def signatures_of(release: Path) -> list[Signature]:
    listed = manifest(release)["signatures"]
    assert isinstance(listed, list)
    return [Signature.from_json(s) for s in listed]


# -- the clients ---------------------------------------------------------------------------------


def gpg_home(tmp: Path, public_key: Path) -> Path:
    """A GnuPG home that knows only the published public key."""
    home = tmp / "verify-gnupg"
    if not home.is_dir():
        home.mkdir(mode=0o700)
        assert run("gpg", "--homedir", str(home), "--batch", "--import", str(public_key)).returncode == 0
    return home


def gpg_verifies(home: Path, fingerprint: str, *files: Path) -> bool:
    """gpg --verify, and the good signature is by that key (its VALIDSIG status line)."""
    done = run("gpg", "--homedir", str(home), "--batch", "--status-fd", "1", "--verify", *map(str, files))
    return done.returncode == 0 and f"[GNUPG:] VALIDSIG {fingerprint}" in done.stdout


def rpm_verifies(tmp: Path, public_key: Path, rpm: Path, fingerprint: str) -> bool:
    dbpath = tmp / "verify-rpmdb"
    if not dbpath.is_dir():
        dbpath.mkdir()
        assert run("rpm", "--dbpath", str(dbpath), "--import", str(public_key)).returncode == 0
    done = run("rpm", "--dbpath", str(dbpath), "-Kv", str(rpm))
    return done.returncode == 0 and f"key ID {fingerprint[-8:].lower()}: OK" in done.stdout


def ostree_pulls(
    tmp: Path,
    name: str,
    source: Path,
    ref: str,
    *,
    keys: Path,
    summary: bool = False,
    trusted: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """A fresh client repository pulls ref from source with gpg-verify (and gpg-verify-summary):
    trusting the armored key file `keys` (gpgkeypath), or, with `trusted`, the keyrings of that
    directory as ostree's global trusted.gpg.d (what the installer's %pre sets up)."""
    client = tmp / f"ostree-client-{name}"
    assert run("ostree", "init", "--mode=archive", f"--repo={client}").returncode == 0
    options = ["--set=gpg-verify=true", f"--set=gpg-verify-summary={'true' if summary else 'false'}"]
    if trusted is None:
        options.append(f"--set=gpgkeypath={keys}")
    added = run("ostree", f"--repo={client}", "remote", "add", *options, "release", source.as_uri())
    assert added.returncode == 0, added.stderr
    env = {**os.environ, "OSTREE_GPG_HOME": str(trusted)} if trusted is not None else None
    return run("ostree", f"--repo={client}", "pull", "release", ref, env=env)


def dnf_reads(root: Path, repo: Path, public_key: Path) -> bool:
    """dnf with gpgcheck and repo_gpgcheck: installs from a binary repo, lists a source repo."""
    checked = dnf.Repo("release", repo, gpgkey=public_key, repo_gpgcheck=True)
    if not list(repo.glob("Packages/*.src.rpm")):
        dnf.install(root, [checked], ["filesystem"], releasever="42", platform="fl42")
        return any(n.startswith("filesystem-") for n in dnf.installed(root))
    home = root.parent / f"{root.name}-home"
    home.mkdir()
    argv = dnf.install_argv(root, [checked], [], releasever="42", platform="fl42", cachedir=home / "cache")[
        :-1
    ]
    (home / ".rpmmacros").write_text(f"%_dbpath {dnf.RPMDB}\n")
    listed = run(*argv, "repoquery", "--arch=src", env={**os.environ, "HOME": str(home)})
    for keyring in [*root.rglob("pubring.*"), *home.rglob("pubring.*")]:  # librepo's agents
        run("gpgconf", "--homedir", str(keyring.parent), "--kill", "gpg-agent")
    return listed.returncode == 0 and ".src" in listed.stdout


def extract(iso: Path, path: str, dest: Path) -> Path:
    done = run("xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(dest))
    assert done.returncode == 0, done.stderr
    return dest


def verify(release: Path, tmp: Path) -> dict[SignatureKind, int]:
    """Check every signature RELEASE.json claims with the field's client; how many of each kind."""
    try:
        return _verify(release, tmp)
    finally:  # the GnuPG home that knows only the published key
        run("gpgconf", "--homedir", str(tmp / "verify-gnupg"), "--kill", "all")


def _verify(release: Path, tmp: Path) -> dict[SignatureKind, int]:
    data = manifest(release)
    signatures = signatures_of(release)
    assert signatures and data["unsigned"] is False
    public_key = release / str(data["public_key"])
    home = gpg_home(tmp, public_key)
    checked: dict[SignatureKind, int] = {}
    isos: dict[str, Path] = {}
    for n, s in enumerate(signatures):
        assert s.key == data["signed_by"]
        if s.within:  # a repository inside an installer ISO: extract it as the installer sees it
            if s.within not in isos:
                image = tmp / f"iso-{len(isos)}"
                extract(release / s.within, "/ostree", image / "ostree")
                isos[s.within] = image
            root = isos[s.within]
            assert (root / s.signature.lstrip("/")).is_file(), s
            trusted = root / "ostree" / "trusted.gpg.d"
            pulled = ostree_pulls(
                tmp, f"iso-{n}", root / "ostree" / "repo", REF,
                keys=public_key, summary=s.kind == SignatureKind.OSTREE_SUMMARY, trusted=trusted,
            )  # fmt: skip
            assert pulled.returncode == 0, pulled.stderr
        elif s.kind == SignatureKind.RPM:
            assert s.signature == s.path
            assert rpm_verifies(tmp, public_key, release / s.path, s.key), s.path
        elif s.kind == SignatureKind.REPODATA:
            assert gpg_verifies(home, s.key, release / s.signature, release / s.path), s.path
            repo = (release / s.path).parent.parent
            assert dnf_reads(tmp / f"dnf-{n}", repo, public_key), s.path
        elif s.kind in (SignatureKind.OSTREE_COMMIT, SignatureKind.OSTREE_SUMMARY):
            assert (release / s.signature).is_file(), s
            repo = release / (s.path if s.kind == SignatureKind.OSTREE_COMMIT else str(Path(s.path).parent))
            name = f"{s.kind}-{n}"
            pulled = ostree_pulls(
                tmp, name, repo, s.ref or REF, keys=public_key, summary=s.kind == SignatureKind.OSTREE_SUMMARY
            )
            assert pulled.returncode == 0, pulled.stderr
            if s.commit:
                client = tmp / f"ostree-client-{name}"
                assert (
                    run("ostree", f"--repo={client}", "rev-parse", f"release:{s.ref}").stdout.strip()
                    == s.commit
                )
        elif s.kind == SignatureKind.CHECKSUM:
            sums = release / s.signature
            assert gpg_verifies(home, s.key, sums), s.signature
            checked_files = run("sha256sum", "-c", sums.name, cwd=sums.parent)
            assert checked_files.returncode == 0, checked_files.stdout + checked_files.stderr
            listed = {str(Path(s.signature).parent / n) for n in checksum.parse(sums.read_text())}
            assert listed == set(s.files)
            assert all(f"{Path(f).name}: OK" in checked_files.stdout for f in s.files)
        elif s.kind == SignatureKind.CONTAINER:
            assert (release / s.signature).is_file(), s
            policy = release / "containers" / "policy.json"
            copied = run(
                "skopeo", "--policy", str(policy), "--registries.d", str(release / "containers" / "registries.d"),
                "copy", "--src-tls-verify=false", "--remove-signatures", s.image, f"oci:{tmp / 'pulled'}:{s.ref or 'x'}",
            )  # fmt: skip
            assert copied.returncode == 0, copied.stderr
        else:
            raise AssertionError(f"no client checks {s.kind}")
        checked[s.kind] = checked.get(s.kind, 0) + 1
    return checked


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("node", RELEASED)
def test_every_signature_a_release_claims_verifies_with_the_fields_client(
    node: str, released: dict[str, Path], key: tuple[Path, str], tmp_path: Path
) -> None:
    release = released[node]
    checked = verify(release, tmp_path)
    expected = {
        "repo:Server": {SignatureKind.RPM, SignatureKind.REPODATA},
        "ostree:AtomicHost/host": {SignatureKind.OSTREE_COMMIT, SignatureKind.OSTREE_SUMMARY},
        "iso:AtomicHost/installer": {
            SignatureKind.OSTREE_COMMIT,
            SignatureKind.OSTREE_SUMMARY,
            SignatureKind.CHECKSUM,
        },
        "container:Cloud/base": {SignatureKind.CONTAINER, SignatureKind.CHECKSUM},
        "container:Cloud/httpd": {SignatureKind.CONTAINER, SignatureKind.CHECKSUM},
    }[node]
    assert set(checked) == expected
    assert manifest(release)["signed_by"] == key[1]
    # Nothing signed is left out: every RPM and every image file of the release has its record.
    claimed = signatures_of(release)
    rpms = {p.relative_to(release).as_posix() for p in release.rglob("*.rpm")}
    assert rpms == {s.path for s in claimed if s.kind == SignatureKind.RPM}
    image_files = {
        p.relative_to(release).as_posix() for p in release.rglob("*") if p.suffix in (".iso", ".tar")
    }
    assert image_files == {f for s in claimed for f in s.files}


def test_the_release_note_lists_the_same_signatures(gated_dist: Path, released: dict[str, Path]) -> None:
    for node, release in released.items():
        note = jsonnotes.read_note(Lineage(gated_dist), RELEASE_NOTES, release.name)
        assert note is not None, node
        entry = note["releases"][-1]  # type: ignore[index]
        assert entry["signatures"] == manifest(release)["signatures"], node
        assert entry["signed_by"] == manifest(release)["signed_by"] and entry["unsigned"] is False


def test_a_container_is_named_by_digest_and_an_unsigned_image_is_refused(
    released: dict[str, Path], registry: registries.Registry, tmp_path: Path
) -> None:
    release = released["container:Cloud/base"]
    (pushed,) = [s for s in signatures_of(release) if s.kind == SignatureKind.CONTAINER]
    repo = f"{registry.address}/fl/cloud/base"
    assert pushed.image.startswith(f"docker://{repo}@sha256:")
    digest = pushed.image.rsplit("@", 1)[1]
    assert pushed.signature == f"sigstore/{containers.lookaside_path(repo, digest)}"
    # The registry holds that digest under the compose ID's tag; the OCI archive stays a file.
    inspected = json.loads(
        run("skopeo", "inspect", "--tls-verify=false", f"docker://{repo}:{release.name}").stdout
    )
    assert inspected["Digest"] == digest
    assert pushed.path == "compose/Cloud/x86_64/images/base.tar" and (release / pushed.path).is_file()
    # The registries.d snippet the release carries names its own sigstore/.
    snippet = (release / "containers" / "registries.d" / "cloud-base.yaml").read_text()
    assert (release / "sigstore").as_uri() in snippet and repo in snippet
    # An image without a signature, in the same repository, is refused under the same policy.
    httpd = released["container:Cloud/httpd"] / "compose/Cloud/x86_64/images/httpd.tar"
    unsigned = f"docker://{repo}:unsigned"
    assert run("skopeo", "copy", "--dest-tls-verify=false", f"oci-archive:{httpd}", unsigned).returncode == 0
    refused = run(
        "skopeo", "--policy", str(release / "containers" / "policy.json"),
        "--registries.d", str(release / "containers" / "registries.d"),
        "copy", "--src-tls-verify=false", "--remove-signatures", unsigned, f"oci:{tmp_path / 'x'}:x",
    )  # fmt: skip
    assert refused.returncode != 0
    assert "A signature was required, but no signature exists" in refused.stderr


def test_a_mirror_serves_its_own_registries_d_naming_its_url(
    gated_dist: Path, released: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`publish --base-url`: the mirror's registries.d names the signatures where the mirror
    serves them, and skopeo verifies the image with the mirror's files alone, over HTTP."""
    release = released["container:Cloud/base"]
    (pushed,) = [s for s in signatures_of(release) if s.kind == SignatureKind.CONTAINER]
    repo = containers.repository_of(pushed.image)
    mirrors = tmp_path / "mirrors"
    argv = ["publish", release.name, "--repo", str(gated_dist)]
    # Without the mirror's URL: no registries.d on the mirror (the release's names this
    # machine's sigstore/), and a warning says so.
    assert cli.main([*argv, "--to", str(mirrors / "unnamed")]) == 0
    assert "warning[no-base-url]: the mirror got no containers/registries.d/cloud-base.yaml" in (
        capsys.readouterr().err
    )
    assert not (mirrors / "unnamed" / "latest" / "containers" / "registries.d").exists()
    assert (mirrors / "unnamed" / "latest" / "containers" / "policy.json").is_file()
    with serve(mirrors) as served:
        url = f"{served.url}/cloud-base"
        assert cli.main([*argv, "--to", str(mirrors / "cloud-base"), "--base-url", url]) == 0
        assert "warning" not in capsys.readouterr().err
        on_mirror = mirrors / "cloud-base" / "latest" / "containers"
        snippet = yaml.safe_load((on_mirror / "registries.d" / "cloud-base.yaml").read_text())
        assert snippet == {"docker": {repo: {"lookaside": f"{url}/latest/sigstore"}}}
        copied = run(
            "skopeo", "--policy", str(on_mirror / "policy.json"), "--registries.d", str(on_mirror / "registries.d"),
            "copy", "--src-tls-verify=false", "--remove-signatures", pushed.image, f"oci:{tmp_path / 'pulled'}:x",
        )  # fmt: skip
        assert copied.returncode == 0, copied.stderr
        signature = "/cloud-base/latest/" + pushed.signature
        assert signature in served.paths(200)  # the signature came from the mirror
    # Nothing the mirror serves names a path of the machine that released it.
    for path in (mirrors / "cloud-base").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert str(release.parent).encode() not in text and str(gated_dist).encode() not in text, path


def test_the_installer_verifies_its_ostree_commit_with_the_key_on_the_image(
    released: dict[str, Path], gated_dist: Path, tmp_path: Path
) -> None:
    release = released["iso:AtomicHost/installer"]
    iso = release / "compose/AtomicHost/x86_64/iso/installer.iso"
    kickstart = extract(iso, "/ostree.ks", tmp_path / "ostree.ks").read_text()
    assert "--nogpg" not in kickstart
    assert (
        f"ostreesetup --osname=factory --remote=factory --url=file:///run/install/repo/ostree/repo --ref={REF}"
        in kickstart
    )
    assert "%pre\nmkdir -p /usr/share/ostree/trusted.gpg.d\n" in kickstart
    assert (
        "cp /run/install/repo/ostree/trusted.gpg.d/*.gpg /usr/share/ostree/trusted.gpg.d/\n%end\n"
        in kickstart
    )
    image = extract(iso, "/ostree", tmp_path / "image" / "ostree")
    assert (image / "trusted.gpg.d" / KEYRING).is_file()
    # The %pre's keyring trusts the signed commit; without it, the same pull is refused.
    trusted = ostree_pulls(
        tmp_path, "trusted", image / "repo", REF, keys=Path("/nonexistent"), trusted=image / "trusted.gpg.d"
    )
    assert trusted.returncode == 0, trusted.stderr
    # The release's published key (RPM-GPG-KEY-factory, armored) trusts it as well.
    published = ostree_pulls(
        tmp_path, "published", image / "repo", REF, keys=release / sign.PUBLIC_KEY, summary=True
    )
    assert published.returncode == 0, published.stderr
    (tmp_path / "empty").mkdir()
    refused = ostree_pulls(
        tmp_path, "untrusted", image / "repo", REF, keys=Path("/nonexistent"), trusted=tmp_path / "empty"
    )
    assert refused.returncode != 0 and "public key not found" in refused.stderr
    # The composed image (never released) has the same kickstart but no key and no signature.
    composed = (
        output_dir(gated_dist) / "composes" / release.name / "compose/AtomicHost/x86_64/iso/installer.iso"
    )
    plain = extract(composed, "/ostree", tmp_path / "composed" / "ostree")
    assert not (plain / "trusted.gpg.d").exists()
    assert (
        ostree_pulls(
            tmp_path,
            "composed",
            plain / "repo",
            REF,
            keys=Path("/nonexistent"),
            trusted=image / "trusted.gpg.d",
        ).returncode
        != 0
    )
    # Every file of the composed image is still there; the signatures and the key are added.
    listing = set(run("xorriso", "-indev", str(iso), "-find", "/", "-type", "f").stdout.split())
    before = set(run("xorriso", "-indev", str(composed), "-find", "/", "-type", "f").stdout.split())
    added = {name.strip("'") for name in listing - before}
    assert before <= listing and f"/ostree/trusted.gpg.d/{KEYRING}" in added
    assert {"/ostree/repo/summary", "/ostree/repo/summary.sig"} <= added
    assert all(a.endswith(".commitmeta") or "summary" in a or "trusted.gpg.d" in a for a in added), added
    # productmd's images.json describes the released image, not the composed one.
    images = json.loads((release / "compose/metadata/images.json").read_text())
    (entry,) = images["payload"]["images"]["AtomicHost"]["x86_64"]
    assert entry["size"] == iso.stat().st_size
    assert entry["checksums"]["sha256"] == run("sha256sum", str(iso)).stdout.split()[0]


def test_a_tampered_image_fails_its_checksum(released: dict[str, Path], tmp_path: Path) -> None:
    release = released["container:Cloud/base"]
    (sums,) = [s for s in signatures_of(release) if s.kind == SignatureKind.CHECKSUM]
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (Path(sums.signature).name, *(Path(f).name for f in sums.files)):
        (copy / name).write_bytes((release / Path(sums.signature).parent / name).read_bytes())
    tar = copy / Path(sums.files[0]).name
    tar.write_bytes(tar.read_bytes()[:-1] + b"\x01")
    assert run("sha256sum", "-c", Path(sums.signature).name, cwd=copy).returncode != 0


def test_a_release_pushes_with_registry_credentials_from_the_environment_and_never_shows_them(
    gated_dist: Path, released: dict[str, Path], key: tuple[Path, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    home, fingerprint = key
    password = "s3cret-registry-password"
    guarded = registries.start(tmp_path / "guarded", users={"factory": password})
    try:
        cid = released["container:Cloud/base"].name
        argv = ["release", cid, "--repo", str(gated_dist), "--gnupghome", str(home), "--key", fingerprint,
                "--registry", f"{guarded.address}/fl", "--json"]  # fmt: skip
        monkeypatch.delenv("FACTORY_REGISTRY_USER", raising=False)
        monkeypatch.delenv("FACTORY_REGISTRY_PASSWORD", raising=False)
        assert cli.main([*argv, "--to", str(tmp_path / "anonymous")]) == 1
        assert "authentication required" in capsys.readouterr().err.lower()
        assert not (tmp_path / "anonymous" / cid).exists()
        monkeypatch.setenv("FACTORY_REGISTRY_USER", "factory")
        monkeypatch.setenv("FACTORY_REGISTRY_PASSWORD", password)
        assert cli.main([*argv, "--to", str(tmp_path / "guarded-release")]) == 0
        captured = capsys.readouterr()
        done = json.loads(captured.out)
        assert next(s["image"] for s in done["signatures"] if s["kind"] == "container").startswith(
            f"docker://{guarded.address}/fl/cloud/base@sha256:"
        )
        release = tmp_path / "guarded-release" / cid
        written = "".join(
            p.read_text(errors="replace") for p in release.rglob("*") if p.suffix in (".json", ".yaml")
        )
        for secret in (password, "ZmFjdG9yeTpzM2NyZXQ"):  # base64 of factory:s3cret...
            assert secret not in captured.out + captured.err + written
        monkeypatch.delenv("FACTORY_REGISTRY_PASSWORD")
        assert cli.main([*argv, "--to", str(tmp_path / "half")]) == 2
        assert "FACTORY_REGISTRY_PASSWORD is not set" in capsys.readouterr().err
    finally:
        guarded.stop()


def test_credentials_come_from_the_environment_for_the_right_registry() -> None:
    from pipeline.core.credentials import REGISTRY, registry_credentials
    from pipeline.formats.containers import registry_host

    def credentials(env: dict[str, str], registry: str) -> tuple[str, str] | None:
        return registry_credentials(env, registry_host(registry), prefix=REGISTRY)

    assert credentials({}, "registry.example/dist") is None
    assert credentials({"FACTORY_REGISTRY_USER": "u", "FACTORY_REGISTRY_PASSWORD": "p"}, "a.example") == (
        "u",
        "p",
    )
    gitlab = {
        "CI_REGISTRY": "registry.example",
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": "t",
    }
    assert credentials(gitlab, "registry.example/dist/factory") == ("gitlab-ci-token", "t")
    assert credentials(gitlab, "other.example/dist") is None  # a job token never goes to another host
    with pytest.raises(InvalidInput) as half:
        credentials({"FACTORY_REGISTRY_USER": "u"}, "a.example")
    assert half.value.code == "registry-credentials"


def unsignable(root: Path) -> str:
    """A finished compose of a kind with no rule in any policy, whose only output is a text file."""
    lineage = Lineage(root)
    head = run("git", "-C", str(root), "rev-parse", "HEAD").stdout.strip()
    cid = lineage.reserve("FL", "42", "notes-Cloud", "20261121", "test", head)
    text = root / ".factory/output/composes" / cid / "notes.txt"
    text.parent.mkdir(parents=True)
    text.write_text("release notes\n")
    stamp = "2026-11-21T10:00:00Z"
    output = OutputFile(
        f"composes/{cid}/notes.txt", text.stat().st_size, run("sha256sum", str(text)).stdout.split()[0]
    )
    lineage.finish([Record(cid, "notes:Cloud", "0" * 64, "1" * 64, head, (), (), (output,), outputs_digest([output]), (),
                           stamp, stamp, ComposeStatus.FINISHED)])  # fmt: skip
    return cid


def test_a_release_that_signs_nothing_is_refused_unless_unsigned(
    tmp_path: Path, key: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    home, fingerprint = key
    root = tmp_path / "repo"
    commit_tree(root, example_tree(), "Example definitions\n")
    cid = unsignable(root)
    to = tmp_path / "releases"
    signed = [
        "release",
        cid,
        "--repo",
        str(root),
        "--to",
        str(to),
        "--gnupghome",
        str(home),
        "--key",
        fingerprint,
    ]
    assert cli.main(signed) == 1
    err = capsys.readouterr().err
    assert f"compose {cid} (notes:Cloud) has nothing factory signs" in err and "--unsigned" in err
    assert not to.exists() or not any(to.iterdir()) or [p.name for p in to.iterdir()] == [".lock"]
    assert cli.main(["release", cid, "--repo", str(root), "--to", str(to), "--unsigned"]) == 0
    assert "unsigned: nothing in it is signed" in capsys.readouterr().out
    data = manifest(to / cid)
    assert data["unsigned"] is True and data["signatures"] == [] and data["signed_by"] == ""
    assert not (to / cid / sign.PUBLIC_KEY).exists()
    note = jsonnotes.read_note(Lineage(root), RELEASE_NOTES, cid)
    assert note is not None and note["releases"][-1]["unsigned"] is True  # type: ignore[index]


# -- `make demo`'s verification, as its script runs it -------------------------------------------

VERIFY_DEMO = ROOT / "scripts" / "verify-demo-release"


def another_public_key(tmp: Path) -> Path:
    """The armored public key of a key that signed nothing here."""
    home = tmp / "other-gnupg"
    home.mkdir(mode=0o700)
    made = run("gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
               "--quick-generate-key", "Someone Else <else@example.invalid>", "ed25519", "sign", "never")  # fmt: skip
    assert made.returncode == 0, made.stderr
    exported = run("gpg", "--homedir", str(home), "--batch", "--armor", "--export")
    run("gpgconf", "--homedir", str(home), "--kill", "all")
    assert exported.returncode == 0 and "BEGIN PGP PUBLIC KEY BLOCK" in exported.stdout
    (tmp / "other.asc").write_text(exported.stdout)
    return tmp / "other.asc"


def demo_releases(released: dict[str, Path], top: Path, *, copied: str = "") -> Path:
    """RELEASES as `make demo` lays it out, the release of node `copied` a copy (to tamper with),
    the other one the real release; the copy's `latest`."""
    for node in ("container:Cloud/base", "iso:AtomicHost/installer"):
        target = top / slug(node)
        target.mkdir(parents=True)
        release = released[node]
        if node == copied:
            shutil.copytree(release, target / release.name, symlinks=True)
            (target / "latest").symlink_to(release.name)
        else:
            (target / "latest").symlink_to(release)
    return top / slug(copied) / "latest" if copied else top


def test_the_demo_verification_passes_with_the_release_key(released: dict[str, Path], tmp_path: Path) -> None:
    done = run(str(VERIFY_DEMO), str(demo_releases(released, tmp_path / "releases")))
    assert done.returncode == 0, done.stderr
    image = next(s.image for s in signatures_of(released["container:Cloud/base"]) if s.image)
    assert f"  {image}: signed by the release key" in done.stdout
    assert f"good signature by {manifest(released['iso:AtomicHost/installer'])['signed_by']}" in done.stdout
    assert "installer.iso: OK" in done.stdout and done.stderr == ""


@pytest.mark.parametrize(
    ("tampered", "failure"),
    [
        ("container policy", "FAILED: container: skopeo refused docker://"),
        ("ISO key", "FAILED: installer ISO: compose/AtomicHost/x86_64/iso/"),
        ("ISO bytes", "FAILED: installer ISO: sha256sum -c compose/AtomicHost/x86_64/iso/"),
    ],
)
def test_the_demo_verification_stops_at_the_first_step_that_fails(
    released: dict[str, Path], tmp_path: Path, tampered: str, failure: str
) -> None:
    """The policy or the published key swapped for another key's, or the image changed: the
    script exits 1 naming what failed, and runs no step after it."""
    other = another_public_key(tmp_path)
    node = "container:Cloud/base" if tampered == "container policy" else "iso:AtomicHost/installer"
    copy = demo_releases(released, tmp_path / "releases", copied=node)
    if tampered == "container policy":
        policy = json.loads((copy / "containers" / "policy.json").read_text())
        for rules in policy["transports"]["docker"].values():  # the key is in the policy (keyData)
            rules[0]["keyData"] = base64.b64encode(other.read_bytes()).decode("ascii")
        (copy / "containers" / "policy.json").write_text(json.dumps(policy))
    elif tampered == "ISO key":
        (copy / sign.PUBLIC_KEY).write_bytes(other.read_bytes())
    else:
        iso = copy / "compose/AtomicHost/x86_64/iso/installer.iso"
        iso.write_bytes(iso.read_bytes() + b"\0")
    done = run(str(VERIFY_DEMO), str(tmp_path / "releases"))
    assert done.returncode == 1
    assert failure in done.stderr, done.stderr
    if tampered == "ISO key":
        assert f"is not signed by the release key {manifest(copy)['signed_by']}" in done.stderr
    if tampered == "container policy":
        assert "installer ISO" not in done.stdout  # stopped: the next step never ran


def test_make_demo_runs_the_verification_script_as_a_step_of_its_own() -> None:
    """Its own recipe line: when the script fails, make stops (no `; rm -rf` after it)."""
    planned = run("make", "-n", "demo", cwd=ROOT)
    assert planned.returncode == 0, planned.stderr
    assert "scripts/verify-demo-release .factory/releases" in planned.stdout.splitlines()
    assert os.access(VERIFY_DEMO, os.X_OK)
    assert VERIFY_DEMO.read_text().splitlines()[:1] == ["#!/usr/bin/env bash"]
    assert "set -euo pipefail" in VERIFY_DEMO.read_text()
