"""`factory check record`: a check result from outside factory, into refs/notes/tests."""

from __future__ import annotations

import argparse
import datetime as dt
from urllib.parse import urlsplit

from pipeline.commands.output import out, out_json
from pipeline.core.errors import InvalidInput
from pipeline.core.records import parse_compose_id
from pipeline.core.states import CheckState, ComposeStatus
from pipeline.records import checks as results
from pipeline.records.lineage import Lineage
from pipeline.release import gating
from pipeline.workspace import Workspace


def cmd_record(args: argparse.Namespace) -> int:
    """Record one result (PASSED, FAILED, ERROR or NOT_APPLICABLE) of a check on a compose; print the
    gate now."""
    parse_compose_id(args.compose_id)  # a clear error before anything is opened
    url = args.url or ""
    if url and not (urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc):
        raise InvalidInput(f"--url: not an http(s) URL: {url!r}", code="invalid-url")
    ws = Workspace.open(args.repo)
    lineage = Lineage(ws.root, parse_compose_id(args.compose_id).version)
    try:
        record = lineage.get(args.compose_id)  # unknown compose: exit 2, nothing written
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        result = results.TestResult(
            args.check, CheckState(args.outcome), args.note, now, now, url, results.EXTERNAL
        )
        results.check_result(result)
        results.record(lineage, {record.compose_id: [result]})
        decision = gating.decide(ws, lineage, record)
    finally:
        lineage.close()
    if args.json:
        out_json(
            {
                "compose_id": record.compose_id,
                "node": record.node,
                "status": record.status,
                "recorded": result.to_json(),
                "verdict": decision.verdict,
            }
        )
        return 0
    out(f"recorded {result.check} {result.state} on {record.compose_id} ({record.node}, {record.status})")
    hint = f"; `factory gate {record.compose_id} --promote` makes it latest good"
    hint = hint if record.status == ComposeStatus.PENDING else ""
    out(f"its gate now: {decision.summary()}" + (hint if decision.passed else ""))
    return 0
