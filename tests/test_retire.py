"""After `factory eol` is merged: nothing plans or composes what it retired, and `factory retire`
carves it out of the release tree, idempotently, while lineage keeps answering for it. The
example distribution, composed and released with the real tools."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.records.lineage import Lineage
from tests.conftest import materialize_example


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def git(repo: Path, *argv: str) -> str:
    return subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_a_retired_variant_plans_nothing_and_leaves_the_release_tree(
    example_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(example_repo)
    materialize_example(example_repo)
    assert run(capsys, "compose", "--repo", repo, "--json")[0] == 0
    workstation = Lineage(example_repo).latest("repo:Workstation")["repo:Workstation"]
    releases = tmp_path / "releases"
    target = releases / "repo-Workstation"
    code, _, _ = run(capsys, "release", workstation, "--to", str(target), "--unsigned", "--repo", repo)
    assert code == 0 and (target / "latest" / "compose").is_dir()

    assert run(capsys, "eol", "variant:Workstation", "--repo", repo)[0] == 0
    assert run(capsys, "mr", "merge", "1", "--repo", repo)[0] == 0
    # Nothing plans or composes it any more.
    code, out, _ = run(capsys, "compose", "--repo", repo, "--json")
    composed = json.loads(out)
    assert code == 0 and "repo:Workstation" not in {n["node"] for n in composed["nodes"]}
    assert {n["status"] for n in composed["nodes"]} == {"SKIPPED"}
    code, _, err = run(capsys, "compose", "repo:Workstation", "--repo", repo)
    assert code == 2 and "unknown-node" in err

    code, out, _ = run(capsys, "retire", "--dry-run", "--repo", repo, "--json")
    planned = json.loads(out)["nodes"]
    assert [(n["node"], n["latest_good"]) for n in planned] == [("repo:Workstation", workstation)]
    assert (target / "latest").is_symlink()  # a dry run moves nothing

    code, out, _ = run(capsys, "retire", "--repo", repo, "--json")
    done = json.loads(out)["nodes"]
    archive = releases / "archive" / "repo-Workstation"
    assert done == [
        {
            "node": "repo:Workstation",
            "release": "42",
            "latest_good": workstation,
            "moved": [
                {"from": str(target / "latest"), "to": str(archive / "latest")},
                {"from": str(target / workstation), "to": str(archive / workstation)},
            ],
            "ostree_refs": [],
        }
    ]
    # Gone from the release tree, whole in the archive, recorded on the compose's release note.
    assert sorted(p.name for p in target.iterdir()) == [".lock"]
    assert (archive / "latest" / "RELEASE.json").is_file()
    note = json.loads(git(example_repo, "notes", "--ref=releases", "show", f"compose/{workstation}"))
    assert [e["status"] for e in note["releases"]] == ["released", "archived"]
    # inside the checkout (example_repo is tmp_path): recorded relative to it, never by this machine's path
    assert note["releases"][1]["path"] == (archive / workstation).relative_to(example_repo).as_posix()
    # Its latest good moved to the retired namespace; the other nodes' stayed.
    assert "repo:Workstation" not in Lineage(example_repo).latest()
    assert Lineage(example_repo).retired() == {"repo:Workstation": workstation}
    assert git(example_repo, "for-each-ref", "refs/composes/latest/42/repo/Workstation") == ""
    # Lineage still answers for everything it ever composed.
    code, out, _ = run(capsys, "lineage", workstation, "--tree", "--repo", repo)
    assert code == 0 and out.startswith(f"{workstation}  repo:Workstation  FINISHED")
    assert "module:gtk:3" in out and "dist-git gtk3 @ " in out
    code, out, _ = run(capsys, "why", "gtk3@b2838247", "--repo", repo, "--json")
    found = {r["node"]: r for r in json.loads(out)}
    assert (
        found["repo:Workstation"]["latest_good"] is False and found["repo:Workstation"]["released"] is False
    )
    # Again: nothing left to do.
    code, out, _ = run(capsys, "retire", "--repo", repo)
    assert (code, out.startswith("nothing to carve out")) == (0, True)


def test_a_retired_module_is_carved_out_with_its_builds(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(example_repo)
    materialize_example(example_repo)
    assert run(capsys, "compose", "--repo", repo, "--json")[0] == 0
    before = Lineage(example_repo).latest()
    for number, target in enumerate(("variant:Workstation", "module:gnome:47"), 1):
        assert run(capsys, "eol", target, "--repo", repo)[0] == 0
        assert run(capsys, "mr", "merge", str(number), "--repo", repo)[0] == 0
    code, out, _ = run(capsys, "retire", "--repo", repo, "--json")
    assert code == 0
    moved = {n["node"]: n["latest_good"] for n in json.loads(out)["nodes"]}
    gone = ("repo:Workstation", "module:gnome:47", "build:gnome-shell@67f39e87")
    assert moved == {node: before[node] for node in gone}
    after = Lineage(example_repo).latest()
    assert after == {node: cid for node, cid in before.items() if node not in gone}
