"""OSTree history on the served repository, with the real ostree, gpg and an HTTP server.

The Atomic Host composed before and after the openssl CVE bump (`tests.bumped_dist`: a new
openssl, so a different tree) is released, the first, then the second, into one release
directory: SCENARIOS.md's day 11, a host that pulled release N pulls N+1 over HTTP through the
static delta, with commit and summary signatures checked. The retention test
changes factory.yaml's `release.ostree.keep` and puts it back.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.release import ostree_history
from pipeline.release.ostree_history import VERSION_REFS, version_of
from pipeline.release.retire import ARCHIVE_REFS
from pipeline.run import CommandFailed
from pipeline.tools import gpg, ostree
from tests.bumped_dist import Bumped, bumped
from tests.conftest import commit_tree
from tests.http_files import serve
from tests.test_sign_release import key

__all__ = ["bumped", "key"]  # session fixtures, shared

REF = "FL/42/x86_64/host"


@dataclass
class Hosts:
    """The Atomic Host composed before and after the openssl bump, and the definitions at HEAD."""

    root: Path
    tree: dict[str, bytes]
    first: str
    second: str


@pytest.fixture(scope="module")
def hosts(bumped: Bumped) -> Hosts:
    return Hosts(bumped.root, bumped.tree, *bumped.host)


def release(hosts: Hosts, compose_id: str, to: Path, *signing: str) -> dict[str, object]:
    """`factory release --json` (signed with `--gnupghome/--key`, or `--unsigned`); what the
    served ref got."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(
            ["release", compose_id, "--repo", str(hosts.root), "--to", str(to), "--json", *signing]
        )
    assert code == 0
    (served,) = json.loads(stdout.getvalue())["ostree"]
    assert isinstance(served, dict)
    return served


def client(path: Path, url: str, keyring: Path) -> Path:
    """A host's repository (bare-user, as a deployed system's; archive repos never use deltas)
    with the release as its remote, commit and summary signatures required."""
    subprocess.run(["ostree", "init", f"--repo={path}", "--mode=bare-user"], check=True)
    subprocess.run(
        ["ostree", f"--repo={path}", "remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=true",
         f"--set=gpgkeypath={keyring}", "origin", url],
        check=True,
    )  # fmt: skip
    return path


def pull(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ostree", f"--repo={repo}", "pull", "origin", REF], capture_output=True, text=True, check=False
    )


def test_the_archived_refs_are_where_retire_puts_them() -> None:
    assert ostree_history.ARCHIVED == ARCHIVE_REFS


def test_versions_argv_and_log_parsing() -> None:
    assert version_of("FL-42-AtomicHost-host-20261121.0") == "42.20261121.0"
    assert version_of("FL-42-AtomicHost-host-20261121.t.3") == "42.20261121.t.3"
    assert ostree_history.version_ref(REF, "42.20261121.0") == "version/FL/42/x86_64/host/42.20261121.0"
    repo = Path("/r")
    assert ostree.recommit_argv(
        repo, "c0", refs=[REF, "version/x"], parent=None, subject="s", metadata={"b": "2", "a": "1"},
        timestamp=7, key="K", home=Path("/g"),
    ) == [
        "ostree", "commit", "--repo=/r", "--orphan", "--tree=ref=c0", "--parent=none", f"--bind-ref={REF}",
        "--bind-ref=version/x", "--subject=s", "--timestamp=@7", "--add-metadata-string=a=1",
        "--add-metadata-string=b=2", "--gpg-sign=K", "--gpg-homedir=/g",
    ]  # fmt: skip
    assert ostree.prune_argv(repo, {"b": 1, "a": 0}) == [
        "ostree", "prune", "--repo=/r", "--refs-only", "--depth=0", "--retain-branch-depth=a=0",
        "--retain-branch-depth=b=1",
    ]  # fmt: skip
    assert ostree.static_delta_argv(repo, "x", "y") == [
        "ostree", "static-delta", "generate", "--repo=/r", "--if-not-exists", "--from=x", "--to=y",
    ]  # fmt: skip
    assert ostree.set_ref_argv(repo, REF, "c") == [
        "ostree",
        "refs",
        "--repo=/r",
        f"--create={REF}",
        "--force",
        "c",
    ]
    text = (
        "commit bb\nParent:  aa\nContentChecksum:  cc\nDate:  2026-11-21 10:00:00 +0000\nVersion: 42.2\n\n"
        "    subject: with a colon\n\ncommit aa\nContentChecksum:  dd\nDate:  1970-01-01 00:00:01 +0000\n\n"
        "    first\n\n<< History beyond this commit not fetched >>\n"
    )
    entries, truncated = ostree.parse_log(text)
    assert entries == [
        ostree.LogEntry("bb", "aa", 1795255200, "42.2"),
        ostree.LogEntry("aa", None, 1, None),
    ]
    assert truncated


def test_an_atomic_host_upgrades_through_a_static_delta_with_signatures_checked(
    hosts: Hosts, key: tuple[Path, str], tmp_path: Path
) -> None:
    home, fingerprint = key
    signing = ("--gnupghome", str(home), "--key", fingerprint)
    to = tmp_path / "AtomicHost-host"
    served = ostree_history.served_repo(to)
    first = release(hosts, hosts.first, to, *signing)
    assert first["version"] == version_of(hosts.first) and first["parent"] is None
    recorded = json.loads((to / hosts.first / "RELEASE.json").read_text())["ostree"]
    assert recorded == {"repo": "ostree/repo", "refs": [first]}
    keyring = tmp_path / "key.gpg"
    gpg.export(home, fingerprint, keyring, armor=False)
    with serve(to) as http:
        host = client(tmp_path / "host", f"{http.url}/ostree/repo", keyring)
        done = pull(host)
        assert done.returncode == 0, done.stderr
        assert ostree.rev_parse(host, f"origin:{REF}") == first["commit"]
        # Releasing the same compose again changes nothing: not the ref, not the signed summary.
        summary = [(served / name).read_bytes() for name in ("summary", "summary.sig")]
        assert release(hosts, hosts.first, to, *signing) == first
        assert [e.commit for e in ostree.history(served, REF)] == [first["commit"]]
        assert [(served / name).read_bytes() for name in ("summary", "summary.sig")] == summary
        # A release killed after moving the ref, before the summary: the next one writes it.
        ref_file = served / "refs" / "heads" / REF
        later = (served / "summary").stat().st_mtime_ns + 1_000_000_000
        os.utime(ref_file, ns=(later, later))
        assert release(hosts, hosts.first, to, *signing) == first
        assert (served / "summary.sig").read_bytes() != summary[1]

        second = release(hosts, hosts.second, to, *signing)
        assert second["parent"] == first["commit"] and second["delta_from"] == first["commit"]
        assert f"{first['commit']}-{second['commit']}" in ostree.static_deltas(served)
        http.requests.clear()
        done = pull(host)
        assert done.returncode == 0, done.stderr
        assert "delta parts" in done.stdout
        fetched = http.paths(200)
        assert [p for p in fetched if p.startswith("/ostree/repo/deltas/") and p.endswith("/superblock")]
    # The host now has the second release on top of the first, with the versions rpm-ostree shows.
    history = ostree.history(host, f"origin:{REF}")
    assert [(e.commit, e.version) for e in history] == [
        (second["commit"], version_of(hosts.second)),
        (first["commit"], version_of(hosts.first)),
    ]
    assert ostree.metadata(host, str(second["commit"]), "factory.compose-id") == hosts.second
    made = json.loads((hosts.root / f".factory/output/composes/{hosts.second}/ostree.json").read_text())
    assert second["compose_commit"] == made["commits"][0]["commit"]
    assert ostree.refs(served) == sorted(
        [REF, f"{VERSION_REFS}{REF}/{first['version']}", f"{VERSION_REFS}{REF}/{second['version']}"]
    )
    # The release directory holds the release's record, not copies of the compose's objects.
    assert not (to / hosts.second / "ostree").exists()
    assert (served / "summary.sig").is_file()


def test_the_served_repository_keeps_the_history_its_retention_promises(hosts: Hosts, tmp_path: Path) -> None:
    def keep(n: int) -> None:
        text = hosts.tree["factory.yaml"]
        assert b'  version: "42"\n' in text
        kept = text.replace(b'  version: "42"\n', b'  version: "42"\n  ostree: {keep: %d}\n' % n)
        commit_tree(hosts.root, {**hosts.tree, "factory.yaml": kept}, f"Keep {n} OSTree commits\n")

    to = tmp_path / "kept"
    served = ostree_history.served_repo(to)
    try:
        keep(2)
        a1 = release(hosts, hosts.first, to, "--unsigned")["commit"]
        # Another ref on the first commit (an archived ref, say) keeps it whatever the retention.
        ostree.set_ref(served, f"archive/{REF}", str(a1))
        b1 = release(hosts, hosts.second, to, "--unsigned")["commit"]
        a2 = release(hosts, hosts.first, to, "--unsigned")["commit"]  # a rollback: a new commit on top
        b2 = release(hosts, hosts.second, to, "--unsigned")["commit"]
        assert len({a1, b1, a2, b2}) == 4
        entries, truncated = ostree.parse_log(ostree.log(served, REF))
        assert [e.commit for e in entries] == [b2, a2] and truncated
        assert ostree.history(served, f"archive/{REF}")[0].commit == a1
        with pytest.raises(CommandFailed):
            ostree.log(served, str(b1))
        versions = {
            ref: ostree.rev_parse(served, ref) for ref in ostree.refs(served) if ref.startswith(VERSION_REFS)
        }
        assert versions == {
            ostree_history.version_ref(REF, version_of(hosts.first)): a2,
            ostree_history.version_ref(REF, version_of(hosts.second)): b2,
        }
        # Deltas to pruned commits went with them; the one a host on a2 needs is there.
        deltas = ostree.static_deltas(served)
        assert f"{a2}-{b2}" in deltas and f"{a1}-{b1}" not in deltas
        assert {d.split("-")[1] for d in deltas} <= {a2, b2}

        keep(1)
        # A ref `factory retire` archived (here, on b2) keeps its whole history, whatever keep says.
        retired = f"{ARCHIVE_REFS}FL/42/x86_64/retired"
        ostree.set_ref(served, retired, str(b2))
        a3 = release(hosts, hosts.first, to, "--unsigned")["commit"]
        assert [e.commit for e in ostree.history(served, REF)] == [a3, b2, a2]  # b2, a2: the archived ref's
        assert ostree.parse_log(ostree.log(served, retired)) == (ostree.history(served, REF)[1:], True)
        assert sorted(ostree.refs(served)) == sorted(
            [REF, f"archive/{REF}", retired, ostree_history.version_ref(REF, version_of(hosts.first))]
        )
        ostree.fsck(served)
        ostree.delete_ref(served, retired)  # once it is gone, keep 1 is one commit again
        a4 = release(hosts, hosts.second, to, "--unsigned")["commit"]
        assert [e.commit for e in ostree.history(served, REF)] == [a4]
    finally:
        commit_tree(hosts.root, hosts.tree, "Back to the default retention\n")
