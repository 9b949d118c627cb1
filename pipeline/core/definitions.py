"""Load the definitions of one revision: YAML -> loose data -> JSON Schema -> typed values.

Every error in every file is collected, each with its file, line and column, before anything
is refused; cross-checks between files live in `consistency.py`. The file contents arrive
through `SourceFile.read`, so this module does no I/O of its own. Parsed files are cached by
(path, Git blob id): the same bytes at the same path always give the same result.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from pipeline.core import consistency

if TYPE_CHECKING:
    import jsonschema

    from pipeline.core import yamlsource
from pipeline.core.config import Config
from pipeline.core.errors import Diagnostic, InvalidDefinitions
from pipeline.core.model import (
    BinaryPin,
    Definitions,
    Module,
    ModuleSelection,
    Output,
    Pin,
    Profile,
    Variant,
)

CONFIG_PATH = "factory.yaml"
MISSING_CONFIG = Diagnostic(CONFIG_PATH, 1, 1, "missing-config", "factory.yaml is missing at the top")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of a definitions tree: its path, Git blob id and a way to read its bytes."""

    path: str
    blob_id: str
    read: Callable[[], bytes]


Parsed = Config | Module | Variant | None
ParseCache = MutableMapping[tuple[str, str], tuple[Parsed, tuple[Diagnostic, ...]]]


def is_definition(path: str) -> bool:
    """Whether a path of the tree belongs to the definitions (and so to validation)."""
    return path == CONFIG_PATH or (
        path.startswith(("modules/", "variants/")) and path.endswith((".yaml", ".yml"))
    )


ParseMany = Callable[[list[tuple[str, bytes]]], list[tuple[Parsed, tuple[Diagnostic, ...]]]]


def parse_files(items: list[tuple[str, bytes]]) -> list[tuple[Parsed, tuple[Diagnostic, ...]]]:
    """parse_file over many files, in order (the default `parse_many`)."""
    return [parse_file(path, raw) for path, raw in items]


def load(
    files: Iterable[SourceFile],
    *,
    cache: ParseCache | None = None,
    branches: consistency.BranchLookup | None = None,
    parse_many: ParseMany = parse_files,
    kinds: Collection[str] = tuple(consistency.LAYERING),
) -> Definitions:
    """Load and check a definitions tree; raise InvalidDefinitions with every error found.

    Files missing from the cache are parsed with `parse_many`, which a caller may spread over
    processes; it must return the results of `parse_file`, in order.
    """
    cache = {} if cache is None else cache
    diagnostics: list[Diagnostic] = []
    config: Config | None = None
    modules: list[Module] = []
    variants: list[Variant] = []
    by_path: dict[str, SourceFile] = {}
    sources = sorted((f for f in files if is_definition(f.path)), key=lambda f: f.path)
    missing = [f for f in sources if (f.path, f.blob_id) not in cache]
    for source, result in zip(missing, parse_many([(f.path, f.read()) for f in missing]), strict=True):
        cache[(source.path, source.blob_id)] = result
    broken: set[str] = set()
    unsure: dict[str, frozenset[str]] = {}
    for source in sources:
        by_path[source.path] = source
        parsed, found = cache[(source.path, source.blob_id)]
        diagnostics.extend(found)
        if parsed is None and found and all(d.code.startswith("schema-") for d in found):
            salvaged = salvage(source.path, source.read())  # cross-check what the schema took
            if salvaged is not None:
                parsed, unsure[source.path] = salvaged
        if parsed is None:
            broken.update(_nsids_of(source.path))
        if isinstance(parsed, Config):
            config = parsed
        elif isinstance(parsed, Module):
            modules.append(parsed)
        elif isinstance(parsed, Variant):
            variants.append(parsed)
    if CONFIG_PATH not in by_path:
        diagnostics.append(MISSING_CONFIG)
    problems = consistency.check(config, modules, variants, branches, kinds, broken, unsure)
    diagnostics.extend(_locate(problems, by_path))
    if diagnostics or config is None:
        raise InvalidDefinitions(diagnostics)
    return Definitions(
        config=config,
        modules={m.nsid: m for m in modules},
        variants={v.uid: v for v in variants},
    )


def warnings(
    files: Iterable[SourceFile], defs: Definitions, branches: consistency.BranchLookup
) -> list[Diagnostic]:
    """What validation could not check in loaded definitions (pins in unreachable dist-git)."""
    problems = consistency.unreachable_pins(defs.config, list(defs.modules.values()), branches)
    by_path = {f.path: f for f in files}
    return [
        replace(d, severity="warning") for d in sorted(_locate(problems, by_path), key=Diagnostic.sort_key)
    ]


def placed(
    files: Iterable[SourceFile], problems: Iterable[consistency.Problem], severity: str = "error"
) -> list[Diagnostic]:
    """Problems found outside the loader (what binary package sources answered) as diagnostics
    with their file, line and column, sorted."""
    by_path = {f.path: f for f in files}
    return [
        replace(d, severity=severity) for d in sorted(_locate(problems, by_path), key=Diagnostic.sort_key)
    ]


def eol_reached(files: Iterable[SourceFile], defs: Definitions, today: dt.date) -> list[Diagnostic]:
    """A warning per module stream or variant whose EOL has come (on `today`, given by the
    caller: no clock here) and that is not retired yet, at its `eol:` line."""
    ends: list[tuple[str, str, dt.date]] = [
        *((f"module {m.nsid}", m.path, m.eol) for m in defs.modules.values() if not m.retired),
        *((f"variant {v.uid}", v.path, v.eol) for v in defs.variants.values() if not v.retired),
    ]
    found = [
        consistency.Problem(
            path,
            ("eol",),
            "eol-reached",
            f"{label} reached its End Of Life on {eol} and is not retired: "
            "`factory eol --due` opens the merge request that retires it",
        )
        for label, path, eol in ends
        if eol <= today
    ]
    by_path = {f.path: f for f in files}
    return [replace(d, severity="warning") for d in sorted(_locate(found, by_path), key=Diagnostic.sort_key)]


def load_config(source: SourceFile | None) -> Config:
    """The typed factory.yaml alone (None: the tree has none), parsed and checked exactly as `load`
    does; InvalidDefinitions with its diagnostics (file, line, rule) when it is not valid."""
    if source is None:
        raise InvalidDefinitions([MISSING_CONFIG])
    parsed, problems = parse_file(source.path, source.read())
    if not isinstance(parsed, Config):
        raise InvalidDefinitions(list(problems))
    return parsed


def parse_file(path: str, raw: bytes) -> tuple[Parsed, tuple[Diagnostic, ...]]:
    """Parse one definition file into its typed value, or the diagnostics that prevent it."""
    kind = _kind_of(path)
    if kind is None:
        rule = "use the .yaml extension" if path.endswith(".yml") else "unexpected location"
        message = (
            f"{rule}: definitions are factory.yaml, modules/NAME/STREAM.yaml, "
            "modules/NAME-STREAM.yaml and variants/UID.yaml"
        )
        return None, (Diagnostic(path, 1, 1, "layout", message),)
    from pipeline.core import yamlsource

    # The fast way first (no positions, compiled schema); positions only to report an error.
    document = yamlsource.parse(path, raw, positions=False)
    if isinstance(document, Diagnostic):
        return None, (document,)
    if _fast_valid(kind, document.data):
        try:
            return _typed(kind, path, raw, document.data)
        except (ValueError, KeyError, TypeError):
            pass  # the compiled check was more lenient (a date like 2027-02-30): ask jsonschema
    if not document.positions:
        document = yamlsource.parse(path, raw)
        assert not isinstance(document, Diagnostic), "the fast path accepted what the slow one refuses"
    problems = tuple(_schema_diagnostics(document, kind))
    if problems:
        return None, problems
    return _typed(kind, path, raw, document.data)


# A file the schema refused is still cross-checked when what it is (its kind, format and
# identity) was not refused: each refused top-level field is stood in for (or left out, when
# it is optional), and the cross-checks skip what reads a field stood in for.
_IDENTITY = {"module": {"document", "version", "name", "stream"}, "variant": {"document", "version", "uid"}}
_STAND_INS: dict[str, dict[str, Any]] = {
    "module": {
        "summary": "",
        "description": "",
        "license": "",
        "eol": "9999-12-31",
        "components": {"rpms": {}},
    },
    "variant": {"name": "", "release": "", "eol": "9999-12-31", "arches": [], "modules": [], "outputs": []},
}


def salvage(path: str, raw: bytes) -> tuple[Module | Variant, frozenset[str]] | None:
    """What can be cross-checked of a module or variant file that parses but that the schema
    refused: its typed value with every refused top-level field stood in for, and the names of
    those fields. None when its kind, format or identity was refused (or it is factory.yaml):
    then nothing of it can be trusted, and what refers to it is skipped (`broken`)."""
    from pipeline.core import yamlsource

    kind = _kind_of(path)
    document = yamlsource.parse(path, raw, positions=False)
    if kind not in _STAND_INS or isinstance(document, Diagnostic) or not isinstance(document.data, dict):
        return None
    data = dict(document.data)
    refused: set[str] = set()
    for error in validator(kind).iter_errors(data):
        where = list(error.absolute_path)
        if where:
            refused.add(str(where[0]))
        elif error.validator == "required":
            refused.update(str(f) for f in _schema(kind).get("required", ()) if f not in data)
        elif error.validator not in ("additionalProperties", "propertyNames"):
            return None  # a rule of the whole file: nothing to blame one field for
    if refused & _IDENTITY[kind]:
        return None
    known = _schema(kind).get("properties", {})
    data = {k: v for k, v in data.items() if k in known and k not in refused}
    data.update({k: v for k, v in _STAND_INS[kind].items() if k in refused})
    try:
        typed: Module | Variant = _module(data, path) if kind == "module" else _variant(data, path)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if isinstance(typed, Module) and _path_mismatch(path, typed):
        return None
    if isinstance(typed, Variant) and FsPath(path).stem != typed.uid:
        return None
    return typed, frozenset(refused)


def _typed(kind: str, path: str, raw: bytes, data: Any) -> tuple[Parsed, tuple[Diagnostic, ...]]:
    """Schema-valid loose data to its typed value, after the checks only a typed value allows."""
    if kind == "factory":
        return Config.from_raw(data, path), ()
    if kind == "module":
        mixed = _mixed_pins(data)
        if mixed:
            return None, tuple(_place(path, raw, where, "mixed-pin", message) for where, message in mixed)
        module = _module(data, path)
        mismatch = _path_mismatch(path, module)
        if mismatch:
            return None, (_place(path, raw, ("name",), "path-mismatch", mismatch),)
        return module, ()
    variant = _variant(data, path)
    if FsPath(path).stem != variant.uid:
        message = f"variant uid {variant.uid!r} does not match the file name {FsPath(path).name!r}"
        return None, (_place(path, raw, ("uid",), "path-mismatch", message),)
    return variant, ()


DISTGIT_FIELDS = ("ref", "branch", "repository")


def _mixed_pins(data: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """A binary pin (`source:`, `build:`) that also names dist-git fields: which one, and why."""
    found: list[tuple[tuple[str, ...], str]] = []
    for name, pin in sorted(data["components"]["rpms"].items()):
        if "source" not in pin:
            continue
        for key in DISTGIT_FIELDS:
            if key in pin:
                message = (
                    f"{name} is a binary pin (source {pin['source']}, build {pin['build']}): it has no "
                    f"dist-git {key}; a component is either built from dist-git (branch, ref) or taken "
                    "from a source (source, build)"
                )
                found.append((("components", "rpms", name, key), message))
    return found


def _place(path: str, raw: bytes, where: tuple[str, ...], code: str, message: str) -> Diagnostic:
    from pipeline.core import yamlsource

    document = yamlsource.parse(path, raw)
    assert isinstance(document, yamlsource.Document)
    line, col = document.where(where)
    return Diagnostic(path, line, col, code, message, document.excerpt(line, col))


def _nsids_of(path: str) -> list[str]:
    """The name:stream a module file's path stands for (every split of NAME-STREAM.yaml)."""
    parts = path.split("/")
    if _kind_of(path) != "module":
        return []
    if len(parts) == 3:
        return [f"{parts[1]}:{FsPath(parts[2]).stem}"]
    stem = FsPath(parts[1]).stem
    return [f"{stem[:i]}:{stem[i + 1 :]}" for i, c in enumerate(stem) if c == "-"]


def _kind_of(path: str) -> str | None:
    parts = path.split("/")
    if path == CONFIG_PATH:
        return "factory"
    if not path.endswith(".yaml"):
        return None
    if parts[0] == "modules" and len(parts) in (2, 3):
        return "module"
    if parts[0] == "variants" and len(parts) == 2:
        return "variant"
    return None


def _path_mismatch(path: str, module: Module) -> str:
    parts = path.split("/")
    if len(parts) == 3:
        if (parts[1], FsPath(parts[2]).stem) != (module.name, module.stream):
            return f"module {module.nsid} must live in modules/{module.name}/{module.stream}.yaml, not {path}"
        return ""
    if FsPath(parts[1]).stem != f"{module.name}-{module.stream}":
        return f"module {module.nsid} must live in modules/{module.name}-{module.stream}.yaml"
    return ""


# -- JSON Schema ------------------------------------------------------------------------------


# Where the JSON Schemas come from: file name -> text. The core reads no file; `pipeline.schemas`
# (which reads the ones shipped in the package) gives them when it is imported, as every
# entry point does (`pipeline.workspace`, the CLI, the tests).
_source: Callable[[], Mapping[str, str]] | None = None


def use_schemas(source: Callable[[], Mapping[str, str]]) -> None:
    """Validate against the JSON Schemas `source()` gives (file name -> text; called once,
    when a schema is first needed)."""
    global _source
    _source = source
    for cached in (schema_texts, _schema, validator, _compiled):
        cached.cache_clear()


@cache
def schema_texts() -> Mapping[str, str]:
    """File name -> text of every JSON Schema definitions are validated against."""
    if _source is None:
        raise RuntimeError("no JSON Schemas to validate with: import pipeline.schemas first")
    return dict(_source())


@cache
def _schema(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_texts()[f"{kind}.json"])
    return loaded


@cache
def validator(kind: str) -> jsonschema.protocols.Validator:
    """The reference validator for one kind of definition (factory, module, variant).

    jsonschema is the authority: it is what reports errors, with their JSON paths.
    """
    import jsonschema

    schema = _schema(kind)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@cache
def _compiled(kind: str) -> Callable[[Any], Any]:
    import fastjsonschema

    check: Callable[[Any], Any] = fastjsonschema.compile(_schema(kind))
    return check


def _fast_valid(kind: str, data: Any) -> bool:
    """A quick yes from a compiled schema (about ten times faster); any no goes to jsonschema.

    A yes is only trusted together with the typed conversion that follows, which parses every
    date again; whatever the compiled check lets through that jsonschema would refuse is a
    bug, and the table of bad definitions runs through both.
    """
    import fastjsonschema

    try:
        _compiled(kind)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _schema_diagnostics(document: yamlsource.Document, kind: str) -> Iterable[Diagnostic]:
    seen: set[tuple[int, int, str]] = set()
    for error in validator(kind).iter_errors(document.data):
        path = tuple(error.absolute_path)
        at_key = False
        rule = str(error.validator)
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            schema = error.schema if isinstance(error.schema, dict) else {}
            allowed = set(schema.get("properties", {}))
            extra = sorted(k for k in error.instance if k not in allowed)
            if extra:
                path = (*path, extra[0])
                at_key = True
                message = f"unknown field {extra[0]!r}" + (
                    f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""
                )
        elif "propertyNames" in error.relative_schema_path:
            # jsonschema reports the failing check on the name itself (pattern, maxLength), at
            # the path of the mapping; point at the offending key instead.
            path = (*path, str(error.instance))
            at_key = True
            rule = "propertyNames"
            message = f"invalid name {error.instance!r}: {error.message}"
        elif error.validator == "required":
            at_key = bool(path)
        line, col = document.where(path, key=at_key)
        code = "schema-" + re.sub(r"(?<!^)(?=[A-Z])", "-", rule).lower()
        where = _json_path(tuple(error.absolute_path))
        if (line, col, code) in seen:
            continue
        seen.add((line, col, code))
        yield Diagnostic(
            document.path,
            line,
            col,
            code,
            f"{where}: {message}",
            document.excerpt(line, col),
        )


def _json_path(path: Sequence[str | int]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# -- loose data -> typed values (only after the schema accepted the data) ------------------------


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def _module(data: dict[str, Any], path: str) -> Module:
    deps = data.get("dependencies", {})
    rpms = sorted(data["components"]["rpms"].items())
    pins = tuple(
        Pin(
            component=name,
            ref=pin.get("ref", ""),
            branch=pin["branch"],
            repository=pin.get("repository"),
            rationale=pin.get("rationale", ""),
            buildorder=pin.get("buildorder", 0),
            arches=tuple(pin.get("arches", ())),
        )
        for name, pin in rpms
        if "source" not in pin
    )
    binaries = tuple(
        BinaryPin(
            component=name,
            source=pin["source"],
            build=pin["build"],
            rationale=pin.get("rationale", ""),
            buildorder=pin.get("buildorder", 0),
            arches=tuple(pin.get("arches", ())),
        )
        for name, pin in rpms
        if "source" in pin
    )
    profiles = tuple(
        Profile(name, p.get("description", ""), tuple(p["rpms"]))
        for name, p in sorted(data.get("profiles", {}).items())
    )
    return Module(
        name=data["name"],
        stream=data["stream"],
        summary=data["summary"],
        description=data["description"],
        license=data["license"],
        eol=_date(data["eol"]),
        components=pins,
        buildrequires=tuple(sorted(deps.get("buildrequires", {}).items())),
        requires=tuple(sorted(deps.get("requires", {}).items())),
        profiles=profiles,
        api=tuple(data.get("api", {}).get("rpms", ())),
        servicelevels=tuple(
            (name, _date(level["eol"])) for name, level in sorted(data.get("servicelevels", {}).items())
        ),
        maintainers=tuple(data.get("maintainers", ())),
        retired=bool(data.get("retired", False)),
        binaries=binaries,
        path=path,
    )


def _variant(data: dict[str, Any], path: str) -> Variant:
    outputs = []
    for raw in data["outputs"]:
        layered = raw.get("from", ())
        outputs.append(
            Output(
                kind=raw["kind"],
                name=raw["name"],
                layered_on=(layered,) if isinstance(layered, str) else tuple(layered),
                options=tuple(sorted(raw.get("options", {}).items())),
            )
        )
    return Variant(
        uid=data["uid"],
        name=data["name"],
        release=data["release"],
        eol=_date(data["eol"]),
        arches=tuple(data["arches"]),
        modules=tuple(ModuleSelection(m["module"], tuple(m.get("profiles", ()))) for m in data["modules"]),
        outputs=tuple(outputs),
        retired=bool(data.get("retired", False)),
        path=path,
    )


# -- placing cross-check problems ----------------------------------------------------------------


def _locate(problems: Iterable[consistency.Problem], files: dict[str, SourceFile]) -> list[Diagnostic]:
    """Turn cross-check problems into diagnostics, re-reading only the files that have one."""
    from pipeline.core import yamlsource

    documents: dict[str, yamlsource.Document | None] = {}
    out = []
    for problem in problems:
        if problem.path not in documents:
            source = files.get(problem.path)
            parsed = yamlsource.parse(problem.path, source.read()) if source else None
            documents[problem.path] = parsed if isinstance(parsed, yamlsource.Document) else None
        document = documents[problem.path]
        if document is None:
            out.append(Diagnostic(problem.path, 1, 1, problem.code, problem.message))
            continue
        line, col = document.where(problem.where, key=problem.at_key)
        out.append(
            Diagnostic(problem.path, line, col, problem.code, problem.message, document.excerpt(line, col))
        )
    return out
