"""`factory ci check`: did a pipeline compose everything it planned?

GitLab does not fail a parent pipeline for a failed child job here (gitlab-ci-local never
does), so the parent's last job asks lineage instead. The rule is the executor's own: a planned
node is up to date when the compose key it has at head (its definition, its composer's tool
versions, and the content of its inputs' latest good composes) has a FINISHED compose, and that
compose is the node's latest good. In other words: `factory compose` of the planned nodes at
head would do nothing. This holds whether the node was composed by this pipeline or skipped
because an equal compose existed (a revert, an early cutoff), and it fails for a node whose job
failed, was never run (its input failed), or whose compose was not pushed.

Kinds without a composer are reported and not held against the pipeline (`factory compose`
leaves them too).

It knows the generator's edges (pipeline.core.batches): nodes are checked inputs first and each
module after the modules it buildrequires or requires, and a module not composed names those
that are not composed either (its job waited for them). `--inputs-of` (a job over other
pipelines' nodes) checks those modules as it checks inputs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.compose.base import InputCompose, tool_versions
from pipeline.core.config import Config
from pipeline.core.errors import FactoryError
from pipeline.core.graph import Graph
from pipeline.core.kinds import BINARY
from pipeline.core.records import Record
from pipeline.core.states import PlannedStatus
from pipeline.engine import runtime_keys, sources
from pipeline.engine.decide import compose_key, content_digest
from pipeline.plugins import composers
from pipeline.records.lineage import Lineage
from pipeline.transfer import Transfer, open_transfer

OK, STALE, NOT_COMPOSABLE = PlannedStatus.OK, PlannedStatus.NOT_COMPOSED, PlannedStatus.NOT_COMPOSABLE


@dataclass(frozen=True, slots=True)
class NodeCheck:
    """The state of one planned node at head."""

    node: str
    status: PlannedStatus
    compose_id: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every planned node's state; ok when none is NOT COMPOSED."""

    nodes: tuple[NodeCheck, ...]

    @property
    def ok(self) -> bool:
        return all(n.status != STALE for n in self.nodes)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "nodes": [
                {"node": n.node, "status": n.status, "compose_id": n.compose_id, "message": n.message}
                for n in self.nodes
            ],
        }

    def text(self, title: str, noun: str = "planned nodes") -> str:
        bad = sum(1 for n in self.nodes if n.status == STALE)
        verdict = "all composed" if self.ok else f"{bad} not composed"
        count = len(self.nodes)
        lines = [f"{title}: {count} {noun if count != 1 else noun.removesuffix('s')}, {verdict}"]
        width = max((len(n.node) for n in self.nodes), default=0)
        for n in self.nodes:
            detail = n.compose_id or n.message
            if n.compose_id and n.message:
                detail += f" ({n.message})"
            lines.append(f"  {n.status:14}  {n.node:{width}}  {detail}")
        return "\n".join(lines)


def check(
    root: Path,
    graph: Graph,
    planned: Iterable[str],
    release: str | None = None,
    images: tuple[Path, Config] | None = None,
) -> CheckReport:
    """Check the planned nodes of `graph` against the lineage of the repository at `root`, and
    the latest good of `release` (the release the head composes; None: HEAD's).

    `images` (the output directory and the head's config) lets image nodes be keyed as the
    executor keys them, by the package set they resolve to against their variant repo's latest
    good compose (`runtime_keys`): its repodata must be in that output directory, or it is
    fetched from the artifact store (FACTORY_STORE or the config's `store:`). Without it,
    or without those files, an image node is keyed by its repo's whole content and may be
    reported NOT COMPOSED although the executor would skip it.
    """
    lineage = Lineage(root, release)
    try:
        transfer = (
            open_transfer(images[1].store, root=root, output_dir=images[0], env=os.environ)
            if images
            else None
        )
        return CheckReport(tuple(_check(lineage, graph, graph.in_order(planned), images, transfer)))
    finally:
        lineage.close()


def _check(
    lineage: Lineage,
    graph: Graph,
    planned: list[str],
    images: tuple[Path, Config] | None,
    transfer: Transfer | None = None,
) -> Iterable[NodeCheck]:
    """Each planned node in order, inputs and required modules first: a node over a stale input is
    stale too (the key of its old compose would still match, computed from the input's old latest
    good); a module not composed names the modules it requires that are not composed either."""
    registry = composers()
    resolver = runtime_keys.Resolver()
    tools: dict[str, dict[str, str]] = {}
    latest = lineage.latest()
    records: dict[str, Record] = {}
    stale: set[str] = set()

    def record(compose_id: str) -> Record:
        if compose_id not in records:
            records[compose_id] = lineage.get(compose_id)
        return records[compose_id]

    for node_id in planned:
        node = graph.nodes[node_id]
        if node.kind not in registry:
            yield NodeCheck(node_id, NOT_COMPOSABLE, message=f"no composer for kind {node.kind!r}")
            continue
        if node.kind not in tools:
            tools[node.kind] = tool_versions(registry[node.kind])
        bad = [i for i in node.inputs if i in stale or i not in latest]
        if bad:
            stale.add(node_id)
            why = "is not composed" if bad[0] in stale else "has no good compose"
            yield NodeCheck(node_id, STALE, message=f"input {bad[0]} {why}")
            continue
        if node.kind == BINARY and node_id in latest:  # keyed by the RPMs its latest good took
            node = sources.with_recorded_rpms(node, record(latest[node_id]))
        inputs = {i: InputCompose(i, latest[i], record(latest[i]).outputs) for i in node.inputs}
        repo = runtime_keys.variant_repo(node)
        if transfer is not None and repo is not None:  # a fresh runner: the repo's metadata, as the executor
            with contextlib.suppress(FactoryError):  # missing: keyed by the repo's content, as documented
                transfer.ensure(inputs[repo], [o for o in inputs[repo].outputs if "/os/repodata/" in o.path])
        consumed = (
            runtime_keys.consumed(node, inputs[repo].outputs, images[0], images[1], resolver)
            if images is not None and repo is not None
            else {}
        )
        digests = {i: consumed.get(i) or content_digest(c.outputs) for i, c in inputs.items()}
        done = lineage.find_by_key(node_id, compose_key(node, tools[node.kind], inputs, digests))
        if done is None or latest.get(node_id) != done.compose_id:
            stale.add(node_id)
            were = latest.get(node_id)
            message = "no finished compose of it at head" + (f"; latest good is {were}" if were else "")
            waited = [r for r in graph.requirements(node_id) if r in stale]
            if waited:
                message += "; required modules not composed: " + ", ".join(waited)
            yield NodeCheck(node_id, STALE, message=message)
        else:
            yield NodeCheck(node_id, OK, done.compose_id, f"made from {done.commit[:10]}")
