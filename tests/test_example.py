"""The example dist-git: deterministic commits, real pins, a CVE backport ahead of its pin."""

from __future__ import annotations

from pathlib import Path

import pygit2

from pipeline import example
from pipeline.core import definitions
from pipeline.git import distgit
from tests.conftest import ROOT, example_tree, sources

SOURCE = ROOT / "examples" / "distgit"


def test_same_hashes_on_every_run_and_machine(tmp_path: Path) -> None:
    first = example.materialize(SOURCE, tmp_path / "a")
    second = example.materialize(SOURCE, tmp_path / "b")
    again = example.materialize(SOURCE, tmp_path / "a")
    assert first == second == again
    assert first["openssl"]["f42"] == "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"


def test_every_pin_names_a_real_commit_on_its_branch(tmp_path: Path) -> None:
    example.materialize(SOURCE, tmp_path / ".factory" / "distgit")
    lookup = distgit.DistGit(tmp_path)
    defs = definitions.load(sources(example_tree()), branches=lookup)
    for module in defs.modules.values():
        for pin in module.components:
            repo = pygit2.Repository(str(tmp_path / ".factory" / "distgit" / f"{pin.component}.git"))
            head = repo.branches.local[pin.branch].target
            assert pin.ref == str(head) or repo.descendant_of(head, pin.ref), pin


def test_openssl_f42_carries_a_cve_fix_the_pin_lacks(tmp_path: Path) -> None:
    heads = example.materialize(SOURCE, tmp_path)
    repo = pygit2.Repository(str(tmp_path / "openssl.git"))
    head = repo[heads["openssl"]["f42"]]
    assert isinstance(head, pygit2.Commit)
    assert "CVE-2026-1234" in head.message
    assert str(head.parents[0].id) == "795545287474bedd5e207f70c50a64a10fc7632e"
    assert set(heads["openssl"]) == {"f41", "f42", "rawhide"}
    assert heads["python3"]["rawhide"] != heads["python3"]["f42"]
