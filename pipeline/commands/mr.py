"""`factory mr list|show|merge|close`: the merge requests of the local forge, by hand."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from pipeline.commands.output import out, out_json

if TYPE_CHECKING:
    from pipeline.bot.forge import MergeRequest
    from pipeline.bot.forge_local import LocalForge


def _forge(args: argparse.Namespace) -> LocalForge:
    from pipeline.bot.forge_local import LocalForge
    from pipeline.git.repo import open_repo

    return LocalForge(open_repo(args.repo))


def cmd_list(args: argparse.Namespace) -> int:
    found = [mr for mr in _forge(args).all() if args.state == "all" or mr.state == args.state]
    if args.json:
        out_json([_json(mr) for mr in found])
    elif not found:
        out("no merge requests")
    else:
        for mr in found:
            labels = f" [{', '.join(mr.labels)}]" if mr.labels else ""
            out(f"!{mr.id}  {mr.state:<7} {mr.title}{labels}  ({mr.source_branch} -> {mr.target_branch})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    forge = _forge(args)
    mr = forge.get(args.id.lstrip("!"))
    if args.json:
        record = forge.record(mr.id)
        out_json(
            {**_json(mr), "description": mr.description, "commit": record["commit"], "notes": record["notes"]}
        )
        return 0
    out(f"!{mr.id} {mr.title}")
    out(f"state: {mr.state}; labels: {', '.join(mr.labels) or '-'}")
    out(f"{mr.source_branch} -> {mr.target_branch}")
    out("")
    out(mr.description)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    mr = _forge(args).merge(args.id.lstrip("!"))
    if args.json:
        out_json(_json(mr))
    else:
        out(f"merged !{mr.id} into {mr.target_branch}: {mr.title}")
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    mr = _forge(args).close(args.id.lstrip("!"))
    if args.json:
        out_json(_json(mr))
    else:
        out(f"closed !{mr.id}: {mr.title}")
    return 0


def _json(mr: MergeRequest) -> dict[str, Any]:
    return {
        "id": mr.id,
        "state": mr.state,
        "title": mr.title,
        "labels": list(mr.labels),
        "source_branch": mr.source_branch,
        "target_branch": mr.target_branch,
        "head": mr.head,
    }
