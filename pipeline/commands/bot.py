"""`factory bot reconcile` and `factory bot serve`: the bump bot."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from pipeline.commands.output import out, out_json

if TYPE_CHECKING:
    from pipeline.bot.reconcile import Report

log = logging.getLogger("factory.bot")


def _pass(args: argparse.Namespace, component: str | None, dry_run: bool) -> Report:
    from pipeline.bot.forge_choice import make_forge
    from pipeline.bot.reconcile import default_target, reconcile
    from pipeline.workspace import Workspace

    ws = Workspace.open(args.repo)
    target = args.target or default_target(ws)
    forge = make_forge(args.forge or ws.config(target).forge.kind, ws, target)
    return reconcile(ws, forge, target=target, component=component, dry_run=dry_run)


def cmd_reconcile(args: argparse.Namespace) -> int:
    """One pass; exit 1 when a branch could not be bumped (a force-push, an unreachable dist-git)."""
    report = _pass(args, args.component, args.dry_run)
    triggered, composed = _trigger(args, report) if args.trigger and not args.dry_run else (0, None)
    if args.json:
        out_json({"dry_run": args.dry_run, **report.to_json(), "triggered": composed})
        return 1 if report.errors or triggered else 0
    for rebuild in report.rebuilds:
        out(
            f"{rebuild.component} ({rebuild.branch}) moved {rebuild.old[:8]} -> {rebuild.new[:8]}: "
            f"{len(rebuild.stale)} composes built against {rebuild.old[:8]} need a rebuild"
            + ("" if args.trigger else " (--trigger starts it)")
        )
        for compose_id in rebuild.stale:
            out(f"  {compose_id}")
    if report.recorded:
        out(f"recorded {len(report.recorded)} new branch heads")
    for seen in report.sources:
        out(f"recorded source {seen.source}: " + "; ".join(c.text() for c in seen.changes))
    verbs = {"open": "opened", "update": "updated", "merge": "set to merge"}
    if args.dry_run:
        verbs = {"open": "would open", "update": "would update", "merge": "would set to merge"}
    for item in report.to_json()["actions"]:
        if item["action"] == "error":
            continue
        labels = f" [{', '.join(item['labels'])}]" if item["labels"] else ""
        mr = f" !{item['merge_request']}" if item["merge_request"] else ""
        merged = ""
        if item.get("state") == "merged":
            merged = f" (merged into {report.target})"
        elif item.get("auto_merge"):
            merged = " (merges once its pipeline passes)"
        out(f"{verbs[item['action']]}{mr}: {item['title']}{labels}{merged}")
    for error in report.errors:
        out(f"error: {error}")
    if not report.actions and not report.failures and not report.rebuilds:
        out(
            "nothing to do: every pin is at its branch head (or its source's newest build) or has its merge request"
        )
    return 1 if report.errors or triggered else 0


def _trigger(args: argparse.Namespace, report: Report) -> tuple[int, Any]:
    """Compose what was built from the old heads: the build nodes of the moved branches and
    everything on them (their compose keys change with the resolved head, so they recompose).
    Returns the compose's exit status and, with --json, its result (else it prints as usual)."""
    from pipeline.commands.compose import composing, show
    from pipeline.workspace import Workspace

    nodes = sorted({r.node for r in report.rebuilds})
    if not nodes:
        return 0, None
    ws = Workspace.open(args.repo)
    wanted = sorted(ws.graph("HEAD").downstream(nodes))
    composed = composing(ws, nodes=wanted, since=None, compose_type="nightly", workers=2, as_json=args.json)
    if args.json:
        return (0 if composed.finished else 1), composed.to_json()
    return show(composed, as_json=False), None


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve GitLab push webhooks until interrupted; reconcile on each push and on a timer."""
    from pipeline.bot.webhook import SECRET_VARIABLE, make_server

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    secret = os.environ.get(SECRET_VARIABLE)
    if not secret:
        log.warning("%s is not set: every webhook will be refused (the timer still runs)", SECRET_VARIABLE)

    def run(component: str | None) -> None:
        report = _pass(args, component, False)
        for item in report.to_json()["actions"]:
            log.info(
                "%s %s (%s): %s", item["action"], item["component"], item["branch"], item.get("title", "")
            )
        for error in report.errors:
            log.error("%s", error)

    server = make_server(args.host, args.port, secret, run, interval=args.interval)
    log.info("listening on %s:%d, reconciling every %ss", args.host, server.port, args.interval)
    server.start()
    try:
        while True:
            server.wait(3600)
    finally:
        server.stop()
