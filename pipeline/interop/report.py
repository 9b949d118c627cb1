"""What an import or export could not carry over, each with its file, line and reason. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Loss:
    """One construct that did not make it into the other format, and why."""

    path: str
    line: int
    what: str  # the construct, e.g. `dependencies[0].requires.ninja` or `variant Live`
    reason: str

    def render(self) -> str:
        return f"{self.path}:{self.line}: not carried over: {self.what}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "what": self.what, "reason": self.reason}

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.path, self.line, self.what, self.reason)
