"""createrepo_c's updateinfo API: read a repository's `updateinfo.xml` into advisories, and write
advisories as one (`cr.UpdateInfo`, `cr.UpdateRecord`, `cr.UpdateCollection`, ...).

Written files hold no package checksums (`<sum>`): see `pipeline.core.advisories`. Times are kept
as the file writes them (`YYYY-MM-DD hh:mm:ss`), so a record read and written again says the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import createrepo_c as cr

from pipeline.core.advisories import Advisory, AdvisoryPackage, PackageList, Reference
from pipeline.core.errors import OperationFailed

TIME = "%Y-%m-%d %H:%M:%S"


def read(path: Path) -> tuple[Advisory, ...]:
    """The advisories of an updateinfo.xml (plain or compressed), in file order."""
    try:
        info = cr.UpdateInfo(str(path))
    except (cr.CreaterepoCError, OSError) as exc:
        raise OperationFailed(
            f"{path.name}: not a readable updateinfo.xml: {exc}", code="broken-updateinfo"
        ) from exc
    return tuple(_advisory(record) for record in info.updates)


def dump(advisories: Iterable[Advisory]) -> str:
    """The updateinfo.xml of these advisories, in the order given (createrepo_c writes it)."""
    info = cr.UpdateInfo()
    for advisory in advisories:
        info.append(_record(advisory))
    text: str = info.xml_dump()
    return text


def _advisory(record: Any) -> Advisory:
    return Advisory(
        id=str(record.id or ""),
        type=str(record.type or ""),
        title=str(record.title or ""),
        severity=str(record.severity or ""),
        status=str(record.status or ""),
        version=str(record.version or ""),
        release=str(record.release or ""),
        issued=_time(record.issued_date),
        updated=_time(record.updated_date),
        summary=str(record.summary or ""),
        description=str(record.description or ""),
        rights=str(record.rights or ""),
        from_=str(record.fromstr or ""),
        solution=str(record.solution or ""),
        reboot_suggested=bool(record.reboot_suggested),
        references=tuple(
            Reference(str(r.id or ""), str(r.type or ""), str(r.href or ""), str(r.title or ""))
            for r in record.references
        ),
        collections=tuple(
            PackageList(
                str(c.shortname or ""),
                str(c.name or ""),
                tuple(
                    AdvisoryPackage(
                        str(p.name),
                        int(p.epoch or 0),
                        str(p.version),
                        str(p.release),
                        str(p.arch),
                        str(p.filename or ""),
                        str(p.src or ""),
                    )
                    for p in c.packages
                ),
            )
            for c in record.collections
        ),
    )


def _record(advisory: Advisory) -> Any:
    record = cr.UpdateRecord()
    record.id = advisory.id
    record.type = advisory.type
    for name, value in (
        ("title", advisory.title),
        ("severity", advisory.severity),
        ("status", advisory.status),
        ("version", advisory.version),
        ("release", advisory.release),
        ("summary", advisory.summary),
        ("description", advisory.description),
        ("rights", advisory.rights),
        ("fromstr", advisory.from_),
        ("solution", advisory.solution),
    ):
        if value:
            setattr(record, name, value)
    if advisory.issued:
        record.issued_date = dt.datetime.strptime(advisory.issued, TIME)
    if advisory.updated:
        record.updated_date = dt.datetime.strptime(advisory.updated, TIME)
    record.reboot_suggested = advisory.reboot_suggested
    for reference in advisory.references:
        made = cr.UpdateReference()
        made.id, made.type = reference.id, reference.type
        if reference.href:
            made.href = reference.href
        if reference.title:
            made.title = reference.title
        record.append_reference(made)
    for package_list in advisory.collections:
        collection = cr.UpdateCollection()
        collection.shortname = package_list.short
        collection.name = package_list.name
        for package in package_list.packages:
            entry = cr.UpdateCollectionPackage()
            entry.name, entry.version, entry.release = package.name, package.version, package.release
            entry.epoch, entry.arch = str(package.epoch), package.arch
            entry.filename = (
                package.filename or f"{package.name}-{package.version}-{package.release}.{package.arch}.rpm"
            )
            if package.src:
                entry.src = package.src
            collection.append(entry)
        record.append_collection(collection)
    return record


def _time(value: Any) -> str:
    """A record's time as the file writes it; "" when it has none."""
    if isinstance(value, dt.datetime):
        return value.strftime(TIME)
    return ""


def version() -> str:
    """The version of createrepo_c's library, e.g. `0.17.3`."""
    return str(cr.VERSION)
