"""librepo (the library dnf downloads with) and createrepo_c's parser: a binary package source's
repository of one arch, read into a `core.packages.Repository`, and its packages downloaded.

Reading a repository asks for its repomd.xml first; its sha256 names the cached reading
(`.factory/cache/sources/<sha256>.json`: the packages of primary.xml and the advisories of
updateinfo.xml, parsed once), so a repository that did not change is never parsed twice. A
reading no run used for a week is removed when another is written. Only
when the cache has no reading are primary.xml and updateinfo.xml fetched (librepo checks them
against the checksums repomd.xml lists) and parsed (`cr.xml_parse_primary`, `cr.UpdateInfo`).

How a failure reads: a repository that cannot be reached (no connection, a name that does not
resolve, an HTTP 5xx, a local directory that does not exist: an NFS mount not mounted here)
is `SourceUnreachable`; one that answered with something that is not a sound yum repository
(an HTTP 404, no repodata, a checksum that does not match, XML that does not parse) is
`SourceBroken`. URLs are http(s), file, or paths relative to the definitions repository.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import createrepo_c as cr
import librepo

from pipeline.core import advisories
from pipeline.core.errors import OperationFailed
from pipeline.core.packages import KojiRepo, Package, Repository, RepoState
from pipeline.tools import updateinfo

CACHE = Path(".factory") / "cache" / "sources"  # relative to the definitions repository
CACHE_FORMAT = 1
KEEP_SECONDS = 7 * 24 * 3600  # a reading no run used for a week is removed
TIMEOUT = 30  # seconds to connect
UNREACHABLE = frozenset({librepo.LRE_CURL, librepo.LRE_CURLM, librepo.LRE_TEMPORARYERR})


class SourceUnreachable(OperationFailed):
    """The repository did not answer: nothing can be said of what it holds."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unreachable-source")


class SourceBroken(OperationFailed):
    """The repository answered with something that is not a sound yum repository."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="broken-source")


def librepo_url(url: str, root: Path) -> str:
    """The URL librepo reads: http(s) and file URLs as they are, a path as a file URL (relative
    paths against the definitions repository)."""
    if "://" in url:
        return url
    path = Path(url)
    return (path if path.is_absolute() else root / path).resolve().as_uri()


@dataclass(frozen=True, slots=True)
class Where:
    """A repository to read: the source and arch it is for, the URL it is read from, where Koji's
    repo.json would be (None: not a Koji layout), and its URL as factory.yaml names it (`shown`,
    what records keep; "" when it is the one read)."""

    source: str
    arch: str
    url: str
    repo_json: str | None = None
    shown: str = ""


def read(where: Where, *, root: Path, cache: Path) -> Repository:
    """The repository at where.url as it is now: its state, packages and advisories."""
    location = librepo_url(where.url, root)
    with tempfile.TemporaryDirectory(prefix="factory-source-") as scratch:
        repomd = _fetch(where, location, Path(scratch) / "repomd", [])["repomd"]
        digest = _sha256(Path(repomd))
        known = _cached(cache, digest)
        if known is None:
            found = _fetch(where, location, Path(scratch) / "all", ["primary", "updateinfo"])
            digest = _sha256(Path(found["repomd"]))  # the repository may have moved meanwhile
            known = _parse(where, found)
            _store(cache, digest, known)
    revision, packages, notes = known
    koji = _koji(where, root) if where.repo_json else None
    state = RepoState(where.source, where.arch, where.shown or where.url, revision, digest, koji)
    return Repository(state, packages, notes)


def _fetch(where: Where, location: str, destdir: Path, wanted: list[str]) -> dict[str, Any]:
    """librepo's download of repomd.xml and the `wanted` metadata; its paths by type."""
    if location.startswith("file://"):
        directory = Path(location.removeprefix("file://"))
        if not directory.is_dir():
            raise SourceUnreachable(f"{_label(where)}: {where.url} does not exist here")
    destdir.mkdir(parents=True, exist_ok=True)
    handle = _handle(location)
    handle.destdir = str(destdir)
    handle.yumdlist = wanted
    handle.local = location.startswith("file://")
    result = librepo.Result()
    try:
        handle.perform(result)
    except librepo.LibrepoException as exc:
        code, message = exc.args[0], str(exc.args[1])
        if code in UNREACHABLE or "Status code: 5" in message:
            raise SourceUnreachable(f"{_label(where)}: {where.url} cannot be reached: {message}") from exc
        raise SourceBroken(f"{_label(where)}: {where.url} is no sound yum repository: {message}") from exc
    except OSError as exc:  # librepo reads a local repository itself, and says so with an OSError
        raise SourceBroken(f"{_label(where)}: {where.url} is no yum repository: {exc}") from exc
    found: dict[str, Any] = result.getinfo(librepo.LRR_YUM_REPO)
    return found


def _handle(location: str) -> Any:
    handle = librepo.Handle()
    handle.repotype = librepo.YUMREPO
    handle.urls = [location]
    handle.interruptible = False  # composes read sources in worker threads
    handle.maxmirrortries = 1
    handle.allowedmirrorfailures = 1
    handle.connecttimeout = TIMEOUT
    return handle


def _parse(
    where: Where, found: dict[str, Any]
) -> tuple[str, tuple[Package, ...], tuple[advisories.Advisory, ...]]:
    repomd = cr.Repomd(found["repomd"])
    revision = str(repomd.revision or "")
    primary = found.get("primary")
    if not primary:
        raise SourceBroken(f"{_label(where)}: {where.url} lists no primary metadata in repomd.xml")
    packages: list[Package] = []
    kinds: set[str] = set()
    add = packages.append

    def take(p: Any) -> bool:
        kinds.add(p.checksum_type)
        add(
            Package(
                p.name,
                int(p.epoch or 0),
                p.version,
                p.release,
                p.arch,
                p.rpm_sourcerpm or "",
                p.location_href,
                p.pkgId,
                p.size_package or 0,
            )
        )
        return True

    try:
        cr.xml_parse_primary(primary, pkgcb=take, do_files=False)
    except cr.CreaterepoCError as exc:
        raise SourceBroken(f"{_label(where)}: {where.url}: primary.xml does not parse: {exc}") from exc
    if kinds - {"sha256"}:
        raise SourceBroken(
            f"{_label(where)}: {where.url} lists {', '.join(sorted(kinds - {'sha256'}))} checksums: "
            "factory checks every RPM against a sha256"
        )
    notes: tuple[advisories.Advisory, ...] = ()
    if found.get("updateinfo"):
        try:
            notes = updateinfo.read(Path(found["updateinfo"]))
        except OperationFailed as exc:
            raise SourceBroken(f"{_label(where)}: {where.url}: {exc.message}") from exc
    return revision, tuple(packages), notes


def _koji(where: Where, root: Path) -> KojiRepo | None:
    """What Koji's repo.json beside the repository says (tag, repo id, event); None without one."""
    assert where.repo_json is not None
    with tempfile.TemporaryFile() as handle:
        try:
            librepo.download_url(librepo_url(where.repo_json, root), handle.fileno(), _handle(where.url))
        except (librepo.LibrepoException, OSError):
            return None
        handle.seek(0)
        try:
            data = json.loads(handle.read())
            return KojiRepo(str(data["tag"]), int(data["id"]), int(data["event_id"]))
        except (ValueError, KeyError, TypeError):
            return None


def _label(where: Where) -> str:
    return f"source {where.source} ({where.arch})"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the cache of readings, by repomd.xml's sha256 ------------------------------------------------

_Reading = tuple[str, tuple[Package, ...], tuple[advisories.Advisory, ...]]


def _cached(cache: Path, digest: str) -> _Reading | None:
    path = cache / f"{digest}.json"
    try:
        data = json.loads(path.read_bytes())
        os.utime(path)  # in use: kept by _prune
        if data["format"] != CACHE_FORMAT:
            return None
        packages = tuple(map(Package._make, data["packages"]))
        notes = tuple(advisories.from_json(a) for a in data["advisories"])
        return str(data["revision"]), packages, notes
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or a damaged one: read the repository again


def _store(cache: Path, digest: str, reading: _Reading) -> None:
    revision, packages, notes = reading
    data = {
        "format": CACHE_FORMAT,
        "revision": revision,
        "packages": packages,  # named tuples: JSON arrays, in field order
        "advisories": [advisories.to_json(a) for a in notes],
    }
    cache.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=cache, prefix=f".{digest}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(
            json.dumps(data, separators=(",", ":"))
        )  # one call: json's C encoder, not its streaming one
    os.replace(temporary, cache / f"{digest}.json")
    _prune(cache)


def _prune(cache: Path) -> None:
    """Forget the readings no run has used for KEEP_SECONDS (a repository that moved on)."""
    oldest = time.time() - KEEP_SECONDS
    for path in cache.glob("*.json"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < oldest:
                path.unlink()


# -- packages --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Download:
    """One package to download: from the repository at `url` (as librepo reads it), its location
    there and the sha256 primary.xml gives it, into `dest`."""

    url: str
    location: str
    sha256: str
    dest: Path


def download(targets: Sequence[Download], root: Path) -> dict[Path, str]:
    """Download packages with librepo, each checked against its sha256; why each that failed did
    (by destination; empty when all arrived). A file that failed is not left behind."""
    if not targets:
        return {}
    made = []
    for target in targets:
        target.dest.parent.mkdir(parents=True, exist_ok=True)
        base = librepo_url(target.url, root).rstrip("/") + "/"
        made.append(
            librepo.PackageTarget(
                target.location,
                dest=str(target.dest),
                checksum_type=librepo.SHA256,
                checksum=target.sha256,
                base_url=base,
                handle=_handle(base),
            )
        )
    try:
        librepo.download_packages(made, failfast=False)
    except librepo.LibrepoException as exc:  # every target carries its own error too
        if not any(t.err for t in made):
            raise OperationFailed(
                f"librepo could not download: {exc.args[1]}", code="download-failed"
            ) from exc
    failed = {Path(t.dest): str(t.err) for t in made if t.err}
    for path in failed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return failed


def fetch_file(url: str, dest: Path, root: Path) -> None:
    """Download one file (a key named by URL) with librepo; SourceUnreachable when it cannot."""
    with dest.open("w+b") as out:  # librepo fdopen()s it for reading and writing
        try:
            librepo.download_url(librepo_url(url, root), out.fileno(), _handle(url))
        except (librepo.LibrepoException, OSError) as exc:
            raise SourceUnreachable(f"{url} cannot be downloaded: {exc}") from exc
