"""Compose records: compose IDs, node refs and the lineage record of one compose. Pure: no I/O.

A compose ID is productmd's (`FL-42-base-runtime-f42-20261121.n.0`); a node ref is the legal
Git ref suffix of a node id; a `Record` is what one compose was made from and what it made, the
body of its lineage note (canonical JSON), and `check_record` says whether it may be written.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from pipeline.core.canonical import canonical_json, digest
from pipeline.core.errors import InvalidInput
from pipeline.core.states import ComposeStatus
from pipeline.core.upstream import UpstreamRpm

_T = TypeVar("_T")

# The statuses a compose can be recorded with: PENDING is composed, waiting for check results.
ENDED = (ComposeStatus.FINISHED, ComposeStatus.FAILED, ComposeStatus.PENDING)

# productmd's compose types and their letters in a compose ID: production has none.
COMPOSE_TYPES = {"nightly": "n", "test": "t", "ci": "ci", "production": ""}
PRODUCTION = "production"
RECORD_FORMAT = 2  # 2: the manifest of the compose's files in the artifact store
READ_FORMATS = (1, 2)  # notes written by older factories stay readable (format 1: no manifest)

_SEGMENT = r"[A-Za-z0-9](?:[A-Za-z0-9_+]|\.(?!\.))*"  # no '-', no '..', no trailing '.'
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9_+-]|\.(?!\.))*"
_ID_RE = re.compile(
    rf"(?P<short>{_SEGMENT})-(?P<version>{_SEGMENT})-(?P<name>{_NAME})-(?P<date>\d{{8}})"
    r"(?:\.(?P<type>n|t|ci))?\.(?P<respin>0|[1-9]\d*)"
)
_HEX_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_TYPE_NAMES = {abbrev: name for name, abbrev in COMPOSE_TYPES.items()}


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One file a compose made: path relative to the output directory, size, sha256."""

    path: str
    size: int
    sha256: str


# -- compose IDs and node refs -------------------------------------------------------------------


class ComposeIdParts(NamedTuple):
    """The parts of a compose ID; `type_` is a key of COMPOSE_TYPES."""

    short: str
    version: str
    name: str
    date: str
    type_: str
    respin: int


def compose_name(node_id: str) -> str:
    """The node part of a compose ID: openssl-79554528, base-runtime-f42, Server, Cloud-base,
    glibc-2.41-11.fc42 (a character a compose ID cannot hold, such as an NVR's `~`, becomes `_`)."""
    rest = node_id.split(":", 1)[1]
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", rest.replace(":", "-").replace("@", "-").replace("/", "-"))


def compose_id(short: str, version: str, name: str, date: str, type_: str, respin: int) -> str:
    """The productmd-style compose ID: `FL-42-base-runtime-f42-20261121.n.0`, `FL-42-Server-20261121.0`.

    productmd's compose ID of the release (`ComposeInfo.create_compose_id`: `FL-42-20261121.n.0`,
    what `pipeline.core.runs` names a run by) with the node's name after the version; `type_` is
    a key of COMPOSE_TYPES; production composes have no type part. The respin counts per node,
    date and type.
    """
    if type_ not in COMPOSE_TYPES:
        raise InvalidInput(f"unknown compose type {type_!r}", code="invalid-compose-id")
    abbrev = COMPOSE_TYPES[type_]
    cid = f"{short}-{version}-{name}-{date}{'.' + abbrev if abbrev else ''}.{respin}"
    if parse_compose_id(cid) != (short, version, name, date, type_, respin):
        raise InvalidInput(f"cannot make a compose ID of {cid!r}", code="invalid-compose-id")
    return cid


def parse_compose_id(cid: str) -> ComposeIdParts:
    """The parts of a compose ID (the inverse of `compose_id`); InvalidInput when it is not one."""
    found = _ID_RE.fullmatch(cid)
    if found is None or not _is_date(found["date"]):
        raise InvalidInput(
            f"not a compose ID: {cid!r}",
            hint="expected SHORT-VERSION-NAME-YYYYMMDD[.TYPE].RESPIN, e.g. FL-42-Server-20261121.n.0",
            code="invalid-compose-id",
        )
    type_ = _TYPE_NAMES[found["type"] or ""]
    return ComposeIdParts(
        found["short"], found["version"], found["name"], found["date"], type_, int(found["respin"])
    )


def is_compose_id(text: str) -> bool:
    """Whether text is a compose ID (`parse_compose_id` takes it)."""
    try:
        parse_compose_id(text)
    except InvalidInput:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        dt.datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-@")
_COLON_KINDS = ("module",)  # kinds whose ids are name:stream; their ':' becomes a path separator


def node_ref(node_id: str) -> str:
    """A legal ref suffix for a node id, reversible with `node_from_suffix`.

    `module:base-runtime:f42` -> `module/base-runtime/f42`, `ostree:AtomicHost/host` ->
    `ostree/AtomicHost/host`, `build:openssl@1a2b3c4d` -> `build/openssl@1a2b3c4d`. Characters
    a ref may not hold (and `%`) are percent-encoded, as is a `.` where git forbids it.
    """
    kind, sep, rest = node_id.partition(":")
    if not sep or not re.fullmatch(r"[a-z][a-z0-9-]*", kind) or not rest:
        raise InvalidInput(f"not a node id: {node_id!r}", code="invalid-node")
    segments = rest.split(":") if kind in _COLON_KINDS else rest.split("/")
    if any(not s for s in segments):
        raise InvalidInput(f"not a node id: {node_id!r}", code="invalid-node")
    return "/".join([kind, *(_escape(s) for s in segments)])


def _escape(segment: str) -> str:
    escaped = "".join(c if c in _SAFE else _percent(c) for c in segment)
    if escaped.startswith(".") or escaped.endswith((".", ".lock")) or ".." in escaped:
        escaped = escaped.replace(".", "%2E")
    return escaped


def _percent(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8"))


def node_from_suffix(suffix: str) -> str:
    """The node id a `node_ref` suffix stands for (`pipeline.records.refs.node_from_ref` takes a
    whole ref name)."""
    kind, sep, rest = suffix.partition("/")
    if not sep or not rest:
        raise InvalidInput(f"not a node ref: {suffix!r}", code="invalid-node")
    joiner = ":" if kind in _COLON_KINDS else "/"
    return f"{kind}:" + joiner.join(_unescape(s) for s in rest.split("/"))


def _unescape(segment: str) -> str:
    return re.sub(
        r"(?:%[0-9A-F]{2})+",
        lambda m: bytes.fromhex(m.group(0).replace("%", "")).decode("utf-8"),
        segment,
    )


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputRef:
    """One input of a compose: the input node, the compose consumed, and its outputs digest."""

    node: str
    compose_id: str
    outputs_digest: str


@dataclass(frozen=True, slots=True)
class Record:
    """What one compose was made from and what it made: the body of its lineage note.

    `key` is the runtime key (what makes a compose skippable), `input_digest` the plan digest
    of the node, `commit` the definitions commit it was made from; `pins` the (component,
    commit) pairs it consumed directly (a build: its one pin; a module: all of its pins).
    Times are ISO 8601 UTC. `manifest` is the sha256 of the manifest of its files in the
    artifact store (`pipeline.core.manifest`), written once they are all there: a FINISHED
    or PENDING compose names one, a FAILED one none ("" also in notes older than format 2).
    `branch` is the release's branch (factory.yaml's `release.branches`) that held `commit` when
    it was composed; "" when none did: a compose off the release's branches (a scratch branch,
    a merge request), which moved no latest-good ref when it was made (a later compose of one
    of the branches with the same key may reuse it, and that makes it latest good); None in
    notes written before factory recorded it (the key is absent). `run` is the run ID of the
    `factory compose` run (or CI pipeline) that made it (`pipeline.core.runs`); "" in notes
    written before runs had IDs (the key is absent). `finish` checks a record before writing
    it; a draft may be incomplete.
    """

    compose_id: str
    node: str
    input_digest: str
    key: str
    commit: str
    inputs: tuple[InputRef, ...]
    pins: tuple[tuple[str, str], ...]
    outputs: tuple[OutputFile, ...]
    outputs_digest: str
    tools: tuple[tuple[str, str], ...]
    started: str
    finished: str
    status: ComposeStatus
    message: str = ""
    # When a PENDING compose was promoted to FINISHED (`factory gate ID --promote`): the record
    # note is rewritten once, with this time; the tag keeps the status it was finished with.
    promoted: str = ""
    manifest: str = ""
    branch: str | None = None
    # A binary pin's compose: where each of its RPMs came from (`pipeline.core.upstream`).
    upstream: tuple[UpstreamRpm, ...] = ()
    run: str = ""

    @property
    def off_branch(self) -> bool:
        """Whether it was composed from a commit on none of its release's branches."""
        return self.branch == ""

    def to_json(self) -> dict[str, Any]:
        """The JSON value of the note (write it with `canonical_json`)."""
        return {
            "format": RECORD_FORMAT,
            "compose_id": self.compose_id,
            "node": self.node,
            "input_digest": self.input_digest,
            "key": self.key,
            "commit": self.commit,
            "inputs": [
                {"node": i.node, "compose_id": i.compose_id, "outputs_digest": i.outputs_digest}
                for i in self.inputs
            ],
            "pins": [[component, commit] for component, commit in self.pins],
            "outputs": [{"path": o.path, "size": o.size, "sha256": o.sha256} for o in self.outputs],
            "outputs_digest": self.outputs_digest,
            "tools": [[name, version] for name, version in self.tools],
            "started": self.started,
            "finished": self.finished,
            "status": self.status,
            "message": self.message,
            # Only promoted records hold the key, so every other note keeps its bytes.
            **({"promoted": self.promoted} if self.promoted else {}),
            "manifest": self.manifest,
            # Absent in records made before it was recorded: they keep their bytes.
            **({"branch": self.branch} if self.branch is not None else {}),
            **({"upstream": [u.to_json() for u in self.upstream]} if self.upstream else {}),
            **({"run": self.run} if self.run else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        """The record a note holds; InvalidInput(code="invalid-record") when it is not one."""
        reader = _Reader(data)
        version = reader.field("format", int)
        if version not in READ_FORMATS:
            raise InvalidInput(
                f"unsupported lineage record format {data.get('format')!r}", code="invalid-record"
            )
        return cls(
            compose_id=reader.field("compose_id", str),
            node=reader.field("node", str),
            input_digest=reader.field("input_digest", str),
            key=reader.field("key", str),
            commit=reader.field("commit", str),
            inputs=tuple(
                InputRef(r.field("node", str), r.field("compose_id", str), r.field("outputs_digest", str))
                for r in reader.objects("inputs")
            ),
            pins=reader.pairs("pins"),
            outputs=tuple(
                OutputFile(r.field("path", str), r.field("size", int), r.field("sha256", str))
                for r in reader.objects("outputs")
            ),
            outputs_digest=reader.field("outputs_digest", str),
            tools=reader.pairs("tools"),
            started=reader.field("started", str),
            finished=reader.field("finished", str),
            status=reader.status(),
            message=reader.field("message", str),
            promoted=reader.optional("promoted", str),
            manifest=reader.field("manifest", str) if version >= 2 else "",
            branch=reader.field("branch", str) if "branch" in data else None,
            upstream=tuple(
                UpstreamRpm.from_json(item, f"record.upstream[{n}]")
                for n, item in enumerate(reader.field("upstream", list) if "upstream" in data else [])
            ),
            run=reader.optional("run", str),
        )

    def note(self) -> bytes:
        """The bytes of the lineage note: canonical JSON and a newline."""
        return (canonical_json(self.to_json()) + "\n").encode("utf-8")


def outputs_digest(outputs: Sequence[OutputFile]) -> str:
    """sha256 of the canonical JSON of the sorted [[path, sha256], ...] of a compose's outputs."""
    return digest(sorted([o.path, o.sha256] for o in outputs))


class _Reader:
    """Typed access to one JSON object of a note; every mistake is InvalidInput."""

    def __init__(self, data: object, where: str = "record") -> None:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{where}: expected an object", code="invalid-record")
        self.data = data
        self.where = where

    def field(self, name: str, kind: type[_T]) -> _T:
        value = self.data.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InvalidInput(f"{self.where}.{name}: expected {kind.__name__}", code="invalid-record")
        return value

    def optional(self, name: str, kind: type[str]) -> str:
        """A field records before it was introduced do not hold: empty when absent."""
        return self.field(name, kind) if name in self.data else ""

    def status(self) -> ComposeStatus:
        value = self.field("status", str)
        if value not in set(ComposeStatus):
            raise InvalidInput(f"{self.where}.status: unknown status {value!r}", code="invalid-record")
        return ComposeStatus(value)

    def objects(self, name: str) -> list[_Reader]:
        return [_Reader(item, f"{self.where}.{name}[{n}]") for n, item in enumerate(self.field(name, list))]

    def pairs(self, name: str) -> tuple[tuple[str, str], ...]:
        items = self.field(name, list)
        if not all(isinstance(i, list) and len(i) == 2 and all(isinstance(s, str) for s in i) for i in items):
            raise InvalidInput(
                f"{self.where}.{name}: expected [[string, string], ...]", code="invalid-record"
            )
        return tuple((a, b) for a, b in items)


def check_record(record: Record) -> None:
    """Raise InvalidInput unless the record can be written: a finished compose with sound fields."""
    problems = []
    try:
        parse_compose_id(record.compose_id)
    except InvalidInput as exc:
        problems.append(exc.message)
    if record.status not in ENDED:
        problems.append(f"status {record.status!r} is not one of " + ", ".join(ENDED))
    if record.promoted:
        try:
            utc_seconds(record.promoted)
        except InvalidInput as exc:
            problems.append(f"promoted: {exc.message}")
    if not _HEX_RE.fullmatch(record.commit):
        problems.append(f"commit {record.commit!r} is not a full commit hash")
    for label, stamp in (("started", record.started), ("finished", record.finished)):
        try:
            utc_seconds(stamp)
        except InvalidInput as exc:
            problems.append(f"{label}: {exc.message}")
    if record.outputs_digest != outputs_digest(record.outputs):
        problems.append("outputs_digest does not match the outputs")
    if record.manifest and not _SHA256_RE.fullmatch(record.manifest):
        problems.append(f"manifest {record.manifest!r} is not a sha256 in lowercase hex")
    try:
        node_ref(record.node)
    except InvalidInput as exc:
        problems.append(exc.message)
    if problems:
        raise InvalidInput(
            f"lineage record {record.compose_id}: " + "; ".join(problems), code="invalid-record"
        )


def utc_seconds(stamp: str) -> int:
    """Seconds since the epoch of an ISO 8601 UTC time (`2026-11-21T10:00:00Z`)."""
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError as exc:
        raise InvalidInput(f"not an ISO 8601 time: {stamp!r}", code="invalid-record") from exc
    if when.utcoffset() != dt.timedelta(0):
        raise InvalidInput(f"not a UTC time: {stamp!r}", code="invalid-record")
    return int(when.timestamp())


def load_record(data: bytes, where: str) -> Record:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"lineage note of {where} is not JSON: {exc}", code="invalid-record") from exc
    return Record.from_json(value)
