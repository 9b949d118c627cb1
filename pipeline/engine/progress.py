"""Progress of a compose run on a terminal: which node, which tier, how long."""

from __future__ import annotations

from typing import TextIO

from pipeline.core.states import NodeStatus
from pipeline.engine.executor import NodeResult, Reporter

_MARK = {
    NodeStatus.COMPOSED: "done",
    NodeStatus.SKIPPED: "skip",
    NodeStatus.FAILED: "FAIL",
    NodeStatus.BLOCKED: "held",
    NodeStatus.PENDING: "wait",
}


class TerminalReporter(Reporter):
    """One line per event on a stream (stderr), so stdout stays free for results."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.done = 0

    def tier(self, number: int, total: int, nodes: list[str]) -> None:
        self.stream.write(f"tier {number}/{total}: {len(nodes)} nodes\n")
        self.stream.flush()

    def started(self, node: str, tier: int, total: int) -> None:
        self.stream.write(f"  ....  {node}\n")
        self.stream.flush()

    def finished(self, result: NodeResult, total: int, elapsed: float) -> None:
        self.done += 1
        detail = result.compose_id if result.status.ok else result.message
        line = f"  {_MARK.get(result.status, result.status)}  {result.node}  {detail}"
        if result.status == NodeStatus.FAILED:
            line = f"  FAIL  {result.node}  {result.compose_id}\n" + "\n".join(
                f"        {row}" for row in result.message.splitlines()[-15:]
            )
        self.stream.write(f"{line}  [{self.done}/{total}, {elapsed:.1f}s]\n")
        self.stream.flush()
