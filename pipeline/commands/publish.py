"""`factory publish`: push a release to a mirror in the order mirrors need."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.commands import files, known
from pipeline.commands.output import out, out_json
from pipeline.core.records import is_compose_id
from pipeline.records.lineage import Lineage
from pipeline.release import publications
from pipeline.release import publishing as mirror
from pipeline.tools import rsync
from pipeline.workspace import Workspace


def cmd_publish(args: argparse.Namespace) -> int:
    """Find the release (a compose ID, or a node's live release), push it, record it."""
    ws = Workspace.open(args.repo)
    lineage = Lineage(ws.root)
    if is_compose_id(args.what):
        lineage.get(args.what)  # unknown-compose, with the nearest compose IDs
    else:
        known.require_node(ws, lineage, args.what)
    source = files.existing_directory(args.source, "release directory").resolve() if args.source else None
    release = publications.choose(lineage, args.what, source)
    dest = args.to if rsync.is_remote(args.to) else str(Path(args.to).resolve())
    synced = mirror.publish(release, dest, grace=args.grace, base_url=args.base_url or "")
    publications.record(lineage, release, synced)
    if synced.unserved:
        sys.stderr.write(
            f"warning[no-base-url]: the mirror got no {', '.join(synced.unserved)}: the release's names "
            "its signatures by a path of this machine; give --base-url URL (where the mirror is served) "
            "to publish one naming the mirror's\n"
        )
    if args.json:
        out_json({"compose_id": release.compose_id, "node": release.node, "release": str(release.path),
                  **synced.to_json()})  # fmt: skip
        return 0
    out(f"published {release.compose_id} ({release.node}) from {release.path} to {dest}")
    passes = ", ".join(f"{stage} {count}" for stage, count in synced.sent.items())
    out(f"  {synced.files} files; sent by pass: {passes}; deleted {synced.deleted}")
    return 0
