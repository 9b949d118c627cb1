"""libmodulemd (through gi): read and validate modulemd documents into plain typed values.

A file may hold several YAML documents (repodata's `modules.yaml` does). Each is cut out of the
text, recognised by its `document`/`version` header and handed to libmodulemd on its own:
modulemd v2 stream documents to a strict `ModuleIndex` (unknown keys and conflicting fields are
refused), modulemd-packager v2 and v3 to `read_packager_string`, the call libmodulemd offers
for the files packagers keep in dist-git (a v3 document is expanded with `convert_to_index`,
one stream per configuration). What libmodulemd accepted is copied into frozen dataclasses, so
nothing past this module touches a gi object. Positions (the line of every key) come from
factory's own YAML reader, to name the place of anything the conversion cannot carry over.

gi is only on Debian's system python (and venvs made with --system-site-packages).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from pipeline.core import yamlsource
from pipeline.core.errors import Diagnostic, OperationFailed

Path = tuple[str | int, ...]

STREAM = "modulemd"
PACKAGER = "modulemd-packager"


@dataclass(frozen=True, slots=True)
class RpmComponent:
    """One `components.rpms` entry, as libmodulemd read it."""

    key: str
    name: str  # the dist-git repository name when it differs from the key ("" otherwise)
    rationale: str
    ref: str
    repository: str
    cache: str
    buildorder: int
    buildafter: tuple[str, ...]
    arches: tuple[str, ...]
    multilib: tuple[str, ...]
    buildroot: bool
    srpm_buildroot: bool
    buildonly: bool


@dataclass(frozen=True, slots=True)
class Dependencies:
    """One entry of `dependencies`: module name -> streams ("-s" excludes s; () means any)."""

    buildrequires: tuple[tuple[str, tuple[str, ...]], ...]
    requires: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class StreamProfile:
    name: str
    description: str
    rpms: tuple[str, ...]
    default: bool


@dataclass(frozen=True, slots=True)
class ModuleStream:
    """One module stream of a document (a packager v3 document has one per configuration)."""

    name: str
    stream: str
    version: int
    context: str
    arch: str
    summary: str
    description: str
    module_licenses: tuple[str, ...]
    content_licenses: tuple[str, ...]
    servicelevels: tuple[tuple[str, str], ...]  # name -> ISO date ("" when it has none)
    dependencies: tuple[Dependencies, ...]
    profiles: tuple[StreamProfile, ...]
    api: tuple[str, ...]
    filters: tuple[str, ...]
    demodularized: tuple[str, ...]
    components: tuple[RpmComponent, ...]
    module_components: tuple[str, ...]
    buildopts_arches: tuple[str, ...]
    buildopts_macros: str
    buildopts_whitelist: tuple[str, ...]
    references: tuple[tuple[str, str], ...]
    artifacts: tuple[str, ...]
    xmd: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a file: its place, its kind and what libmodulemd made of it."""

    path: str
    index: int  # 0-based, in the file
    line: int  # 1-based line where it starts
    kind: str  # the `document:` header ("" when there is none)
    version: int
    streams: tuple[ModuleStream, ...] = ()
    error: str = ""  # libmodulemd's refusal; then streams is empty
    keys: Mapping[Path, int] = field(default_factory=dict, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the loose YAML data

    def where(self, path: Path) -> int:
        """The line of a key path of this document (or of its nearest parent present)."""
        probe = path
        while probe:
            if probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
        return self.line


@cache
def _modulemd() -> Any:
    try:
        import gi  # type: ignore[import-untyped, unused-ignore]

        gi.require_version("Modulemd", "2.0")
        from gi.repository import Modulemd  # type: ignore[import-untyped, unused-ignore]
    except (ImportError, ValueError) as exc:
        raise OperationFailed(
            "libmodulemd is not available to this python",
            hint="apt-get install gir1.2-modulemd-2.0 python3-gi, and use a venv made with "
            "/usr/bin/python3 -m venv --system-site-packages",
            code="libmodulemd-missing",
        ) from exc
    return Modulemd


def version() -> str:
    """libmodulemd's version."""
    return str(_modulemd().get_version())


def read(path: str, text: str, *, name: str | None = None, stream: str | None = None) -> list[Document]:
    """Every YAML document of a file, read and validated by libmodulemd.

    name and stream fill in packager documents that leave them out (dist-git gives them the
    repository and branch names). A document libmodulemd refuses is returned with its error.
    """
    found = []
    for index, (offset, line, chunk) in enumerate(split_documents(text)):
        parsed = yamlsource.parse(path, chunk.encode("utf-8"))
        if isinstance(parsed, yamlsource.Document):
            keys = {p: offset + at[0] for p, at in parsed.values.items()}
            keys.update({p: offset + at[0] for p, at in parsed.keys.items()})
            data = parsed.data if isinstance(parsed.data, dict) else {}
        else:
            keys, data = {}, {}
        kind = str(data.get("document", ""))
        number = data.get("version")
        base = Document(
            path, index, line, kind, number if isinstance(number, int) else 0, keys=keys, raw=data
        )
        if isinstance(parsed, Diagnostic):
            found.append(_refused(base, f"line {offset + parsed.line}: {parsed.message}"))
        elif (kind, base.version) == (STREAM, 2):
            found.append(_stream_v2(base, chunk, offset))
        elif kind == PACKAGER and base.version in (2, 3):
            found.append(_packager(base, chunk, offset, name, stream))
        else:
            found.append(base)  # other kinds (defaults, translations, obsoletes, v1): not read here
    return found


def split_documents(text: str) -> Iterator[tuple[int, int, str]]:
    """(lines before it, its first line, its text) of every YAML document of a stream.

    Comments before a document belong to its text; its first line is that of its content.
    """
    starts = []
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.DocumentStartEvent) and event.start_mark is not None:
                starts.append(event.start_mark.line)
    except yaml.YAMLError:
        starts = starts or [0]  # the document that breaks is reported by the reader
    lines = text.splitlines(keepends=True)
    bounds = [0, *starts[1:], len(lines)]
    for first, end in itertools.pairwise(bounds):
        chunk = "".join(lines[first:end])
        if chunk.strip() and chunk.strip() not in ("---", "...") and _has_content(chunk):
            yield first, first + 1 + _leading_blank(lines[first:end]), chunk


def _has_content(chunk: str) -> bool:
    return any(
        line.strip() and not line.lstrip().startswith(("#", "---", "...")) for line in chunk.splitlines()
    )


def _leading_blank(lines: list[str]) -> int:
    count = 0
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            break
        count += 1
    return count


def _refused(base: Document, message: str) -> Document:
    return Document(
        base.path, base.index, base.line, base.kind, base.version, (), message, base.keys, base.raw
    )


_AT_LINE = re.compile(r"\[line (\d+) col (\d+)\]")


def _stream_v2(base: Document, chunk: str, offset: int) -> Document:
    modulemd = _modulemd()
    index = modulemd.ModuleIndex.new()
    try:
        ok, failures = index.update_from_string(chunk, True)
    except Exception as exc:  # gi raises GLib.Error for what it cannot even start to parse
        return _refused(base, _message(exc))
    if not ok or failures:
        errors = [_relocated(f.get_gerror().message, offset) for f in failures]
        return _refused(base, "; ".join(errors) or "libmodulemd refused the document")
    streams = [s for n in index.get_module_names() for s in index.get_module(n).get_all_streams()]
    return _with_streams(base, streams)


def _packager(base: Document, chunk: str, offset: int, name: str | None, stream: str | None) -> Document:
    modulemd = _modulemd()
    try:
        read = modulemd.read_packager_string(chunk, name, stream)
        if isinstance(read, modulemd.PackagerV3):
            index = read.convert_to_index()
            streams = [s for n in index.get_module_names() for s in index.get_module(n).get_all_streams()]
            defaults = {p for p in read.get_profile_names_as_strv() if read.get_profile(p).is_default()}
        else:
            read.validate()
            streams, defaults = [read], set()
    except Exception as exc:  # GLib.Error: libmodulemd's refusal, with its message
        return _refused(base, _relocated(_message(exc), offset))
    return _with_streams(base, streams, defaults)


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


def _relocated(message: str, offset: int) -> str:
    """libmodulemd counts lines from the document's text; count them from the file's."""
    return _AT_LINE.sub(lambda m: f"[line {int(m.group(1)) + offset} col {m.group(2)}]", message)


def _with_streams(base: Document, streams: list[Any], defaults: set[str] | None = None) -> Document:
    data = base.raw.get("data")
    written = _Written(data if isinstance(data, dict) else {})
    typed = tuple(_typed(s, defaults or set(), written) for s in streams)
    return Document(base.path, base.index, base.line, base.kind, base.version, typed, "", base.keys, base.raw)


class _Written:
    """Lists in the order the document writes them: libmodulemd keeps profiles, api and arches
    as sets and hands them out sorted, but the order is the author's (and a factory module's
    digest depends on it)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def order(self, values: list[str], *path: str) -> tuple[str, ...]:
        raw: Any = self.data
        for key in path:
            raw = raw.get(key) if isinstance(raw, dict) else None
        if not isinstance(raw, list):
            return tuple(values)
        position = {str(v): i for i, v in reversed(list(enumerate(raw)))}
        return tuple(sorted(values, key=lambda v: (position.get(v, len(raw)), v)))


def _typed(s: Any, defaults: set[str], written: _Written) -> ModuleStream:
    buildopts = s.get_buildopts()
    references = (
        ("community", s.get_community() or ""),
        ("documentation", s.get_documentation() or ""),
        ("tracker", s.get_tracker() or ""),
    )
    return ModuleStream(
        name=s.get_module_name() or "",
        stream=s.get_stream_name() or "",
        version=int(s.get_version() or 0),
        context=s.get_context() or "",
        arch=s.get_arch() or "",
        summary=s.get_summary(None) or "",
        description=s.get_description(None) or "",
        module_licenses=written.order(list(s.get_module_licenses()), "license", "module")
        if isinstance(written.data.get("license"), dict)
        else written.order(list(s.get_module_licenses()), "license"),
        content_licenses=tuple(s.get_content_licenses()),
        servicelevels=tuple(
            (n, s.get_servicelevel(n).get_eol_as_string() or "") for n in s.get_servicelevel_names()
        ),
        dependencies=tuple(_dependencies(d) for d in s.get_dependencies()),
        profiles=tuple(_profile(s.get_profile(n), defaults, written) for n in s.get_profile_names()),
        api=written.order(list(s.get_rpm_api()), "api", "rpms"),
        filters=tuple(s.get_rpm_filters()),
        demodularized=tuple(s.get_demodularized_rpms()),
        components=tuple(_component(s.get_rpm_component(n), written) for n in s.get_rpm_component_names()),
        module_components=tuple(s.get_module_component_names()),
        buildopts_arches=tuple(buildopts.get_arches()) if buildopts else (),
        buildopts_macros=(buildopts.get_rpm_macros() or "") if buildopts else "",
        buildopts_whitelist=tuple(buildopts.get_rpm_whitelist()) if buildopts else (),
        references=tuple((k, v) for k, v in references if v),
        artifacts=tuple(s.get_rpm_artifacts()),
        xmd=_plain(s.get_xmd()) or {},
    )


def _dependencies(d: Any) -> Dependencies:
    return Dependencies(
        buildrequires=tuple((m, tuple(d.get_buildtime_streams(m))) for m in d.get_buildtime_modules()),
        requires=tuple((m, tuple(d.get_runtime_streams(m))) for m in d.get_runtime_modules()),
    )


def _profile(p: Any, defaults: set[str], written: _Written) -> StreamProfile:
    name = p.get_name()
    rpms = written.order(list(p.get_rpms()), "profiles", name, "rpms")
    return StreamProfile(name, p.get_description(None) or "", rpms, name in defaults)


def _component(c: Any, written: _Written) -> RpmComponent:
    name = c.get_name() or ""
    return RpmComponent(
        key=c.get_key(),
        name="" if name == c.get_key() else name,
        rationale=c.get_rationale() or "",
        ref=c.get_ref() or "",
        repository=c.get_repository() or "",
        cache=c.get_cache() or "",
        buildorder=int(c.get_buildorder()),
        buildafter=tuple(c.get_buildafter()),
        arches=written.order(list(c.get_arches()), "components", "rpms", c.get_key(), "arches"),
        multilib=tuple(c.get_multilib_arches()),
        buildroot=bool(c.get_buildroot()),
        srpm_buildroot=bool(c.get_srpm_buildroot()),
        buildonly=bool(c.get_buildonly()),
    )


def _plain(value: Any) -> Any:
    """xmd as plain JSON data (gi hands out dicts, lists and GLib.Variant leaves)."""
    if hasattr(value, "unpack"):
        value = value.unpack()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def validate_text(text: str) -> list[str]:
    """libmodulemd's errors for a stream of modulemd v2 documents (strict); [] when it is valid."""
    index = _modulemd().ModuleIndex.new()
    try:
        ok, failures = index.update_from_string(text, True)
    except Exception as exc:
        return [_message(exc)]
    errors = [f.get_gerror().message for f in failures]
    return errors if errors or ok else ["libmodulemd refused the documents"]
