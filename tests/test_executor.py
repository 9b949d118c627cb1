"""The local executor with small composers of its own, on a real Git repository.

The composers here are real plugins (they write files and report them); what is under test is
the executor's deciding: skip by key, early cutoff, failures stopping only their dependants,
resuming, and the overall status.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
import pytest

from pipeline.artifacts.store import open_store
from pipeline.compose.base import Composer, Job, describe_tree
from pipeline.compose.sources import SourceReader
from pipeline.core import definitions, graph
from pipeline.core.errors import OperationFailed
from pipeline.core.model import Definitions
from pipeline.core.records import OutputFile
from pipeline.core.states import RunStatus
from pipeline.engine import executor
from pipeline.records.lineage import Lineage
from pipeline.transfer import Transfer
from tests.conftest import commit_tree, example_tree, example_upstream, sources


@dataclass
class Writer:
    """Writes one file per compose: its node id, the checksums of its inputs' files, and
    whatever `content` says for the node; so it changes exactly when its inputs' bytes do."""

    kind: str
    content: dict[str, str] = field(default_factory=dict)
    format: int = 1
    failing: set[str] = field(default_factory=set)
    ran: list[str] = field(default_factory=list)

    def tools(self) -> Mapping[str, str]:
        return {"writer": "1"}

    def compose(self, job: Job) -> list[OutputFile]:
        self.ran.append(job.node.id)
        if job.node.id in self.failing:
            raise OperationFailed(f"{job.node.id} broke", code="test-broke")
        # read the inputs' files, as a real composer does (on a fresh runner: fetched ones)
        consumed = sorted(
            hashlib.sha256(job.input_path(o).read_bytes()).hexdigest()
            for i in job.inputs.values()
            for o in i.outputs
        )
        text = "\n".join([job.node.id, *consumed, self.content.get(job.node.id, "")])
        (job.workdir / "artifact.txt").write_text(text)
        return describe_tree(job.output_dir, job.workdir)


@dataclass
class Setup:
    root: Path
    defs: Definitions
    graph: graph.Graph
    lineage: Lineage
    composers: dict[str, Writer]
    branch: str = "master"  # the release's branch the commit composed is on ("": none)

    def run(
        self,
        targets: set[str] | None = None,
        *,
        output: Path | None = None,
        transfer: Transfer | None = None,
        compose_type: str = "test",
        run: str = "",
    ) -> executor.RunResult:
        commit = pygit2.Repository(str(self.root)).head.target
        ctx = executor.Context(
            defs=self.defs,
            commit=str(commit),
            commit_time=1767225600,
            source_root=self.root,
            output_dir=output or self.root / "out",
            compose_type=compose_type,
            date="20261121",
            branch=self.branch,
            run=run,
            sources=SourceReader(self.defs.config, self.root, {}),
        )
        plugins: dict[str, Composer] = dict(self.composers)
        chosen = set(self.graph.nodes) if targets is None else targets
        chosen = {n for n in chosen if self.graph.nodes[n].kind in plugins}
        return executor.execute(self.graph, chosen, plugins, self.lineage, ctx, workers=2, transfer=transfer)

    def ran(self) -> list[str]:
        done = sorted(n for c in self.composers.values() for n in c.ran)
        for c in self.composers.values():
            c.ran.clear()
        return done


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    tree = example_tree()
    commit_tree(tmp_path, tree, "definitions\n")
    example_upstream(tmp_path / ".factory" / "upstream")  # python3-idna's source (binary pin)
    defs = definitions.load(sources(tree))
    composers = {kind: Writer(kind) for kind in ("binary", "build", "module", "repo")}
    return Setup(tmp_path, defs, graph.build(defs), Lineage(tmp_path), composers)


def test_first_run_composes_everything_and_second_run_nothing(setup: Setup) -> None:
    first = setup.run()
    assert first.status == RunStatus.FINISHED
    assert first.count("COMPOSED") == 37
    assert len(setup.ran()) == 37
    second = setup.run()
    assert second.status == RunStatus.FINISHED
    assert second.count("SKIPPED") == 37
    assert setup.ran() == []


def test_every_compose_is_latest_good_and_in_lineage(setup: Setup) -> None:
    result = setup.run()
    latest = setup.lineage.latest()
    for r in result.results:
        assert latest[r.node] == r.compose_id
        record = setup.lineage.get(r.compose_id)
        assert record.status == "FINISHED" and record.node == r.node
    module = setup.lineage.get(latest["module:base-runtime:f42"])
    assert ("openssl", "795545287474bedd5e207f70c50a64a10fc7632e") in module.pins
    assert {i.node for i in module.inputs} == set(setup.graph.nodes["module:base-runtime:f42"].inputs)


def test_a_failure_stops_only_what_depends_on_it(setup: Setup) -> None:
    setup.composers["module"].failing = {"module:gtk:3"}
    result = setup.run()
    status = {r.node: r.status for r in result.results}
    assert status["module:gtk:3"] == "FAILED"
    assert status["repo:Workstation"] == "BLOCKED"
    assert status["repo:Cloud"] == status["repo:Server"] == "COMPOSED"
    assert result.status == RunStatus.FINISHED_INCOMPLETE
    assert "module:gtk:3" not in setup.lineage.latest()
    setup.ran()
    # The fix lands; the re-run composes the failed node and what it blocked, nothing else.
    setup.composers["module"].failing = set()
    again = setup.run()
    assert again.status == RunStatus.FINISHED
    assert setup.ran() == ["module:gtk:3", "repo:Workstation"]


def test_nothing_composes_when_everything_fails(setup: Setup) -> None:
    setup.composers["build"].failing = set(n for n in setup.graph.nodes if n.startswith("build:"))
    setup.composers["binary"].failing = set(n for n in setup.graph.nodes if n.startswith("binary:"))
    result = setup.run()
    assert result.status == RunStatus.DOOMED
    assert result.count("COMPOSED") == 0


def test_identical_outputs_stop_propagation(setup: Setup) -> None:
    setup.run()
    setup.ran()
    # The build is redone (its key changes with the tool version) but makes the same bytes:
    # nothing downstream of it runs again.
    setup.composers["build"].tools = lambda: {"writer": "2"}  # type: ignore[method-assign]
    result = setup.run()
    assert sorted(setup.ran()) == sorted(n for n in setup.graph.nodes if n.startswith("build:"))
    assert result.count("SKIPPED") == 13  # the binary pin, modules and repos


def test_changed_outputs_propagate(setup: Setup) -> None:
    setup.run()
    setup.ran()
    setup.composers["build"].content = {"build:gtk3@b2838247": " rebuilt differently"}
    setup.composers["build"].tools = lambda: {"writer": "2"}  # type: ignore[method-assign]
    setup.run()
    ran = setup.ran()
    assert "module:gtk:3" in ran and "repo:Workstation" in ran
    assert "module:httpd:2.4" not in ran and "repo:Cloud" not in ran


def test_a_production_run_composes_again_under_production_ids_but_reuses_the_builds(setup: Setup) -> None:
    """Every run composes within a second here: the production composes finish in the same
    second as the test ones of the same keys, and stay latest good all the same."""
    setup.run(run="FL-42-20261121.t.0")
    setup.ran()
    production = setup.run(compose_type="production", run="FL-42-20261121.0")
    composed = {r.node: r.compose_id for r in production.results if r.status == "COMPOSED"}
    skipped = {r.node for r in production.results if r.status == "SKIPPED"}
    assert skipped == {n for n in setup.graph.nodes if n.startswith(("build:", "binary:"))}
    kinds = {"module", "repo"}  # the kinds this setup has composers for
    assert set(composed) == {n for n, node in setup.graph.nodes.items() if node.kind in kinds}
    assert composed["repo:Server"] == "FL-42-Server-20261121.0"
    assert all(setup.lineage.get(c).run == "FL-42-20261121.0" for c in composed.values())
    assert setup.ran() == sorted(composed)
    again = setup.run(run="FL-42-20261121.t.1")  # the production composes have every key
    assert again.count("SKIPPED") == 37 and setup.ran() == []
    assert {n: c for n, c in setup.lineage.latest().items() if n in composed} == composed
    assert setup.run(compose_type="production").count("SKIPPED") == 37


def test_compose_ids_follow_productmd(setup: Setup) -> None:
    result = setup.run({"build:openssl@79554528"})
    assert result.results[0].compose_id == "FL-42-openssl-79554528-20261121.t.0"


def test_a_fresh_runner_composes_from_its_inputs_files_fetched_from_the_store(
    setup: Setup, tmp_path: Path
) -> None:
    url = f"file://{tmp_path / 'store'}"
    first = setup.run(transfer=Transfer(open_store(url, root=setup.root, env={}), setup.root / "out"))
    assert first.status == RunStatus.FINISHED
    store = open_store(url, root=setup.root, env={})
    for result in first.results:  # FINISHED only once stored: the record names the manifest
        record = setup.lineage.get(result.compose_id)
        stored = store.manifest(result.compose_id)
        assert stored is not None and record.manifest == stored.digest()
    setup.ran()
    # Another runner (an empty output directory) recomposes gtk (a new module tool): it fetches
    # the files of gtk's builds, and nothing else.
    fresh = tmp_path / "fresh"
    setup.composers["module"].tools = lambda: {"writer": "2"}  # type: ignore[method-assign]
    moving = Transfer(open_store(url, root=setup.root, env={}), fresh)
    again = setup.run({"module:gtk:3"}, output=fresh, transfer=moving)
    assert again.status == RunStatus.FINISHED
    assert setup.ran() == ["module:gtk:3"]
    gtk = setup.lineage.get(setup.lineage.latest()["module:gtk:3"])
    builds = [setup.lineage.get(i.compose_id) for i in gtk.inputs]
    assert moving.moved.fetched.files == sum(len(b.outputs) for b in builds) > 0
    for build in builds:
        assert all((fresh / o.path).is_file() for o in build.outputs)


def test_a_blob_missing_from_the_store_fails_the_compose_naming_the_compose_and_the_file(
    setup: Setup, tmp_path: Path
) -> None:
    url = f"file://{tmp_path / 'store'}"
    setup.run(transfer=Transfer(open_store(url, root=setup.root, env={}), setup.root / "out"))
    build = setup.lineage.get(setup.lineage.latest()["module:gtk:3"]).inputs[0]
    record = setup.lineage.get(build.compose_id)
    blob = tmp_path / "store" / "blobs" / "sha256" / record.outputs[0].sha256[:2] / record.outputs[0].sha256
    blob.unlink()
    setup.composers["module"].tools = lambda: {"writer": "2"}  # type: ignore[method-assign]
    fresh = Transfer(open_store(url, root=setup.root, env={}), tmp_path / "fresh")
    result = setup.run({"module:gtk:3", "repo:Workstation"}, output=tmp_path / "fresh", transfer=fresh)
    status = {r.node: r for r in result.results}
    assert status["module:gtk:3"].status == "FAILED"
    assert f"compose {build.compose_id}: file {record.outputs[0].path}" in status["module:gtk:3"].message
    assert "missing" in status["module:gtk:3"].message
    assert status["repo:Workstation"].status == "BLOCKED"
