"""A binary pin's compose key, resolved: the NEVRA and sha256 of every RPM it brings.

`resolve` is a binary pin node as composed now: its definition gains its RPMs' checksums, as
its sources list them (`compose.sources.SourceReader.locate`), so its compose key is its RPMs'
checksums, and the same bytes from another source compose nothing. A build its sources no
longer hold (Koji repositories expire, `latest` moves, mirrors prune), or whose sources do not
answer, is taken from the node's latest good compose, whose lineage record names every RPM:
its RPMs come from the artifact store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

from pipeline.compose.sources import Found, SourceReader, pin_sources
from pipeline.core import consistency, definitions
from pipeline.core.canonical import canonical_json
from pipeline.core.errors import Diagnostic
from pipeline.core.graph import Node
from pipeline.core.kinds import BINARY
from pipeline.core.model import Definitions
from pipeline.core.records import Record
from pipeline.core.sources import Problem, availability_problems, release_arches
from pipeline.workspace import WORKTREE, Workspace

log = logging.getLogger("factory.sources")


def resolve(node: Node, defs: Definitions, reader: SourceReader, previous: Record | None) -> Node | str:
    """A binary pin node as composed now, its definition holding the NEVRA and sha256 of each RPM
    it brings (from its sources, else from its latest good compose: `previous`); or why not."""
    definition = node.definition
    build, arches = str(definition["build"]), [str(a) for a in definition["arches"]]
    located = reader.locate(build, pin_sources(defs, build), arches)
    if isinstance(located, Found):
        return _with(node, located.key())
    if previous is not None and previous.upstream:
        log.warning("%s: %s: taken from the artifact store (%s)", node.id, located.why, previous.compose_id)
        return with_recorded_rpms(node, previous)
    return f"{located.why}; the artifact store has no compose of {node.id}"


def with_recorded_rpms(node: Node, record: Record) -> Node:
    """A binary pin node resolved to the RPMs a compose of it took (its lineage record's)."""
    return _with(node, sorted([u.nevra, u.sha256] for u in record.upstream))


def _with(node: Node, rpms: list[list[str]]) -> Node:
    return replace(node, definition_json=canonical_json({**node.definition, "rpms": rpms}))


def stored_builds(latest: Mapping[str, str], has_manifest: Collection[str]) -> set[str]:
    """The builds with a compose in the artifact store: binary nodes whose latest good compose's
    manifest the store holds (`has_manifest`: compose IDs)."""
    return {
        node.removeprefix("binary:")
        for node, compose_id in latest.items()
        if BINARY.of(node) and compose_id in has_manifest
    }


def check(
    defs: Definitions, reader: SourceReader, stored: Collection[str], has_file: Callable[[str], bool]
) -> tuple[list[consistency.Problem], list[consistency.Problem]]:
    """(errors, warnings) of the binary pins and sources against what the sources hold now (each
    read for every arch of the release) and the builds the artifact store holds (`stored`);
    `has_file` says whether a path is in the definitions tree (a source's gpgkey)."""
    arches = release_arches(v.arches for v in defs.live_variants().values())
    live = list(defs.live_modules().values())
    pins = consistency.binary_pins(live, arches)
    named = {s.name: s for s in defs.config.sources}
    errors, warnings = availability_problems(named, defs.config.path, pins, reader.answers(arches), stored)
    for source in defs.config.sources:
        if source.gpgkey and "://" not in source.gpgkey and not has_file(source.gpgkey):
            errors.append(
                Problem(
                    defs.config.path,
                    ("sources", source.name, "gpgkey"),
                    "missing-gpgkey",
                    f"source {source.name}: its gpgkey {source.gpgkey} is not in this repository",
                )
            )
    return consistency.from_sources(errors), consistency.from_sources(warnings)


def validate(
    ws: Workspace, defs: Definitions, rev: str, env: Mapping[str, str]
) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """`factory validate`'s look at the binary package sources of a revision: (errors, warnings)
    placed in their files. A build counts as in the artifact store when its node's latest good
    compose (of the release) has its manifest there."""
    from pipeline.artifacts.store import open_store
    from pipeline.records.lineage import Lineage
    from pipeline.transfer import store_url

    reader = SourceReader(defs.config, ws.root, env)
    latest = {n: c for n, c in Lineage(ws.root, defs.config.release.version).latest().items() if BINARY.of(n)}
    held: set[str] = set()
    if latest:
        store = open_store(store_url(defs.config.store, env), root=ws.root, env=env)
        held = {c for c in latest.values() if store.has(c)}
    if rev == WORKTREE:

        def has_file(path: str) -> bool:
            return (ws.root / path).is_file()
    else:
        from pipeline.git import repo as gitrepo

        def has_file(path: str) -> bool:
            return gitrepo.file_at(ws.repo, rev, path) is not None

    errors, warnings = check(defs, reader, stored_builds(latest, held), has_file)
    files = ws.files(rev)
    return definitions.placed(files, errors), definitions.placed(files, warnings, "warning")
