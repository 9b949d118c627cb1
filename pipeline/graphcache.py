"""The graph cache: the artifact graph of a definitions tree, stored by the tree's content key.

A graph is stored as compact rows (id, kind, inputs, digest, source, follows)
in one marshal file per tree, and the definitions themselves once each, by node digest, in a SQLite
table shared by all trees (base and head of a plan share nearly all of them). Loading a graph
builds no Node until one is looked up, and reads a definition only for such a node, so a plan
between two cached trees costs two small file reads and one dictionary comparison.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.core.graph import Graph, Node

_KEPT = 16  # graphs kept; the oldest are removed
FORMAT = "2"  # of the rows; part of every file name, so a new format never reads an old file


class GraphCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._db: sqlite3.Connection | None = None

    def get(self, key: str) -> Graph | None:
        try:
            rows = marshal.loads((self.directory / f"{key[:32]}.v{FORMAT}.marshal").read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return None
        nodes = _LazyNodes({row[0]: row for row in rows}, self._definition)
        return Graph(nodes, {row[0]: row[3] for row in rows})

    def alias(self, tree: str, version: str) -> str | None:
        """The content key recorded for a Git tree id (and factory version), if any."""
        try:
            text = (self.directory / "trees" / f"{tree}-{version[:16]}").read_text(encoding="ascii")
        except OSError:
            return None
        return text.strip() or None

    def set_alias(self, tree: str, version: str, key: str) -> None:
        write_atomically(self.directory / "trees" / f"{tree}-{version[:16]}", key.encode("ascii"))

    def put(self, key: str, graph: Graph) -> None:
        # A node's digest covers its id, definition and inputs, so it names its definition too.
        # Equal strings are made the same object, so marshal writes each once (and loads fast).
        shared: dict[str, str] = {}

        def one(text: str) -> str:
            return shared.setdefault(text, text)

        rows = []
        definitions = {}
        for node in graph.nodes.values():
            definitions[node.digest] = node.definition_json
            inputs = tuple(one(i) for i in node.inputs)
            rows.append((one(node.id), node.kind, inputs, node.digest, one(node.source), node.follows))
        db = self._connect()
        with db:
            db.executemany(
                "INSERT OR IGNORE INTO definition (digest, json) VALUES (?, ?)", definitions.items()
            )
        write_atomically(self.directory / f"{key[:32]}.v{FORMAT}.marshal", marshal.dumps(rows))
        self._prune()

    def _definition(self, key: str) -> str:
        row = self._connect().execute("SELECT json FROM definition WHERE digest = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(f"definition of {key} missing from the graph cache")
        text: str = row[0]
        return text

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.directory / "definitions.sqlite", timeout=30)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS definition (digest TEXT PRIMARY KEY, json TEXT NOT NULL)"
            )
        return self._db

    def _prune(self) -> None:
        def age(path: Path) -> float:
            try:
                return path.stat().st_mtime
            except FileNotFoundError:
                return 0.0

        for stale in sorted(self.directory.glob("*.marshal"), key=age, reverse=True)[_KEPT:]:
            stale.unlink(missing_ok=True)


class _LazyNodes(Mapping[str, Node]):
    """Node objects made on first lookup from cached rows."""

    def __init__(self, rows: dict[str, tuple[Any, ...]], definition: Any) -> None:
        self._rows = rows
        self._definition = definition
        self._made: dict[str, Node] = {}

    def __getitem__(self, node_id: str) -> Node:
        node = self._made.get(node_id)
        if node is None:
            made_id, kind, inputs, digest, source, follows = self._rows[node_id]
            node = Node(made_id, kind, self._definition(digest), inputs, digest, source, follows)
            self._made[node_id] = node
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._rows


def write_atomically(path: Path, data: bytes) -> None:
    """Replace path with data in one rename: a reader sees the old bytes or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
