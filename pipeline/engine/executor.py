"""The local executor: runs composes tier by tier with a worker pool, recording lineage.

Decide, then act: for every node it computes the compose key (the node's own definition, the
versions of its tools and the content digests of its inputs' latest good composes). A node
whose key has a finished compose is skipped; so is everything downstream of a rebuild whose
outputs came out byte-identical (early cutoff), because their keys do not change. A failed
node stops only the nodes that consume it. Composers run in worker threads; all Git work
(reserving compose IDs, tags, notes, latest-good refs) happens on the calling thread.

Test, then gate: after a compose finishes, the checks that apply to its kind run in the same
worker; their results go to `refs/notes/tests` and the gate (`pipeline.core.gate`, with the policy
of the definitions commit) decides. Only a compose that passes becomes latest good. One that
fails or stays pending is recorded FAILED (with the gate's reasons and the owners to tell), so
its dependants are blocked and keep consuming the previous latest good, and a re-run composes
it again instead of skipping it by its key.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline import __version__
from pipeline.checks.base import Check
from pipeline.compose.base import Composer, InputCompose, Job
from pipeline.core import gate
from pipeline.core.canonical import canonical_json, digest
from pipeline.core.errors import FactoryError
from pipeline.core.gate import CheckResult
from pipeline.core.graph import Graph, Node
from pipeline.core.model import Definitions
from pipeline.core.records import InputRef, OutputFile, Record
from pipeline.core.records import outputs_digest as lineage_outputs_digest
from pipeline.core.states import CheckState, ComposeStatus, NodeStatus, RunStatus
from pipeline.store.lineage import Lineage
from pipeline.store.results import TestResult
from pipeline.store.results import record as record_results


@dataclass(frozen=True, slots=True)
class NodeResult:
    """What happened to one node: composed, skipped (key already composed), failed or blocked."""

    node: str
    status: NodeStatus
    compose_id: str = ""
    message: str = ""
    seconds: float = 0.0
    tier: int = 0


@dataclass(frozen=True, slots=True)
class RunResult:
    status: RunStatus  # productmd's words
    results: tuple[NodeResult, ...]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


class Reporter:
    """Progress hooks; each does nothing by default."""

    def tier(self, number: int, total: int, nodes: list[str]) -> None:
        """A tier starts."""

    def started(self, node: str, tier: int, total: int) -> None:
        """A node starts composing."""

    def finished(self, result: NodeResult, total: int, elapsed: float) -> None:
        """A node is done (composed, skipped, failed or blocked)."""


@dataclass(frozen=True, slots=True)
class Context:
    """Where and from what a run composes."""

    defs: Definitions
    commit: str  # the definitions commit composed from
    commit_time: int
    source_root: Path
    output_dir: Path
    compose_type: str  # nightly, test, ci, production
    date: str  # YYYYMMDD for compose IDs
    # The head of (component, branch) in dist-git, for pins that follow a branch without a ref.
    resolve_head: Callable[[str, str], str | None] | None = None


def compose_name(node: Node) -> str:
    """The node part of a compose ID: openssl-79554528, base-runtime-f42, Server, Cloud-base."""
    rest = node.id.split(":", 1)[1]
    return rest.replace(":", "-").replace("@", "-").replace("/", "-")


def compose_key(
    node: Node, tools: Mapping[str, str], inputs: Mapping[str, InputCompose], digests: Mapping[str, str]
) -> str:
    """What makes a compose skippable: own definition, tools, and the content of its inputs."""
    return digest(
        {
            "node": node.id,
            "definition": node.definition,
            "tools": dict(tools),
            "inputs": {i: digests[i] for i in sorted(inputs)},
        }
    )


def content_digest(outputs: Iterable[OutputFile]) -> str:
    """The digest of what a compose made, wherever it was put.

    Paths are taken inside the compose's own directory (`builds/<key>/`, `composes/<id>/`),
    so a rebuild that makes the same bytes has the same content digest: early cutoff.
    """
    return digest(sorted([o.path.split("/", 2)[-1], o.sha256] for o in outputs))


def execute(
    graph: Graph,
    targets: Iterable[str],
    composers: Mapping[str, Composer],
    lineage: Lineage,
    ctx: Context,
    *,
    workers: int = 2,
    reporter: Reporter | None = None,
    clock: Callable[[], float] = time.monotonic,
    checks: Sequence[Check] = (),
    policy: gate.Policy | None = None,
) -> RunResult:
    """Compose the targets (and nothing else) in tiers; return what happened to each.

    Every compose is tested with the `checks` whose kinds include its node's, and gated by
    `policy` (none: nothing is required, every finished compose passes).
    """
    reporter = reporter or Reporter()
    policy = policy or gate.Policy()
    start = clock()
    tiers = graph.tiers(targets)
    total = sum(len(t) for t in tiers)
    results: dict[str, NodeResult] = {}
    # Only the kinds this run composes: asking a tool its version starts a process (dnf's is slow).
    kinds = {graph.nodes[n].kind for tier in tiers for n in tier} & set(composers)
    tools = {kind: {**composers[kind].tools(), "factory": __version__} for kind in sorted(kinds)}
    state = _State(lineage)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for number, tier in enumerate(tiers, 1):
            reporter.tier(number, len(tiers), tier)
            running: dict[Future[_Made], tuple[Node, Record, float]] = {}
            for node_id in tier:
                node = graph.nodes[node_id]
                decided = _decide(node, number, results, state, composers, tools, ctx)
                if isinstance(decided, NodeResult):
                    results[node_id] = decided
                    reporter.finished(decided, total, clock() - start)
                    continue
                job, draft = decided
                applicable = [c for c in checks if node.kind in c.kinds]
                future = pool.submit(
                    _compose, composers[node.kind], job, reporter, number, len(tiers), applicable
                )
                running[future] = (node, draft, clock())
            while running:
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                ended = []
                for future in done:
                    node, draft, began = running.pop(future)
                    ended.append(_conclude(future, node, draft, number, clock() - began, policy, ctx))
                # One lineage batch (tags, one notes commit) for all that ended together, then
                # one notes commit of their check results (the notes annotate the new tags).
                state.lineage.finish([record for _, record, _ in ended])
                record_results(state.lineage, {record.compose_id: tests for _, record, tests in ended})
                for result, record, _ in ended:
                    if record.status == ComposeStatus.FINISHED:
                        state.promote(record.node, record.compose_id)
                    results[result.node] = result
                    reporter.finished(result, total, clock() - start)
    ordered = tuple(results[n] for tier in tiers for n in tier)
    return RunResult(_overall(ordered), ordered, clock() - start)


_Made = tuple[list[OutputFile], list[TestResult]]


def _compose(
    composer: Composer, job: Job, reporter: Reporter, tier: int, tiers: int, checks: Sequence[Check]
) -> _Made:
    """Runs in a worker thread: say the node starts when it really does, compose it, then run
    the checks on what it made."""
    reporter.started(job.node.id, tier, tiers)
    outputs = composer.compose(job)
    return outputs, [_test(check, job, outputs) for check in checks]


def _test(check: Check, job: Job, outputs: list[OutputFile]) -> TestResult:
    """Run one check; a check that raises is an ERROR result, not a crash of the run."""
    started = _now()
    try:
        result = check.run(job, outputs)
    except FactoryError as exc:
        result = CheckResult(check.name, CheckState.ERROR, exc.message)
    except Exception as exc:  # a bug in a check plugin must not take the whole run down
        result = CheckResult(check.name, CheckState.ERROR, f"the check crashed: {type(exc).__name__}: {exc}")
    return TestResult(check.name, result.state, result.message, started, _now())


class _State:
    """What the run knows of lineage: latest good per node and the records read, kept current."""

    def __init__(self, lineage: Lineage) -> None:
        self.lineage = lineage
        self.latest = lineage.latest()
        self._records: dict[str, Record] = {}

    def record(self, compose_id: str) -> Record:
        if compose_id not in self._records:
            self._records[compose_id] = self.lineage.get(compose_id)
        return self._records[compose_id]

    def promote(self, node: str, compose_id: str) -> None:
        self.lineage.promote(node, compose_id)
        self.latest[node] = compose_id


def _decide(
    node: Node,
    tier: int,
    results: Mapping[str, NodeResult],
    state: _State,
    composers: Mapping[str, Composer],
    tools: Mapping[str, Mapping[str, str]],
    ctx: Context,
) -> NodeResult | tuple[Job, Record]:
    """Skip, block, or prepare the job and the draft record of one node."""
    bad = [i for i in node.inputs if results.get(i) and not results[i].status.ok]
    if bad:
        return NodeResult(node.id, NodeStatus.BLOCKED, message=f"input {bad[0]} did not compose", tier=tier)
    if node.kind not in composers:
        return NodeResult(
            node.id, NodeStatus.BLOCKED, message=f"no composer for kind {node.kind!r}", tier=tier
        )
    lineage, latest = state.lineage, state.latest
    inputs: dict[str, InputCompose] = {}
    digests: dict[str, str] = {}
    for i in node.inputs:
        if i not in latest:
            return NodeResult(
                node.id, NodeStatus.BLOCKED, message=f"input {i} has no good compose", tier=tier
            )
        record = state.record(latest[i])
        inputs[i] = InputCompose(i, record.compose_id, record.outputs)
        digests[i] = content_digest(record.outputs)
    resolved = _resolve(node, ctx)
    if resolved is None:
        definition = node.definition
        message = f"cannot resolve the head of {definition['component']}'s branch {definition['branch']}"
        return NodeResult(node.id, NodeStatus.FAILED, message=message, tier=tier)
    node = resolved
    key = compose_key(node, tools[node.kind], inputs, digests)
    done = lineage.find_by_key(node.id, key)
    if done is not None:
        if latest.get(node.id) != done.compose_id:
            state.promote(node.id, done.compose_id)
        return NodeResult(node.id, NodeStatus.SKIPPED, done.compose_id, "unchanged", tier=tier)
    release = ctx.defs.config.release
    compose_id = lineage.reserve(
        release.short, release.version, compose_name(node), ctx.date, ctx.compose_type, ctx.commit
    )
    workdir = (
        ctx.output_dir / "builds" / key if node.kind == "build" else ctx.output_dir / "composes" / compose_id
    )
    if node.kind != "build" and workdir.exists():
        shutil.rmtree(workdir)  # left by a compose that was killed before it finished
    workdir.mkdir(parents=True, exist_ok=True)
    job = Job(
        node,
        compose_id,
        ctx.defs,
        inputs,
        ctx.output_dir,
        workdir,
        ctx.source_root,
        ctx.commit_time,
        ctx.commit,
    )
    draft = Record(
        compose_id=compose_id,
        node=node.id,
        input_digest=node.digest,
        key=key,
        commit=ctx.commit,
        inputs=tuple(
            InputRef(i, inputs[i].compose_id, state.record(inputs[i].compose_id).outputs_digest)
            for i in sorted(inputs)
        ),
        pins=_pins(node, [state.record(inputs[i].compose_id) for i in sorted(inputs)]),
        outputs=(),
        outputs_digest="",
        tools=tuple(sorted(tools[node.kind].items())),
        started=_now(),
        finished="",
        status=ComposeStatus.RUNNING,
    )
    return job, draft


def _conclude(
    future: Future[_Made],
    node: Node,
    draft: Record,
    tier: int,
    seconds: float,
    policy: gate.Policy,
    ctx: Context,
) -> tuple[NodeResult, Record, list[TestResult]]:
    """The result, the final record and the check results of a compose that ended."""
    try:
        made, tests = future.result()
    except FactoryError as exc:
        failed = _replace(draft, (), ComposeStatus.FAILED, exc.message)
        return (
            NodeResult(node.id, NodeStatus.FAILED, draft.compose_id, exc.message, seconds, tier),
            failed,
            [],
        )
    outputs = tuple(sorted(made, key=lambda o: o.path))
    required = gate.requirements(policy.rules, node.id, draft.compose_id)
    decision = gate.decide(required, [t.result for t in tests], policy.waivers)
    if not decision.passed:
        message = gate_message(decision, ctx.defs, node.id)
        failed = _replace(draft, outputs, ComposeStatus.FAILED, message)
        return NodeResult(node.id, NodeStatus.FAILED, draft.compose_id, message, seconds, tier), failed, tests
    record = _replace(draft, outputs, ComposeStatus.FINISHED, "")
    return NodeResult(node.id, NodeStatus.COMPOSED, record.compose_id, "", seconds, tier), record, tests


def gate_message(decision: gate.Decision, defs: Definitions, node: str) -> str:
    """The failure report of a gated compose: the gate's reasons and whom to tell."""
    people = gate.owners(defs, node, [o.reason for o in decision.unsatisfied()])
    return decision.summary() + (f"; owners: {', '.join(people)}" if people else "")


def _replace(draft: Record, outputs: tuple[OutputFile, ...], status: ComposeStatus, message: str) -> Record:
    return replace(
        draft,
        outputs=outputs,
        outputs_digest=lineage_outputs_digest(outputs),
        finished=_now(),
        status=status,
        message=message,
    )


def _resolve(node: Node, ctx: Context) -> Node | None:
    """The node as composed now: a build of a pin that follows its branch gets the head's commit.

    The commit goes into the node's definition, so the compose key (and the builder) see it:
    when the branch moves, the key changes and the build is redone. None: no head found.
    """
    definition = node.definition
    if node.kind != "build" or "ref" in definition:
        return node
    head = (
        ctx.resolve_head(str(definition["component"]), str(definition["branch"]))
        if ctx.resolve_head
        else None
    )
    if head is None:
        return None
    return replace(node, definition_json=canonical_json({**definition, "ref": head}))


def _pins(node: Node, inputs: Sequence[Record]) -> tuple[tuple[str, str], ...]:
    """The (component, commit) pairs a compose consumed directly: a build's own pin, or the
    pins of the builds a module is made of (resolved commits included)."""
    if node.kind == "build":
        return ((str(node.definition["component"]), str(node.definition["ref"])),)
    if node.kind == "module":
        return tuple(sorted({pin for record in inputs for pin in record.pins}))
    return ()


def _overall(results: tuple[NodeResult, ...]) -> RunStatus:
    failed = sum(1 for r in results if not r.status.ok)
    if not failed:
        return RunStatus.FINISHED
    ok = sum(1 for r in results if r.status.ok)
    return RunStatus.FINISHED_INCOMPLETE if ok else RunStatus.DOOMED


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
