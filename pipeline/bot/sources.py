"""Definition files as the bot's merge requests read and rewrite them: text at a revision."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.core.errors import OperationFailed
from pipeline.git import repo as gitrepo
from pipeline.workspace import Workspace


def text_at(ws: Workspace, rev: str, path: str) -> str:
    """The text of a definition file at rev; OperationFailed (missing-definition) when it has none."""
    raw = gitrepo.file_at(ws.repo, rev, path)
    if raw is None:
        raise OperationFailed(f"{path} is not in {rev}", code="missing-definition")
    return raw.decode("utf-8")


def reader(text: str) -> Callable[[], bytes]:
    """A SourceFile reader of text already read."""
    data = text.encode("utf-8")
    return lambda: data
