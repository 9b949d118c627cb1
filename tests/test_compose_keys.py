"""Compose keys hold what decides the bytes, with the built-in kinds and the real tools.

One module-scoped fixture composes the example distribution's AtomicHost (repo, OSTree commit,
installer ISO) and Cloud (repo, two container images) with `factory compose`. The tests then
change one thing each, in order, and compose again: a definitions commit that touches no
module, a bump of a component that is in the Cloud repo but in none of its images, a bump of
the installer (in the ISO, not in the OSTree commit), and a new builder format number (every
build is redone and comes out byte-identical).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest

from pipeline import cli
from pipeline.build.local import LocalBuilder
from pipeline.compose.base import InputCompose, Job
from pipeline.compose.module import ModuleComposer
from pipeline.core import definitions, graph
from pipeline.core.config import Config
from pipeline.engine import runtime_keys
from pipeline.engine.decide import content_digest
from pipeline.formats import modulemd
from pipeline.records.lineage import Lineage
from pipeline.tools import libmodulemd, rpm
from tests.conftest import commit_tree, example_tree, materialize_example, sources

HOST, INSTALLER = "ostree:AtomicHost/host", "iso:AtomicHost/installer"
BASE, HTTPD = "container:Cloud/base", "container:Cloud/httpd"
TARGETS = (HOST, INSTALLER, BASE, HTTPD)
MODULE = "module:base-runtime:f42"


@dataclass
class Dist:
    root: Path
    tree: dict[str, bytes]

    def latest(self) -> dict[str, str]:
        return Lineage(self.root).latest()

    def compose(self, capsys: pytest.CaptureFixture[str], *targets: str) -> dict[str, tuple[str, str]]:
        """Compose the targets; node -> (status, compose ID) of every node of the run."""
        capsys.readouterr()
        argv = ["compose", "--repo", str(self.root), "--type", "test", "--json", *(targets or TARGETS)]
        assert cli.main(argv) == 0
        nodes = json.loads(capsys.readouterr().out)["nodes"]
        return {n["node"]: (n["status"], n["compose_id"]) for n in nodes}

    def commit(self, message: str, path: str, old: str, new: str) -> None:
        """Commit the definitions with the first `old` text of path replaced by `new`."""
        assert old.encode() in self.tree[path]
        self.tree[path] = self.tree[path].replace(old.encode(), new.encode(), 1)
        commit_tree(self.root, self.tree, message)

    def bump(self, component: str, module: str) -> None:
        """A new dist-git commit of component (a file its package does not ship, a later time),
        and its pin in module moved to it."""
        git = pygit2.Repository(str(self.root / ".factory" / "distgit" / f"{component}.git"))
        parent = git.branches.local["f42"].peel(pygit2.Commit)
        builder = git.TreeBuilder(parent.tree)
        builder.insert("NOTE", git.create_blob(b"bumped\n"), pygit2.GIT_FILEMODE_BLOB)
        sig = pygit2.Signature("Packager", "packager@example.invalid", parent.commit_time + 86400, 0)
        oid = git.create_commit(
            "refs/heads/f42", sig, sig, f"Bump {component}\n", builder.write(), [parent.id]
        )
        path = f"modules/{module}.yaml"
        self.tree[path] = self.tree[path].replace(str(parent.id).encode(), str(oid).encode(), 1)
        commit_tree(self.root, self.tree, f"Bump {component}\n")

    def package_sets(self, node: str) -> dict[str, list[str]]:
        """The NEVRAs the node's packages resolve to against its repo's latest good compose."""
        defs = definitions.load(sources(self.tree))
        found = graph.build(defs).nodes[node]
        repo = Lineage(self.root).get(self.latest()[f"repo:{node.split(':')[1].split('/')[0]}"])
        output_dir = self.root / ".factory" / "output"
        resolver = runtime_keys.Resolver()
        packages = found.definition["output"]["options"]["packages"]
        tree = output_dir / runtime_keys.os_tree(repo.outputs, found.definition["variant"]["uid"], "x86_64")
        config: Config = defs.config
        platform = runtime_keys.platform_of(found.kind, config)
        return {"x86_64": [nevra for nevra, _ in resolver.package_set(tree, packages, "42", platform)]}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    root = tmp_path_factory.mktemp("keys")
    tree = example_tree()
    commit_tree(root, tree, "Example definitions\n")
    materialize_example(root)
    argv = ["compose", "--repo", str(root), "--type", "test", "--json", *TARGETS]
    assert cli.main(argv) == 0
    return Dist(root, tree)


def test_the_resolved_package_set_is_what_the_ostree_commit_holds(dist: Dist) -> None:
    made = Lineage(dist.root).get(dist.latest()[HOST])
    manifest = next(o for o in made.outputs if o.path.endswith("/ostree.json"))
    commit = json.loads((dist.root / ".factory" / "output" / manifest.path).read_text())["commits"][0]
    assert [p["nevra"] for p in commit["packages"]] == dist.package_sets(HOST)["x86_64"]


def test_a_module_made_from_another_definitions_commit_is_byte_identical(
    dist: Dist, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = dist.latest()
    record = Lineage(dist.root).get(before[MODULE])
    # The modulemd version is the newest build time of the module's RPMs, not the commit's time.
    output_dir = dist.root / ".factory" / "output"
    modules_yaml = next(o for o in record.outputs if o.path.endswith("/modules.yaml"))
    text = (output_dir / modules_yaml.path).read_text()
    assert libmodulemd.validate_text(text) == []
    rpms = rpm.headers([output_dir / o.path for o in record.outputs if o.path.endswith(".rpm")])
    newest = max(r.buildtime for r in rpms)
    assert f"version: {modulemd.module_version(newest)}\n" in text
    # Made again, into a new directory, as from a definitions commit made a year later:
    defs = definitions.load(sources(dist.tree))
    node = graph.build(defs).nodes[MODULE]
    inputs = {}
    for i in node.inputs:
        made = Lineage(dist.root).get(before[i])
        inputs[i] = InputCompose(i, made.compose_id, made.outputs)
    again = "FL-42-base-runtime-f42-20271126.t.0"
    workdir = output_dir / "composes" / again
    workdir.mkdir(parents=True)
    job = Job(node, again, defs, inputs, output_dir, workdir, dist.root, 1767225600 + 365 * 86400, "0" * 40)
    remade = ModuleComposer().compose(job)
    assert content_digest(remade) == content_digest(record.outputs)
    # A definitions commit that touches no module: nothing of the module is composed.
    dist.commit("Name the desktop\n", "variants/Workstation.yaml", "name: Workstation\n", "name: Desktop\n")
    ran = dist.compose(capsys, "repo:AtomicHost")
    assert ran[MODULE] == ("SKIPPED", before[MODULE])


def test_a_bump_outside_every_image_recomposes_the_repo_and_no_image(
    dist: Dist, capsys: pytest.CaptureFixture[str]
) -> None:
    # The kernel ships in the Cloud repo (base-runtime) but neither container installs it.
    assert not any(n.startswith("kernel-") for n in dist.package_sets(BASE)["x86_64"])
    assert not any(n.startswith("kernel-") for n in dist.package_sets(HTTPD)["x86_64"])
    before = dist.latest()
    dist.bump("kernel", "base-runtime/f42")
    ran = dist.compose(capsys, BASE, HTTPD)
    assert ran["repo:Cloud"][0] == "COMPOSED"
    assert ran[BASE] == ("SKIPPED", before[BASE])
    assert ran[HTTPD] == ("SKIPPED", before[HTTPD])
    assert dist.latest()[BASE] == before[BASE]
    # `factory ci check` keys the image as the executor does: the base image is up to date.
    capsys.readouterr()
    argv = ["ci", "check", "--repo", str(dist.root), "--no-pull", "--json", "--inputs-of", HTTPD]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert {n["node"]: n["status"] for n in report["nodes"]} == {"repo:Cloud": "OK", BASE: "OK"}


def test_a_bump_of_the_installer_composes_the_iso_and_not_the_ostree_commit(
    dist: Dist, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not any(n.startswith("anaconda-") for n in dist.package_sets(HOST)["x86_64"])
    dist.compose(capsys, HOST, INSTALLER)  # the kernel bump reaches the OSTree commit first
    before = dist.latest()
    dist.bump("anaconda", "installer/f42")
    ran = dist.compose(capsys, HOST, INSTALLER)
    assert ran["repo:AtomicHost"][0] == "COMPOSED"
    assert ran[HOST] == ("SKIPPED", before[HOST])  # no new compose ID for it
    assert ran[INSTALLER][0] == "COMPOSED"
    assert ran[INSTALLER][1] != before[INSTALLER]


def test_a_rebuild_that_comes_out_byte_identical_stops_what_is_downstream(
    dist: Dist, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = dist.latest()
    # A new format number of the builder: every build's key changes, so every build is redone;
    # rpmbuild is reproducible, so each comes out the same bytes and nothing else composes.
    monkeypatch.setattr(LocalBuilder, "format", LocalBuilder.format + 1)
    ran = dist.compose(capsys)
    builds = {n: r for n, r in ran.items() if n.startswith("build:")}
    assert builds and all(status == "COMPOSED" for status, _ in builds.values())
    rest = {n: r for n, r in ran.items() if not n.startswith("build:")}
    assert rest == {n: ("SKIPPED", before[n]) for n in rest}
