"""The ostree and iso composers and their checks, with the real ostree, dnf and xorriso.

One module-scoped fixture composes the example distribution's AtomicHost and Server repos
with `factory compose`, then the three image nodes (the composers are found through their
entry points). The tests read the results back with ostree, xorriso and productmd, and call
the composers directly on new Jobs to see what a forced recompose does. The test that changes
the package set moves the ostree ref, so it runs last.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import productmd.images  # type: ignore[import-untyped]
import pygit2
import pytest

from pipeline import cli
from pipeline.artifacts.store import open_store
from pipeline.checks.iso import IsoListingCheck
from pipeline.checks.ostree import OstreeFsckCheck
from pipeline.compose.base import InputCompose, Job, describe_file
from pipeline.compose.iso import IsoComposer
from pipeline.compose.ostree import COMPOSE_ID, INPUT_DIGEST, PACKAGE_SET, OstreeComposer, rpm_filename
from pipeline.core import definitions, graph
from pipeline.core.model import Definitions
from pipeline.core.records import OutputFile
from pipeline.core.states import CheckState
from pipeline.records.lineage import Lineage
from pipeline.tools import ostree, xorriso
from pipeline.transfer import Transfer
from tests.conftest import commit_tree, example_tree, materialize_example, sources

HOST, DVD, INSTALLER = "ostree:AtomicHost/host", "iso:Server/dvd", "iso:AtomicHost/installer"
IMAGES = (HOST, DVD, INSTALLER)
REF = "FL/42/x86_64/host"


@dataclass
class Distribution:
    root: Path
    defs: Definitions
    graph: graph.Graph

    @property
    def output_dir(self) -> Path:
        return self.root / ".factory" / "output"

    @property
    def repo(self) -> Path:
        return self.output_dir / "ostree" / "AtomicHost" / "repo"

    def latest(self, node: str) -> InputCompose:
        compose_id = Lineage(self.root).latest()[node]
        return InputCompose(node, compose_id, Lineage(self.root).get(compose_id).outputs)

    def job(self, node: str, compose_id: str, defs: Definitions | None = None) -> Job:
        """A Job as the executor makes it, from the latest good composes of the node's inputs."""
        found = self.graph.nodes[node]
        workdir = self.output_dir / "composes" / compose_id
        workdir.mkdir(parents=True, exist_ok=True)
        inputs = {i: self.latest(i) for i in found.inputs}
        epoch = pygit2.Repository(str(self.root)).head.peel(pygit2.Commit).commit_time
        return Job(found, compose_id, defs or self.defs, inputs, self.output_dir, workdir, self.root, epoch)

    def recorded_job(self, node: str) -> tuple[Job, list[OutputFile]]:
        """The Job of the latest good compose of node (its workdir as made), and its outputs."""
        made = self.latest(node)
        found = self.graph.nodes[node]
        inputs = {i: self.latest(i) for i in found.inputs}
        workdir = self.output_dir / "composes" / made.compose_id
        job = Job(found, made.compose_id, self.defs, inputs, self.output_dir, workdir, self.root, 0)
        return job, list(made.outputs)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Distribution:
    root = tmp_path_factory.mktemp("dist")
    commit_tree(root, example_tree(), "Example definitions\n")
    materialize_example(root)
    base = ["compose", "--repo", str(root), "--type", "test", "--json"]
    assert cli.main([*base, "repo:AtomicHost", "repo:Server"]) == 0
    assert cli.main([*base, *IMAGES]) == 0
    defs = definitions.load(sources(example_tree()))
    return Distribution(root, defs, graph.build(defs))


def statuses(capsys: pytest.CaptureFixture[str], root: Path) -> dict[str, str]:
    capsys.readouterr()
    assert cli.main(["compose", "--repo", str(root), "--type", "test", "--json", *IMAGES]) == 0
    return {n["node"]: n["status"] for n in json.loads(capsys.readouterr().out)["nodes"]}


def test_argv_builders_are_exact() -> None:
    repo, tree = Path("/r"), Path("/t")
    argv = ostree.commit_argv(
        repo, tree, REF, subject="s", metadata={"b": "2", "a": "1"}, timestamp=5, parent="abc"
    )
    assert argv == [
        "ostree", "commit", "--repo=/r", f"--branch={REF}", "--tree=dir=/t", "--subject=s",
        "--timestamp=@5", "--owner-uid=0", "--owner-gid=0", "--canonical-permissions",
        "--add-metadata-string=a=1", "--add-metadata-string=b=2", "--parent=abc",
    ]  # fmt: skip
    assert ostree.init_argv(repo) == ["ostree", "init", "--mode=archive", "--repo=/r"]
    assert ostree.checkout_argv(repo, "c", tree) == ["ostree", "checkout", "--repo=/r", "-U", "c", "/t"]
    assert ostree.pull_local_argv(repo, tree, "c") == [
        "ostree",
        "pull-local",
        "--repo=/r",
        "--depth=0",
        "/t",
        "c",
    ]
    assert xorriso.mkisofs_argv(Path("/x.iso"), "V", tree, 5) == [
        "xorriso", "-as", "mkisofs", "-o", "/x.iso", "-V", "V", "-J", "-joliet-long", "-R",
        "--set_all_file_dates", "=5", "/t",
    ]  # fmt: skip
    assert ostree.parse_gvariant_string("'FL-42-x\\'y'") == "FL-42-x'y"
    assert xorriso.parse_find("xorriso : NOTE\n'/a b'\n'/.discinfo'\n") == ["/.discinfo", "/a b"]
    assert xorriso.parse_volume_id("Volume id    : 'X'\nVolume Id    : FL-42\n") == "FL-42"
    assert rpm_filename("python3-urllib3-1:2.2.3-1.fl42.noarch") == "python3-urllib3-2.2.3-1.fl42.noarch.rpm"


def test_the_image_nodes_are_composed(dist: Distribution) -> None:
    latest = Lineage(dist.root).latest()
    assert set(IMAGES) <= set(latest)
    iso = [o.path for o in dist.latest(DVD).outputs if o.path.endswith(".iso")]
    assert iso == [f"composes/{latest[DVD]}/compose/Server/x86_64/iso/dvd.iso"]


def test_the_ref_has_the_commit_with_its_compose_id(dist: Distribution) -> None:
    host = dist.latest(HOST)
    made = json.loads(dist.output_dir.joinpath(f"composes/{host.compose_id}/ostree.json").read_text())
    assert made["repo"] == "ostree/AtomicHost/repo"
    (commit,) = made["commits"]
    assert ostree.refs(dist.repo) == [REF]
    assert ostree.rev_parse(dist.repo, REF) == commit["commit"]
    assert host.compose_id in ostree.log(dist.repo, REF)
    assert ostree.metadata(dist.repo, REF, COMPOSE_ID) == host.compose_id
    assert ostree.metadata(dist.repo, REF, INPUT_DIGEST) == dist.graph.nodes[HOST].digest
    assert ostree.metadata(dist.repo, REF, PACKAGE_SET) == commit["package_set_digest"]
    assert {"bash-0:5.2.32-1.fl42.noarch", "rpm-ostree-0:2024.8-1.fl42.noarch"} <= {
        p["nevra"] for p in commit["packages"]
    }
    assert "/usr/etc" in ostree.ls(dist.repo, REF)
    objects = [o.path for o in host.outputs if o.path.endswith(".commit")]
    assert objects == [f"ostree/AtomicHost/repo/objects/{commit['commit'][:2]}/{commit['commit'][2:]}.commit"]


def test_a_rerun_with_no_change_composes_nothing(
    dist: Distribution, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(statuses(capsys, dist.root).values()) == {"SKIPPED"}


def test_the_checks_pass_on_what_was_composed(dist: Distribution) -> None:
    assert OstreeFsckCheck().run(*dist.recorded_job(HOST)).state == CheckState.PASSED
    for node in (DVD, INSTALLER):
        result = IsoListingCheck().run(*dist.recorded_job(node))
        assert (result.state, result.message) == (CheckState.PASSED, "")


def test_the_isos_hold_their_files_and_volume_ids(dist: Distribution) -> None:
    for node, volume, expected in (
        (DVD, "FL-42-Server-dvd", {"/repodata/repomd.xml", "/media.repo", "/Packages/httpd-2.4.62-1.fl42.noarch.rpm"}),
        (INSTALLER, "FL-42-AtomicHost", {"/ostree.ks", f"/ostree/repo/refs/heads/{REF}", "/Packages/anaconda-42.13-1.fl42.noarch.rpm"}),
    ):  # fmt: skip
        (iso,) = [dist.output_dir / o.path for o in dist.latest(node).outputs if o.path.endswith(".iso")]
        assert expected <= set(xorriso.files(iso))
        assert xorriso.volume_id(iso) == volume


def test_the_checks_fail_with_a_reason(dist: Distribution, tmp_path: Path) -> None:
    job, outputs = dist.recorded_job(DVD)
    result = IsoListingCheck().run(
        dataclasses.replace(job, defs=_with_option(dist.defs, "Server", "dvd", "volume_id", "OTHER")), outputs
    )
    assert result.state == CheckState.FAILED
    assert "volume ID is 'FL-42-Server-dvd', expected 'OTHER'" in result.message
    job, outputs = dist.recorded_job(HOST)
    manifest = next(o for o in outputs if o.path.endswith("ostree.json"))
    tampered = dist.output_dir / "tampered" / "x" / "ostree.json"
    tampered.parent.mkdir(parents=True)
    tampered.write_text(
        dist.output_dir.joinpath(manifest.path).read_text().replace(job.compose_id, "FL-42-X-20260101.t.0")
    )
    result = OstreeFsckCheck().run(job, [describe_file(dist.output_dir, tampered)])
    assert result.state == CheckState.FAILED
    assert f"factory.compose-id is '{job.compose_id}', expected 'FL-42-X-20260101.t.0'" in result.message


def test_two_iso_builds_are_byte_identical_and_productmd_reads_images_json(dist: Distribution) -> None:
    for node, name in ((DVD, "Server-dvd"), (INSTALLER, "AtomicHost-installer")):
        again = IsoComposer().compose(dist.job(node, f"FL-42-{name}-20990101.t.1"))
        first = dist.latest(node).outputs
        assert [o.sha256 for o in again if o.path.endswith(".iso")] == [
            o.sha256 for o in first if o.path.endswith(".iso")
        ]
        images = productmd.images.Images()
        images.load(str(dist.output_dir / f"composes/FL-42-{name}-20990101.t.1/compose/metadata/images.json"))
        ((arch, (image,)),) = images.images[name.split("-")[0]].items()
        iso = next(o for o in again if o.path.endswith(".iso"))
        assert (arch, image.format, image.size, image.checksums) == (
            "x86_64",
            "iso",
            iso.size,
            {"sha256": iso.sha256},
        )
        # productmd's types: a DVD, or Pungi's type for an OSTree installer; neither has a boot
        # setup (no El Torito record, as xorriso reads the image), so neither says it boots.
        assert xorriso.boot_images(dist.output_dir / iso.path) == []
        assert (image.type, image.mtime, image.implant_md5, image.bootable) == (
            "dvd" if node == DVD else "dvd-ostree",
            1767225600,
            None,
            False,
        )
        assert image.type in productmd.images.SUPPORTED_IMAGE_TYPES


def test_xorriso_reads_an_el_torito_boot_record_only_where_there_is_one(tmp_path: Path) -> None:
    """What `bootable` in images.json rests on: an image made with a boot image has a record."""
    assert xorriso.boot_report_argv(Path("/x.iso")) == [
        "xorriso", "-indev", "/x.iso", "-report_el_torito", "plain",
    ]  # fmt: skip
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "boot.img").write_bytes(bytes(2048))
    plain, booting = tmp_path / "plain.iso", tmp_path / "boot.iso"
    xorriso.make_iso(plain, "PLAIN", stage, 1767225600)
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-o", str(booting), "-V", "BOOT", "-b", "boot.img", "-no-emul-boot",
         str(stage)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert xorriso.boot_images(plain) == []
    (record,) = xorriso.boot_images(booting)
    assert record.split()[:3] == ["1", "BIOS", "y"]


def test_a_recompose_with_the_same_package_set_makes_no_commit(dist: Distribution) -> None:
    before = ostree.rev_parse(dist.repo, REF)
    first = dist.latest(HOST).outputs
    again = OstreeComposer().compose(dist.job(HOST, "FL-42-AtomicHost-host-20990101.t.1"))
    assert ostree.rev_parse(dist.repo, REF) == before
    assert [(o.path.split("/", 2)[-1], o.sha256) for o in again] == [
        (o.path.split("/", 2)[-1], o.sha256) for o in first
    ]


def test_a_changed_package_set_commits_on_top_of_the_previous_commit(dist: Distribution) -> None:
    before = ostree.rev_parse(dist.repo, REF)
    defs = _with_option(dist.defs, "AtomicHost", "host", "packages", ["filesystem", "setup", "bash"])
    compose_id = "FL-42-AtomicHost-host-20990101.t.2"
    OstreeComposer().compose(dist.job(HOST, compose_id, defs))
    after = ostree.rev_parse(dist.repo, REF)
    assert after != before
    assert ostree.rev_parse(dist.repo, f"{REF}^") == before
    assert ostree.metadata(dist.repo, REF, COMPOSE_ID) == compose_id
    assert "podman" not in " ".join(ostree.ls(dist.repo, REF))


def fresh_runner_job(dist: Distribution, output: Path, compose_id: str, defs: Definitions) -> Job:
    """The Job of the host on a runner whose output directory is empty, as the executor makes it:
    inputs and the node's previous compose are latest good, their files in the store only."""
    found = dist.graph.nodes[HOST]
    workdir = output / "composes" / compose_id
    workdir.mkdir(parents=True)
    inputs = {i: dist.latest(i) for i in found.inputs}
    return Job(found, compose_id, defs, inputs, output, workdir, dist.root, 0, previous=dist.latest(HOST))


@pytest.mark.parametrize("packages", [None, ["filesystem", "setup"]], ids=["same set", "changed set"])
def test_on_a_fresh_runner_the_host_continues_the_history_fetched_from_the_store(
    dist: Distribution, tmp_path: Path, packages: list[str] | None
) -> None:
    store = open_store("file:.factory/store", root=dist.root, env={})  # where `factory compose` put it
    moving = Transfer(store, tmp_path / "output")
    defs = (
        dist.defs if packages is None else _with_option(dist.defs, "AtomicHost", "host", "packages", packages)
    )
    respin = 0 if packages is None else 1
    job = fresh_runner_job(dist, tmp_path / "output", f"FL-42-AtomicHost-host-20990102.t.{respin}", defs)
    made = dist.latest(HOST)
    listing = next(o for o in made.outputs if o.path.endswith("/ostree.json"))
    previous = json.loads((dist.output_dir / listing.path).read_text())["commits"][0]["commit"]
    moving.before(job)
    outputs = OstreeComposer().compose(job)
    moving.complete(job, outputs)
    repo = tmp_path / "output" / "ostree" / "AtomicHost" / "repo"
    if packages is None:  # the same packages: the previous commit is taken again, its tree fetched
        assert ostree.rev_parse(repo, REF) == previous
    else:  # a new commit on top of the previous latest good, made on another runner
        assert ostree.rev_parse(repo, f"{REF}^") == previous
    assert all((job.output_dir / o.path).is_file() for o in outputs)
    assert OstreeFsckCheck().run(job, outputs).state == CheckState.PASSED
    assert moving.put(job.compose_id, outputs)


def _with_option(defs: Definitions, uid: str, name: str, key: str, value: object) -> Definitions:
    variant = defs.variants[uid]
    outputs = tuple(
        dataclasses.replace(o, options=tuple(sorted({**dict(o.options), key: value}.items())))
        if o.name == name
        else o
        for o in variant.outputs
    )
    return dataclasses.replace(
        defs, variants={**defs.variants, uid: dataclasses.replace(variant, outputs=outputs)}
    )
