"""`factory eol`: one merge request that retires a module stream or a variant (or schedules it).

How a retirement is written: the definition keeps its file, its `eol:` becomes the date, and a
`retired: true` line is added right below it (schema-checked; only those two lines change,
comments and layout stay, as the bump bot edits `ref:` lines). A date still to come only moves
`eol:`; `factory eol --due`, run by the scheduled pipeline, retires whatever has reached its
date, in one merge request. Today comes from the caller, never from a graph or a plan.

Before anything is opened the result is checked as validation will check it once merged: a
module still shipped by a variant whose EOL is later (or, when it is retired now, by any live
variant), or needed by a live module, is refused naming them (exit 2); then the whole edited
tree is loaded and validated. Acting is idempotent: an open merge request from the same branch
is updated (left alone when it already says the same), and `--due` does not reopen one that was
closed without merging the same change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.bot import sources, yamledit
from pipeline.bot.forge import CLOSED, OPENED, Forge, MergeRequest, MergeRequestSpec, head_marker
from pipeline.core import graph as graphs
from pipeline.core import lifecycle
from pipeline.core import plan as planner
from pipeline.core.canonical import digest
from pipeline.core.definitions import SourceFile
from pipeline.core.errors import InvalidInput
from pipeline.core.lifecycle import Change
from pipeline.core.model import Definitions
from pipeline.git import repo as gitrepo
from pipeline.workspace import Workspace

LABEL = "eol"
DUE_BRANCH = "factory/eol/due"


@dataclass(frozen=True, slots=True)
class Proposal:
    """The merge request `eol` wants, and what it is made from."""

    changes: tuple[Change, ...]
    spec: MergeRequestSpec
    before: Mapping[str, str]  # path -> text on the target branch
    leaving: tuple[str, ...]  # nodes that leave the artifact graph once it is merged


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `eol` did: `opened`, `updated`, `unchanged`, `kept-closed`, `dry-run` or `nothing`."""

    action: str
    proposal: Proposal | None
    merge_request: MergeRequest | None
    message: str


def source_branch(target: lifecycle.Target) -> str:
    """`factory/eol/module/gtk/3`, `factory/eol/variant/Workstation`."""
    return f"factory/eol/{target.kind}/{target.name.replace(':', '/')}"


def propose(
    ws: Workspace,
    *,
    target_branch: str,
    today: dt.date,
    target: str | None = None,
    date: dt.date | None = None,
    due: bool = False,
) -> Proposal | None:
    """The merge request that retires `target` on `date` (default today), or with `due` every
    definition whose EOL has come; None when there is nothing to change."""
    defs = ws.load(target_branch, check_distgit=False)
    if due:
        reached = lifecycle.due(defs, today)
        changes = [lifecycle.change(defs, t, lifecycle.definition(defs, t).eol, today) for t in reached]
    else:
        if target is None:
            raise InvalidInput("name what reaches its End Of Life, or pass --due", code="no-target")
        chosen = lifecycle.parse_target(target, defs)
        if lifecycle.definition(defs, chosen).retired:
            return None
        changes = [lifecycle.change(defs, chosen, date or today, today)]
    changes = [c for c in changes if (c.eol, c.retire) != (c.old_eol, False)]
    if not changes:
        return None
    after = lifecycle.apply(defs, changes)
    _refuse_blocked(after, changes)
    before = {c.path: sources.text_at(ws, target_branch, c.path) for c in changes}
    edited = {c.path: _edit(c.path, before[c.path], c) for c in changes}
    files = [
        SourceFile(f.path, gitrepo.blob_id(edited[f.path].encode()), sources.reader(edited[f.path]))
        if f.path in edited
        else f
        for f in ws.files(target_branch)
    ]
    ws.load_files(files)  # validation as it will run once merged: InvalidDefinitions, exit 2
    removed = planner.plan(graphs.build(defs), graphs.build(after)).removed
    spec = _spec(changes, edited, target_branch, due, today, defs.config.release.version, removed)
    return Proposal(tuple(changes), spec, before, tuple(removed))


def act(forge: Forge, proposal: Proposal, *, due: bool = False) -> Outcome:
    """Open the merge request, or update the open one; with `due`, never reopen a change that
    was closed without merging."""
    spec = proposal.spec
    existing = forge.find(spec.source_branch)
    opened = next((mr for mr in existing if mr.state == OPENED), None)
    if opened is not None:
        if opened.head == spec.head:
            return Outcome("unchanged", proposal, opened, f"!{opened.id} already proposes it")
        updated = forge.update(opened, spec)
        return Outcome("updated", proposal, updated, f"updated !{updated.id}")
    if due and existing and existing[0].state == CLOSED and existing[0].head == spec.head:
        closed = existing[0]
        return Outcome(
            "kept-closed", proposal, closed, f"!{closed.id} proposed it and was closed: not reopened"
        )
    made = forge.open(spec)
    return Outcome("opened", proposal, made, f"opened !{made.id}")


def eol(
    ws: Workspace,
    forge: Forge | None,
    *,
    target_branch: str,
    today: dt.date,
    target: str | None = None,
    date: dt.date | None = None,
    due: bool = False,
) -> Outcome:
    """Propose, then act (forge None: a dry run that only proposes)."""
    proposal = propose(ws, target_branch=target_branch, today=today, target=target, date=date, due=due)
    if proposal is None:
        what = (
            "nothing has reached its End Of Life" if due else f"{target} is retired already or keeps its EOL"
        )
        return Outcome("nothing", None, None, what)
    if forge is None:
        return Outcome("dry-run", proposal, None, "dry run: nothing opened")
    return act(forge, proposal, due=due)


# -- what the merge request says and changes -------------------------------------------------------------


def _refuse_blocked(after: Definitions, changes: Sequence[Change]) -> None:
    lines = []
    for c in changes:
        blocking = lifecycle.blockers(after, c)
        if not blocking:
            continue
        when = "now" if c.retire else f"on {c.eol}"
        named = ", ".join(f"{b.kind} {b.name} (EOL {b.eol}, {b.why})" for b in blocking)
        lines.append(f"{c.target.name} cannot reach its End Of Life {when}: still needed by {named}")
    if lines:
        raise InvalidInput(
            "; ".join(lines),
            hint="retire those variants (or drop the module from them) first, or pick a date no earlier "
            "than their EOL; `factory deps NAME --reverse` lists what depends on it",
            code="eol-refused",
        )


def _edit(path: str, text: str, c: Change) -> str:
    edited = yamledit.set_scalar(path, text, ("eol",), c.eol.isoformat())
    if c.retire:
        edited = yamledit.add_key(path, edited, "eol", "retired", "true")
    return edited


def _spec(
    changes: Sequence[Change],
    files: Mapping[str, str],
    target_branch: str,
    due: bool,
    today: dt.date,
    release: str,
    leaving: Sequence[str],
) -> MergeRequestSpec:
    head = digest([[c.target.id, c.eol.isoformat(), c.retire] for c in changes])
    title = _title(changes, due, today)
    return MergeRequestSpec(
        source_branch=DUE_BRANCH if due else source_branch(changes[0].target),
        target_branch=target_branch,
        title=title,
        description=_description(changes, release, leaving, head),
        labels=(LABEL,),
        files=dict(files),
        head=head,
        commit_message=title + "\n\n" + "".join(f"{c.path}: {_what(c)}\n" for c in changes),
    )


def _title(changes: Sequence[Change], due: bool, today: dt.date) -> str:
    if due:
        return f"Retire what reached its End Of Life by {today}: " + ", ".join(
            f"{c.target.kind} {c.target.name}" for c in changes
        )
    c = changes[0]
    if c.retire:
        return f"Retire {c.target.kind} {c.target.name} (End Of Life {c.eol})"
    return f"Schedule the End Of Life of {c.target.kind} {c.target.name} on {c.eol}"


def _what(c: Change) -> str:
    eol = f"eol {c.old_eol} -> {c.eol}" if c.eol != c.old_eol else f"eol {c.eol}"
    return eol + (", retired: true" if c.retire else "")


def _description(changes: Sequence[Change], release: str, leaving: Sequence[str], head: str) -> str:
    retiring = [c for c in changes if c.retire]
    scheduled = [c for c in changes if not c.retire]
    parts = [
        "| what | file | EOL before | EOL after | retired |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {c.target.kind} `{c.target.name}` | `{c.path}` | {c.old_eol} | {c.eol} | "
            f"{'yes' if c.retire else 'not yet'} |"
            for c in changes
        ),
        "",
    ]
    if retiring:
        parts += [
            "### Once merged",
            "",
            "Nothing plans or composes " + ("it" if len(retiring) == 1 else "them") + " any more. "
            f"These nodes leave the artifact graph ({len(leaving)}):",
            "",
            *(f"- `{node}`" for node in leaving),
            "",
            "`factory retire` (the main pipeline runs it after its composes) then carves them out: "
            f"their latest good moves to `refs/composes/retired/{release}/`, their releases to the "
            "archive, their OSTree refs to `archive/` refs of the served repository. "
            "`factory lineage`, `why` and `lineage --tree` keep answering for every compose they made.",
            "",
        ]
    if scheduled:
        parts += [
            "### Scheduled",
            "",
            *(
                f"- {c.target.kind} `{c.target.name}` keeps composing until {c.eol}; on that day "
                "`factory eol --due` (the scheduled pipeline) opens the merge request that retires it."
                for c in scheduled
            ),
            "",
        ]
    parts.append(head_marker(head))
    return "\n".join(parts) + "\n"
