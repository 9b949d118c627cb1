"""Advisories: the updates an `updateinfo.xml` announces (id, type, severity, CVEs, packages),
as values, and the pure choices made with them. No I/O.

A source's advisories follow its packages into factory's repositories: a module or variant repo
carries every advisory whose package list names an RPM it ships, with the list cut to the
NEVRAs it ships (`shipped_in`). Package checksums (`<sum>`) are not kept: factory re-signs
the RPMs it releases, so an upstream checksum would be stale in the released repository.
`tools.updateinfo` reads and writes the XML with createrepo_c.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

# The severities of a security advisory, most urgent first (Fedora's and Red Hat's words).
SEVERITIES = ("Critical", "Important", "Moderate", "Low")


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference of an advisory: a CVE, a bug, a web page."""

    id: str
    type: str  # cve, bugzilla, self, ...
    href: str = ""
    title: str = ""


@dataclass(frozen=True, slots=True)
class AdvisoryPackage:
    """One package an advisory names: its NEVRA parts, its file name and its source RPM."""

    name: str
    epoch: int
    version: str
    release: str
    arch: str
    filename: str = ""
    src: str = ""  # the source RPM's file name

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.epoch}:{self.version}-{self.release}.{self.arch}"


@dataclass(frozen=True, slots=True)
class PackageList:
    """A package list of an advisory (`<collection short=...>`)."""

    short: str
    name: str
    packages: tuple[AdvisoryPackage, ...]


@dataclass(frozen=True, slots=True)
class Advisory:
    """One `<update>` of an updateinfo.xml. Times are as the file writes them (`YYYY-MM-DD hh:mm:ss`)."""

    id: str
    type: str  # security, bugfix, enhancement, newpackage
    title: str = ""
    severity: str = ""
    status: str = ""
    version: str = ""
    release: str = ""
    issued: str = ""
    updated: str = ""
    summary: str = ""
    description: str = ""
    rights: str = ""
    from_: str = ""
    solution: str = ""
    reboot_suggested: bool = False
    references: tuple[Reference, ...] = ()
    collections: tuple[PackageList, ...] = ()

    @property
    def cves(self) -> tuple[str, ...]:
        """The CVE ids it references, sorted."""
        return tuple(sorted({r.id for r in self.references if r.type == "cve" and r.id}))

    @property
    def packages(self) -> tuple[AdvisoryPackage, ...]:
        return tuple(p for c in self.collections for p in c.packages)

    def names(self, nevras: Collection[str]) -> bool:
        """Whether its package list names one of these NEVRAs."""
        return any(p.nevra in nevras for p in self.packages)

    def names_build(self, srpm: str) -> bool:
        """Whether its package list names an RPM of the build whose source RPM is `srpm`."""
        return any(p.src == srpm for p in self.packages)


def shipped_in(advisories: Iterable[Advisory], nevras: Collection[str]) -> tuple[Advisory, ...]:
    """The advisories naming a shipped NEVRA, each with its package lists cut to those NEVRAs
    (collections left empty dropped), each id once (the first seen wins), sorted by id."""
    found: dict[str, Advisory] = {}
    for advisory in advisories:
        if advisory.id in found or not advisory.names(nevras):
            continue
        cut = tuple(
            replace(c, packages=tuple(p for p in c.packages if p.nevra in nevras))
            for c in advisory.collections
        )
        found[advisory.id] = replace(advisory, collections=tuple(c for c in cut if c.packages))
    return tuple(found[i] for i in sorted(found))


def naming_build(advisories: Iterable[Advisory], srpm: str) -> tuple[Advisory, ...]:
    """The advisories whose package list names an RPM of a build (by its source RPM file name),
    sorted: security first by severity (Critical, Important, Moderate, Low, other), then by id."""
    return tuple(sorted((a for a in advisories if a.names_build(srpm)), key=urgency))


def urgency(advisory: Advisory) -> tuple[int, int, str]:
    """A sort key: security advisories first, the most severe first; then by id."""
    security = 0 if advisory.type == "security" else 1
    severity = SEVERITIES.index(advisory.severity) if advisory.severity in SEVERITIES else len(SEVERITIES)
    return (security, severity, advisory.id)


def to_json(advisory: Advisory) -> dict[str, Any]:
    """An advisory as JSON data (what a source's cached reading and its history hold)."""
    return {
        "id": advisory.id,
        "type": advisory.type,
        "title": advisory.title,
        "severity": advisory.severity,
        "status": advisory.status,
        "version": advisory.version,
        "release": advisory.release,
        "issued": advisory.issued,
        "updated": advisory.updated,
        "summary": advisory.summary,
        "description": advisory.description,
        "rights": advisory.rights,
        "from": advisory.from_,
        "solution": advisory.solution,
        "reboot_suggested": advisory.reboot_suggested,
        "references": [[r.id, r.type, r.href, r.title] for r in advisory.references],
        "collections": [
            {
                "short": c.short,
                "name": c.name,
                "packages": [
                    [p.name, p.epoch, p.version, p.release, p.arch, p.filename, p.src] for p in c.packages
                ],
            }
            for c in advisory.collections
        ],
    }


def from_json(data: Mapping[str, Any]) -> Advisory:
    """The advisory `to_json` wrote (KeyError, TypeError or ValueError when it is not one)."""
    return Advisory(
        id=str(data["id"]),
        type=str(data["type"]),
        title=str(data["title"]),
        severity=str(data["severity"]),
        status=str(data["status"]),
        version=str(data["version"]),
        release=str(data["release"]),
        issued=str(data["issued"]),
        updated=str(data["updated"]),
        summary=str(data["summary"]),
        description=str(data["description"]),
        rights=str(data["rights"]),
        from_=str(data["from"]),
        solution=str(data["solution"]),
        reboot_suggested=bool(data["reboot_suggested"]),
        references=tuple(Reference(str(i), str(t), str(h), str(x)) for i, t, h, x in data["references"]),
        collections=tuple(
            PackageList(
                str(c["short"]),
                str(c["name"]),
                tuple(
                    AdvisoryPackage(str(n), int(e), str(v), str(r), str(a), str(f), str(s))
                    for n, e, v, r, a, f, s in c["packages"]
                ),
            )
            for c in data["collections"]
        ),
    )
