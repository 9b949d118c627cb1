"""`factory gc`: remove compose outputs nothing keeps; lineage stays."""

from __future__ import annotations

import argparse
import os
from collections import Counter

from pipeline.artifacts.file import FileStore
from pipeline.artifacts.store import open_store, shown_url
from pipeline.commands import files
from pipeline.commands.output import out, out_json
from pipeline.records.lineage import Lineage
from pipeline.release import gc
from pipeline.transfer import store_url
from pipeline.workspace import Workspace


def cmd_gc(args: argparse.Namespace) -> int:
    """Collect, or with --dry-run say what would be collected; the bytes freed either way."""
    ws = Workspace.open(args.repo)
    # The store composes write to, unless others are named: the same rule as `factory compose`.
    urls = args.store or [store_url(ws.config().store, os.environ)]
    stores = [open_store(url, root=ws.root, env=os.environ) for url in urls]
    for url, store in zip(args.store, stores, strict=False):  # a store named that is not there
        if isinstance(store, FileStore):
            files.existing_directory(store.directory, f"artifact store {shown_url(url)}:")
    report = gc.collect(
        ws,
        Lineage(ws.root),
        keep=args.keep,
        older_than_days=args.older_than,
        dry_run=args.dry_run,
        stores=stores,
    )
    if args.json:
        out_json(
            {
                "output_dir": str(report.output_dir),
                "dry_run": report.dry_run,
                "freed": report.freed,
                "collected": [
                    {"compose_id": r.compose_id, "node": r.node, "bytes": r.bytes, "paths": list(r.paths)}
                    for r in report.removed
                ],
                "ostree": [
                    {"repo": p.repo, "commits": p.commits, "bytes": p.bytes, "skipped": p.skipped}
                    for p in report.pruned
                ],
                "kept": [
                    {"compose_id": v.compose_id, "node": v.node, "reasons": list(v.reasons)}
                    for v in report.kept
                ],
                "leftovers": report.leftovers,
                "stores": [
                    {
                        "url": shown_url(st.url),
                        "deleted": list(st.deleted),
                        "owned": sum(st.owned.values()),
                        "freed": st.freed,
                    }
                    for st in report.stores
                ],
            }
        )
        return 0
    verb = "would free" if report.dry_run else "freed"
    out(f"{verb} {report.freed} bytes in {report.output_dir}: {len(report.removed)} composes collected")
    for r in report.removed:
        out(f"  {r.compose_id}  {r.node}  {r.bytes} bytes")
    for p in report.pruned:
        if p.skipped:
            out(f"  {p.repo}: {p.skipped}")
        else:
            out(f"  {p.repo}: {p.commits} commit{'s' if p.commits != 1 else ''} pruned, {p.bytes} bytes")
    for st in report.stores:
        owned = sum(st.owned.values())
        if report.dry_run:
            text = f"{len(st.deleted)} manifests would be deleted ({owned} bytes of blobs only they held), at most {st.freed} bytes would be swept"  # fmt: skip
        else:
            text = f"{len(st.deleted)} manifests deleted ({owned} bytes of blobs only they held), {st.freed} bytes swept"  # fmt: skip
        out(f"  {shown_url(st.url)}: {text}")
    if report.leftovers:
        out(f"  left by an earlier gc: {report.leftovers} bytes")
    reasons = Counter(reason for v in report.kept for reason in v.reasons)
    counted = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    out(f"kept {len(report.kept)} composes" + (f" ({counted})" if counted else ""))
    if report.dry_run:
        out("dry run: nothing was removed")
    return 0
