"""Gathering the facts the status is computed from: a thin adapter over what is recorded.

- the definitions, graph and policies of HEAD (`pipeline.workspace`, `release.policies`);
- lineage: every compose, latest good, reserved IDs not finished (`Lineage.history`, `latest`,
  `reserved_unfinished`), less the composes made off the release's branches (a scratch branch's,
  a merge request's: `Record.branch` is "") whose commit is still on none of them and that are
  no release's latest good: the overview is the release's, and a side branch's composes,
  failed ones too, say nothing of it (`factory latest --rev` and `factory lineage` show them);
- check results (`refs/notes/tests`) and releases (`refs/notes/releases`) of the composes a
  page shows (the newest `history` composes of each node asked about), and whether each
  release is live: what its release directory's `latest` points at now;
- branch history: the newest recorded head of every branch a pin follows;
- the local forge's open bump merge requests (`factory/bump/<component>/<branch>`); with
  another forge they are not read, and the status says so.
- publications to mirrors (`refs/notes/mirrors`, written by `factory publish`) of the same
  composes: a release is on a mirror only with such a record.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection
from dataclasses import replace

from pipeline.core import overview
from pipeline.core.config import ForgeKind, Release
from pipeline.core.errors import InvalidInput
from pipeline.core.facts import BranchHead, BumpRequest, Facts, MirrorFact, ReleaseFact
from pipeline.core.records import Record, compose_name, parse_compose_id
from pipeline.git import cli as gitcli
from pipeline.git.release_branch import off_release_branches
from pipeline.records import checks, mirrors
from pipeline.records import releases as release_notes
from pipeline.records.history import BranchHistory, iso
from pipeline.records.lineage import Lineage
from pipeline.run import CommandFailed
from pipeline.workspace import Workspace

BUMP_BRANCH = "factory/bump/"


def gather(ws: Workspace, focus: Collection[str] | None = None, history: int = overview.HISTORY) -> Facts:
    """The facts of the repository at HEAD. Check results and releases are read for the newest
    `history` composes of the nodes in `focus` (every node when None)."""
    return read_results(ws, recorded(ws), focus, history)


def recorded(ws: Workspace, whole: bool = True) -> Facts:
    """The facts of HEAD without check results and releases (`read_results` adds them). Not
    `whole`: the composes as briefs, no record read whole (`read_records` reads some)."""
    commit, commit_time = head(ws)
    defs = ws.load(commit, check_distgit=False)
    graph = ws.graph(commit)
    ws.save()  # the parse cache: the next run parses only the definition files that changed
    lineage = Lineage(ws.root, defs.config.release.version)
    try:
        hidden = _off_branch(ws, lineage, defs.config.release)
        records = [r for r in lineage.history() if r.compose_id not in hidden] if whole else []
        briefs = [] if whole else [b for b in lineage.briefs() if b.compose_id not in hidden]
        latest = lineage.latest_indexed()  # the refs read from their files, each tag from the index
        names = {compose_name(node.id): node.id for node in graph.nodes.values()}
        reserved = {}
        for cid in lineage.reserved_unfinished():
            node = names.get(parse_compose_id(cid).name)
            if node is not None:  # a reservation of a node HEAD no longer defines is not shown
                reserved[cid] = node
    finally:
        lineage.close()
    return Facts(
        commit=commit,
        commit_time=commit_time,
        defs=defs,
        graph=graph,
        records=tuple(records),
        latest=latest,
        reserved=reserved,
        policy=ws.policy(commit),
        checks={},
        releases={},
        branches=_branches(
            ws, {(p.component, p.branch) for m in defs.modules.values() for p in m.components}
        ),
        bumps=_bumps(ws) if defs.config.forge.kind == ForgeKind.LOCAL else None,
        today=dt.datetime.now(dt.UTC).date(),
        briefs=tuple(briefs),
    )


def read_records(ws: Workspace, facts: Facts, nodes: Collection[str]) -> Facts:
    """The facts with every compose of these nodes read whole (the others stay briefs)."""
    wanted = set(nodes)
    lineage = Lineage(ws.root)
    try:
        hidden = _off_branch(ws, lineage, facts.defs.config.release)
        records = [r for r in lineage.history_of(wanted) if r.compose_id not in hidden]
    finally:
        lineage.close()
    briefs = tuple(b for b in facts.briefs if b.node not in wanted)
    return replace(facts, records=(*facts.records, *records), briefs=briefs)


def read_results(
    ws: Workspace, facts: Facts, focus: Collection[str] | None = None, history: int = overview.HISTORY
) -> Facts:
    """The facts with the check results and releases of the newest `history` composes of the
    nodes in `focus` (every node when None)."""
    wanted = _newest(list(facts.records), focus, history)
    lineage = Lineage(ws.root)
    try:
        found = checks.read_many(lineage, wanted)
        releases = _releases(lineage, wanted)
        published = _mirrors(lineage, wanted)
    finally:
        lineage.close()
    by_compose = {cid: found.get(cid, []) for cid in wanted}
    return replace(facts, checks=by_compose, releases=releases, mirrors=published)


def _off_branch(ws: Workspace, lineage: Lineage, release: Release) -> set[str]:
    """The composes the overview leaves out: made off the release's branches, from a commit
    still on none of them (a merge since puts it on one), and no release's latest good (a
    compose of a release branch may have reused it by its key)."""
    made = lineage.off_branch()
    if not made:
        return set()
    good = {cid for latest in lineage.latest_everywhere().values() for cid in latest.values()}
    candidates = {cid: commit for cid, commit in made.items() if cid not in good}
    elsewhere = off_release_branches(ws.repo, candidates.values(), release, os.environ)
    return {cid for cid, commit in candidates.items() if commit in elsewhere}


def head(ws: Workspace) -> tuple[str, str]:
    """The commit HEAD names and its commit time (ISO 8601 UTC)."""
    try:
        out = gitcli.git(ws.git_dir, "show", "-s", "--format=%H %ct", "HEAD")
    except CommandFailed as exc:
        raise InvalidInput(
            f"{ws.root} has no commit yet", hint="commit the definitions first", code="no-commit"
        ) from exc
    commit, seconds = out.split()
    return commit, iso(int(seconds))


def _newest(records: list[Record], focus: Collection[str] | None, history: int) -> list[str]:
    by_node: dict[str, list[str]] = {}
    for record in records:  # oldest first
        if focus is None or record.node in focus:
            by_node.setdefault(record.node, []).append(record.compose_id)
    return [cid for ids in by_node.values() for cid in ids[-history:]]


def _releases(lineage: Lineage, compose_ids: list[str]) -> dict[str, list[ReleaseFact]]:
    """The releases and quarantines recorded for composes, each where it is on this machine (a
    path the note records relative to the checkout, taken from this one), and whether each is
    live now (`pipeline.records.releases`)."""
    root = release_notes.checkout(lineage)
    return {
        cid: [
            ReleaseFact(e.status, str(e.location(root)), e.time, e.signed_by, e.live(root))
            for e in note.entries
        ]
        for cid, note in release_notes.read_many(lineage, compose_ids).items()
        if note.entries
    }


def _branches(ws: Workspace, followed: set[tuple[str, str]]) -> dict[tuple[str, str], BranchHead]:
    history = BranchHistory(ws.repo)
    found = {}
    for component, branch in sorted(followed):
        seen = history.latest(component, branch)
        if seen is not None:
            found[(component, branch)] = BranchHead(component, branch, seen.head, iso(seen.observed))
    return found


def _bumps(ws: Workspace) -> list[BumpRequest]:
    from pipeline.bot.forge import OPENED
    from pipeline.bot.forge_local import LocalForge

    found = []
    for mr in LocalForge(ws.repo).all():
        if mr.state != OPENED or not mr.source_branch.startswith(BUMP_BRANCH):
            continue
        component, _, branch = mr.source_branch.removeprefix(BUMP_BRANCH).partition("/")
        found.append(BumpRequest(mr.id, mr.title, component, branch, mr.head, mr.labels))
    return sorted(found, key=lambda b: int(b.id) if b.id.isdigit() else 0)


def _mirrors(lineage: Lineage, compose_ids: list[str]) -> dict[str, list[MirrorFact]]:
    """The publications to mirrors recorded for composes (`factory publish`), oldest first, each
    mirror as this machine names it."""
    root = release_notes.checkout(lineage)
    return {
        cid: [MirrorFact(p.where(root), p.time) for p in found]
        for cid, found in mirrors.read_many(lineage, compose_ids).items()
        if found
    }
