"""Pins that follow a branch without an exact ref: resolved when composed, recorded in lineage,
and rebuilt when the bot sees the branch move (`factory bot reconcile --trigger`)."""

from __future__ import annotations

import json
from pathlib import Path

import pygit2
import pytest

from pipeline import cli
from pipeline.core import definitions, graph
from pipeline.records.lineage import Lineage
from tests.conftest import commit_tree, example_tree, materialize_example, sources

GLIB2_PIN = b"    glib2:\n      ref: 8a994f55e3f8a120fe79fed88767e3a89d30c829\n      branch: f42\n"
GLIB2_FOLLOWS = b"    glib2:\n      branch: f42  # follows the head\n"
GLIB2_HEAD = "8a994f55e3f8a120fe79fed88767e3a89d30c829"


def following_tree() -> dict[str, bytes]:
    tree = example_tree()
    path = "modules/gtk/3.yaml"
    assert GLIB2_PIN in tree[path]
    tree[path] = tree[path].replace(GLIB2_PIN, GLIB2_FOLLOWS)
    return tree


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out


def move_branch(repo: Path, component: str, branch: str) -> str:
    git = pygit2.Repository(str(repo / ".factory" / "distgit" / f"{component}.git"))
    parent = git.branches.local[branch].peel(pygit2.Commit)
    builder = git.TreeBuilder(parent.tree)
    builder.insert("NOTE", git.create_blob(b"a routine change\n"), pygit2.GIT_FILEMODE_BLOB)
    signature = pygit2.Signature("Packager", "packager@example.invalid", 1_800_000_000, 0)
    oid = git.create_commit(None, signature, signature, "Routine change\n", builder.write(), [parent.id])
    git.references.create(f"refs/heads/{branch}", oid, force=True)
    return str(oid)


def test_a_branch_only_pin_is_one_build_node_per_branch() -> None:
    g = graph.build(definitions.load(sources(following_tree())))
    node = g.nodes["build:glib2@f42"]
    assert node.definition == {"arches": [], "branch": "f42", "component": "glib2", "dist": ".fl42"}
    assert "build:glib2@f42" in g.nodes["module:gtk:3"].inputs


def test_compose_resolves_the_head_and_the_bot_triggers_the_rebuild(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = example_repo
    commit_tree(repo, following_tree(), "glib2 follows f42\n")
    materialize_example(repo)
    assert factory(capsys, "validate", "--repo", str(repo))[0] == 0
    nodes = ["repo:Workstation"]
    assert factory(capsys, "compose", *nodes, "--repo", str(repo), "--json")[0] == 0
    lineage = Lineage(repo)
    build = lineage.get(lineage.latest()["build:glib2@f42"])
    assert build.pins == (("glib2", GLIB2_HEAD),)
    assert ("glib2", GLIB2_HEAD) in lineage.get(lineage.latest()["module:gtk:3"]).pins
    code, out = factory(capsys, "why", f"glib2@{GLIB2_HEAD}", "--repo", str(repo), "--json")
    assert {r["node"] for r in json.loads(out)} >= {"build:glib2@f42", "module:gtk:3", "repo:Workstation"}

    # Nothing moved: the bot has nothing to say about glib2, and never opens an MR for it.
    code, out = factory(capsys, "bot", "reconcile", "--repo", str(repo), "--component", "glib2", "--json")
    assert code == 0 and json.loads(out)["rebuilds"] == [] and json.loads(out)["actions"] == []

    new = move_branch(repo, "glib2", "f42")
    code, out = factory(capsys, "bot", "reconcile", "--repo", str(repo), "--component", "glib2", "--json")
    report = json.loads(out)
    assert report["actions"] == []
    (rebuild,) = report["rebuilds"]
    assert (rebuild["old"], rebuild["new"], rebuild["node"]) == (GLIB2_HEAD, new, "build:glib2@f42")
    stale = {Lineage(repo).get(c).node for c in rebuild["stale"]}
    assert stale == {"build:glib2@f42", "module:gtk:3", "repo:Workstation"}

    code, out = factory(
        capsys, "bot", "reconcile", "--repo", str(repo), "--component", "glib2", "--trigger", "--json"
    )
    assert code == 0
    composed = {n["node"] for n in json.loads(out)["triggered"]["nodes"] if n["status"] == "COMPOSED"}
    assert {"build:glib2@f42", "module:gtk:3", "repo:Workstation"} <= composed
    lineage = Lineage(repo)
    assert lineage.get(lineage.latest()["build:glib2@f42"]).pins == (("glib2", new),)
    code, out = factory(capsys, "bot", "reconcile", "--repo", str(repo), "--component", "glib2", "--json")
    assert json.loads(out)["rebuilds"] == []
