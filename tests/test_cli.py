"""The `factory` command on a real Git repository of the example definitions."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline import cli
from tests.conftest import commit_tree, example_tree, materialize_example

CVE_FIX = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def repo(example_repo: Path) -> Path:
    materialize_example(example_repo)
    return example_repo


def bump_openssl(repo: Path) -> str:
    tree = example_tree()
    path = "modules/base-runtime/f42.yaml"
    tree[path] = tree[path].replace(b"795545287474bedd5e207f70c50a64a10fc7632e", CVE_FIX.encode())
    return commit_tree(repo, tree, "Bump openssl\n")


def test_validate_the_example(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--repo", str(repo))
    assert code == 0
    assert "8 modules and 4 variants are valid" in out


def test_validate_catches_a_branch_missing_in_distgit(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = repo / "modules/gtk/3.yaml"
    path.write_text(path.read_text().replace("branch: f42", "branch: f99", 1))
    code, _, err = run(capsys, "validate", "--repo", str(repo))
    assert code == 2
    assert "modules/gtk/3.yaml:" in err and "error[unknown-branch]" in err
    assert "Traceback" not in err


def test_plan_between_revisions_as_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bump_openssl(repo)
    code, out, _ = run(capsys, "plan", "--repo", str(repo), "--base", "HEAD~1", "--head", "HEAD", "--json")
    assert code == 0
    result = json.loads(out)
    assert [n["node"] for n in result["tiers"][0]] == ["build:openssl@9d0324eb"]
    assert len([n for tier in result["tiers"] for n in tier]) == 11


def test_plan_of_the_working_tree_in_markdown(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = repo / "modules/gtk/3.yaml"
    path.write_text(path.read_text().replace("summary: GTK 3 toolkit", "summary: GTK 3"))
    code, out, _ = run(capsys, "plan", "--repo", str(repo), "--base", "HEAD", "--markdown")
    assert code == 0
    assert "| 1 | `module:gtk:3` | summary changed |" in out
    assert "`repo:Workstation`" in out


def test_impact_uses_the_branch_head_when_distgit_is_reachable(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "impact", "openssl", "--branch", "f42", "--repo", str(repo), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["head"] == CVE_FIX
    assert result["tiers"][0][0]["node"] == "build:openssl@9d0324eb"


def test_deps_and_graph(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "deps", "base-runtime", "--reverse", "--repo", str(repo))
    assert code == 0 and "variant Cloud ships it" in out
    code, out, _ = run(capsys, "graph", "--format", "dot", "--repo", str(repo))
    assert code == 0 and '"module:gtk:3" -> "repo:Workstation";' in out
    code, out, _ = run(capsys, "graph", "--format", "json", "--repo", str(repo))
    assert code == 0 and len(json.loads(out)["nodes"]) == 42


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_as_svg_is_drawn_by_graphviz(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "graph", "--format", "svg", "--repo", str(repo))
    assert code == 0
    svg = ET.fromstring(out)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    titles = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}title")}
    assert {"module:gtk:3", "repo:Workstation", "module:gtk:3->repo:Workstation"} <= titles


def test_unknown_revision_and_module_exit_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "--repo", str(repo), "--base", "nope")
    assert code == 2 and "unknown revision 'nope'" in err
    code, _, err = run(capsys, "deps", "qt", "--repo", str(repo))
    assert code == 2 and "no module 'qt'" in err


def test_not_a_repository_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "--repo", str(tmp_path))
    assert code == 2 and "not inside a Git repository" in err


def test_warm_cache_gives_the_same_plan(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bump_openssl(repo)
    args = ("plan", "--repo", str(repo), "--base", "HEAD~1", "--head", "HEAD", "--json")
    first = run(capsys, *args)
    assert list((repo / ".git" / "factory").glob("parse-cache-*.pickle"))
    assert run(capsys, *args) == first


def test_a_graph_from_the_cache_equals_a_graph_built_afresh(repo: Path) -> None:
    from pipeline.core.graph import build
    from pipeline.workspace import Workspace

    bump_openssl(repo)
    for rev in ("HEAD~1", "HEAD"):
        Workspace.open(repo).graph(rev)  # fills the cache
        cached = Workspace.open(repo).graph(rev)  # a new process would read it like this
        fresh = build(Workspace.open(repo).load(rev, check_distgit=False))
        assert dict(cached.digests) == dict(fresh.digests)
        assert {k: cached.nodes[k] for k in fresh.nodes} == dict(fresh.nodes)
