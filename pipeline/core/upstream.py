"""Where each RPM of a binary pin came from: the `upstream` entries of its compose's lineage note
(and of the `upstream.json` its compose holds beside the RPMs). Pure: no I/O.

Per RPM: the source (factory.yaml's name), the URL it was read from as factory.yaml names it
(a path stays relative to the repository; a baseurl overridden by FACTORY_SOURCE_<NAME>_BASEURL
is named by that variable in `via`, never by its value), its NEVRA and sha256, the id of the
key that signed it (`unsigned` when none did), and the state of the source's repository when it
was read: repomd.xml's revision and sha256, and Koji's repo.json (tag, repo id, event) when the
repository is a Koji tag's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.core.canonical import pretty_json
from pipeline.core.errors import InvalidInput
from pipeline.core.packages import KojiRepo

UNSIGNED = "unsigned"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class UpstreamRpm:
    """One RPM of a binary pin, where it came from and what it was checked against."""

    source: str
    url: str
    nevra: str
    sha256: str
    key: str  # the signing key id (16 hex digits), or UNSIGNED
    repomd_revision: str
    repomd_sha256: str
    koji: KojiRepo | None = None
    via: str = ""

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def to_json(self) -> dict[str, Any]:
        """Its JSON value (optional parts only when present, so every other record keeps its bytes)."""
        return {
            "source": self.source,
            "url": self.url,
            "nevra": self.nevra,
            "sha256": self.sha256,
            "key": self.key,
            "repomd": {"revision": self.repomd_revision, "sha256": self.repomd_sha256},
            **(
                {"koji": {"tag": self.koji.tag, "id": self.koji.id, "event_id": self.koji.event_id}}
                if self.koji is not None
                else {}
            ),
            **({"via": self.via} if self.via else {}),
        }

    @classmethod
    def from_json(cls, data: object, where: str = "upstream") -> UpstreamRpm:
        """The entry a note holds; InvalidInput(code="invalid-record") when it is not one."""
        item = _object(data, where)
        repomd = _object(item.get("repomd"), f"{where}.repomd")
        koji = item.get("koji")
        known = None
        if koji is not None:
            fields = _object(koji, f"{where}.koji")
            known = KojiRepo(
                _typed(fields, "tag", str, where),
                _typed(fields, "id", int, where),
                _typed(fields, "event_id", int, where),
            )
        return cls(
            source=_typed(item, "source", str, where),
            url=_typed(item, "url", str, where),
            nevra=_typed(item, "nevra", str, where),
            sha256=_typed(item, "sha256", str, where),
            key=_typed(item, "key", str, where),
            repomd_revision=_typed(repomd, "revision", str, where),
            repomd_sha256=_typed(repomd, "sha256", str, where),
            koji=known,
            via=_typed(item, "via", str, where) if "via" in item else "",
        )


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where}: expected an object", code="invalid-record")
    return value


def _typed(data: Mapping[str, Any], name: str, kind: type[_T], where: str) -> _T:
    value = data.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"{where}.{name}: expected {kind.__name__}", code="invalid-record")
    return value


UPSTREAM_JSON = "upstream.json"  # beside a binary pin compose's RPMs
UPSTREAM_FORMAT = 1


def upstream_json(rpms: tuple[UpstreamRpm, ...], no_source: str = "") -> str:
    """The text of a binary pin compose's `upstream.json`: its RPMs' entries, sorted by NEVRA,
    and why it has no source RPM when it has none."""
    return pretty_json(
        {
            "format": UPSTREAM_FORMAT,
            "rpms": [u.to_json() for u in sorted(rpms, key=lambda u: u.nevra)],
            **({"no_source": no_source} if no_source else {}),
        }
    )


def read_upstream(text: str) -> tuple[tuple[UpstreamRpm, ...], str]:
    """The entries and the no-source statement of an `upstream.json`; InvalidInput if it is none."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{UPSTREAM_JSON} is not JSON: {exc}", code="invalid-record") from exc
    item = _object(data, UPSTREAM_JSON)
    if item.get("format") != UPSTREAM_FORMAT or not isinstance(item.get("rpms"), list):
        raise InvalidInput(f"{UPSTREAM_JSON}: unknown format {item.get('format')!r}", code="invalid-record")
    rpms = tuple(UpstreamRpm.from_json(r, f"{UPSTREAM_JSON}.rpms[{n}]") for n, r in enumerate(item["rpms"]))
    no_source = item.get("no_source", "")
    return rpms, no_source if isinstance(no_source, str) else ""
