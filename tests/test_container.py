"""Container images with the real dnf, umoci and skopeo on the example distribution.

One module-scoped fixture materializes the example dist-git and runs `factory compose
container:Cloud/httpd`, which composes the Cloud repo, the base image and the httpd image
layered on it. The tests read the images back with skopeo, run the container-config check
on Jobs made the way the executor makes them, and compose again to show the layers are
reproducible.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest

from pipeline import cli, run
from pipeline.checks.container import ContainerConfigCheck
from pipeline.compose.base import InputCompose, Job, describe_tree
from pipeline.compose.container import COMPOSE_ID_LABEL, INPUT_DIGEST_LABEL, ContainerComposer
from pipeline.core.graph import Graph
from pipeline.core.model import Definitions
from pipeline.core.records import OutputFile
from pipeline.core.states import CheckState
from pipeline.git import distgit
from pipeline.records.lineage import Lineage
from pipeline.tools import skopeo, umoci
from pipeline.workspace import Workspace
from tests.conftest import commit_tree, example_tree, materialize_example

BASE, HTTPD = "container:Cloud/base", "container:Cloud/httpd"


@dataclass(frozen=True)
class Composed:
    """The composed example and what it takes to make Jobs like the executor does."""

    root: Path
    output_dir: Path
    defs: Definitions
    graph: Graph
    lineage: Lineage
    commit_time: int

    def job(self, node_id: str, compose_id: str = "", workdir: Path | None = None) -> Job:
        """The Job of node_id: its latest good inputs; by default its own recorded compose."""
        latest = self.lineage.latest()
        node = self.graph.nodes[node_id]
        inputs = {}
        for i in node.inputs:
            record = self.lineage.get(latest[i])
            inputs[i] = InputCompose(i, record.compose_id, record.outputs)
        compose_id = compose_id or latest[node_id]
        workdir = workdir or self.output_dir / "composes" / compose_id
        workdir.mkdir(parents=True, exist_ok=True)
        return Job(node, compose_id, self.defs, inputs, self.output_dir, workdir, self.root, self.commit_time)

    def outputs(self, node_id: str) -> tuple[OutputFile, ...]:
        return self.lineage.get(self.lineage.latest()[node_id]).outputs

    def layout(self, node_id: str) -> str:
        """skopeo's name of a node's composed image in its OCI layout."""
        index = next(o for o in self.outputs(node_id) if o.path.endswith("/oci/index.json"))
        return skopeo.oci((self.output_dir / index.path).parent, node_id.rsplit("/", 1)[-1])


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Composed:
    root = tmp_path_factory.mktemp("dist")
    commit_tree(root, example_tree(), "Example definitions\n")
    materialize_example(root)
    assert cli.main(["compose", HTTPD, "--repo", str(root), "--type", "test", "--json"]) == 0
    ws = Workspace.open(root)
    commit_time = distgit.commit_time(root, "HEAD")
    output_dir = root / ".factory" / "output"
    return Composed(root, output_dir, ws.load("HEAD"), ws.graph("HEAD"), Lineage(root), commit_time)


# Command lines, pure.


def test_umoci_command_lines() -> None:
    layout, bundle = Path("/o/oci"), Path("/t/bundle")
    assert umoci.init_argv(layout) == ["umoci", "init", "--layout", "/o/oci"]
    assert umoci.new_argv(layout, "base") == ["umoci", "new", "--image", "/o/oci:base"]
    assert umoci.unpack_argv(layout, "base", bundle, rootless=True) == [
        "umoci", "unpack", "--rootless", "--image", "/o/oci:base", "/t/bundle",
    ]  # fmt: skip
    assert umoci.repack_argv(layout, "httpd", bundle, created="2026-01-01T00:00:00Z", created_by="x y") == [
        "umoci", "repack", "--image", "/o/oci:httpd", "--history.created=2026-01-01T00:00:00Z",
        "--history.created_by=x y", "/t/bundle",
    ]  # fmt: skip
    config = umoci.Config(
        "2026-01-01T00:00:00Z", ("/bin/sh", "-c"), ("PATH=/usr/bin",), {"z": "1", "a": "2"}, "amd64"
    )
    assert umoci.config_argv(layout, "base", config) == [
        "umoci", "config", "--image", "/o/oci:base", "--created=2026-01-01T00:00:00Z",
        "--history.created=2026-01-01T00:00:00Z", "--architecture=amd64", "--os=linux",
        "--config.cmd=/bin/sh", "--config.cmd=-c", "--config.env=PATH=/usr/bin",
        "--config.label=a=2", "--config.label=z=1",
    ]  # fmt: skip
    assert umoci.remove_argv(layout, "base") == ["umoci", "rm", "--image", "/o/oci:base"]
    assert umoci.gc_argv(layout) == ["umoci", "gc", "--layout", "/o/oci"]


def test_skopeo_command_lines() -> None:
    name = skopeo.oci(Path("/o/oci"), "base")
    assert name == "oci:/o/oci:base"
    assert skopeo.inspect_argv(name) == ["skopeo", "inspect", "oci:/o/oci:base"]
    assert skopeo.inspect_argv(name, config=True) == ["skopeo", "inspect", "--config", "oci:/o/oci:base"]
    archive = skopeo.oci_archive(Path("/o/base.tar"), "base")
    assert skopeo.copy_argv(name, archive) == [
        "skopeo", "copy", "--quiet", "--preserve-digests", "oci:/o/oci:base", "oci-archive:/o/base.tar:base",
    ]  # fmt: skip
    assert skopeo.oci_archive(Path("/o/base.tar")) == "oci-archive:/o/base.tar"


# The composed images, read back.


def test_both_images_are_composed_and_readable(composed: Composed) -> None:
    for node_id in (BASE, HTTPD):
        image = skopeo.inspect(composed.layout(node_id))
        compose_id = composed.lineage.latest()[node_id]
        assert image.labels[COMPOSE_ID_LABEL] == compose_id
        assert image.labels[INPUT_DIGEST_LABEL] == composed.graph.nodes[node_id].digest
        head = str(pygit2.Repository(str(composed.root)).head.target)
        assert image.labels["org.opencontainers.image.revision"] == head  # the source commit
        assert image.created == "2026-01-01T00:00:00Z" == _utc(composed.commit_time)
        assert image.architecture == "amd64"
    assert skopeo.inspect(composed.layout(BASE)).cmd == ("/bin/bash",)
    assert skopeo.inspect(composed.layout(HTTPD)).cmd == ("/usr/sbin/httpd", "-DFOREGROUND")


def test_the_layered_image_is_the_base_layers_plus_one(composed: Composed) -> None:
    base = skopeo.inspect(composed.layout(BASE))
    httpd = skopeo.inspect(composed.layout(HTTPD))
    assert len(base.layers) == 1
    assert httpd.layers[:1] == base.layers and len(httpd.layers) == 2
    assert httpd.diff_ids[:1] == base.diff_ids


def test_the_oci_archive_holds_the_same_image(composed: Composed) -> None:
    for node_id, name in ((BASE, "base"), (HTTPD, "httpd")):
        archive = next(o for o in composed.outputs(node_id) if o.path.endswith(f"/images/{name}.tar"))
        assert archive.path.endswith(f"/compose/Cloud/x86_64/images/{name}.tar")
        read = skopeo.inspect(skopeo.oci_archive(composed.output_dir / archive.path))
        assert read.digest == skopeo.inspect(composed.layout(node_id)).digest


def test_the_base_image_has_its_packages_and_no_dnf_leftovers(composed: Composed) -> None:
    index = next(o for o in composed.outputs(BASE) if o.path.endswith("/oci/index.json"))
    layout = (composed.output_dir / index.path).parent
    manifest = json.loads((layout / "blobs/sha256" / _digest_of(layout / "index.json")).read_bytes())
    layer = layout / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    with tarfile.open(layer) as tar:
        names = set(tar.getnames())
    assert {"usr/share/bash/VERSION", "usr/lib/sysimage/rpm/rpmdb.sqlite"} <= names
    assert not [n for n in names if n.startswith(("var/cache/dnf", "var/log/dnf", "var/lib/dnf/history"))]
    assert not [n for n in names if n.startswith(composed.root.as_posix().lstrip("/").split("/")[0] + "/")]


# The check.


def test_the_check_passes_on_both_images(composed: Composed) -> None:
    check = ContainerConfigCheck()
    for node_id in (BASE, HTTPD):
        result = check.run(composed.job(node_id), composed.outputs(node_id))
        assert (result.state, result.message) == (CheckState.PASSED, "")


def test_the_check_fails_a_wrong_compose_id_or_cmd(composed: Composed) -> None:
    check = ContainerConfigCheck()
    job = composed.job(BASE)
    wrong_id = dataclasses.replace(job, compose_id="FL-42-Cloud-base-20261121.t.9")
    result = check.run(wrong_id, composed.outputs(BASE))
    assert result.state == CheckState.FAILED and f"label {COMPOSE_ID_LABEL} is" in result.message
    definition = job.node.definition
    definition["output"]["options"]["cmd"] = ["/bin/sh"]
    node = dataclasses.replace(job.node, definition_json=json.dumps(definition))
    result = check.run(dataclasses.replace(job, node=node), composed.outputs(BASE))
    assert (
        result.state == CheckState.FAILED and "Cmd is ['/bin/bash'], expected ['/bin/sh']" in result.message
    )
    assert check.run(job, ()).state == CheckState.FAILED


def test_the_check_fails_a_layered_image_not_on_its_base(composed: Composed) -> None:
    job = composed.job(HTTPD)
    fake = composed.output_dir / "fake"  # a "base" that is the httpd image itself
    shutil.copytree(Path(composed.layout(HTTPD).split(":")[1]), fake / "oci")
    run.run(["umoci", "tag", "--image", umoci.image(fake / "oci", "httpd"), "base"])
    itself = InputCompose(BASE, job.compose_id, tuple(describe_tree(composed.output_dir, fake)))
    wrong = dataclasses.replace(job, inputs={**job.inputs, BASE: itself})
    result = ContainerConfigCheck().run(wrong, composed.outputs(HTTPD))
    assert result.state == CheckState.FAILED and "0 layers on top of container:Cloud/base" in result.message


# Reproducibility.


def test_layers_are_reproducible_and_the_same_compose_id_gives_the_same_bytes(composed: Composed) -> None:
    composer = ContainerComposer()
    recorded = {n: skopeo.inspect(composed.layout(n)) for n in (BASE, HTTPD)}
    for node_id in (BASE, HTTPD):
        other, name = "FL-42-Cloud-rebuild-20261121.t.0", node_id.rsplit("/", 1)[-1]
        made = composer.compose(composed.job(node_id, other, composed.output_dir / "again" / name))
        image = skopeo.inspect(skopeo.oci(composed.output_dir / "again" / name / "oci", name))
        assert image.layers == recorded[node_id].layers  # another compose ID: the same layers
        assert image.digest != recorded[node_id].digest  # ... but its own label
        same = composer.compose(composed.job(node_id, other, composed.output_dir / "twice" / name))
        assert _relative(same) == _relative(made)  # the same compose ID: every byte the same


def _relative(outputs: list[OutputFile]) -> list[tuple[str, str]]:
    return sorted((o.path.split("/", 2)[-1], o.sha256) for o in outputs)


def _digest_of(index: Path) -> str:
    return str(json.loads(index.read_bytes())["manifests"][0]["digest"].split(":")[1])


def _utc(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
