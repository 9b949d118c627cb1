"""Signing and releasing with the real clients: gpg, rpmsign, createrepo_c, dnf, ostree.

A throwaway ed25519 key is made per session in a temporary GnuPG home. The Server repo of the
gated example distribution (test_checks_repo.py's fixture) is released, signed; dnf with
gpgcheck=1 and repo_gpgcheck=1 installs from it and refuses the unsigned compose; SIGKILLs at
random points of `factory release` never leave `latest` on a partial release.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.core.states import CheckState
from pipeline.records import checks as testnotes
from pipeline.records import jsonnotes
from pipeline.records.lineage import Lineage
from pipeline.records.refs import RELEASE_NOTES
from pipeline.release import release_dir as release
from pipeline.release import sign
from pipeline.run import CommandFailed
from pipeline.tools import dnf, gpg
from tests.conftest import commit_tree
from tests.test_checks_repo import gated_dist, gated_tree, output_dir

__all__ = ["gated_dist"]  # the session fixture, shared


@pytest.fixture(scope="session")
def key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A GnuPG home with one passphrase-less ed25519 signing key, and its fingerprint."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-generate-key", "Factory Test <release@example.invalid>", "ed25519", "sign", "never"],
        check=True, capture_output=True,
    )  # fmt: skip
    yield home, gpg.secret_fingerprints(home)[0]
    gpg.kill_agent(home)


def factory(*argv: str) -> int:
    return cli.main(list(argv))


def compose_of(root: Path, node: str) -> str:
    return Lineage(root).latest()[node]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rpm_signed(path: Path, dbpath: Path) -> str:
    return subprocess.run(
        ["rpm", "--dbpath", str(dbpath), "-K", str(path)], capture_output=True, text=True, check=False
    ).stdout


def installs(tmp_path: Path, name: str, repo: dnf.Repo) -> list[str]:
    root = tmp_path / name
    dnf.install(root, [repo], ["httpd"], releasever="42", platform="fl42")
    return dnf.installed(root)


def test_release_signs_copies_and_dnf_checks_the_signatures(
    gated_dist: Path, key: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home, fpr = key
    cid = compose_of(gated_dist, "repo:Server")
    record = Lineage(gated_dist).get(cid)
    to = tmp_path / "releases" / "Server"
    code = factory(
        "release",
        cid,
        "--to",
        str(to),
        "--repo",
        str(gated_dist),
        "--gnupghome",
        str(home),
        "--key",
        fpr,
        "--json",
    )
    assert code == 0, capsys.readouterr().err
    done = json.loads(capsys.readouterr().out)
    assert done["status"] == "released" and done["signed_by"] == fpr
    assert os.readlink(to / "latest") == cid
    tree = to / "latest" / "compose" / "Server" / "x86_64" / "os"
    # Published RPMs are signed copies; the build store's files are untouched.
    dbpath = tmp_path / "rpmdb"
    dbpath.mkdir()
    subprocess.run(["rpm", "--dbpath", str(dbpath), "--import", str(to / cid / sign.PUBLIC_KEY)], check=True)
    published = sorted(tree.glob("Packages/*.rpm"))
    assert published and all("signatures OK" in rpm_signed(p, dbpath) for p in published)
    assert all(p.stat().st_nlink == 1 for p in published)
    for output in record.outputs:
        if output.path.endswith(".rpm"):
            store = output_dir(gated_dist) / output.path
            assert sha256(store) == output.sha256
            assert "signatures OK" not in rpm_signed(store, dbpath)
    # repomd.xml has an armored detached signature gpg accepts.
    asc = tree / "repodata" / "repomd.xml.asc"
    assert asc.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--verify", str(asc), str(tree / "repodata/repomd.xml")],
        check=True, capture_output=True,
    )  # fmt: skip
    # dnf, checking packages and metadata, installs from the release and refuses the compose.
    gpgkey = to / cid / sign.PUBLIC_KEY
    listed = installs(tmp_path, "signed", dnf.Repo("server", tree, gpgkey=gpgkey, repo_gpgcheck=True))
    assert any(n.startswith("httpd-") for n in listed)
    unsigned = output_dir(gated_dist) / "composes" / cid / "compose" / "Server" / "x86_64" / "os"
    with pytest.raises(CommandFailed):
        installs(tmp_path, "unsigned", dnf.Repo("server", unsigned, gpgkey=gpgkey, repo_gpgcheck=True))
    with pytest.raises(CommandFailed):
        installs(tmp_path, "unsigned-rpms", dnf.Repo("server", unsigned, gpgkey=gpgkey))
    # The release is recorded in lineage.
    note = jsonnotes.read_note(Lineage(gated_dist), RELEASE_NOTES, cid)
    assert note is not None and note["releases"][-1]["status"] == "released"  # type: ignore[index]


def test_sign_with_a_key_from_the_environment_never_shows_the_key(
    gated_dist: Path, key: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    home, fpr = key
    armored = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--armor", "--export-secret-keys", fpr],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "PRIVATE KEY" in armored
    monkeypatch.setenv(sign.KEY_ENV, armored)
    cid = compose_of(gated_dist, "module:httpd:2.4")
    out = tmp_path / "signed"
    assert factory("sign", cid, "--repo", str(gated_dist), "--out", str(out), "--json") == 0
    captured = capsys.readouterr()
    done = json.loads(captured.out)
    assert done["key"] == fpr and done["rpms"] >= 2 and done["repos"] == ["repo"]
    assert (out / "repo" / "repodata" / "repomd.xml.asc").is_file()
    assert armored not in captured.out + captured.err
    # A missing key is an invalid input, with a hint.
    monkeypatch.delenv(sign.KEY_ENV)
    assert factory("sign", cid, "--repo", str(gated_dist), "--out", str(tmp_path / "again")) == 2
    assert "no signing key" in capsys.readouterr().err


def test_sign_takes_the_key_of_factory_yaml_at_head_unless_one_is_given(
    gated_dist: Path, key: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    home, fpr = key
    monkeypatch.delenv(sign.KEY_ENV, raising=False)
    cid = compose_of(gated_dist, "module:httpd:2.4")
    tree = gated_tree()
    signing = f"signing:\n  key: {fpr}\n  gnupghome: {home}\n".encode()
    commit_tree(
        gated_dist, {**tree, "factory.yaml": tree["factory.yaml"] + signing}, "Sign with the SIG key\n"
    )
    try:
        out = tmp_path / "signed"
        assert factory("sign", cid, "--repo", str(gated_dist), "--out", str(out), "--json") == 0
        assert json.loads(capsys.readouterr().out)["key"] == fpr
        # A key given on the command line wins over factory.yaml's.
        missing = "0123456789ABCDEF0123456789ABCDEF01234567"
        assert (
            factory("sign", cid, "--repo", str(gated_dist), "--out", str(tmp_path / "b"), "--key", missing)
            == 2
        )
        assert f"no secret key {missing} in {home}" in capsys.readouterr().err
    finally:
        commit_tree(gated_dist, tree, "Back to the gated definitions\n")


def test_a_compose_whose_gate_fails_goes_to_quarantine_with_its_owners(
    gated_dist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = Lineage(gated_dist)
    cid = compose_of(gated_dist, "repo:AtomicHost")
    stamp = "2026-11-21T10:00:00Z"
    broken = testnotes.TestResult(
        "install", CheckState.FAILED, "from module ostree:2024 (maintainers: x)", stamp, stamp
    )
    testnotes.record(lineage, {cid: [broken]})
    to = tmp_path / "releases" / "AtomicHost"
    try:
        assert factory("release", cid, "--to", str(to), "--repo", str(gated_dist), "--unsigned") == 1
        text = capsys.readouterr().out
        assert text.startswith(f"quarantined {cid}")
        quarantined = tmp_path / "releases" / "quarantine" / cid
        report = json.loads((quarantined / "failure.json").read_text())
        assert report["owners"] == ["atomic-sig@example.invalid"]
        assert "install FAILED" in (quarantined / "FAILURE.txt").read_text()
        assert not (to / "latest").exists()
    finally:
        testnotes.record(
            lineage, {cid: [testnotes.TestResult("install", CheckState.PASSED, "", stamp, stamp)]}
        )


def test_keep_n_releases_and_latest_follows_the_newest(gated_dist: Path, tmp_path: Path) -> None:
    to = tmp_path / "many"
    ids = [
        compose_of(gated_dist, n) for n in ("repo:Cloud", "repo:Server", "module:gtk:3", "module:httpd:2.4")
    ]
    for cid in ids:
        assert (
            factory("release", cid, "--to", str(to), "--repo", str(gated_dist), "--unsigned", "--keep", "2")
            == 0
        )
    assert sorted(p.name for p in to.iterdir() if not p.name.startswith(".")) == sorted([*ids[2:], "latest"])
    assert os.readlink(to / "latest") == ids[-1]
    # Releasing an older compose again makes it latest (a rollback) without losing it to pruning.
    assert (
        factory("release", ids[2], "--to", str(to), "--repo", str(gated_dist), "--unsigned", "--keep", "1")
        == 0
    )
    assert os.readlink(to / "latest") == ids[2] and (to / ids[2] / release.MANIFEST).is_file()


def complete(path: Path, signed: bool) -> bool:
    manifest = path / release.MANIFEST
    if not manifest.is_file():
        return False
    repo = path / "compose" / "Server" / "x86_64" / "os" / "repodata"
    return (repo / "repomd.xml").is_file() and (repo / "repomd.xml.asc").is_file() == signed


def test_sigkill_during_release_always_leaves_a_complete_latest(
    gated_dist: Path, key: tuple[Path, str], tmp_path: Path
) -> None:
    home, fpr = key
    server = compose_of(gated_dist, "repo:Server")
    to = tmp_path / "killed"
    # An older release to fall back on (made unsigned; the killed ones are signed).
    assert factory("release", server, "--to", str(to), "--repo", str(gated_dist), "--unsigned") == 0
    old = os.readlink(to / "latest")
    (to / old / release.MANIFEST).write_text(
        json.dumps({**json.loads((to / old / release.MANIFEST).read_text()), "sequence": 0})
    )
    os.rename(to / old, to / "FL-42-old-20261120.t.0")
    os.symlink("FL-42-old-20261120.t.0", to / ".swap")
    os.replace(to / ".swap", to / "latest")
    rng = random.Random(6)
    argv = [sys.executable, "-m", "pipeline.cli", "release", server, "--to", str(to), "--repo", str(gated_dist),
            "--gnupghome", str(home), "--key", fpr, "--keep", "2"]  # fmt: skip
    # How long a whole release takes on this machine, so the kills land inside one.
    began = time.monotonic()
    scratch = [*argv[:6], str(tmp_path / "timing"), *argv[7:]]
    subprocess.run(scratch, capture_output=True, check=True)
    duration = time.monotonic() - began
    killed = 0
    for _ in range(8):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.9) * duration)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait()
        target = os.readlink(to / "latest")
        assert target in ("FL-42-old-20261120.t.0", server)
        assert complete(to / target, signed=target == server)
        if target == server:  # done: start over from the old one
            os.replace(to / server, to / f".trash-{server}")
            os.symlink("FL-42-old-20261120.t.0", to / ".swap")
            os.replace(to / ".swap", to / "latest")
    assert killed >= 3
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert os.readlink(to / "latest") == server and complete(to / server, signed=True)
    assert not [p for p in to.iterdir() if p.name.startswith((".staging-", ".trash-"))]


def test_ostree_commits_and_summary_are_signed_and_pull_verifies(
    key: tuple[Path, str], tmp_path: Path
) -> None:
    home, fpr = key

    def ostree(*args: str) -> str:
        return subprocess.run(["ostree", *args], capture_output=True, text=True, check=True).stdout

    content = tmp_path / "content"
    (content / "usr" / "share").mkdir(parents=True)
    (content / "usr" / "share" / "hello").write_text("hello\n")
    sources = {}
    for name in ("signed", "unsigned"):
        repo = tmp_path / name
        ostree("init", "--mode=archive", f"--repo={repo}")
        ostree(
            f"--repo={repo}", "commit", "--branch=fl/42/x86_64/host", f"--tree=dir={content}", "--subject=t"
        )
        ostree(f"--repo={repo}", "summary", "-u")
        sources[name] = repo
    signer = sign.Signer(home, fpr)
    signed = sign.sign_ostree(sources["signed"], signer)
    assert [(s.kind, s.ref) for s in signed] == [
        ("ostree-commit", "fl/42/x86_64/host"),
        ("ostree-summary", ""),
    ]
    assert all((sources["signed"] / s.signature).is_file() for s in signed)
    assert sign.ostree_repos(tmp_path) == [sources["signed"], sources["unsigned"]]
    keyring = tmp_path / "key.gpg"
    gpg.export(home, fpr, keyring, armor=False)
    for name, ok in (("signed", True), ("unsigned", False)):
        mirror = tmp_path / f"mirror-{name}"
        ostree("init", "--mode=archive", f"--repo={mirror}")
        ostree(f"--repo={mirror}", "remote", "add", "--set=gpg-verify=true", "origin", sources[name].as_uri())
        ostree(f"--repo={mirror}", "remote", "gpg-import", "origin", f"--keyring={keyring}")
        pulled = subprocess.run(
            ["ostree", f"--repo={mirror}", "pull", "origin", "fl/42/x86_64/host"], capture_output=True, text=True
        )  # fmt: skip
        assert (pulled.returncode == 0) == ok, pulled.stderr


def test_a_released_ostree_compose_is_a_signed_pullable_repository(
    gated_dist: Path, key: tuple[Path, str], tmp_path: Path
) -> None:
    home, fingerprint = key
    assert factory("compose", "ostree:AtomicHost/host", "--repo", str(gated_dist), "--json") == 0
    compose_id = compose_of(gated_dist, "ostree:AtomicHost/host")
    to = tmp_path / "releases" / "AtomicHost-host"
    argv = ["release", compose_id, "--repo", str(gated_dist), "--to", str(to)]
    assert factory(*argv, "--gnupghome", str(home), "--key", fingerprint) == 0
    unsigned = tmp_path / "releases" / "unsigned"
    assert factory("release", compose_id, "--repo", str(gated_dist), "--to", str(unsigned), "--unsigned") == 0
    keyring = tmp_path / "key.gpg"
    keyring.write_bytes(
        subprocess.run(["gpg", "--homedir", str(home), "--export"], capture_output=True, check=True).stdout
    )

    def pull(name: str, source: Path) -> subprocess.CompletedProcess[str]:
        client = tmp_path / f"client-{name}"  # a fresh client each: a pull never re-verifies what it has
        subprocess.run(["ostree", "init", f"--repo={client}", "--mode=archive"], check=True)
        subprocess.run(
            ["ostree", f"--repo={client}", "remote", "add", "--set=gpg-verify=true",
             f"--set=gpgkeypath={keyring}", name, f"file://{source / 'ostree' / 'repo'}"],
            check=True,
        )  # fmt: skip
        return subprocess.run(
            ["ostree", f"--repo={client}", "pull", name, "FL/42/x86_64/host"],
            capture_output=True,
            text=True,
            check=False,
        )

    signed = pull("released", to)
    assert signed.returncode == 0, signed.stderr
    log = subprocess.run(
        ["ostree", f"--repo={tmp_path / 'client-released'}", "log", "released:FL/42/x86_64/host"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert compose_id in log.stdout
    refused = pull("unsigned", unsigned)
    assert refused.returncode != 0
    assert "signature" in refused.stderr.lower() or "gpg" in refused.stderr.lower()
