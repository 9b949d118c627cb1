"""repoclosure and install on the composed example distribution, with the real tools; and
scenario 3: a module that breaks closure is not promoted and blocks what sits on it.

The composed distribution is made once per session and shared with test_sign_release.py
(which imports the fixture); tests here that change it put it back as they found it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from pipeline import cli, run
from pipeline.checks import install_cache
from pipeline.checks.repo import InstallCheck, RepoClosure, closure, required_modules
from pipeline.compose.base import InputCompose, Job, describe_tree
from pipeline.core import definitions
from pipeline.core.graph import build as build_graph
from pipeline.core.states import CheckState
from pipeline.records import checks as testnotes
from pipeline.records.lineage import Lineage
from pipeline.tools import createrepo, dnf
from tests.conftest import ROOT, commit_tree, example_tree, materialize_example, sources

VARIANT_REPOS = ["repo:Server", "repo:Workstation", "repo:Cloud", "repo:AtomicHost"]


def gated_tree() -> dict[str, bytes]:
    """The example definitions with the repository's default policy."""
    return {**example_tree(), "policies/default.yaml": (ROOT / "policies/default.yaml").read_bytes()}


def broken_gtk_tree() -> dict[str, bytes]:
    """gtk without glib2, which gtk3 requires: the gtk module repo is no longer closed."""
    tree = gated_tree()
    path = "modules/gtk/3.yaml"
    text = tree[path].decode()
    pin = "    glib2:\n      ref: 8a994f55e3f8a120fe79fed88767e3a89d30c829\n      branch: f42\n"
    assert pin in text
    tree[path] = text.replace(pin, "").replace("[glib2, gtk3]", "[gtk3]").encode()
    return tree


_MADE: dict[str, Path] = {}  # one composed distribution per session, whichever module asks first


@pytest.fixture(scope="session")
def gated_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example distribution with the default policy, its variant repos composed (and
    everything they need), checked and gated."""
    if "root" in _MADE:
        return _MADE["root"]
    root = tmp_path_factory.mktemp("gated")
    commit_tree(root, gated_tree(), "Example definitions, gated\n")
    materialize_example(root)
    assert cli.main(["compose", *VARIANT_REPOS, "--repo", str(root), "--type", "test", "--json"]) == 0
    _MADE["root"] = root
    return root


def output_dir(root: Path) -> Path:
    return root / ".factory" / "output"


def job_for(root: Path, node: str, workdir: Path) -> Job:
    """A Job for node with the latest good composes of its inputs, as the executor makes it."""
    defs = definitions.load(sources(gated_tree()))
    lineage = Lineage(root)
    latest = lineage.latest()
    graph_node = build_graph(defs).nodes[node]
    inputs = {i: InputCompose(i, latest[i], lineage.get(latest[i]).outputs) for i in graph_node.inputs}
    return Job(graph_node, "FL-42-x-20261121.t.0", defs, inputs, output_dir(root), workdir, root, 0)


def test_every_module_and_variant_repo_passed_its_checks(gated_dist: Path) -> None:
    lineage = Lineage(gated_dist)
    latest = lineage.latest()
    modules = [n for n in latest if n.startswith("module:")]
    assert len(modules) == 8
    for node in [*modules, *VARIANT_REPOS]:
        results = {r.check: r.state for r in testnotes.read(lineage, latest[node])}
        expected = (
            {"repoclosure": CheckState.PASSED, "install": CheckState.PASSED}
            if node.startswith("repo:")
            else {"repoclosure": CheckState.PASSED}
        )
        assert results == expected, node


def test_module_closure_includes_the_modules_it_requires() -> None:
    defs = definitions.load(sources(example_tree()))
    assert required_modules(defs, "gnome:47") == ["base-runtime:f42", "gtk:3"]
    assert required_modules(defs, "base-runtime:f42") == []


def small_repo(root: Path, rpm_names: list[str], where: Path) -> Path:
    """A yum repo at where/x86_64/os holding copies of the named RPMs of the composes."""
    repo = where / "x86_64" / "os"
    (repo / "Packages").mkdir(parents=True)
    for name in rpm_names:
        found = next(output_dir(root).glob(f"composes/*/repo/Packages/{name}-[0-9]*.rpm"))
        shutil.copyfile(found, repo / "Packages" / found.name)
    createrepo.make_repo(repo, 1767225600)
    return repo


def test_repoclosure_names_what_is_missing_and_the_owners(gated_dist: Path) -> None:
    work = output_dir(gated_dist) / "composes" / "test-closure"
    repo = small_repo(gated_dist, ["gtk3", "filesystem"], work)
    unresolved = closure([repo], [])
    assert [(u.package, u.requirement) for u in unresolved] == [("gtk3-3.24.43-1.fl42.noarch", "glib2")]
    job = job_for(gated_dist, "repo:Workstation", work)
    result = RepoClosure().run(job, describe_tree(job.output_dir, work))
    assert result.state == CheckState.FAILED
    assert result.message.startswith("1 unresolved requirements: gtk3-3.24.43-1.fl42.noarch requires glib2")
    assert "module gtk:3 (maintainers: desktop-sig@example.invalid)" in result.message
    install = InstallCheck().run(job, describe_tree(job.output_dir, work))
    assert install.state == CheckState.FAILED
    assert "module gtk:3 (maintainers: desktop-sig@example.invalid)" in install.message
    entries = (gated_dist / install_cache.DIRECTORY).glob("*.json")
    assert all(json.loads(e.read_text())["compose_id"] != job.compose_id for e in entries)  # never a failure


def test_a_module_that_breaks_closure_is_not_promoted(
    gated_dist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = Lineage(gated_dist).latest()
    commit_tree(gated_dist, broken_gtk_tree(), "gtk without glib2\n")
    code = cli.main(["compose", *VARIANT_REPOS, "--repo", str(gated_dist), "--json"])
    assert code == 1
    nodes = {n["node"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    gtk = nodes["module:gtk:3"]
    assert gtk["status"] == "FAILED"
    assert (
        "repoclosure FAILED: 1 unresolved requirements: gtk3-3.24.43-1.fl42.noarch requires glib2"
        in gtk["message"]
    )
    assert "owners: desktop-sig@example.invalid" in gtk["message"]
    assert nodes["repo:Workstation"]["status"] == "BLOCKED"
    assert nodes["repo:Server"]["status"] == "SKIPPED"
    after = Lineage(gated_dist).latest()
    assert after["module:gtk:3"] == before["module:gtk:3"]
    assert after["repo:Workstation"] == before["repo:Workstation"]
    assert cli.main(["gate", gtk["compose_id"], "--repo", str(gated_dist)]) == 1
    assert "repoclosure: FAILED" in capsys.readouterr().out
    # The fix is merged: the earlier good composes are reused, nothing that passed runs again.
    commit_tree(gated_dist, gated_tree(), "Put glib2 back\n")
    assert cli.main(["compose", *VARIANT_REPOS, "--repo", str(gated_dist), "--json"]) == 0
    statuses = {n["status"] for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert statuses == {"SKIPPED"}
    assert Lineage(gated_dist).latest() == before


def test_an_install_check_of_the_same_package_set_is_reused_and_says_from_which_compose(
    gated_dist: Path,
) -> None:
    lineage = Lineage(gated_dist)
    composed = lineage.latest()["repo:Cloud"]
    outputs = lineage.get(composed).outputs
    job = job_for(gated_dist, "repo:Cloud", output_dir(gated_dist) / "composes" / composed)
    # The compose's own install check ran dnf and remembered its package set.
    entries = list((gated_dist / install_cache.DIRECTORY).glob("*.json"))
    assert any(json.loads(e.read_text())["compose_id"] == composed for e in entries)
    again = InstallCheck().run(job, outputs)
    assert again.state == CheckState.PASSED
    assert f"not run again: the result of {composed}, whose install brought in the same" in again.message
    # An entry whose package set differs is never trusted for this one, even under its name.
    config = job.defs.config
    repo = output_dir(gated_dist) / "composes" / composed / "compose" / "Cloud" / "x86_64" / "os"
    request = ("filesystem",)
    key = install_cache.install_key(
        repo, request, releasever=config.release.version, platform=config.dist.lstrip(".")
    )
    assert key is not None and any(name.startswith("filesystem-") for name, _ in key.packages)
    install_cache.remember(gated_dist, key, "FL-42-Cloud-20261121.t.9", "1 packages of 1 modules install")
    assert install_cache.lookup(gated_dist, key) == install_cache.Reused(
        "FL-42-Cloud-20261121.t.9", "1 packages of 1 modules install"
    )
    path = gated_dist / install_cache.DIRECTORY / f"{key.digest}.json"
    entry = json.loads(path.read_text())
    entry["key"]["packages"][0][1] = "0" * 64  # another RPM file with the same NEVRA
    path.write_text(json.dumps(entry))
    assert install_cache.lookup(gated_dist, key) is None
    path.unlink()


def test_an_install_check_with_nothing_to_install_is_not_applicable_never_passed(gated_dist: Path) -> None:
    """A variant whose selected profiles hold no package: dnf is not even asked, and the result
    says the check did not apply (the gate decides what that means: tests/test_gate.py)."""
    tree = gated_tree()
    for module in ("modules/base-runtime/f42.yaml", "modules/httpd/2.4.yaml"):
        tree[module] = tree[module].replace(b"profiles:\n", b"profiles:\n  empty:\n    rpms: []\n")
    cloud = "variants/Cloud.yaml"
    text = tree[cloud].decode()
    selection = "  - module: base-runtime:f42\n    profiles: [minimal]\n  - module: httpd:2.4\n    profiles: [default]\n"
    assert selection in text
    tree[cloud] = text.replace(
        selection, selection.replace("[minimal]", "[empty]").replace("[default]", "[empty]")
    ).encode()
    defs = definitions.load(sources(tree))
    lineage = Lineage(gated_dist)
    composed = lineage.latest()["repo:Cloud"]
    job = job_for(gated_dist, "repo:Cloud", output_dir(gated_dist) / "composes" / composed)
    job = dataclasses.replace(job, defs=defs)
    result = InstallCheck().run(job, lineage.get(composed).outputs)
    assert (result.state, result.message) == (
        CheckState.NOT_APPLICABLE,
        "no profile selects a package: nothing to install",
    )


def test_dnf_version_read_from_its_python_api_is_what_dnf_version_prints() -> None:
    assert dnf.version() == run.run(["dnf", "--version"]).splitlines()[0].strip()


def test_install_roots_go_to_memory_only_when_it_has_room(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dnf.scratch_dir() in (dnf.SHM, None)
    monkeypatch.setattr(dnf, "SCRATCH_FREE", 1 << 60)  # more than any machine has
    assert dnf.scratch_dir() is None
