"""The security day of the README (SCENARIOS.md, day 13), end to end as a user lives it on the
example distribution with the local forge: the upstream source gets a fixed build with a security
advisory, `factory bot reconcile` opens the merge request naming it, it is merged, only what ships
the package composes again, and dnf sees the advisory in the variant repo."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.records.lineage import Lineage
from pipeline.tools import dnf
from tests.conftest import materialize_example

ADVISORY = "FEDORA-2026-5e1f0a9c3b"
NEW = "python3-idna-3.7-1.fc42"


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, (argv, out, err)
    return out


def server_tree(repo: Path) -> Path:
    """The Server variant repo of its latest good compose (what a mirror serves)."""
    lineage = Lineage(repo, "42")
    record = lineage.get(lineage.latest()["repo:Server"])
    repomd = next(o.path for o in record.outputs if o.path.endswith("/x86_64/os/repodata/repomd.xml"))
    return repo / ".factory" / "output" / repomd.removesuffix("/repodata/repomd.xml")


def test_the_security_day(example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = str(example_repo)
    materialize_example(example_repo)  # make demo: dist-git, and the upstream as of its first day
    assert json.loads(factory(capsys, "compose", "--repo", repo, "--json"))["status"] == "FINISHED"
    factory(capsys, "history", "record", "--repo", repo)
    before = server_tree(example_repo)
    # A machine installed from the Server repo has python3-idna 3.6.
    root = tmp_path / "root"
    dnf.install(root, [dnf.Repo("server", before)], ["python3-idna"], releasever="42", platform="fl42")
    assert "python3-idna-0:3.6-1.fc42.noarch" in dnf.installed(root)

    # Upstream publishes a fixed build with a security advisory.
    out = factory(
        capsys,
        "example",
        "upstream",
        str(example_repo / ".factory" / "upstream"),
        "--day",
        "idna-security-fix",
    )
    assert f"build     {NEW}" in out and f"advisory  {ADVISORY}" in out
    out = factory(capsys, "bot", "reconcile", "--repo", repo)
    assert f"recorded source upstream: python3-idna 3.6-1.fc42 -> 3.7-1.fc42 ({ADVISORY})" in out
    opened = [line for line in out.splitlines() if line.startswith("opened ")]
    assert opened[0] == f"opened !1: Bump python3-idna (upstream) to 3.7-1.fc42 — {ADVISORY} [bump, security]"
    shown = factory(capsys, "mr", "show", "1", "--repo", repo)
    assert "| **FEDORA-2026-5e1f0a9c3b** python3-idna security update | security | Moderate |" in shown
    assert "CVE-2026-3651" in shown and "2274779" in shown
    assert (
        "| `python3:3.12` | `modules/python3/3.12.yaml` | `python3-idna-3.6-1.fc42` | `python3-idna-3.7-1.fc42` |"
        in shown
    )
    assert "| 1 | `binary:python3-idna-3.7-1.fc42` | new node |" in shown

    assert factory(capsys, "mr", "merge", "1", "--repo", repo).startswith("merged !1")
    composed = json.loads(factory(capsys, "compose", "--repo", repo, "--json"))
    assert composed["status"] == "FINISHED"
    again = sorted(n["node"] for n in composed["nodes"] if n["status"] == "COMPOSED")
    # Only what ships python3-idna: the Atomic Host repo ships it (the installer module needs
    # python3), its tree and installer image do not, so they and the containers are skipped.
    assert again == [
        f"binary:{NEW}", "iso:Server/dvd", "module:python3:3.12", "repo:AtomicHost", "repo:Server", "repo:Workstation",
    ]  # fmt: skip
    assert {n["status"] for n in composed["nodes"] if n["node"] not in again} == {"SKIPPED"}
    # `factory why BUILD`: what was made with each build, and what of it is still current.
    old = {
        f["node"]: f["latest_good"]
        for f in json.loads(factory(capsys, "why", "python3-idna-3.6-1.fc42", "--repo", repo, "--json"))
    }
    new = {
        f["node"]: f["latest_good"] for f in json.loads(factory(capsys, "why", NEW, "--repo", repo, "--json"))
    }
    assert {"repo:Server", "repo:Workstation", "module:python3:3.12"} <= old.keys()
    assert not old["repo:Server"] and not old["binary:python3-idna-3.6-1.fc42"]
    assert sorted(n for n, good in new.items() if good) == again
    assert factory(capsys, "why", NEW, "--repo", repo).startswith(
        f"6 composes made with {NEW}; 6 still current"
    )

    # dnf on that machine sees the advisory in the new Server repo.
    after = server_tree(example_repo)
    assert after != before
    home = tmp_path / "home"
    home.mkdir()
    (home / ".rpmmacros").write_text("%_dbpath /usr/lib/sysimage/rpm\n")  # Debian's rpm: TOOLCHAIN.md
    listed = subprocess.run(
        [
            "dnf", "-q", f"--installroot={root}", "--releasever=42", "--setopt=reposdir=/nonexistent",
            "--setopt=module_platform_id=platform:fl42", f"--setopt=cachedir={tmp_path / 'cache'}",
            f"--repofrompath=server,{after.as_uri()}", "--repo=server", "updateinfo", "list", "--security",
        ],
        env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert listed.split() == [ADVISORY, "Moderate/Sec.", f"{NEW}.noarch"]
