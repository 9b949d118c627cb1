"""A compose held PENDING by a check factory does not run, end to end on the example
distribution with the real composers and checks (rpmbuild, createrepo_c, dnf, umoci, skopeo).

Cloud's repo must pass an openQA install test before its container images are built on it. A
change to the httpd module recomposes the repo: its gate waits for `openqa.install`, so it is
PENDING, the base image made from it is BLOCKED, and the repo's previous latest good stays; the
next compose composes nothing for it. openQA's result arrives with `factory check record`;
`factory gate ID --promote` makes the compose latest good, and the next compose decides the
image again instead of blocking it: its package set (httpd is not in the base image) did not
change, so it keeps its compose.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from pipeline import cli
from pipeline.records.lineage import Lineage
from tests.conftest import ROOT, materialize_example

OPENQA = """\
document: factory-policy
version: 1
rules:
  - description: Cloud's repo passes openQA's install test before images are built on it
    kinds: [repo]
    variants: [Cloud]
    require: [openqa.install]
"""
REPO, IMAGE = "repo:Cloud", "container:Cloud/base"
SITE_SCHEMA = Draft202012Validator(json.loads((ROOT / "pipeline" / "schemas" / "site.json").read_text()))


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out


def commit(repo: Path, message: str) -> None:
    subprocess.run(["git", "-C", str(repo), "add", "-A", "policies", "modules"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=RelEng", "-c", "user.email=releng@example.invalid",
         "commit", "-q", "-m", message],
        check=True,
    )  # fmt: skip


def compose(capsys: pytest.CaptureFixture[str], repo: Path) -> tuple[int, dict[str, dict[str, str]]]:
    code, out = factory(capsys, "compose", IMAGE, "--repo", str(repo), "--json")
    return code, {n["node"]: n for n in json.loads(out)["nodes"]}


def test_an_openqa_result_releases_a_pending_repo(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = example_repo
    materialize_example(repo)
    assert compose(capsys, repo)[0] == 0
    previous = Lineage(repo).latest()[REPO]

    # openQA is required from now on, and a change to httpd recomposes Cloud's repo.
    (repo / "policies").mkdir()
    (repo / "policies" / "openqa.yaml").write_text(OPENQA)
    module = repo / "modules" / "httpd" / "2.4.yaml"
    module.write_text(
        module.read_text().replace("summary: Apache HTTP Server 2.4", "summary: Apache httpd 2.4")
    )
    commit(repo, "Require openQA for Cloud; retitle httpd")
    code, nodes = compose(capsys, repo)
    assert code == 1
    pending = nodes[REPO]["compose_id"]
    assert nodes[REPO]["status"] == "PENDING"
    assert nodes[REPO]["message"] == (
        f"{pending} waits for openqa.install (PENDING, required by policies/openqa.yaml:4)"
    )
    assert nodes[IMAGE]["status"] == "BLOCKED"
    assert nodes[IMAGE]["message"] == f"input {REPO} is pending: {nodes[REPO]['message']}"
    assert Lineage(repo).latest()[REPO] == previous
    code, out = factory(capsys, "lineage", pending, "--repo", str(repo))
    assert "status    PENDING: waits for openqa.install" in out
    assert "  openqa.install  PENDING: required by policies/openqa.yaml:4; no result yet" in out
    assert "  repoclosure  PASSED" in out  # factory's own checks ran and are recorded
    code, out = factory(capsys, "status", REPO, "--repo", str(repo), "--json")
    (view,) = [n for n in json.loads(out)["nodes"] if n["node"] == REPO]
    assert view["state"] == "pending"
    assert view["gate"]["state"] == "pending" and view["gate"]["missing"] == ["openqa.install"]
    # The site shows it too, and its JSON twins still validate.
    assert factory(capsys, "site", str(repo / "site"), "--repo", str(repo))[0] == 0
    for path in (repo / "site").rglob("*.json"):
        assert list(SITE_SCHEMA.iter_errors(json.loads(path.read_text()))) == [], path
    overview = json.loads((repo / "site" / "status.json").read_text())
    assert {n["node"]: n["state"] for n in overview["nodes"]}[REPO] == "pending"

    # The next compose composes nothing for it.
    code, nodes = compose(capsys, repo)
    assert code == 1
    assert (nodes[REPO]["status"], nodes[REPO]["compose_id"]) == ("PENDING", pending)
    assert nodes[IMAGE]["status"] == "BLOCKED"
    assert not [n for n, r in nodes.items() if r["status"] == "COMPOSED"]

    # openQA reports; the compose is promoted and the image is built on it.
    code, out = factory(
        capsys, "check", "record", pending, "openqa.install", "--outcome", "PASSED",
        "--url", "https://openqa.example.invalid/tests/1", "--repo", str(repo),
    )  # fmt: skip
    assert code == 0, out
    code, out = factory(capsys, "gate", pending, "--promote", "--repo", str(repo))
    assert code == 0, out
    assert out.splitlines()[-1].startswith(f"promoted: {pending} is FINISHED (")
    assert Lineage(repo).latest()[REPO] == pending
    code, nodes = compose(capsys, repo)
    assert code == 0
    # Not blocked any more; keyed by its package set, which the retitled httpd module does not
    # touch, so the image keeps the compose it had (no new compose ID).
    assert nodes[REPO]["status"] == "SKIPPED" and nodes[IMAGE]["status"] == "SKIPPED"
    image = Lineage(repo).get(nodes[IMAGE]["compose_id"])
    assert [i.compose_id for i in image.inputs if i.node == REPO] == [previous]
