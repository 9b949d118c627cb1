"""The example distribution's upstream source: builds made elsewhere, as a yum repository.

`examples/upstream/upstream.yaml` names the packages (summary, license, arch, subpackages) and
the days of the source: each adds builds (NVRs) and advisories to what the days before it
published. `materialize(description, dest, day)` builds every build published by that day with
rpmbuild (a spec written from the description, SOURCE_DATE_EPOCH of its day, nothing of the
machine in it, so every machine gets the same RPMs) and writes:

    dest/x86_64/   the binary RPMs (x86_64 and noarch), repodata by createrepo_c, and
                   updateinfo.xml: the advisories, written with createrepo_c's API
    dest/src/      the source RPMs and their repodata

What a release engineer would point factory.yaml's `sources:` at (a Koji tag's repository, a
mirror of an updates repository). Rerunning rebuilds dest from scratch.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.advisories import Advisory, AdvisoryPackage, PackageList, Reference
from pipeline.core.errors import InvalidInput
from pipeline.core.packages import split_nvr
from pipeline.tools import createrepo, rpmbuild, rpmlib, updateinfo

ARCH = "x86_64"  # the example's one arch
EPOCH = 1767225600  # 2026-01-01T00:00:00Z: the first day's builds
DAY = 86400
PACKAGER = "Upstream Packager <packager@upstream.example>"
FROM = "updates@upstream.example"


@dataclass(frozen=True, slots=True)
class Package:
    """A source package of the upstream: what every build of it is made from."""

    name: str
    summary: str
    license: str
    arch: str  # x86_64 or noarch
    description: str
    subpackages: tuple[tuple[str, str], ...] = ()  # (name, summary)


@dataclass(frozen=True, slots=True)
class Note:
    """An advisory of a day: its id, type, severity, title, description, CVEs, bugs and builds."""

    id: str
    type: str
    title: str
    builds: tuple[str, ...]
    severity: str = ""
    description: str = ""
    cves: tuple[str, ...] = ()
    bugs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Day:
    name: str
    builds: tuple[str, ...]
    advisories: tuple[Note, ...]


@dataclass(frozen=True, slots=True)
class Upstream:
    packages: Mapping[str, Package]
    days: tuple[Day, ...]

    def day(self, name: str | None) -> int:
        """The index of a day (the first when None); InvalidInput naming the days otherwise."""
        if name is None:
            return 0
        names = [d.name for d in self.days]
        if name not in names:
            raise InvalidInput(f"no day {name!r} (days: {', '.join(names)})", code="unknown-day")
        return names.index(name)


def load(path: Path) -> Upstream:
    """The description in upstream.yaml; InvalidInput naming the file when it is not one."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        packages = {
            name: Package(
                name,
                str(p["summary"]),
                str(p["license"]),
                str(p["arch"]),
                str(p["description"]),
                tuple((str(k), str(v)) for k, v in (p.get("subpackages") or {}).items()),
            )
            for name, p in raw["packages"].items()
        }
        days = tuple(
            Day(
                str(d["name"]),
                tuple(str(b) for b in d["builds"]),
                tuple(
                    Note(
                        str(a["id"]),
                        str(a["type"]),
                        str(a["title"]),
                        tuple(str(b) for b in a["builds"]),
                        str(a.get("severity", "")),
                        str(a.get("description", "")),
                        tuple(str(c) for c in a.get("cves", ())),
                        tuple(str(b) for b in a.get("bugs", ())),
                    )
                    for a in d.get("advisories", ())
                ),
            )
            for d in raw["days"]
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{path}: not an upstream description: {exc}", code="bad-example") from exc
    for day in days:
        for nvr in (*day.builds, *(b for a in day.advisories for b in a.builds)):
            if split_nvr(nvr)[0] not in packages:
                raise InvalidInput(
                    f"{path}: day {day.name}: {nvr} is a build of no package", code="bad-example"
                )
    return Upstream(packages, days)


def spec_text(package: Package, nvr: str, when: int) -> str:
    """The spec file of one build. Paths through $RPM_BUILD_ROOT (a shell variable, never
    expanded into the source RPM's header), no %dist: the RPMs hold nothing of the machine."""
    _, version, release = split_nvr(nvr)
    date = dt.datetime.fromtimestamp(when, dt.UTC).strftime("%a %b %d %Y")
    lines = [
        f"Name: {package.name}",
        f"Version: {version}",
        f"Release: {release}",
        f"Summary: {package.summary}",
        f"License: {package.license}",
        "URL: https://upstream.example/",
        "AutoReqProv: no",
        "%global debug_package %{nil}",
        *(["BuildArch: noarch"] if package.arch == "noarch" else []),
        "",
        "%description",
        package.description,
    ]
    for sub, summary in package.subpackages:
        lines += ["", f"%package -n {sub}", f"Summary: {summary}", "", f"%description -n {sub}", summary]
    lines += ["", "%install", f"mkdir -p $RPM_BUILD_ROOT/usr/share/{package.name}"]
    lines.append(f"echo {nvr} > $RPM_BUILD_ROOT/usr/share/{package.name}/VERSION")
    for sub, _ in package.subpackages:
        lines += [
            f"mkdir -p $RPM_BUILD_ROOT/usr/share/{sub}",
            f"echo {nvr} > $RPM_BUILD_ROOT/usr/share/{sub}/VERSION",
        ]
    lines += ["", "%files", f"/usr/share/{package.name}/VERSION"]
    for sub, _ in package.subpackages:
        lines += ["", f"%files -n {sub}", f"/usr/share/{sub}/VERSION"]
    lines += [
        "",
        "%changelog",
        f"* {date} {PACKAGER} - {version}-{release}",
        f"- Build {version}-{release}",
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Published:
    """What materialize wrote: the day, the builds and the advisories the repository holds."""

    day: str
    builds: tuple[str, ...]
    advisories: tuple[str, ...]


def materialize(description: Path, dest: Path, day: str | None = None) -> Published:
    """Build what the upstream published by `day` (the first when None) into dest (made anew)."""
    upstream = load(description)
    last = upstream.day(day)
    days = upstream.days[: last + 1]
    built_on = {nvr: i for i, d in enumerate(days) for nvr in d.builds}
    binary, source = dest / ARCH, dest / "src"
    with tempfile.TemporaryDirectory(prefix="factory-upstream-") as scratch:
        rpms: dict[str, list[Path]] = {}
        for nvr, i in built_on.items():
            rpms[nvr] = _build(upstream.packages[split_nvr(nvr)[0]], nvr, EPOCH + DAY * i, Path(scratch))
        for directory in (binary, source):
            if directory.exists():
                shutil.rmtree(directory)
            directory.mkdir(parents=True)
        for paths in rpms.values():
            for path in paths:
                shutil.copy2(path, (source if path.name.endswith(".src.rpm") else binary) / path.name)
        notes = [_advisory(n, EPOCH + DAY * i, rpms) for i, d in enumerate(days) for n in d.advisories]
        info = Path(scratch) / "updateinfo.xml"
        info.write_text(updateinfo.dump(notes), encoding="utf-8")
        revision = EPOCH + DAY * last
        createrepo.make_repo(binary, revision, [createrepo.Metadata(info, "updateinfo")])
        createrepo.make_repo(source, revision)
    return Published(days[-1].name, tuple(built_on), tuple(n.id for d in days for n in d.advisories))


def _build(package: Package, nvr: str, when: int, scratch: Path) -> list[Path]:
    """The RPM files of one build (binary ones and the source RPM), built under scratch."""
    layout = rpmbuild.Layout.under(scratch / nvr)
    spec = layout.sourcedir / f"{package.name}.spec"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(spec_text(package, nvr, when), encoding="utf-8")
    rpmbuild.build(spec, layout, "%{nil}", when, scratch / f"{nvr}.log")
    return sorted([*layout.rpmdir.rglob("*.rpm"), *layout.srcrpmdir.glob("*.src.rpm")])


def _advisory(note: Note, when: int, rpms: Mapping[str, Sequence[Path]]) -> Advisory:
    """An advisory naming every binary RPM of its builds (NEVRA, file name, source RPM)."""
    packages = []
    for nvr in note.builds:
        for path in rpms[nvr]:
            if path.name.endswith(".src.rpm"):
                continue
            h = rpmlib.header(path)
            packages.append(
                AdvisoryPackage(h.name, h.epoch, h.version, h.release, h.arch, path.name, h.sourcerpm)
            )
    references = [Reference(c, "cve", f"https://www.cve.org/CVERecord?id={c}", c) for c in note.cves]
    references += [
        Reference(b, "bugzilla", f"https://bugzilla.upstream.example/show_bug.cgi?id={b}", f"Bug {b}")
        for b in note.bugs
    ]
    issued = dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return Advisory(
        id=note.id,
        type=note.type,
        title=note.title,
        severity=note.severity,
        status="stable",
        version="1",
        release="Upstream 42",
        issued=issued,
        updated=issued,
        summary=note.title,
        description=note.description or note.title,
        from_=FROM,
        references=tuple(references),
        collections=(PackageList("U42", "Upstream 42", tuple(sorted(packages, key=lambda p: p.filename))),),
    )
