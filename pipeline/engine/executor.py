"""The local executor: runs composes tier by tier with a worker pool, recording lineage.

Decide, then act: for every node `pipeline.engine.decide` says, without touching Git or the
disk, whether to skip it, block it, fail it or compose it, from its compose key (the node's own
definition, the versions of its tools and the content digests of its inputs' latest good
composes). Then `_act` does what was decided: promotes a reused compose, or reserves a compose
ID, makes the work directory and hands the job to a worker. A node whose key has a finished
compose is skipped; so is everything downstream of a rebuild whose outputs came out
byte-identical (early cutoff), because their keys do not change. A failed node stops only the
nodes that consume it. Composers run in worker threads; all Git work (reserving compose IDs,
tags, notes, latest-good refs) happens on the calling thread, except a check's RUNNING note,
which the worker running the check writes through a repository handle of its own (the notes
ref moves by compare-and-swap, as between processes).

Test, then gate: after a compose finishes, the checks that apply to its kind run in the same
worker, each recorded RUNNING in `refs/notes/tests` when it starts; their results go there when
they end and the gate (`pipeline.core.gate`, with the policy of the definitions commit) decides.
Only a compose that passes becomes latest good. One that fails is recorded FAILED (with the
gate's reasons and the owners to tell), so its dependants are blocked and keep consuming the
previous latest good, and a re-run composes it again instead of skipping it by its key. One
whose gate is pending (a required check has no result, e.g. one factory does not run) is
recorded PENDING (`pipeline.engine.pending`): its dependants are blocked too, and the next run
waits for it instead of composing it again, until `factory gate ID --promote`.

Off the release's branches: a run composing a commit on none of its release's branches
(`Context.branch` is "": a scratch branch, a merge request) records its composes as any run
does, each marked so (`Record.branch`), and moves no latest-good ref. The run keeps its own view
of latest good, which starts as the release's and takes each compose the run makes or reuses,
so its dependants consume what this commit composes, not the release's latest good. A later
run of one of the release's branches whose key is the same reuses such a compose and makes it
latest good then (the key decides the bytes).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.checks.base import Check
from pipeline.compose.base import Composer, InputCompose, Job, Traced, tool_versions
from pipeline.compose.sources import SourceReader
from pipeline.core import gate
from pipeline.core.errors import FactoryError
from pipeline.core.gate import CheckResult
from pipeline.core.graph import Graph, Node
from pipeline.core.kinds import BINARY, BUILD
from pipeline.core.model import Definitions
from pipeline.core.records import PRODUCTION, OutputFile, Record, compose_name, parse_compose_id
from pipeline.core.records import outputs_digest as lineage_outputs_digest
from pipeline.core.states import CheckState, ComposeStatus, NodeStatus, RunStatus, Verdict
from pipeline.core.upstream import UpstreamRpm
from pipeline.engine import pending, runtime_keys, sources
from pipeline.engine.decide import Block, Decision, Fail, Skip, Wait, decide
from pipeline.records.checks import TestResult, mark_running
from pipeline.records.checks import record as record_results
from pipeline.records.lineage import Lineage
from pipeline.transfer import Transfer

log = logging.getLogger("factory.executor")


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
    # The release's branch `commit` is on (`pipeline.core.branches`); "": none, so the run's
    # composes move no latest-good ref (its own dependants still consume them).
    branch: str
    # The head of (component, branch) in dist-git, for pins that follow a branch without a ref.
    resolve_head: Callable[[str, str], str | None] | None = None
    # The binary package sources, for binary pins (their RPMs' checksums are their compose key).
    sources: SourceReader | None = None
    run: str = ""  # the run ID every compose of the run records (`pipeline.core.runs`)


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
    transfer: Transfer | None = None,
) -> RunResult:
    """Compose the targets (and nothing else) in tiers; return what happened to each.

    Every compose is tested with the `checks` whose kinds include its node's, and gated by
    `policy` (none: nothing is required, every finished compose passes). With a `transfer`,
    a compose fetches the files it reads from the artifact store and is FINISHED only once
    its own files are stored there (`pipeline.transfer`).
    """
    reporter = reporter or Reporter()
    policy = policy or gate.Policy()
    start = clock()
    tiers = graph.tiers(targets)
    total = sum(len(t) for t in tiers)
    results: dict[str, NodeResult] = {}
    # Only the kinds this run composes: asking a tool its version starts a process (dnf's is slow).
    kinds = {graph.nodes[n].kind for tier in tiers for n in tier} & set(composers)
    tools = {kind: tool_versions(composers[kind]) for kind in sorted(kinds)}
    state = _State(lineage, ctx, transfer)
    composable = set(composers)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for number, tier in enumerate(tiers, 1):
            reporter.tier(number, len(tiers), tier)
            running: dict[Future[_Made], tuple[Node, Record, float]] = {}
            for node_id in tier:
                node = graph.nodes[node_id]
                statuses = {i: results[i].status for i in node.inputs if i in results}
                waiting = {i: results[i].message for i in statuses if statuses[i] == NodeStatus.PENDING}
                consumed = state.consumed(node, statuses)
                resolved = state.binary(node)  # a binary pin: its RPMs' checksums, or why not
                decision = (
                    Fail(node.id, resolved)
                    if isinstance(resolved, str)
                    else decide(resolved, statuses, state, composable, tools, waiting, consumed)
                )
                decided = _act(decision, number, state, ctx)
                if isinstance(decided, NodeResult):
                    results[node_id] = decided
                    reporter.finished(decided, total, clock() - start)
                    continue
                job, draft = decided
                applicable = [c for c in checks if node.kind in c.kinds]
                future = pool.submit(
                    _compose,
                    composers[node.kind],
                    job,
                    reporter,
                    number,
                    len(tiers),
                    applicable,
                    lineage.git_dir,
                    transfer,
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


# outputs, check results, manifest digest, where a binary pin's RPMs came from
_Made = tuple[list[OutputFile], list[TestResult], str, tuple[UpstreamRpm, ...]]


def _compose(
    composer: Composer,
    job: Job,
    reporter: Reporter,
    tier: int,
    tiers: int,
    checks: Sequence[Check],
    repo: Path,
    transfer: Transfer | None,
) -> _Made:
    """Runs in a worker thread: say the node starts when it really does, fetch what it reads,
    compose it, run the checks on what it made (each recorded RUNNING in `repo` as it starts),
    then store it."""
    reporter.started(job.node.id, tier, tiers)
    if transfer is not None:
        transfer.before(job)
    outputs = composer.compose(job)
    upstream = composer.upstream(job) if isinstance(composer, Traced) else ()
    if transfer is not None:
        transfer.complete(job, outputs)
    tests = [_test(check, job, outputs, repo) for check in checks]
    return outputs, tests, transfer.put(job.compose_id, outputs) if transfer is not None else "", upstream


def _test(check: Check, job: Job, outputs: list[OutputFile], repo: Path) -> TestResult:
    """Run one check; a check that raises is an ERROR result, not a crash of the run."""
    started = _now()
    try:
        mark_running(repo, job.compose_id, TestResult(check.name, CheckState.RUNNING, "", started, ""))
    except FactoryError as exc:  # the check still runs; only its RUNNING state goes unrecorded
        log.warning("%s: cannot record %s RUNNING: %s", job.compose_id, check.name, exc.message)
    try:
        result = check.run(job, outputs)
    except FactoryError as exc:
        result = CheckResult(check.name, CheckState.ERROR, exc.message)
    except Exception as exc:  # a bug in a check plugin must not take the whole run down
        result = CheckResult(check.name, CheckState.ERROR, f"the check crashed: {type(exc).__name__}: {exc}")
    return TestResult(check.name, result.state, result.message, started, _now())


class _State:
    """What the run knows of lineage (latest good per node as this run sees it, the records
    read, kept current) and of dist-git: the `Known` that decisions read, and the one place
    promotions are made (off the release's branches, in the run's view only)."""

    def __init__(self, lineage: Lineage, ctx: Context, transfer: Transfer | None = None) -> None:
        self.lineage = lineage
        self._transfer = transfer
        self._moves = bool(ctx.branch)
        self._latest = lineage.latest()
        self._records: dict[str, Record] = {}
        self._resolve_head = ctx.resolve_head
        self._ctx = ctx
        self._resolver = runtime_keys.Resolver()

    def latest(self, node: str) -> str | None:
        return self._latest.get(node)

    def record(self, compose_id: str) -> Record:
        if compose_id not in self._records:
            self._records[compose_id] = self.lineage.get(compose_id)
        return self._records[compose_id]

    def composed(self, node: str, key: str) -> Record | None:
        """A compose with the key: the latest good one when it has it (two composes of one key
        may finish in the same second: the latest good stays), else the newest. In a production
        run only a production one, but for a build or a binary pin (packages are shared by every
        type, as a production compose takes them from Koji)."""
        wanted = (
            (PRODUCTION,)
            if self._ctx.compose_type == PRODUCTION and not (BUILD.of(node) or BINARY.of(node))
            else None
        )
        latest = self.latest(node)
        if latest is not None and (wanted is None or parse_compose_id(latest).type_ in wanted):
            record = self.record(latest)
            if record.key == key:
                return record
        return self.lineage.find_by_key(
            node, key, (ComposeStatus.FINISHED, ComposeStatus.PENDING), types=wanted
        )

    def head(self, component: str, branch: str) -> str | None:
        return self._resolve_head(component, branch) if self._resolve_head else None

    def consumed(self, node: Node, statuses: Mapping[str, NodeStatus]) -> dict[str, str]:
        """What an image node consumes of its variant repo's latest good compose, resolved
        (`runtime_keys.consumed`); empty when it is no image or the repo did not compose."""
        repo = runtime_keys.variant_repo(node)
        latest = self.latest(repo) if repo is not None else None
        if repo is None or latest is None or (repo in statuses and not statuses[repo].ok):
            return {}
        outputs = self.record(latest).outputs
        if (
            self._transfer is not None
        ):  # dnf resolves against the repo's metadata: on a fresh runner, fetch it
            try:
                self._transfer.ensure(
                    InputCompose(repo, latest, outputs), [o for o in outputs if "/os/repodata/" in o.path]
                )
            except FactoryError as exc:  # the key keeps the repo's content; composing it says why
                log.warning("%s: cannot fetch the metadata of %s: %s", node.id, latest, exc.message)
                return {}
        return runtime_keys.consumed(
            node, outputs, self._ctx.output_dir, self._ctx.defs.config, self._resolver
        )

    def binary(self, node: Node) -> Node | str:
        """A binary pin node as composed now (its RPMs' checksums in its definition), or why it
        cannot be (`engine.sources.resolve`); any other node as it is."""
        if node.kind != BINARY:
            return node
        if self._ctx.sources is None:
            return f"{node.id}: no binary package sources to take it from"
        latest = self.latest(node.id)
        return sources.resolve(
            node, self._ctx.defs, self._ctx.sources, self.record(latest) if latest else None
        )

    def previous(self, node: str) -> InputCompose | None:
        """The node's latest good compose (what the compose about to be made follows)."""
        latest = self.latest(node)
        if latest is None:
            return None
        record = self.record(latest)
        return InputCompose(node, record.compose_id, record.outputs)

    def promote(self, node: str, compose_id: str) -> None:
        """Make a compose the node's latest good: its latest-good ref too when the commit
        composed is on one of the release's branches, else in this run's view only."""
        if self._moves:
            self.lineage.promote(node, compose_id)
        self._latest[node] = compose_id


def _act(decision: Decision, tier: int, state: _State, ctx: Context) -> NodeResult | tuple[Job, Record]:
    """Do what was decided for a node: its result when it is not composed, else (after
    reserving its compose ID and making its work directory) the job and its draft record."""
    if isinstance(decision, Skip):
        if decision.promote:
            state.promote(decision.node, decision.compose_id)
        return NodeResult(decision.node, NodeStatus.SKIPPED, decision.compose_id, "unchanged", tier=tier)
    if isinstance(decision, Wait):
        return NodeResult(decision.node, NodeStatus.PENDING, decision.compose_id, decision.why, tier=tier)
    if isinstance(decision, Block):
        return NodeResult(decision.node, NodeStatus.BLOCKED, message=decision.why, tier=tier)
    if isinstance(decision, Fail):
        return NodeResult(decision.node, NodeStatus.FAILED, message=decision.why, tier=tier)
    node, key = decision.node, decision.key
    release = ctx.defs.config.release
    compose_id = state.lineage.reserve(
        release.short, release.version, compose_name(node.id), ctx.date, ctx.compose_type, ctx.commit
    )
    workdir = (
        ctx.output_dir / "builds" / key if node.kind == BUILD else ctx.output_dir / "composes" / compose_id
    )
    if node.kind != BUILD and workdir.exists():
        shutil.rmtree(workdir)  # left by a compose that was killed before it finished
    workdir.mkdir(parents=True, exist_ok=True)
    job = Job(
        node,
        compose_id,
        ctx.defs,
        decision.inputs,
        ctx.output_dir,
        workdir,
        ctx.source_root,
        ctx.commit_time,
        ctx.commit,
        previous=state.previous(node.id),
    )
    draft = Record(
        compose_id=compose_id,
        node=node.id,
        input_digest=node.digest,
        key=key,
        commit=ctx.commit,
        inputs=decision.input_refs,
        pins=decision.pins,
        outputs=(),
        outputs_digest="",
        tools=decision.tools,
        started=_now(),
        finished="",
        status=ComposeStatus.RUNNING,
        branch=ctx.branch,
        run=ctx.run,
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
        made, tests, manifest, upstream = future.result()
    except FactoryError as exc:
        failed = _replace(draft, (), ComposeStatus.FAILED, exc.message)
        return (
            NodeResult(node.id, NodeStatus.FAILED, draft.compose_id, exc.message, seconds, tier),
            failed,
            [],
        )
    outputs = tuple(sorted(made, key=lambda o: o.path))
    required = gate.requirements(policy.rules, node.id, draft.compose_id)
    decision = gate.decide(required, tests, policy.waivers)
    if decision.verdict == Verdict.PENDING:
        message = pending.waiting_message(decision)
        waiting = replace(
            _replace(draft, outputs, ComposeStatus.PENDING, message), manifest=manifest, upstream=upstream
        )
        result = NodeResult(
            node.id, NodeStatus.PENDING, draft.compose_id, f"{draft.compose_id} {message}", seconds, tier
        )
        return result, waiting, [*tests, *pending.pending_entries(decision, tests)]
    if not decision.passed:
        message = gate_message(decision, ctx.defs, node.id)
        failed = _replace(draft, outputs, ComposeStatus.FAILED, message)
        return NodeResult(node.id, NodeStatus.FAILED, draft.compose_id, message, seconds, tier), failed, tests
    record = replace(
        _replace(draft, outputs, ComposeStatus.FINISHED, ""), manifest=manifest, upstream=upstream
    )
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


def _overall(results: tuple[NodeResult, ...]) -> RunStatus:
    failed = sum(1 for r in results if not r.status.ok)
    if not failed:
        return RunStatus.FINISHED
    # A PENDING node was composed (now or before): the run did something, short of everything.
    ok = sum(1 for r in results if r.status.ok or r.status == NodeStatus.PENDING)
    return RunStatus.FINISHED_INCOMPLETE if ok else RunStatus.DOOMED


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
