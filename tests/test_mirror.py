"""Mirror sync with the real rsync, dnf, ostree, gpg and an HTTP server (and an rsync daemon).

The Server repo and Atomic Host commit composed before and after the openssl CVE bump
(`tests.bumped_dist`) are released, both Server composes and the first Atomic Host, signed. The loop test is the issue's: while `factory publish` runs again and again,
switching the mirror between the two Server releases and between Atomic Host releases, dnf and
ostree clients read the mirror over HTTP and never fail. SIGKILLs in the middle of a publish
leave a mirror every client can read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.core import mirror as plan
from pipeline.core.errors import InvalidInput
from pipeline.core.mirror import Publication, Stage
from pipeline.records import mirrors
from pipeline.records.lineage import Lineage
from pipeline.release import publications
from pipeline.release import publishing as mirror
from pipeline.tools import dnf, gpg, ostree, rsync
from tests.bumped_dist import HOST, SERVER, Bumped, bumped
from tests.http_files import serve
from tests.test_sign_release import key

__all__ = ["bumped", "key"]  # session fixtures, shared

REF = "FL/42/x86_64/host"
OS = "latest/compose/Server/x86_64/os"  # where the mirror serves the Server repo


# -- the plan, pure --------------------------------------------------------------------------------


def test_every_file_goes_in_its_pass_and_the_passes_in_the_order_mirrors_need() -> None:
    files = [
        "latest/RELEASE.json",
        "latest/Fedora-42-x86_64-CHECKSUM",
        "latest/RPM-GPG-KEY-factory",
        f"{OS}/Packages/bash-5.2-1.noarch.rpm",
        f"{OS}/repodata/0abc-primary.xml.gz",
        f"{OS}/repodata/repomd.xml",
        f"{OS}/repodata/repomd.xml.asc",
        "ostree/repo/config",
        "ostree/repo/objects/ab/cdef.filez",
        "ostree/repo/deltas/Oz/x-y/superblock",
        "ostree/repo/delta-indexes/1e/z.index",
        f"ostree/repo/refs/heads/{REF}",
        "ostree/repo/summary",
        "ostree/repo/summary.sig",
    ]
    assert [(stage, paths) for stage, paths in plan.passes(files)] == [
        (
            Stage.CONTENT,
            sorted(
                [
                    "latest/RPM-GPG-KEY-factory",
                    f"{OS}/Packages/bash-5.2-1.noarch.rpm",
                    "ostree/repo/config",
                    "ostree/repo/objects/ab/cdef.filez",
                    "ostree/repo/deltas/Oz/x-y/superblock",
                    "ostree/repo/delta-indexes/1e/z.index",
                ]
            ),
        ),
        (Stage.METADATA, [f"{OS}/repodata/0abc-primary.xml.gz"]),
        (Stage.SWITCH, [f"{OS}/repodata/repomd.xml", f"{OS}/repodata/repomd.xml.asc"]),
        (Stage.REFS, [f"ostree/repo/refs/heads/{REF}"]),
        (Stage.SUMMARY, ["ostree/repo/summary", "ostree/repo/summary.sig"]),
        (Stage.CHECKSUMS, ["latest/Fedora-42-x86_64-CHECKSUM", "latest/RELEASE.json"]),
    ]
    assert not plan.served("tmp/cache/x") and not plan.served(".lock") and plan.served("objects/ab/c.dirtree")
    for bad in ("/etc/passwd", "a/../b", "new\nline"):
        with pytest.raises(InvalidInput):
            plan.passes([bad])


def test_a_superseded_publication_is_remembered_for_the_grace_then_forgotten() -> None:
    def at(seconds: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))

    first = Publication("FL-42-Server-20261121.0", SERVER, at(1000), ("a", "old"))
    second = Publication("FL-42-Server-20261122.0", SERVER, at(2000), ("a", "new"))
    assert plan.begin([first], first) == [first]  # the same publication again adds nothing
    both = plan.begin([first], second)
    assert both == [first, second]
    assert plan.protected(both, 2000 + 59, 60) == {"a", "old", "new", plan.STATE}
    assert plan.remembered(both, 2000 + 60, 60) == [second]
    assert plan.protected(both, 2000 + 60, 60) == {"a", "new", plan.STATE}
    with pytest.raises(InvalidInput, match="holds releases of repo:Server"):
        plan.begin(both, Publication("FL-42-Cloud-20261122.0", "repo:Cloud", at(3000), ("a",)))
    assert plan.load_state(json.loads(json.dumps(plan.dump_state(both)))) == both


def test_rsync_command_lines_and_what_they_report() -> None:
    assert rsync.send_argv(Path("/r"), "rsync://h/m/x", Path("/l"), checksum=True) == [
        "rsync", "--links", "--times", "--perms", "--mkpath", "--delay-updates", "--from0",
        "--files-from=/l", "--out-format=%i %n", "--checksum", "/r/", "rsync://h/m/x/",
    ]  # fmt: skip
    assert rsync.delete_argv(Path("/r"), "/m/", Path("/p")) == [
        "rsync", "--recursive", "--delete", "--existing", "--ignore-existing", "--from0",
        "--filter=merge /p", "--out-format=%i %n", "/r/", "/m/",
    ]  # fmt: skip
    assert rsync.protect_rule("a/b c") == "P /a/b c"
    assert rsync.protect_rule("a/[x]*") == "P /a/\\[x]\\*"
    changes = rsync.parse_changes(
        "created 1 directory for /m\ncd+++++++++ a/\n>f+++++++++ a/f\ncL+++++++++ a/l\n<f.st...... b\n"
        "*deleting   old/x\n*deleting   old/\n"
    )
    assert changes == rsync.Changes(("a/f", "a/l", "b"), ("old/x", "old/"))
    assert [rsync.is_remote(d) for d in ("/srv/m", "m", "host:m", "u@host:/m", "rsync://h/m", "./a:b")] == [
        False, False, True, True, True, False,
    ]  # fmt: skip
    assert rsync.join("rsync://h/m/", "ostree/repo/") == "rsync://h/m/ostree/repo/"


# -- the distribution ------------------------------------------------------------------------------


@dataclass
class Released:
    root: Path
    releases: Path
    server: tuple[str, str]  # before and after the openssl bump
    host: tuple[str, str]
    key: tuple[Path, str]

    @property
    def server_dir(self) -> Path:
        return self.releases / "Server"

    @property
    def host_dir(self) -> Path:
        return self.releases / "AtomicHost-host"


def factory(*argv: str) -> None:
    assert cli.main(list(argv)) == 0


@pytest.fixture(scope="module")
def released(bumped: Bumped, tmp_path_factory: pytest.TempPathFactory, key: tuple[Path, str]) -> Released:
    """Both Server composes released (the second is live) and the first Atomic Host, signed."""
    made = Released(bumped.root, tmp_path_factory.mktemp("releases"), bumped.server, bumped.host, key)
    for compose_id in made.server:
        release(made, compose_id, made.server_dir)
    release(made, made.host[0], made.host_dir)
    return made


def release(made: Released, compose_id: str, to: Path) -> None:
    home, fingerprint = made.key
    factory("release", compose_id, "--repo", str(made.root), "--to", str(to), "--gnupghome", str(home),
            "--key", fingerprint)  # fmt: skip


def publish_argv(made: Released, what: str, dest: Path | str, *more: str) -> list[str]:
    return ["publish", what, "--repo", str(made.root), "--to", str(dest), *more]


def publish(made: Released, what: str, dest: Path | str, *more: str) -> dict[str, object]:
    """`factory publish --json`, run as its own process (as a CI job runs it)."""
    argv = publish_argv(made, what, dest, *more, "--json")
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def sent_of(done: dict[str, object]) -> dict[str, int]:
    """Files sent per pass, from `publish --json`."""
    sent = done["sent"]
    assert isinstance(sent, dict)
    return {str(stage): int(count) for stage, count in sent.items()}


def tree_of(root: Path) -> dict[str, str]:
    """Every file under root but the mirror's own state: path -> sha256."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(".factory-mirror/"):
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def release_tree(release: mirror.Release) -> dict[str, str]:
    return {
        name: hashlib.sha256((root / inside).read_bytes()).hexdigest()
        for name, (root, inside) in mirror.files_of(release).items()
    }


def dnf_client(
    url: str, home: Path, *command: str, repo_gpgcheck: bool = False
) -> subprocess.CompletedProcess[str]:
    """dnf with the mirror's Server repo, in the installroot under home (made on first use, kept
    after: a client that follows the mirror), every package's signature checked (gpgcheck=1, the
    release key from the mirror), failing when the repo fails; metadata read again every time."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".rpmmacros").write_text("%_dbpath /usr/lib/sysimage/rpm\n")
    try:
        return subprocess.run(
            ["dnf", "-y", "-q", f"--installroot={home / 'root'}", "--releasever=42", "--setopt=reposdir=/nonexistent",
             "--setopt=module_platform_id=platform:fl42", "--setopt=skip_if_unavailable=False",
             "--setopt=metadata_expire=0", f"--setopt=cachedir={home / 'cache'}",
             f"--repofrompath=mirror,{url}/{OS}", "--repo=mirror",
             "--setopt=mirror.gpgcheck=1", f"--setopt=mirror.gpgkey={url}/latest/RPM-GPG-KEY-factory",
             f"--setopt=mirror.repo_gpgcheck={int(repo_gpgcheck)}", *command],
            capture_output=True, text=True, env={**os.environ, "HOME": str(home)}, check=False,
        )  # fmt: skip
    finally:
        for ring in home.rglob("pubring.*"):
            gpg.kill_agent(ring.parent)


def makecache(url: str, home: Path, *, repo_gpgcheck: bool = False) -> subprocess.CompletedProcess[str]:
    """dnf makecache of the mirror's Server repo, from nothing, failing when the repo fails."""
    assert not home.exists()
    return dnf_client(url, home, "makecache", repo_gpgcheck=repo_gpgcheck)


def ostree_client(path: Path, url: str, keyring: Path) -> Path:
    """An Atomic Host's repository with the mirror as its remote, commits checked as Fedora's
    remotes check them (gpg-verify)."""
    subprocess.run(["ostree", "init", f"--repo={path}", "--mode=bare-user"], check=True)
    subprocess.run(
        ["ostree", f"--repo={path}", "remote", "add", "--set=gpg-verify=true", f"--set=gpgkeypath={keyring}",
         "origin", url],
        check=True,
    )  # fmt: skip
    return path


def ostree_pull(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ostree", f"--repo={repo}", "pull", "origin", REF], capture_output=True, text=True, check=False
    )


# -- publishing ------------------------------------------------------------------------------------


def test_publish_pushes_a_release_its_clients_read_and_again_sends_nothing(
    released: Released, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror" / "Server"
    done = publish(released, SERVER, dest)  # a node: its live release, the second Server compose
    assert done["compose_id"] == released.server[1]
    sent = sent_of(done)
    # two repos (os and the source tree), each repomd.xml and its signature; RELEASE.json last
    assert sent["content"] > 0 and sent["switch"] == 4 and sent["checksums"] == 1
    live = publications.choose(Lineage(released.root), SERVER, released.server_dir)
    assert tree_of(dest) == release_tree(live)
    # dnf reads the mirror, the metadata signature checked too.
    with serve(dest) as http:
        cached = makecache(http.url, tmp_path / "dnf", repo_gpgcheck=True)
        assert cached.returncode == 0, cached.stderr
    # `factory status` says so, from the record.
    status = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "status", SERVER, "--repo", str(released.root), "--json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    server = {n["node"]: n for n in json.loads(status)["nodes"]}[SERVER]
    assert server["mirror"] == "published"
    # Again: nothing to send, nothing deleted; both runs are recorded on the compose.
    again = publish(released, released.server[1], dest)
    assert set(sent_of(again).values()) == {0} and again["deleted"] == 0
    recorded = mirrors.read(Lineage(released.root), released.server[1])
    assert [p.mirror for p in recorded] == [str(dest), str(dest)]


def test_a_superseded_release_leaves_the_mirror_once_its_grace_is_over(
    released: Released, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror"
    old, new = released.server
    publish(released, old, dest, "--from", str(released.server_dir))
    before = set(tree_of(dest))
    publish(released, new, dest)
    lingering = before - set(
        release_tree(publications.choose(Lineage(released.root), new, released.server_dir))
    )
    assert lingering and lingering <= set(tree_of(dest))  # the old metadata is still there
    assert any(name.endswith("-primary.xml.gz") for name in lingering)
    done = publish(released, new, dest, "--grace", "0")
    assert done["deleted"] == len(lingering)
    assert tree_of(dest) == release_tree(
        publications.choose(Lineage(released.root), new, released.server_dir)
    )
    state = json.loads((dest / plan.STATE).read_text())
    assert [p["compose_id"] for p in state["publications"]] == [new]


def test_clients_never_fail_while_publish_runs_in_a_loop(released: Released, tmp_path: Path) -> None:
    """dnf (makecache from nothing; and a system that follows the mirror, `distro-sync openssl`,
    the package the two Server releases ship in two versions, each download's signature checked)
    and ostree pull over HTTP in one thread; publish (and a release of the Atomic Host, which
    adds a commit each time) again and again in this one."""
    home, fingerprint = released.key
    mirrors = tmp_path / "mirrors"
    keyring = tmp_path / "key.gpg"
    gpg.export(home, fingerprint, keyring, armor=False)
    publish(released, released.server[0], mirrors / "Server", "--from", str(released.server_dir))
    publish(released, HOST, mirrors / "AtomicHost", "--from", str(released.host_dir))
    failures: list[str] = []
    seen: set[str] = set()
    openssl: set[str] = set()
    runs = {"dnf": 0, "distro-sync": 0, "ostree": 0}
    stop = threading.Event()
    follower = tmp_path / "follower"
    with serve(mirrors) as http:
        host = ostree_client(tmp_path / "host", f"{http.url}/AtomicHost/ostree/repo", keyring)
        installed = dnf_client(f"{http.url}/Server", follower, "install", "openssl")
        assert installed.returncode == 0, installed.stderr

        def clients() -> None:
            while not stop.is_set():
                cached = makecache(f"{http.url}/Server", tmp_path / f"dnf-{runs['dnf']}")
                runs["dnf"] += 1
                if cached.returncode != 0:
                    failures.append(f"dnf makecache: {cached.stderr}")
                synced = dnf_client(f"{http.url}/Server", follower, "distro-sync", "openssl")
                runs["distro-sync"] += 1
                if synced.returncode != 0:
                    failures.append(f"dnf distro-sync openssl: {synced.stderr}")
                else:
                    openssl.update(n for n in dnf.installed(follower / "root") if n.startswith("openssl-"))
                pulled = ostree_pull(host)
                runs["ostree"] += 1
                if pulled.returncode != 0:
                    failures.append(f"ostree pull: {pulled.stderr}")
                else:
                    seen.add(ostree.rev_parse(host, f"origin:{REF}"))

        thread = threading.Thread(target=clients)
        thread.start()
        try:
            for turn in range(3):
                server = released.server[(turn + 1) % 2]
                publish(released, server, mirrors / "Server", "--from", str(released.server_dir))
                release(released, released.host[(turn + 1) % 2], released.host_dir)
                publish(released, HOST, mirrors / "AtomicHost", "--from", str(released.host_dir))
        finally:
            stop.set()
            thread.join()
    assert failures == []
    assert runs["dnf"] >= 3 and runs["distro-sync"] >= 3 and runs["ostree"] >= 3
    # The follower installed both openssl builds as the mirror switched (each download checked
    # against the release key dnf imported for gpgcheck: its gpg-pubkey is in the rpmdb).
    assert len(openssl) == 2, openssl
    assert any(
        n.startswith(f"gpg-pubkey-0:{fingerprint[-8:].lower()}-") for n in dnf.installed(follower / "root")
    )
    # The mirror is shaped as the release target: what RELEASE.json names is where it says.
    manifest = json.loads((mirrors / "AtomicHost" / "latest" / "RELEASE.json").read_text())
    named = [s["signature"] for s in manifest["signatures"] if s["kind"].startswith("ostree")]
    assert named and all((mirrors / "AtomicHost" / "latest" / path).is_file() for path in named)
    assert len(seen) >= 2  # the host did follow the ref while it moved


def test_a_killed_publish_leaves_a_mirror_every_client_reads(released: Released, tmp_path: Path) -> None:
    dest = tmp_path / "mirror"
    old, new = released.server
    publish(released, old, dest, "--from", str(released.server_dir))
    argv = [sys.executable, "-m", "pipeline.cli", *publish_argv(released, new, dest)]
    began = time.monotonic()
    publish(released, new, tmp_path / "timing")  # how long a whole publish takes here
    duration = time.monotonic() - began
    rng = random.Random(12)
    killed = 0
    for turn in range(6):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 0.95) * duration)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait()
        repodata = dest / OS / "repodata"
        named = re.findall(r'<location href="repodata/([^"]+)"', (repodata / "repomd.xml").read_text())
        assert named and all((repodata / name).is_file() for name in named)
        cached = makecache(dest.as_uri(), tmp_path / f"dnf-{turn}")
        assert cached.returncode == 0, cached.stderr
        if process.returncode == 0:  # it got to the end: start again from the old release
            publish(released, old, dest, "--from", str(released.server_dir), "--grace", "0")
    assert killed >= 2
    publish(released, new, dest, "--grace", "0")
    assert tree_of(dest) == release_tree(
        publications.choose(Lineage(released.root), new, released.server_dir)
    )
    assert not [p for p in dest.rglob("*") if ".~tmp~" in p.as_posix()]


@pytest.fixture
def rsync_daemon(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An rsync daemon on 127.0.0.1 with one writable module, `mirror`; its URL and directory."""
    module = tmp_path / "daemon"
    module.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "rsyncd.conf"
    config.write_text(
        f"pid file = {tmp_path / 'rsyncd.pid'}\nuse chroot = false\n[mirror]\n  path = {module}\n"
        "  read only = false\n  uid = root\n  gid = root\n"
    )
    daemon = subprocess.Popen(
        ["rsync", "--daemon", "--no-detach", f"--config={config}", f"--port={port}", "--address=127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as client, contextlib.suppress(OSError):
                client.connect(("127.0.0.1", port))
                break
            time.sleep(0.05)
        yield f"rsync://127.0.0.1:{port}/mirror", module
    finally:
        daemon.terminate()
        daemon.wait()


def test_publish_to_an_rsync_daemon(
    released: Released, rsync_daemon: tuple[str, Path], tmp_path: Path
) -> None:
    url, module = rsync_daemon
    done = publish(released, SERVER, f"{url}/Server")
    assert done["dest"] == f"{url}/Server"
    assert tree_of(module / "Server") == release_tree(
        publications.choose(Lineage(released.root), SERVER, released.server_dir)
    )
    again = publish(released, SERVER, f"{url}/Server")
    assert set(sent_of(again).values()) == {0}
    cached = makecache((module / "Server").as_uri(), tmp_path / "dnf")
    assert cached.returncode == 0, cached.stderr


def test_publish_refuses_what_it_cannot_publish(
    released: Released, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "mirror"
    assert cli.main(publish_argv(released, "repo:Cloud", dest)) == 1
    assert "no release of repo:Cloud to publish" in capsys.readouterr().err
    assert cli.main(publish_argv(released, SERVER, dest, "--grace", "-1")) == 2
    assert cli.main(publish_argv(released, SERVER, dest)) == 0
    assert cli.main(publish_argv(released, HOST, dest)) == 2  # one mirror directory per release target
    assert "the mirror holds releases of repo:Server, not ostree:AtomicHost/host" in capsys.readouterr().err
    # Released into a second directory (last: this changes what SERVER names), a compose needs --from.
    factory("release", released.server[0], "--repo", str(released.root), "--to", str(tmp_path / "more"),
            "--unsigned")  # fmt: skip
    capsys.readouterr()
    assert cli.main(publish_argv(released, released.server[0], dest)) == 2
    err = capsys.readouterr().err
    assert "is released in 2 directories" in err and "say which with --from DIR" in err
