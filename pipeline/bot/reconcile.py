"""One reconcile pass: observe branch heads and sources, record them, decide, act. Level-triggered.

Nothing here depends on an event having been seen: every pass reads every tracked branch head
(or those of one component), records the new ones in the branch history, reads every binary
package source and records what changed in the source history, compares the pins of the target
branch with the recorded heads and the sources' newest builds, and lets `decide` say which merge
requests to open or update. A missed webhook or a crashed run is caught by the next pass.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.bot import describe, reconcile_builds, source_state, yamledit
from pipeline.bot.decide import Action, BranchFact, Error, Merge, Open, PinFact, State, Update, decide
from pipeline.bot.forge import AutoMergingForge, ForgeError, MergeRequest, MergeRequestSpec
from pipeline.core import bump
from pipeline.core import graph as graphs
from pipeline.core import plan as planner
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.kinds import MODULE
from pipeline.core.model import Definitions, Module, Pin
from pipeline.core.names import unknown
from pipeline.git import repo as gitrepo
from pipeline.git.distgit import DistGit
from pipeline.records.history import BranchHistory, Observation
from pipeline.records.source_history import SourceHistory, SourceObservation
from pipeline.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Rebuild:
    """A branch that pins follow without a ref moved: what was built from its old head."""

    component: str
    branch: str
    old: str  # the commit the latest good build resolved the branch to
    new: str  # the branch head now
    node: str  # the build node (`build:<component>@<branch>`)
    stale: tuple[str, ...]  # compose IDs built against the old commit, still latest good

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "branch": self.branch,
            "old": self.old,
            "new": self.new,
            "node": self.node,
            "stale": list(self.stale),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """What one pass saw and did."""

    target: str
    recorded: tuple[Observation, ...]
    actions: tuple[Action, ...]
    results: tuple[MergeRequest | None, ...]  # per action: the MR acted on (None: dry run or error)
    failures: tuple[str, ...]  # actions the forge refused
    rebuilds: tuple[Rebuild, ...] = ()  # branches followed without a ref that moved past their build
    sources: tuple[SourceObservation, ...] = ()  # sources whose packages changed since their last record

    @property
    def errors(self) -> list[str]:
        return [a.message for a in self.actions if isinstance(a, Error)] + list(self.failures)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "recorded": [o.to_json() for o in self.recorded],
            "sources": [o.to_json() for o in self.sources],
            "actions": [_action_json(a, mr) for a, mr in zip(self.actions, self.results, strict=True)],
            "rebuilds": [r.to_json() for r in self.rebuilds],
            "errors": self.errors,
        }


def _action_json(action: Action, mr: MergeRequest | None) -> dict[str, Any]:
    base: dict[str, Any] = {"component": action.component, "branch": action.branch}
    if action.source:
        base["source"] = action.source
    if isinstance(action, Error):
        return {"action": "error", **base, "message": action.message}
    spec = action.spec
    kind = "open" if isinstance(action, Open) else "update" if isinstance(action, Update) else "merge"
    return {
        "action": kind,
        **base,
        "source_branch": spec.source_branch,
        "title": spec.title,
        "labels": list(spec.labels),
        "head": spec.head,
        "merge_request": None if mr is None else mr.id,
        **({"state": mr.state, "auto_merge": mr.auto_merge} if mr is not None else {}),
    }


def default_target(ws: Workspace) -> str:
    """The branch bump MRs target: the checked-out one, else CI's default branch."""
    found = gitrepo.checked_out_branch(ws.repo) or os.environ.get("CI_DEFAULT_BRANCH")
    if not found:
        raise InvalidInput("no branch is checked out", hint="pass --target BRANCH", code="no-target")
    return found


def reconcile(
    ws: Workspace,
    forge: AutoMergingForge,
    *,
    target: str,
    component: str | None = None,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
    env: Mapping[str, str] = os.environ,
) -> Report:
    """Record the tracked branch heads and what the sources hold, and open or update the bump
    merge requests they call for."""
    now = int(clock())
    defs = ws.load(target, check_distgit=False)
    sources = DistGit(ws.root, ws.cache_dir / "distgit-cache")
    history = BranchHistory(ws.repo)
    recorded: list[Observation] = []
    facts: list[BranchFact] = []
    current = graphs.build(defs)
    rebuilds: list[Rebuild] = []
    followed = _tracked(defs, component)
    binary = reconcile_builds.followed(defs, component)
    if component is not None and not followed and not binary:
        components = {p.component for m in defs.modules.values() for p in m.components}
        components |= {b.component for m in defs.modules.values() for b in m.binaries}
        raise unknown("component", component, components, where=" (no module pins it)")
    for (name, branch), tracked in sorted(followed.items()):
        url = defs.config.distgit_for(tracked[0][1])
        head = sources.head(url, branch)
        if head is None:
            problem = sources.problems.get(url) or f"{url} has no branch {branch}"
            facts.append(BranchFact(name, branch, None, (), problem=problem))
            continue
        if not dry_run:
            seen = history.record(name, branch, head, now)
            recorded += [seen] if seen else []
        if any(pin.follows_head for _, pin in tracked):
            found = _rebuild(ws, name, branch, head, set(current.digests), defs.config.release.version)
            rebuilds += [found] if found else []
        pinned = [(module, pin) for module, pin in tracked if not pin.follows_head]
        if not pinned:
            continue  # followed without a ref: nothing to bump, the compose resolves the head
        pins = tuple(
            PinFact(module.nsid, pin.ref, pin.ref == head or sources.descends(url, pin.ref, head))
            for module, pin in pinned
        )
        fact = BranchFact(name, branch, head, pins)
        if fact.behind and all(p.descends for p in fact.behind):
            moved = [(m, p) for m, p in pinned if p.ref != head]
            spec = _proposal(ws, defs, current, target, name, branch, head, moved, sources, url, now)
            fact = BranchFact(name, branch, head, pins, spec)
        facts.append(fact)
    read = source_state.observe(defs, ws.root, env, component) if component is None or binary else {}
    source_history = SourceHistory(ws.repo)
    observed = [] if dry_run else source_state.record(source_history, read, now)
    builds = reconcile_builds.facts(ws.repo, defs, current, target, read, source_history, component, now)
    wanted = [f.source_branch for f in facts if f.proposal is not None]
    wanted += [f.source_branch for f in builds if f.proposal is not None]
    existing = {branch: tuple(forge.find(branch)) for branch in wanted}
    actions = decide(State(tuple(facts), existing, tuple(builds)))
    results: list[MergeRequest | None] = []
    failures: list[str] = []
    for action in actions:
        results.append(None if dry_run else _act(forge, action, failures))
    return Report(
        target,
        tuple(recorded),
        tuple(actions),
        tuple(results),
        tuple(failures),
        tuple(rebuilds),
        tuple(observed),
    )


def _rebuild(
    ws: Workspace, component: str, branch: str, head: str, nodes: set[str], release: str
) -> Rebuild | None:
    """What was built from an older head of a branch followed without a ref, if anything.

    The latest good build of `build:<component>@<branch>` records the commit it resolved; when
    the branch has moved past it, every compose built against that commit (`factory why`) that
    is still latest good of a node the definitions have is stale.
    """
    from pipeline.records.lineage import Lineage

    node = graphs.build_id(Pin(component, "", branch))
    lineage = Lineage(ws.root, release)
    latest = lineage.latest()
    if node not in latest:
        return None  # never composed: the next compose builds the head anyway
    built = dict(lineage.get(latest[node]).pins).get(component, "")
    if not built or built == head:
        return None
    stale = tuple(
        r.compose_id
        for r in lineage.why(component, built)
        if latest.get(r.node) == r.compose_id and r.node in nodes
    )
    return Rebuild(component, branch, built, head, node, stale)


def _act(forge: AutoMergingForge, action: Action, failures: list[str]) -> MergeRequest | None:
    """Carry an action out; with automerge, then set the MR to merge once its pipeline passes
    (the local forge composes it now and merges it when it passes). The MR as it is after."""
    mr: MergeRequest | None = None
    try:
        if isinstance(action, Open):
            mr = forge.open(action.spec)
        elif isinstance(action, Update):
            mr = forge.update(action.mr, action.spec)
        elif isinstance(action, Merge):
            mr = action.mr
        if mr is not None and (
            isinstance(action, Merge) or (isinstance(action, Open | Update) and action.automerge)
        ):
            mr = forge.merge_when_pipeline_succeeds(mr)
    except ForgeError as exc:
        failures.append(f"{action.component} ({action.branch or action.source}): {exc.message}")
    return mr


def _tracked(defs: Definitions, component: str | None) -> dict[tuple[str, str], list[tuple[Module, Pin]]]:
    tracked: dict[tuple[str, str], list[tuple[Module, Pin]]] = {}
    for module in sorted(defs.modules.values(), key=lambda m: m.nsid):
        for pin in module.components:
            if component is None or pin.component == component:
                tracked.setdefault((pin.component, pin.branch), []).append((module, pin))
    return tracked


def _proposal(
    ws: Workspace,
    defs: Definitions,
    current: graphs.Graph,
    target: str,
    component: str,
    branch: str,
    head: str,
    moved: list[tuple[Module, Pin]],
    sources: DistGit,
    url: str,
    now: int,
) -> MergeRequestSpec:
    files = {}
    for module, _ in moved:
        raw = gitrepo.file_at(ws.repo, target, module.path)
        if raw is None:
            raise OperationFailed(f"{module.path} is not in {target}", code="missing-definition")
        files[module.path] = yamledit.set_pin_refs(module.path, raw.decode("utf-8"), component, branch, head)
    bumped = bump.bump(defs, component, branch, head)
    plan = planner.plan(current, graphs.build(bumped))
    affected = {MODULE.name_of(n.id) for n in plan.nodes if n.kind == MODULE}
    facts = describe.Bump(
        component=component,
        branch=branch,
        head=head,
        moves=tuple(describe.PinMove(m.nsid, m.path, p.ref, head) for m, p in moved),
        commits=tuple(sources.commits(url, head, [p.ref for _, p in moved])),
        plan=plan,
        eols=tuple((nsid, bumped.modules[nsid].eol) for nsid in sorted(affected) if nsid in bumped.modules),
        today=dt.datetime.fromtimestamp(now, dt.UTC).date(),
    )
    return MergeRequestSpec(
        source_branch=describe.source_branch(component, branch),
        target_branch=target,
        title=describe.title(facts),
        description=describe.description(facts),
        labels=describe.labels(facts),
        files=files,
        head=head,
        commit_message=describe.commit_message(facts),
    )
