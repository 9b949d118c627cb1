"""`factory lineage`, `factory why` and `factory latest`: reading lineage from Git."""

from __future__ import annotations

import argparse
import re

from pipeline.commands import known
from pipeline.commands.output import out, out_json
from pipeline.core.errors import InvalidInput
from pipeline.core.kinds import BUILD
from pipeline.core.names import unknown
from pipeline.core.records import Record
from pipeline.core.runs import is_run_id, parse_run_id
from pipeline.core.states import ComposeStatus
from pipeline.git import repo as gitrepo
from pipeline.records import collected, paths
from pipeline.records.lineage import COMPOSE_ID_CUTOFF, Lineage
from pipeline.workspace import Workspace

BUILD_NVR = re.compile(r"[A-Za-z0-9._+^~-]+-[^-@/]+-[^-@/]+")  # glibc-2.41-9.fc42
RUNS_LISTED = "`factory lineage COMPOSE_ID` names the run that made a compose"


def _lineage(args: argparse.Namespace) -> Lineage:
    return Lineage(Workspace.open(args.repo).root)


def show(args: argparse.Namespace) -> int:
    if args.compose_id in ("push", "pull"):  # `factory lineage push|pull`: no compose ID is a verb
        return _sync(args)
    lineage = _lineage(args)
    if is_run_id(args.compose_id):
        return _run(lineage, args.compose_id, as_json=args.json)
    record = lineage.get(args.compose_id)
    if args.tree:
        tree = lineage.tree(args.compose_id)
        if args.json:
            out_json([{"depth": depth, **r.to_json()} for depth, r in tree])
        else:
            swept = collected.every(lineage)
            for depth, r in tree:
                indent = "  " * depth
                mark = "  [files gone: gc]" if swept.get(r.compose_id) else ""
                out(f"{indent}{r.compose_id}  {r.node}  {r.status}{mark}")
                for component, commit in r.pins:
                    out(f"{indent}    dist-git {component} @ {commit}")
                for u in r.upstream:
                    out(f"{indent}    source {u.source}: {u.nevra} (key {u.key})")
                if depth == 0 or BUILD.of(r.node):
                    tools = ", ".join(f"{name} {version}" for name, version in r.tools)
                    out(f"{indent}    tools: {tools}")
        return 0
    gone = collected.read(lineage, record.compose_id)
    if args.json:
        out_json({**record.to_json(), "collected": [c.to_json() for c in gone]})
        return 0
    out(_describe(record))
    out(_checks(lineage, record))
    for c in gone:
        directory = c.directory(paths.checkout(lineage.repo))  # where it is from here
        if directory is None:  # from an artifact store: its blobs go with a sweep
            out(f"files     gone: manifest deleted from {c.where} by gc at {c.time} ({c.bytes} bytes of blobs only it held)")  # fmt: skip
        else:
            out(f"files     gone: removed from {directory} by gc at {c.time} ({c.bytes} bytes freed)")
    return 0


def _run(lineage: Lineage, run: str, *, as_json: bool) -> int:
    """`factory lineage RUN-ID`: every compose the run made, oldest first."""
    from pipeline.records import runs as reserved

    made = lineage.of_run(run)
    commits = sorted({r.commit for r in made} | {c for c in [reserved.commit_of(lineage.repo, run)] if c})
    if not made and not commits:
        known = {*lineage.runs(), *reserved.reserved(lineage.repo)}
        raise unknown("run", run, known, cutoff=COMPOSE_ID_CUTOFF, listing=RUNS_LISTED)
    parts = parse_run_id(run)
    if as_json:
        out_json(
            {
                "run": run,
                "type": parts.type_,
                "date": parts.date,
                "commits": commits,
                "composes": [
                    {"compose_id": r.compose_id, "node": r.node, "status": r.status, "finished": r.finished}
                    for r in made
                ],
            }
        )
        return 0
    out(f"run       {run}  ({parts.type_}, {parts.date[:4]}-{parts.date[4:6]}-{parts.date[6:]})")
    out(f"commit    {', '.join(commits)}")
    width = max((len(r.compose_id) for r in made), default=0)
    out(f"composes  {len(made)} made" + ("" if made else ": every node was unchanged or did not compose"))
    for r in made:
        out(f"  {r.compose_id:{width}}  {r.node}  {r.status}")
    return 0


def _checks(lineage: Lineage, record: Record) -> str:
    """The check results recorded for a compose (PENDING: required, no result yet)."""
    from pipeline.records.checks import read

    found = read(lineage, record.compose_id)
    lines = ["checks" if found else "checks    none recorded"]
    for r in found:
        extra = ", ".join(x for x in (r.origin, r.url) if x)
        lines.append(
            f"  {r.check}  {r.state}"
            + (f": {r.message}" if r.message else "")
            + (f" ({extra})" if extra else "")
        )
    return "\n".join(lines)


def _sync(args: argparse.Namespace) -> int:
    """`factory lineage push|pull [--remote R]`: move the lineage refs to or from a Git remote."""
    from pipeline.records.remote import Remote

    action = args.compose_id
    remote = Remote(Workspace.open(args.repo).root, args.remote)
    try:
        result = remote.push() if action == "push" else remote.pull()
    finally:
        remote.close()
    if args.json:
        out_json({"fetched": result.fetched, "pushed": result.pushed, "attempts": result.attempts})
    elif action == "push":
        out(f"pushed {len(result.pushed)} lineage refs to {args.remote} ({result.attempts} attempts)")
    else:
        out(f"pulled {len(result.fetched)} lineage refs from {args.remote}")
    return 0


def _describe(record: Record) -> str:
    lines = [
        f"compose   {record.compose_id}",
        f"node      {record.node}",
        f"status    {record.status}" + (f": {record.message}" if record.message else ""),
        f"commit    {record.commit}",
        *_branch_line(record),
        *([f"run       {record.run}"] if record.run else []),
        f"digest    {record.input_digest}",
        f"time      {record.started} .. {record.finished}"
        + (f", promoted {record.promoted}" if record.promoted else ""),
        "tools     " + ", ".join(f"{n} {v}" for n, v in record.tools),
    ]
    if record.inputs:
        lines.append("inputs")
        lines.extend(f"  {i.compose_id}  {i.node}" for i in record.inputs)
    if record.pins:
        lines.append("pins")
        lines.extend(f"  {component} @ {commit}" for component, commit in record.pins)
    if record.upstream:
        lines.append(
            "upstream  (each RPM: where it came from, the key that signed it, the repository's state)"
        )
        for u in record.upstream:
            koji = f", Koji tag {u.koji.tag} repo {u.koji.id} event {u.koji.event_id}" if u.koji else ""
            via = f" (read through {u.via})" if u.via else ""
            lines.append(f"  {u.nevra}  source {u.source}{via}  key {u.key}  sha256:{u.sha256[:16]}")
            lines.append(
                f"    {u.url}  repomd revision {u.repomd_revision} sha256:{u.repomd_sha256[:16]}{koji}"
            )
    if record.outputs:
        total = sum(o.size for o in record.outputs)
        lines.append(f"outputs   {len(record.outputs)} files, {total} bytes")
        lines.extend(f"  {o.path}  {o.size}  sha256:{o.sha256[:16]}" for o in record.outputs[:20])
        if len(record.outputs) > 20:
            lines.append(f"  ... {len(record.outputs) - 20} more (--json for all)")
    return "\n".join(lines)


def _branch_line(record: Record) -> list[str]:
    """Which of its release's branches the commit was on when composed (none in old records)."""
    if record.branch is None:
        return []
    if record.off_branch:
        return ["branch    none of the release's branches (off-branch): composing it moved no latest good"]
    return [f"branch    {record.branch}"]


def why(args: argparse.Namespace) -> int:
    component, at, commit = args.pin.partition("@")
    if not at and BUILD_NVR.fullmatch(args.pin):  # a build made elsewhere: its binary pin's node
        return _why_build(args)
    if not component or len(commit) < 7 or any(c not in "0123456789abcdef" for c in commit):
        raise InvalidInput(
            f"expected COMPONENT@COMMIT with at least 7 hex digits, or a build's NVR, got {args.pin!r}",
            code="bad-pin",
        )
    ws = Workspace.open(args.repo)
    lineage = Lineage(ws.root)
    records = lineage.why(component, commit)
    good = _current(ws, lineage)
    found = [
        {
            "compose_id": r.compose_id,
            "node": r.node,
            "status": r.status,
            "latest_good": (r.node, r.compose_id) in good,
            "released": _released(lineage, r.compose_id),  # live: `latest` of a release directory
        }
        for r in records
    ]
    if args.json:
        out_json(found)
        return 0
    if not found and component not in (components := known.components(ws, lineage)):
        raise unknown("component", component, components)
    if not found:
        out(f"no compose was made with {component} at {commit}")
        return 0
    current = [f for f in found if f["latest_good"] or f["released"]]
    out(f"{len(found)} composes made with {component} at {commit}; {len(current)} still current:")
    for f in found:
        marks = ", ".join(
            m for m, on in (("latest good", f["latest_good"]), ("released", f["released"])) if on
        )
        out(f"  {f['compose_id']}  {f['node']}  {f['status']}" + (f"  [{marks}]" if marks else ""))
    return 0


def _why_build(args: argparse.Namespace) -> int:
    """`factory why glibc-2.41-9.fc42`: every compose made with a build made elsewhere (its
    binary pin's composes and what was made of them), and which are still latest good or
    released."""
    ws = Workspace.open(args.repo)
    lineage = Lineage(ws.root)
    node = f"binary:{args.pin}"
    good = _current(ws, lineage)
    found = [
        {
            "compose_id": r.compose_id,
            "node": r.node,
            "status": r.status,
            "latest_good": (r.node, r.compose_id) in good,
            "released": _released(lineage, r.compose_id),
        }
        for r in lineage.why_node(node)
    ]
    if args.json:
        out_json(found)
        return 0
    if not found:
        builds = {n.removeprefix("binary:") for n in lineage.latest_indexed() if n.startswith("binary:")}
        if builds and args.pin not in builds:
            raise unknown("build", args.pin, builds, where=" composed here")
        out(f"no compose was made with {args.pin}")
        return 0
    current = [f for f in found if f["latest_good"] or f["released"]]
    released = [f for f in found if f["released"]]
    out(
        f"{len(found)} composes made with {args.pin}; {len(current)} still current, "
        f"{len(released)} released and live:"
    )
    for f in found:
        marks = ", ".join(
            m for m, on in (("latest good", f["latest_good"]), ("released", f["released"])) if on
        )
        out(f"  {f['compose_id']}  {f['node']}  {f['status']}" + (f"  [{marks}]" if marks else ""))
    return 0


def _current(ws: Workspace, lineage: Lineage) -> set[tuple[str, str]]:
    """(node, compose ID) of every latest good compose of every release whose node its
    definitions still have: HEAD's for the release HEAD composes, `release/<R>`'s for another
    (a release without such a branch keeps all of its latest good). An old build node the
    definitions no longer have is not current, whatever its latest-good ref still says."""
    if gitrepo.head_is_unborn(ws.repo):
        return set()
    found = set()
    here = ws.config("HEAD").release.version
    for release, latest in lineage.latest_everywhere().items():
        branch = "HEAD" if release == here else f"release/{release}"
        known = gitrepo.ref_target(ws.repo, f"refs/heads/{branch}") is not None or branch == "HEAD"
        nodes = ws.graph(branch).digests if known else None
        found |= {(node, cid) for node, cid in latest.items() if nodes is None or node in nodes}
    return found


def _released(lineage: Lineage, compose_id: str) -> bool:
    """Whether the compose is live: what a release directory's `latest` points at right now.

    A compose released once and since replaced by a newer release is no longer live.
    """
    from pipeline.records import releases

    return releases.read(lineage, compose_id).live(releases.checkout(lineage))


def latest(args: argparse.Namespace) -> int:
    if args.rev:
        return _latest_at(args)
    ws = Workspace.open(args.repo)
    lineage = Lineage(ws.root, args.release)
    if args.release is not None and args.release not in (releases := known.releases(ws, lineage)):
        raise unknown("release", args.release, releases)
    try:
        found = lineage.latest(args.node)
    except InvalidInput as exc:  # not even a node id: say which nodes are near it
        if exc.code != "invalid-node":
            raise
        found = {}
    if args.node and args.node not in found:
        known.require_node(ws, lineage, args.node)
        raise InvalidInput(
            f"{args.node} has no good compose in release {lineage.release}", code="no-latest-good"
        )
    if args.json:
        out_json(found)
        return 0
    width = max((len(n) for n in found), default=0)
    for node, compose_id in sorted(found.items()):
        out(f"{node:{width}}  {compose_id}")
    return 0


def _latest_at(args: argparse.Namespace) -> int:
    """`factory latest --rev REV [NODE]`: the newest good compose of each node made from REV (the
    composes whose tag points at that commit), latest good or not; marked `off-branch` when
    made off the release's branches, `latest good` when it is its release's latest good."""
    ws = Workspace.open(args.repo)
    commit = gitrepo.resolve(ws.repo, args.rev).id
    lineage = Lineage(ws.root)
    try:
        found: dict[str, Record] = {}
        for record in lineage.made_from(commit):  # oldest first: the newest of a node wins
            if record.status == ComposeStatus.FINISHED and args.node in (None, record.node):
                found[record.node] = record
        good = {
            (node, cid) for latest in lineage.latest_everywhere().values() for node, cid in latest.items()
        }
    finally:
        lineage.close()
    if args.node and args.node not in found:
        raise InvalidInput(
            f"{args.node} has no good compose made from {args.rev} ({commit[:10]})", code="no-compose-at-rev"
        )
    if args.json:
        out_json({node: r.compose_id for node, r in sorted(found.items())})
        return 0
    width = max((len(n) for n in found), default=0)
    for node, record in sorted(found.items()):
        marks = [m for m, on in (("latest good", (node, record.compose_id) in good), ("off-branch", record.off_branch)) if on]  # fmt: skip
        out(f"{node:{width}}  {record.compose_id}" + (f"  [{', '.join(marks)}]" if marks else ""))
    return 0
