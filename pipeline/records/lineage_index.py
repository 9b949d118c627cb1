"""The SQLite index of lineage: fast queries over every compose, rebuilt from the notes.

The notes (`refs/notes/lineage`) are the source of truth; the index is a cache in
`<git dir>/factory/lineage.sqlite` that remembers the notes commit it was built from. Before
every query `LineageIndex.refresh` compares that commit with the notes ref: when the ref moved
forward, only the notes that differ between the two notes trees are read
(`pipeline.git.notes.changes`); when the ref was rewritten (the old commit is not an ancestor),
the index is rebuilt from scratch. An update is applied in one SQLite transaction only if the
index still says what it said when the update was computed, so processes refreshing at once
never leave it half way. Tables: composes(compose_id, tag, node, key, status, commit, finished,
json), pins(component, commit, compose_id), inputs(compose_id, input_compose_id).
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.core.errors import OperationFailed
from pipeline.git import notes
from pipeline.git.repo import Repository, ref_target
from pipeline.records.refs import GC_NOTES as COLLECTED_REF
from pipeline.records.refs import LINEAGE_NOTES as NOTES_REF

log = logging.getLogger("factory.lineage")

SCHEMA = "1"
REFRESH_ATTEMPTS = 20
CHUNK = 2000

_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS composes(compose_id TEXT PRIMARY KEY, tag TEXT NOT NULL, node TEXT NOT NULL,"
    ' key TEXT NOT NULL, status TEXT NOT NULL, "commit" TEXT NOT NULL, finished TEXT NOT NULL, json TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS pins(component TEXT NOT NULL, "commit" TEXT NOT NULL, compose_id TEXT NOT NULL)',
    "CREATE TABLE IF NOT EXISTS inputs(compose_id TEXT NOT NULL, input_compose_id TEXT NOT NULL)",
)
_INDEXES = {  # dropped during a rebuild and made again after it: sorting beats random inserts
    "composes_tag": "composes(tag)",
    "composes_key": "composes(node, key, status)",
    "composes_commit": 'composes("commit")',
    "pins_commit": 'pins(component, "commit")',
    "pins_compose": "pins(compose_id)",
    "inputs_input": "inputs(input_compose_id)",
    "inputs_compose": "inputs(compose_id)",
}

_WHY_NODE = """
WITH RECURSIVE hit(compose_id) AS (
    SELECT compose_id FROM composes WHERE node = ?
    UNION
    SELECT inputs.compose_id FROM inputs JOIN hit ON inputs.input_compose_id = hit.compose_id
)
SELECT composes.json FROM hit JOIN composes USING (compose_id) ORDER BY composes.compose_id
"""

_WHY = """
WITH RECURSIVE hit(compose_id) AS (
    SELECT compose_id FROM pins WHERE component = ? AND "commit" >= ? AND "commit" < ?
    UNION
    SELECT inputs.compose_id FROM inputs JOIN hit ON inputs.input_compose_id = hit.compose_id
)
SELECT composes.json FROM hit JOIN composes USING (compose_id) ORDER BY composes.compose_id
"""


class LineageIndex:
    """The SQLite index of the lineage notes of one repository."""

    def __init__(self, repo: Repository, path: Path) -> None:
        self.repo = repo
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # persistent: set once
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-65536")  # 64 MiB: a rebuild of 100,000 notes fits
        self.db.execute("PRAGMA journal_size_limit=67108864")  # a rebuild leaves no huge WAL behind
        self.db.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            schema = None
            if "meta" in tables:
                schema = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if schema is None or schema[0] != SCHEMA:
                for table in sorted(tables & {"meta", "composes", "pins", "inputs"}):
                    self.db.execute(f"DROP TABLE {table}")
            for statement in _TABLES:
                self.db.execute(statement)
            self._indexes("CREATE")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    # -- keeping up with the notes -----------------------------------------------------------------

    def built_from(self) -> str | None:
        """The notes commit the index reflects (None: no notes)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'notes'").fetchone()
        return None if row is None else str(row[0])

    def refresh(self) -> None:
        """Bring the index up to date with the notes ref, reading only what changed."""
        for _ in range(REFRESH_ATTEMPTS):
            current = ref_target(self.repo, NOTES_REF)
            built = self.built_from()
            if built == current:
                return
            changed = None if built is None or current is None else notes.changes(self.repo, built, current)
            if changed is None:
                everything = iter(()) if current is None else notes.all_notes(self.repo, current)
                done = self.apply(built, current, self._texts(everything), (), reset=True)
            else:
                upserts, deletes = changed
                done = self.apply(built, current, self._texts(iter(upserts.items())), deletes, reset=False)
            if done:
                return
        raise OperationFailed("the lineage index kept moving under us", code="lineage-contention")

    def _texts(self, found: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, str]]:
        for tag, blob in found:
            yield tag, notes.read_blob(self.repo, blob).decode("utf-8")

    def apply(
        self,
        base: str | None,
        head: str | None,
        upserts: Iterable[tuple[str, str]],
        deletes: Iterable[str],
        *,
        reset: bool,
    ) -> bool:
        """Apply notes (tag hex, JSON text) and removals in one transaction, moving the index from
        `base` to `head`; False (and nothing done) if the index is no longer at `base`."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.built_from() != base:
                self.db.execute("ROLLBACK")
                return False
            if reset:
                self._indexes("DROP")
                for table in ("composes", "pins", "inputs"):
                    self.db.execute(f"DELETE FROM {table}")
            for tag in deletes:
                self._forget("tag", tag)
            self._add(upserts, fresh=reset)
            if reset:
                self._indexes("CREATE")
            if head is None:
                self.db.execute("DELETE FROM meta WHERE key = 'notes'")
            else:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('notes', ?)", (head,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return True

    def _indexes(self, verb: str) -> None:
        for name, on in _INDEXES.items():
            self.db.execute(
                f"DROP INDEX IF EXISTS {name}"
                if verb == "DROP"
                else f"CREATE INDEX IF NOT EXISTS {name} ON {on}"
            )

    def _forget(self, column: str, value: str) -> None:
        rows = self.db.execute(f"SELECT compose_id FROM composes WHERE {column} = ?", (value,)).fetchall()
        for (cid,) in rows:
            self.db.execute("DELETE FROM composes WHERE compose_id = ?", (cid,))
            self.db.execute("DELETE FROM pins WHERE compose_id = ?", (cid,))
            self.db.execute("DELETE FROM inputs WHERE compose_id = ?", (cid,))

    def _add(self, notes: Iterable[tuple[str, str]], *, fresh: bool) -> None:
        """Index notes in chunks (one executemany per table and chunk is what makes it fast)."""
        todo = iter(notes)
        while chunk := list(itertools.islice(todo, CHUNK)):
            rows: list[tuple[str, ...]] = []
            pins: list[tuple[str, str, str]] = []
            inputs: list[tuple[str, str]] = []
            for tag, text in chunk:
                try:
                    data: dict[str, Any] = json.loads(text)
                    cid = str(data["compose_id"])
                    fields = (data["node"], data["key"], data["status"], data["commit"], data["finished"])
                    pinned = [(str(c), str(commit).lower(), cid) for c, commit in data["pins"]]
                    consumed = [(cid, str(i["compose_id"])) for i in data["inputs"]]
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("lineage note on %s is not a lineage record (%s); not indexed", tag, exc)
                    if not fresh:
                        self._forget("tag", tag)  # whatever it said before, it says nothing now
                    continue
                rows.append((cid, tag, *map(str, fields), text))
                pins.extend(pinned)
                inputs.extend(consumed)
            if not fresh:
                for table in ("pins", "inputs"):
                    self.db.executemany(f"DELETE FROM {table} WHERE compose_id = ?", [(r[0],) for r in rows])
            self.db.executemany("INSERT OR REPLACE INTO composes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self.db.executemany("INSERT INTO pins VALUES (?, ?, ?)", pins)
            self.db.executemany("INSERT INTO inputs VALUES (?, ?)", inputs)

    # -- queries (call refresh first) --------------------------------------------------------------

    def record_json(self, compose_id: str) -> str | None:
        """The note of a compose, or None."""
        row = self.db.execute("SELECT json FROM composes WHERE compose_id = ?", (compose_id,)).fetchone()
        return None if row is None else str(row[0])

    def why(self, component: str, prefix: str) -> list[str]:
        """Notes of composes pinning component at a commit starting with prefix (lower-case hex),
        and of every compose consuming one of them, transitively; by compose ID."""
        rows = self.db.execute(_WHY, (component, prefix, prefix + "g")).fetchall()
        return [str(text) for (text,) in rows]

    def why_node(self, node: str) -> list[str]:
        """Notes of the composes of a node (a binary pin's build) and of every compose consuming
        one of them, transitively; by compose ID."""
        rows = self.db.execute(_WHY_NODE, (node,)).fetchall()
        return [str(text) for (text,) in rows]

    def records(self, node: str | None = None) -> list[str]:
        """The notes of every compose (or of one node's), oldest first (finish time, then ID)."""
        if node is None:
            rows = self.db.execute("SELECT json FROM composes ORDER BY finished, compose_id")
        else:
            rows = self.db.execute(
                "SELECT json FROM composes WHERE node = ? ORDER BY finished, compose_id", (node,)
            )
        return [str(text) for (text,) in rows]

    def records_of_run(self, run: str) -> list[str]:
        """The notes of every compose a run made (its note's `run`), oldest first."""
        rows = self.db.execute(
            "SELECT json FROM composes WHERE json_extract(json, '$.run') = ? ORDER BY finished, compose_id",
            (run,),
        )
        return [str(text) for (text,) in rows]

    def runs(self) -> list[str]:
        """Every run ID a compose's note names, sorted."""
        rows = self.db.execute(
            "SELECT DISTINCT json_extract(json, '$.run') FROM composes WHERE json_extract(json, '$.run') IS NOT NULL"
        )
        return sorted(str(run) for (run,) in rows)

    def records_at(self, commit: str) -> list[str]:
        """The notes of every compose made from a definitions commit (full hash), oldest first."""
        rows = self.db.execute(
            'SELECT json FROM composes WHERE "commit" = ? ORDER BY finished, compose_id', (commit,)
        )
        return [str(text) for (text,) in rows]

    def off_branch(self) -> list[tuple[str, str]]:
        """(compose ID, commit) of every compose made off its release's branches (its record's
        `branch` is "")."""
        rows = self.db.execute(
            "SELECT compose_id, \"commit\" FROM composes WHERE json_extract(json, '$.branch') = ''"
        )
        return [(str(cid), str(commit)) for cid, commit in rows]

    def briefs(self) -> list[tuple[str, str, str, str, str, str | None]]:
        """(compose ID, node, status, finished, input digest, pins as JSON for a build) of every
        compose, oldest first: read by SQLite, no note parsed."""
        rows = self.db.execute(
            "SELECT compose_id, node, status, finished, json_extract(json, '$.input_digest'),"
            " CASE WHEN node LIKE 'build:%' THEN json_extract(json, '$.pins') END"
            " FROM composes ORDER BY finished, compose_id"
        )
        return [
            (str(c), str(n), str(s), str(f), str(d), None if p is None else str(p))
            for c, n, s, f, d, p in rows
        ]

    def tags(self) -> dict[str, tuple[str, str]]:
        """Tag (hex) -> (compose ID, node) of every compose indexed."""
        rows = self.db.execute("SELECT tag, compose_id, node FROM composes")
        return {str(tag): (str(cid), str(node)) for tag, cid, node in rows}

    def records_of(self, nodes: Iterable[str]) -> list[str]:
        """The notes of every compose of these nodes, oldest first (finish time, then ID)."""
        found: list[tuple[str, str, str]] = []
        wanted = sorted(set(nodes))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            found += self.db.execute(
                f"SELECT finished, compose_id, json FROM composes WHERE node IN ({marks})", chunk
            ).fetchall()
        return [str(text) for _, _, text in sorted(found)]

    def find_by_key(
        self,
        node: str,
        key: str,
        statuses: Sequence[str] = ("FINISHED",),
        keep: Callable[[str], bool] | None = None,
    ) -> str | None:
        """The note of the latest compose of node with this key and the first of `statuses` that
        has one whose files were not collected (`refs/notes/gc`: reusing it would consume files
        that are gone), or None; with `keep`, only a compose whose ID it keeps."""
        for status in statuses:
            rows = self.db.execute(
                "SELECT json, tag, compose_id FROM composes WHERE node = ? AND key = ? AND status = ?"
                " ORDER BY finished DESC, compose_id DESC",
                (node, key, status),
            )
            for text, tag, cid in rows:
                if keep is not None and not keep(str(cid)):
                    continue
                if notes.read_note(self.repo, COLLECTED_REF, str(tag)) is None:
                    return str(text)
        return None
