"""The facts of build bumps: for every (component, source) that binary pins follow, the newest
build the source (with what it inherits) holds now, each pin against it in rpm's own version
order, and the merge request that would move the pins behind it.

The newest build of a component is taken from the first source of the pin's chain holding one
(Koji inheritance: what a tag lacks comes from its parents). The advisories a bump brings are
every advisory of the chain's repositories, and of the holder's recorded history, naming a build
of the component newer than the oldest pin moved and no newer than the new build.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from functools import cmp_to_key

from pipeline.bot import describe_builds, yamledit
from pipeline.bot.decide import BuildFact, BuildPinFact
from pipeline.bot.forge import MergeRequestSpec
from pipeline.bot.source_state import Seen
from pipeline.core import bump
from pipeline.core import graph as graphs
from pipeline.core import plan as planner
from pipeline.core.advisories import Advisory, urgency
from pipeline.core.errors import OperationFailed
from pipeline.core.kinds import MODULE
from pipeline.core.model import BinaryPin, Definitions, Module
from pipeline.core.packages import Build, Held, build_of_srpm, builds, lookup_order, split_nvr, srpm_of_build
from pipeline.git import repo as gitrepo
from pipeline.git.repo import Repository
from pipeline.records.source_history import SourceHistory
from pipeline.tools.rpmlib import label_compare


def followed(
    defs: Definitions, component: str | None
) -> dict[tuple[str, str], list[tuple[Module, BinaryPin]]]:
    """The binary pins of every module (of one component, when given) by (component, source)."""
    found: dict[tuple[str, str], list[tuple[Module, BinaryPin]]] = {}
    for module in sorted(defs.modules.values(), key=lambda m: m.nsid):
        for pin in module.binaries:
            if component is None or pin.component == component:
                found.setdefault((pin.component, pin.source), []).append((module, pin))
    return found


def facts(
    repo: Repository,
    defs: Definitions,
    current: graphs.Graph,
    target: str,
    seen: Mapping[str, Seen],
    history: SourceHistory,
    component: str | None,
    now: int,
) -> list[BuildFact]:
    """A BuildFact per followed (component, source), with its proposal when pins are behind."""
    inherits = {s.name: s.inherits for s in defs.config.sources}
    found = []
    for (name, source), pins in sorted(followed(defs, component).items()):
        chain = lookup_order([source], inherits)
        holder, held, problem = _newest(name, chain, seen)
        if held is None:
            found.append(BuildFact(name, source, None, (), problem=problem))
            continue
        known = _pinned_builds({p.build for _, p in pins}, chain, seen)
        evrs = [_evr(p.build, known, held.build) for _, p in pins]
        orders = [label_compare(e, held.build.evr) for e in evrs]
        pin_facts = tuple(BuildPinFact(m.nsid, p.build, o) for (m, p), o in zip(pins, orders, strict=True))
        fact = BuildFact(name, source, held.build.nvr, pin_facts)
        if fact.behind and not any(o > 0 for o in orders):
            moved = [pin for pin, o in zip(pins, orders, strict=True) if o < 0]
            oldest = min(
                (e for e, o in zip(evrs, orders, strict=True) if o < 0), key=cmp_to_key(label_compare)
            )
            text = _bump(defs, current, seen, history, chain, holder, held.build, moved, oldest, now)
            spec = _spec(repo, target, text, moved)
            policy = defs.config.source(source)
            automerge = policy is not None and policy.automerge.merges(bool(text.security))
            fact = BuildFact(
                name, source, held.build.nvr, pin_facts, spec, text.severity, automerge=automerge
            )
        found.append(fact)
    return found


def _bump(
    defs: Definitions,
    current: graphs.Graph,
    seen: Mapping[str, Seen],
    history: SourceHistory,
    chain: Sequence[str],
    holder: str,
    new: Build,
    moved: Sequence[tuple[Module, BinaryPin]],
    oldest: tuple[str, str, str],
    now: int,
) -> describe_builds.BuildBump:
    """What the merge request moving `moved` to the new build says: its advisories and its plan."""
    component, source = new.name, moved[0][1].source
    bumped = bump.bump_build(defs, component, source, new.nvr)
    plan = planner.plan(current, graphs.build(bumped))
    notes = between(
        component,
        oldest,
        new.evr,
        [a for s in chain if s in seen for r in seen[s].repositories for a in r.advisories],
        [h.held for h in history.log(holder, component) if h.held is not None],
    )
    return describe_builds.BuildBump(
        component=component,
        source=source,
        holder=holder,
        new=new,
        moves=tuple(describe_builds.BuildMove(m.nsid, m.path, p.build, new.nvr) for m, p in moved),
        advisories=notes,
        plan=plan,
        eols=_eols(bumped, plan),
        today=dt.datetime.fromtimestamp(now, dt.UTC).date(),
    )


def _newest(component: str, chain: Sequence[str], seen: Mapping[str, Seen]) -> tuple[str, Held | None, str]:
    """(holder, its newest build of the component, "") from the first source of the chain holding
    one; (_, None, why) when a source before it did not answer or none holds one."""
    for name in chain:
        found = seen.get(name)
        if found is None or not found.answered:
            why = found.problem if found is not None else "it was not read"
            return name, None, f"source {name} did not answer: {why}"
        held = found.newest(component)
        if held is not None:
            return name, held, ""
    where = chain[0] + (f" (nor {', '.join(chain[1:])}, which it inherits)" if len(chain) > 1 else "")
    return chain[0], None, f"source {where} holds no build of {component}"


def _pinned_builds(nvrs: set[str], chain: Sequence[str], seen: Mapping[str, Seen]) -> dict[str, Build]:
    """The pinned builds the chain's repositories still hold, by NVR (their epochs)."""
    wanted = {srpm_of_build(n) for n in nvrs}
    found = (p for name in chain if name in seen for r in seen[name].repositories for p in r.packages)
    return builds(p for p in found if p.sourcerpm in wanted)


def _evr(nvr: str, known: Mapping[str, Build], newest: Build) -> tuple[str, str, str]:
    """The (epoch, version, release) of a pinned build: its epoch from the metadata when the chain
    still holds it, else the newest build's (an epoch seldom changes)."""
    if nvr in known:
        return known[nvr].evr
    _, version, release = split_nvr(nvr)
    return (str(newest.epoch), version, release)


def between(
    component: str,
    old: tuple[str, str, str],
    new: tuple[str, str, str],
    advisories: Iterable[Advisory],
    recorded: Iterable[Held],
) -> tuple[Advisory, ...]:
    """The advisories naming a build of the component newer than old and no newer than new (each
    id once, the source's own reading first, then what the history recorded), most urgent first."""
    found: dict[str, Advisory] = {}
    for advisory in [*advisories, *(a for h in recorded for a in h.advisories)]:
        if advisory.id in found:
            continue
        for package in advisory.packages:
            named = build_of_srpm(package.src).rsplit("-", 2)[0] if package.src else package.name
            evr = (str(package.epoch), package.version, package.release)
            if named == component and label_compare(evr, old) > 0 and label_compare(evr, new) <= 0:
                found[advisory.id] = advisory
                break
    return tuple(sorted(found.values(), key=urgency))


def _eols(bumped: Definitions, plan: planner.Plan) -> tuple[tuple[str, dt.date], ...]:
    """(module, EOL) of every module the plan composes again."""
    affected = {MODULE.name_of(n.id) for n in plan.nodes if n.kind == MODULE}
    return tuple((nsid, bumped.modules[nsid].eol) for nsid in sorted(affected) if nsid in bumped.modules)


def _spec(
    repo: Repository, target: str, text: describe_builds.BuildBump, moved: Sequence[tuple[Module, BinaryPin]]
) -> MergeRequestSpec:
    files = {}
    for module, _ in moved:
        raw = gitrepo.file_at(repo, target, module.path)
        if raw is None:
            raise OperationFailed(f"{module.path} is not in {target}", code="missing-definition")
        files[module.path] = yamledit.set_pin_builds(
            module.path, raw.decode("utf-8"), text.component, text.source, text.new.nvr
        )
    return MergeRequestSpec(
        source_branch=describe_builds.build_source_branch(text.component, text.source),
        target_branch=target,
        title=describe_builds.title(text),
        description=describe_builds.description(text),
        labels=describe_builds.labels(text),
        files=files,
        head=text.new.nvr,
        commit_message=describe_builds.commit_message(text),
    )
