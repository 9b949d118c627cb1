"""Composer of `binary` nodes: a build made elsewhere, taken from its source. No rpmbuild.

The node's definition (resolved by `engine.sources.resolve`) names the build, its arches and
the NEVRA and sha256 of every RPM it brings. Each RPM is taken from the node's previous compose
when that holds the same bytes (the executor fetched them from the artifact store), otherwise
downloaded from the source with librepo, and then checked:

- against the sha256 the source's primary.xml gives it (librepo checks while downloading, and
  the file is hashed again here), and against its NEVRA as its own header says it;
- when the source has a `gpgkey`, against that key alone (`rpmkeys --checksig` with a keyring
  holding only it): an unsigned RPM, or one signed by another key, fails the compose.

A failure names the RPM, the source, its URL and the reason; nothing is recorded FINISHED.
Layout of the compose's work directory:

    rpms/*.rpm            the build's binary RPMs (its arches and noarch; no debug packages)
    source/*.src.rpm      its source RPM, when a source of its chain has a source_baseurl
    upstream.json         where each RPM came from (`core.upstream`), as its lineage note says
    updateinfo.xml        the advisories of its sources naming its RPMs, cut to them (if any)

Each RPM's mtime is its build time, so repodata made from it comes out the same every time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline.compose.base import Job, describe_tree
from pipeline.compose.links import link
from pipeline.compose.sources import Found, Located, SourceReader, pin_sources
from pipeline.core.advisories import Advisory, shipped_in
from pipeline.core.errors import OperationFailed
from pipeline.core.records import OutputFile
from pipeline.core.upstream import UNSIGNED, UPSTREAM_JSON, UpstreamRpm, read_upstream, upstream_json
from pipeline.git import repo as gitrepo
from pipeline.tools import rpmkeys, rpmlib, updateinfo, yumrepo

RPMS = "rpms"
SOURCE = "source"
UPDATEINFO = "updateinfo.xml"


class BinaryComposer:
    """Takes the RPMs of a build made elsewhere into the artifact store, checked."""

    kind = "binary"
    format = 1  # bump when what this composer makes from the same inputs changes

    def tools(self) -> Mapping[str, str]:
        """createrepo_c's library (it writes updateinfo.xml), with its version."""
        return {"createrepo_c-python": updateinfo.version()}

    def upstream(self, job: Job) -> tuple[UpstreamRpm, ...]:
        """Where each RPM of a finished compose came from (what its lineage note records)."""
        return read_upstream((job.workdir / UPSTREAM_JSON).read_text(encoding="utf-8"))[0]

    def compose(self, job: Job) -> list[OutputFile]:
        """Take, check and lay out the build's RPMs in job.workdir."""
        definition = job.node.definition
        build = str(definition["build"])
        wanted = {str(nevra): str(sha) for nevra, sha in definition["rpms"]}
        reader = SourceReader(job.defs.config, job.source_root, os.environ)
        kept, kept_notes, no_source = _previous(job)
        located = reader.locate(build, pin_sources(job.defs, build), [str(a) for a in definition["arches"]])
        offered = {r.package.nevra: r for r in located.rpms} if isinstance(located, Found) else {}
        entries: list[UpstreamRpm] = []
        downloads: list[tuple[Located, Path]] = []
        for nevra, sha256 in sorted(wanted.items()):
            place = job.workdir / (SOURCE if nevra.endswith(".src") else RPMS)
            if sha256 in kept:
                path, entry = kept[sha256]
                link(path, place / path.name)
                entries.append(entry)
            elif nevra in offered and offered[nevra].package.sha256 == sha256:
                downloads.append((offered[nevra], place / offered[nevra].package.filename))
            else:
                where = located.why if not isinstance(located, Found) else f"its sources hold {nevra} no more"
                raise OperationFailed(
                    f"{job.node.id}: {nevra} (sha256 {sha256[:16]}…) is neither in the artifact store nor "
                    f"in its sources: {where}",
                    code="build-not-found",
                )
        entries += _download(job, reader, downloads)
        for entry in entries:
            path = _path_of(job.workdir, entry)
            _check_header(path, entry)
        notes = [*kept_notes]
        if isinstance(located, Found):
            no_source = located.no_source
            notes += _advisories(reader, located)
        shipped = {e.nevra for e in entries}
        chosen = shipped_in(notes, shipped)
        if chosen:
            (job.workdir / UPDATEINFO).write_text(updateinfo.dump(chosen), encoding="utf-8")
        (job.workdir / UPSTREAM_JSON).write_text(upstream_json(tuple(entries), no_source), encoding="utf-8")
        return describe_tree(job.output_dir, job.workdir)


def _previous(job: Job) -> tuple[dict[str, tuple[Path, UpstreamRpm]], list[Advisory], str]:
    """The RPMs of the node's previous compose by sha256 (files the executor fetched from the
    store), with their entries; its advisories; its no-source statement."""
    if job.previous is None:
        return {}, [], ""
    files = {o.path.rsplit("/", 1)[-1]: job.input_path(o) for o in job.previous.outputs}
    record = files.get(UPSTREAM_JSON)
    if record is None or not record.is_file():
        return {}, [], ""
    entries, no_source = read_upstream(record.read_text(encoding="utf-8"))
    kept = {}
    for entry in entries:
        path = files.get(entry.filename)
        if path is not None and path.is_file() and _sha256(path) == entry.sha256:
            kept[entry.sha256] = (path, entry)
    notes = files.get(UPDATEINFO)
    return kept, list(updateinfo.read(notes)) if notes is not None and notes.is_file() else [], no_source


def _download(job: Job, reader: SourceReader, downloads: list[tuple[Located, Path]]) -> list[UpstreamRpm]:
    """Download, hash and check the signatures of RPMs; their entries (OperationFailed naming the
    RPM, source, URL and reason for the first that does not check out)."""
    if not downloads:
        return []
    with tempfile.TemporaryDirectory(prefix="factory-download-", dir=job.workdir.parent) as scratch:
        staged = {d: Path(scratch) / d.package.filename for d, _ in downloads}
        targets = [
            yumrepo.Download(
                reader.read_url(d.state.source, d.state.arch), d.package.location, d.package.sha256, path
            )
            for d, path in staged.items()
        ]
        failed = yumrepo.download(targets, job.source_root)
        for d, path in staged.items():
            if path in failed:
                raise _refused(
                    job,
                    d,
                    f"it could not be downloaded or its sha256 is not the one primary.xml gives: {failed[path]}",
                )
            actual = _sha256(path)
            if actual != d.package.sha256:
                raise _refused(job, d, f"its sha256 is {actual}, primary.xml says {d.package.sha256}")
        keys = _keys(job, reader, {d.state.source for d in staged}, Path(scratch))
        headers = {d: rpmlib.header(path) for d, path in staged.items()}
        for source, key in keys.items():
            mine = {d: p for d, p in staged.items() if d.state.source == source}
            checked = rpmkeys.checksig([key], list(mine.values()))
            for d, path in mine.items():
                if not checked[path].ok:
                    raise _refused(
                        job,
                        d,
                        f"{checked[path].reason()}: source {source} takes only RPMs signed by its gpgkey",
                    )
        entries = []
        for d, final in downloads:
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staged[d], final)
            entries.append(_entry(d, headers[d].key_id or UNSIGNED))
    return entries


def _keys(job: Job, reader: SourceReader, sources: Iterable[str], scratch: Path) -> dict[str, Path]:
    """The armored gpgkey of each source that has one: a path in the definitions commit composed
    (the worktree when composing no commit), or a URL downloaded with librepo."""
    found = {}
    for name in sorted(sources):
        key = reader.source(name).gpgkey
        if not key:
            continue
        path = scratch / f"{name}.gpgkey"
        if "://" in key:
            yumrepo.fetch_file(key, path, job.source_root)
        else:
            path.write_bytes(_key_bytes(job, name, key))
        found[name] = path
    return found


def _key_bytes(job: Job, source: str, key: str) -> bytes:
    data = gitrepo.file_at(gitrepo.open_repo(job.source_root), job.commit, key) if job.commit else None
    if data is None and not job.commit and (job.source_root / key).is_file():
        data = (job.source_root / key).read_bytes()
    if data is None:
        raise OperationFailed(
            f"source {source}: its gpgkey {key} is not in the definitions"
            + (f" at {job.commit[:12]}" if job.commit else ""),
            code="missing-gpgkey",
        )
    return data


def _advisories(reader: SourceReader, located: Found) -> list[Advisory]:
    """The advisories of the repositories the build's RPMs were found in."""
    seen: set[tuple[str, str]] = set()
    notes: list[Advisory] = []
    for item in located.rpms:
        where = (item.state.source, item.state.arch)
        if where not in seen:
            seen.add(where)
            notes += reader.repository(*where).advisories
    return notes


def _entry(d: Located, key: str) -> UpstreamRpm:
    state = d.state
    return UpstreamRpm(
        source=state.source,
        url=d.url,
        nevra=d.package.nevra,
        sha256=d.package.sha256,
        key=key,
        repomd_revision=state.revision,
        repomd_sha256=state.repomd_sha256,
        koji=state.koji,
        via=d.via,
    )


def _check_header(path: Path, entry: UpstreamRpm) -> None:
    """The RPM says it is what primary.xml listed; its mtime becomes its build time."""
    header = rpmlib.header(path)
    if header.nevra != entry.nevra:
        raise OperationFailed(
            f"RPM {path.name} from source {entry.source} ({entry.url}): its header says {header.nevra}, "
            f"primary.xml lists {entry.nevra}",
            code="rpm-mismatch",
        )
    if os.stat(path).st_nlink == 1:  # a hard link shares its mtime with the store's blob: leave it
        os.utime(path, (header.buildtime, header.buildtime))


def _path_of(workdir: Path, entry: UpstreamRpm) -> Path:
    return workdir / (SOURCE if entry.nevra.endswith(".src") else RPMS) / entry.filename


def _refused(job: Job, d: Located, reason: str) -> OperationFailed:
    return OperationFailed(
        f"{job.node.id}: RPM {d.package.filename} from source {d.state.source} ({d.url}): {reason}",
        code="rpm-refused",
    )


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()
