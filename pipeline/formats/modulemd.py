"""Modulemd documents of composed modules, and the merged `modules.yaml` of a repo. Pure.

A composed module is described by a modulemd v2 document (the format dnf and libmodulemd
read): its name, stream, version and context (together its NSVC), what it is made of
(components: the dist-git commits of its pins) and what it ships (artifacts: the NEVRAs of the
RPMs built). Only what the module's node definition holds is used, so equal input digests give
equal documents; rationale, EOL and maintainers are not part of it.

- version: the newest build time of the module's RPMs (each build's SOURCE_DATE_EPOCH, the
  time of its dist-git commit) as the integer YYYYMMDDhhmmss (UTC): derived from the inputs,
  never from when or from which definitions commit the module was composed, so a recompose of
  the same inputs is byte-identical, and a module with a newer component sorts later. The
  modulemd spec makes version an unsigned 64-bit integer; 14 digits fit easily;
- context: the first 8 hex digits of the module node's input digest (its definition and its
  pins), the 8 characters `[a-zA-Z0-9_]` the spec allows, and different whenever the module's
  definition is.

YAML is written with sorted keys and explicit document markers; the bytes depend only on
the data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import yaml

from pipeline.core.canonical import canonical_json
from pipeline.core.model import Module
from pipeline.core.nevra import Rpm
from pipeline.formats import libyaml

# libyaml when PyYAML has it: a variant's modules.yaml merges hundreds of documents.
_Loader, _Dumper = libyaml.LOADER, libyaml.DUMPER


def module_version(source_date_epoch: int) -> int:
    """The modulemd version of a module whose newest RPM was built at this time."""
    moment = dt.datetime.fromtimestamp(source_date_epoch, tz=dt.UTC)
    return int(moment.strftime("%Y%m%d%H%M%S"))


def module_context(input_digest: str) -> str:
    """The modulemd context: the first 8 hex digits of the module node's input digest."""
    return input_digest[:8]


def module_document(module: Module, *, version: int, context: str, rpms: Sequence[Rpm]) -> str:
    """The modulemd v2 document (YAML text) of one composed module stream.

    rpms are the binary and source RPMs of its builds; their licenses make the content license.
    """
    components: dict[str, Any] = {}
    for pin in module.components:
        component: dict[str, Any] = {
            "rationale": f"Component of the {module.nsid} module.",
            "ref": pin.ref or pin.branch,  # a pin following its branch: the branch, as in source modulemd
        }
        if pin.buildorder:
            component["buildorder"] = pin.buildorder
        if pin.arches:
            component["arches"] = sorted(pin.arches)
        components[pin.component] = component
    for binary in module.binaries:  # built elsewhere: no dist-git ref; its build names it
        made: dict[str, Any] = {"rationale": f"Component of the {module.nsid} module, build {binary.build}."}
        if binary.buildorder:
            made["buildorder"] = binary.buildorder
        if binary.arches:
            made["arches"] = sorted(binary.arches)
        components[binary.component] = made
    data: dict[str, Any] = {
        "name": module.name,
        "stream": module.stream,
        "version": version,
        "context": context,
        "summary": module.summary,
        "description": module.description,
        "license": {"module": [module.license]},
        "components": {"rpms": components},
        "artifacts": {"rpms": sorted({r.nevra for r in rpms})},
    }
    content = sorted({r.license for r in rpms if r.license})
    if content:
        data["license"]["content"] = content
    dependencies = _dependencies(module.buildrequires, module.requires)
    if dependencies:
        data["dependencies"] = [dependencies]
    if module.profiles:
        data["profiles"] = {
            p.name: {**({"description": p.description} if p.description else {}), "rpms": sorted(p.rpms)}
            for p in module.profiles
        }
    if module.api:
        data["api"] = {"rpms": sorted(module.api)}
    return _dump([_document("modulemd", 2, data)])


def defaults_document(name: str, stream: str, profiles: Iterable[str]) -> str:
    """A modulemd-defaults v1 document: stream is the default stream of module name, with profiles."""
    data = {"module": name, "stream": stream, "profiles": {stream: sorted(set(profiles))}}
    return _dump([_document("modulemd-defaults", 1, data)])


def merge(documents: Iterable[str]) -> str:
    """One `modules.yaml` holding every document of the given texts, each once, in a stable order.

    Modulemd documents sort by name, stream, version and context; defaults after them, by module.
    """
    found: dict[str, tuple[tuple[str, str, str, int, str], str]] = {}
    for text in documents:
        for canonical, order, dumped in _documents(text):
            found[canonical] = (order, dumped)
    # Each document dumped alone and joined: the same bytes as dumping them together.
    return "".join(dumped for _, dumped in sorted(found.values(), key=lambda entry: entry[0]))


@lru_cache(maxsize=4096)
def _documents(text: str) -> tuple[tuple[str, tuple[str, str, str, int, str], str], ...]:
    """Each document of a YAML text: its canonical JSON, sort order and YAML, in order.

    Kept per text: the variants of one compose run merge mostly the same module documents,
    and parsing and dumping YAML is most of what a variant repo's compose costs in-process.
    """
    found = []
    for doc in yaml.load_all(text, Loader=_Loader):
        if isinstance(doc, dict):
            doc = _document(str(doc.get("document")), doc.get("version"), doc.get("data", {}))
            found.append((canonical_json(doc), _order(doc), _dump([doc])))
    return tuple(found)


def _order(doc: Mapping[str, Any]) -> tuple[str, str, str, int, str]:
    data = doc.get("data", {})
    return (
        str(doc.get("document", "")),
        str(data.get("name", data.get("module", ""))),
        str(data.get("stream", "")),
        int(data.get("version", 0)),
        str(data.get("context", "")),
    )


def _dependencies(
    buildrequires: tuple[tuple[str, str], ...], requires: tuple[tuple[str, str], ...]
) -> dict[str, dict[str, list[str]]]:
    found: dict[str, dict[str, list[str]]] = {}
    for key, pairs in (("buildrequires", buildrequires), ("requires", requires)):
        if pairs:
            found[key] = {name: [stream] for name, stream in sorted(pairs)}
    return found


def _document(kind: str, version: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    # The header first, as every modulemd file has it; everything below it sorted.
    return {"document": kind, "version": version, "data": _sorted(data)}


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


def _dump(docs: Sequence[Mapping[str, Any]]) -> str:
    if not docs:
        return ""
    return yaml.dump_all(
        docs,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        explicit_end=True,
        width=1 << 16,
    )
