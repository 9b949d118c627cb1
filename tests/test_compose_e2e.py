"""`factory compose` end to end on the example distribution, with rpmbuild, createrepo_c and dnf.

One module-scoped repository is composed once; the tests then change it step by step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pygit2
import pytest

from pipeline import cli
from pipeline.plugins import composers
from pipeline.records.lineage import Lineage
from tests.conftest import commit_tree, example_tree, materialize_example

CVE_FIX = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"
OLD = "795545287474bedd5e207f70c50a64a10fc7632e"


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out, _ = capsys.readouterr()
    return code, out


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    commit_tree(root, example_tree(), "Example definitions\n")
    materialize_example(root)
    assert cli.main(["compose", "--repo", str(root), "--type", "test", "--json"]) == 0
    return root


def test_everything_composable_is_composed_and_latest_good(composed: Path) -> None:
    latest = Lineage(composed).latest()
    assert len([n for n in latest if n.startswith("build:")]) == 24
    assert {"module:base-runtime:f42", "repo:Server", "repo:Cloud"} <= set(latest)
    tags = [r for r in pygit2.Repository(str(composed)).references if r.startswith("refs/tags/compose/")]
    assert len(tags) == len(latest)


def test_a_second_compose_runs_nothing(composed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = factory(capsys, "compose", "--repo", str(composed), "--json")
    assert code == 0
    result = json.loads(out)
    assert {n["status"] for n in result["nodes"]} == {"SKIPPED"}


def test_dnf_installs_a_profile_from_the_composed_variant_repo(composed: Path, tmp_path: Path) -> None:
    record = Lineage(composed).get(Lineage(composed).latest()["repo:Server"])
    repomd = next(o for o in record.outputs if o.path.endswith("/os/repodata/repomd.xml"))
    repo = (composed / ".factory" / "output" / repomd.path).parent.parent
    home = tmp_path / "home"
    home.mkdir()
    (home / ".rpmmacros").write_text("%_dbpath /usr/lib/sysimage/rpm\n")
    installroot = tmp_path / "root"
    argv = [
        "dnf", "-y", "-q", f"--installroot={installroot}", "--releasever=42",
        "--setopt=module_platform_id=platform:fl42", f"--repofrompath=server,file://{repo}",
        "--repo=server", "--setopt=server.gpgcheck=0", "--setopt=install_weak_deps=0",
        "install", "httpd",
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(home)}
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        listed = subprocess.run(
            [
                "rpm",
                "--root",
                str(installroot),
                "--dbpath",
                "/usr/lib/sysimage/rpm",
                "-qa",
                "--qf",
                "%{NAME}\n",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert {"httpd", "openssl", "systemd", "glibc", "ca-certificates"} <= set(listed)
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(installroot / "etc/pki/rpm-gpg"), "--kill", "gpg-agent"],
            check=False,
            capture_output=True,
        )


def test_a_pin_bump_reruns_exactly_the_planned_set(
    composed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = example_tree()
    path = "modules/base-runtime/f42.yaml"
    tree[path] = tree[path].replace(OLD.encode(), CVE_FIX.encode())
    commit_tree(composed, tree, "Bump openssl to the CVE-2026-1234 fix\n")
    code, out = factory(
        capsys, "plan", "--repo", str(composed), "--base", "HEAD~1", "--head", "HEAD", "--json"
    )
    planned = {n["node"] for tier in json.loads(out)["tiers"] for n in tier}
    code, out = factory(capsys, "compose", "--repo", str(composed), "--since", "HEAD~1", "--json")
    assert code == 0
    nodes = json.loads(out)["nodes"]
    composed_now = {n["node"] for n in nodes if n["status"] == "COMPOSED"}
    kinds = set(composers())
    composable = {n for n in planned if n.split(":")[0] in kinds}
    # The plan is what may compose; the run decides by key. openssl is not in the package set
    # of the Cloud base image (it is in the httpd image's, through mod_ssl): that image keeps
    # its compose.
    assert composed_now == composable - {"container:Cloud/base"}
    assert {n["node"]: n["status"] for n in nodes}["container:Cloud/base"] == "SKIPPED"
    code, out = factory(capsys, "why", f"openssl@{CVE_FIX[:10]}", "--repo", str(composed), "--json")
    assert {r["node"] for r in json.loads(out)} == composed_now


def test_killing_a_compose_leaves_no_false_record_and_the_rerun_completes(composed: Path) -> None:
    tree = example_tree()
    bumped = "modules/base-runtime/f42.yaml"
    tree[bumped] = tree[bumped].replace(OLD.encode(), CVE_FIX.encode())  # as the test before left it
    path = "modules/gtk/3.yaml"
    tree[path] = tree[path].replace(b"summary: GTK 3 toolkit", b"summary: The GTK 3 toolkit")
    commit_tree(composed, tree, "Reword gtk\n")
    lineage = Lineage(composed)
    before = lineage.latest()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "compose", "--repo", str(composed), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # kill it as soon as it starts composing the module
        if "....  module:gtk:3" in line:
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(0.1)
    lineage = Lineage(composed)
    assert lineage.latest()["module:gtk:3"] == before["module:gtk:3"]
    unfinished = lineage.reserved_unfinished()
    tags = {
        r.removeprefix("refs/tags/compose/")
        for r in pygit2.Repository(str(composed)).references
        if r.startswith("refs/tags/compose/")
    }
    assert not set(unfinished) & tags
    assert cli.main(["compose", "--repo", str(composed)]) == 0
    after = Lineage(composed).latest()
    assert after["module:gtk:3"] != before["module:gtk:3"]
    assert after["repo:Workstation"] != before["repo:Workstation"]
    assert after["repo:Cloud"] == before["repo:Cloud"]


def test_reverting_a_change_reuses_the_earlier_composes(composed: Path) -> None:
    lineage = Lineage(composed)
    before = lineage.latest()
    commit_tree(composed, example_tree(), "Revert to the example as it was\n")
    assert cli.main(["compose", "--repo", str(composed), "--json"]) == 0
    after = Lineage(composed).latest()
    # The first composes (type test) had exactly these keys: they are latest good again.
    assert after["module:base-runtime:f42"].endswith(".t.0")
    assert after["repo:Cloud"].endswith(".t.0") and after["repo:Cloud"] != before["repo:Cloud"]
