"""Modulemd module streams (as libmodulemd read them) to factory modules. Pure.

What maps: name, stream, summary, description, the module license (several joined with AND),
EOL (`xmd.factory.eol` as factory's export writes it, else the latest service level EOL, else
the date the caller gives), service levels, one set of build and run dependencies with one
stream each, components with their pins, buildorder (and buildafter, as buildorder levels),
arches, profiles, api. A pin's exact commit is the component's `ref` when that is a full commit
hash, or for a built module the commit MBS recorded in `xmd.mbs.rpms.<name>.ref`, with the
branch the component's `ref` names.

What the build system derives again when factory composes (version, context, arch, artifacts,
content licenses, MBS's build records in `xmd.mbs`) is left out silently; everything else that
does not fit is a `Loss` naming the document's file and line, and the rest of the document
still imports. A document that cannot become a module at all (no name, no EOL, no component
left) is one Loss and is skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.core.model import BinaryPin, Module, Pin, Profile
from pipeline.interop.report import Loss
from pipeline.tools.libmodulemd import PACKAGER, STREAM, Document, ModuleStream, RpmComponent

NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
STREAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+]*$")
PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
ABBREVIATED = re.compile(r"^[0-9a-f]{7,39}$")
ARCHES = frozenset({"x86_64", "aarch64", "ppc64le", "s390x", "noarch"})
BUILD_PROFILES = frozenset({"buildroot", "srpm-buildroot"})
_Lose = Callable[[tuple[str | int, ...], str, str], None]  # (key path under data, what, reason)
_LoseHere = Callable[[str, str], None]
SPEC_DEFAULT_BRANCH = "master"  # "If no ref is given, the master branch is assumed." (the spec)

_SKIPPED_KINDS = {
    "modulemd-defaults": "default streams and profiles: a variant's selection chooses what it ships",
    "modulemd-translations": "translations of summaries and descriptions are not carried",
    "modulemd-obsoletes": "obsoletes: factory ends a module stream by its EOL (`factory eol`, `retire`)",
}


@dataclass(frozen=True, slots=True)
class Context:
    """What the conversion needs to know about the destination."""

    eol: dt.date | None = None  # for documents that carry no EOL
    known: Mapping[str, frozenset[str]] = field(default_factory=dict)  # streams defined there
    distgit_url: str = ""  # factory.yaml's template, `{component}` for the repository name
    # `--source`: components become binary pins of the builds the stream's `artifacts` name, as
    # the source holds them (artifact NEVRA -> NVR of its build)
    source: str = ""
    artifact_builds: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Imported:
    modules: tuple[Module, ...]
    losses: tuple[Loss, ...]


def generated_rationale(nsid: str) -> str:
    """The rationale factory's export writes for a pin that has none (modulemd requires one)."""
    return f"Component of the {nsid} module."


def convert(documents: Iterable[Document], context: Context) -> Imported:
    """Factory modules from every module stream of the documents, and what did not fit."""
    documents = list(documents)
    losses: list[Loss] = []
    candidates: list[tuple[Document, ModuleStream]] = []
    for doc in documents:
        if doc.error:
            losses.append(Loss(doc.path, doc.line, f"document {doc.index + 1}", f"libmodulemd: {doc.error}"))
        elif doc.kind in (STREAM, PACKAGER) and doc.streams:
            candidates.extend(_first_configuration(doc, losses))
        elif doc.kind in _SKIPPED_KINDS:
            losses.append(Loss(doc.path, doc.line, doc.kind, _SKIPPED_KINDS[doc.kind]))
        else:
            what = f"{doc.kind or 'document'} v{doc.version}"
            reason = (
                "modulemd v1: upgrade it to v2 with libmodulemd first"
                if doc.kind == STREAM
                else "not a modulemd v2 or modulemd-packager v2/v3 document"
            )
            losses.append(Loss(doc.path, doc.line, what, reason))
    chosen = _latest_builds(candidates, losses)
    known = {name: set(streams) for name, streams in context.known.items()}
    for _, stream in chosen:
        known.setdefault(stream.name, set()).add(stream.stream)
    modules = []
    for doc, stream in chosen:
        module = _module(doc, stream, context, known, losses)
        if module is not None:
            modules.append(module)
    return Imported(tuple(modules), tuple(sorted(losses, key=Loss.sort_key)))


def _first_configuration(doc: Document, losses: list[Loss]) -> list[tuple[Document, ModuleStream]]:
    """A packager v3 document makes one stream per configuration: factory builds one of them."""
    first, *others = doc.streams
    for i, other in enumerate(others, start=1):
        losses.append(
            Loss(
                doc.path,
                doc.where(("data", "configurations", i)),
                f"configuration {other.context}",
                f"factory builds one configuration per module stream; {first.context} is the one imported",
            )
        )
    return [(doc, first)]


def _latest_builds(
    candidates: list[tuple[Document, ModuleStream]], losses: list[Loss]
) -> list[tuple[Document, ModuleStream]]:
    """One build per name:stream (a repodata modules.yaml may hold several): the latest version."""
    best: dict[tuple[str, str], tuple[Document, ModuleStream]] = {}
    for doc, stream in candidates:
        key = (stream.name, stream.stream)
        if key in best and best[key][1].version >= stream.version:
            dropped = (doc, stream)
        else:
            dropped = best.get(key)  # type: ignore[assignment]
            best[key] = (doc, stream)
        if dropped is not None:
            d, s = dropped
            losses.append(
                Loss(
                    d.path,
                    d.line,
                    f"{s.name}:{s.stream}:{s.version}:{s.context}",
                    "an older build of a stream imported from a later version",
                )
            )
    return [best[k] for k in sorted(best)]


def _module(
    doc: Document, s: ModuleStream, context: Context, known: dict[str, set[str]], losses: list[Loss]
) -> Module | None:
    def lose(path: tuple[str | int, ...], what: str, reason: str) -> None:
        losses.append(Loss(doc.path, doc.where(("data", *path)), what, reason))

    def skip(reason: str) -> None:
        losses.append(Loss(doc.path, doc.line, f"document {doc.index + 1}", reason))

    if not s.name or not s.stream:
        skip("no module name or stream: packager documents take them from dist-git; pass --name and --stream")
        return None
    nsid = f"{s.name}:{s.stream}"
    if not NAME.match(s.name):
        skip(f"module name {s.name!r} is not a factory module name ({NAME.pattern})")
        return None
    if not STREAM_NAME.match(s.stream):
        skip(f"stream {s.stream!r} of {s.name} is not a factory stream name ({STREAM_NAME.pattern})")
        return None
    factory = s.xmd.get("factory", {}) if isinstance(s.xmd.get("factory"), dict) else {}
    eol = _eol(factory, s, context)
    if eol is None:
        skip(f"{nsid} carries no EOL (no service level with one): pass --eol DATE")
        return None
    servicelevels = []
    for name, date in s.servicelevels:
        if date and NAME.match(name):
            servicelevels.append((name, dt.date.fromisoformat(date)))
        else:
            lose(
                ("servicelevels", name),
                f"servicelevel {name}",
                "a factory service level has a name and an EOL date",
            )
    license_ = " AND ".join(s.module_licenses)
    if not license_:
        license_ = "NOASSERTION"
        lose(("license",), "license", "the document names no module license: NOASSERTION written")
    deps = _dependencies(doc, s, known, lose)

    def lose_pin(path: tuple[str | int, ...], what: str, reason: str) -> None:
        if not (context.source and path[-1:] in (("ref",), ("cache",))):  # dist-git's, moot for a build
            lose(path, what, reason)

    pins = _pins(doc, s, context, lose_pin)
    binaries = _exported_binaries(factory)
    if context.source:
        binaries = _binary_pins(s, pins, context, lose)
        pins = []
        if not binaries:
            skip(f"{nsid}: no artifact of its components is in source {context.source}")
            return None
    elif not pins and not binaries:
        skip(f"{nsid} has no component factory can build")
        return None
    shipped = {p.component for p in pins} | {b.component for b in binaries}
    shipped |= {_artifact_name(a) for a in s.artifacts if context.artifact_builds.get(a)}
    api = []
    for rpm in s.api:
        if PACKAGE.match(rpm):
            api.append(rpm)
        else:
            lose(("api", "rpms"), f"api {rpm}", "not a package name")
    profiles = _profiles(s, shipped | set(api), lose)
    for rpm in s.filters:
        lose(("filter", "rpms"), f"filter {rpm}", "factory ships every RPM a component builds (no filters)")
    for rpm in s.demodularized:
        lose(
            ("demodularized", "rpms"),
            f"demodularized {rpm}",
            "factory modules do not list demodularized RPMs",
        )
    for name in s.module_components:
        lose(
            ("components", "modules", name),
            f"module component {name}",
            "factory modules have RPM components only; a module depends on another with requires",
        )
    opts: tuple[str | int, ...] = (
        ("configurations", 0, "buildopts") if doc.kind == PACKAGER and doc.version == 3 else ("buildopts",)
    )
    if s.buildopts_arches:
        lose(
            (*opts, "arches"),
            "buildopts.arches",
            "a module is built for the arches of the variants that ship it",
        )
    if s.buildopts_macros:
        lose(
            (*opts, "rpms", "macros"),
            "buildopts.rpms.macros",
            "factory builds every component with the release's macros",
        )
    if s.buildopts_whitelist:
        lose(
            (*opts, "rpms", "whitelist"),
            "buildopts.rpms.whitelist",
            "factory ships the RPMs the components build",
        )
    for key, _ in s.references:
        lose(("references", key), f"references.{key}", "factory modules have no references")
    for key in sorted(k for k in s.xmd if k not in ("mbs", "factory")):
        lose(("xmd", key), f"xmd.{key}", "extensible metadata has no place in a factory module")
    summary = s.summary or s.name
    return Module(
        name=s.name,
        stream=s.stream,
        summary=summary,
        description=s.description or summary,
        license=license_,
        eol=eol,
        components=tuple(sorted(pins, key=lambda p: p.component)),
        binaries=tuple(sorted(binaries, key=lambda b: b.component)),
        buildrequires=deps[0],
        requires=deps[1],
        profiles=profiles,
        api=tuple(api),
        servicelevels=tuple(sorted(servicelevels)),
        maintainers=tuple(str(m) for m in factory.get("maintainers", ()) if str(m)),
    )


def _eol(factory: Mapping[str, object], s: ModuleStream, context: Context) -> dt.date | None:
    value = factory.get("eol")
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    dates = [dt.date.fromisoformat(d) for _, d in s.servicelevels if d]
    return max(dates) if dates else context.eol


def _dependencies(
    doc: Document, s: ModuleStream, known: dict[str, set[str]], lose: _Lose
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """One dependency set, one stream per module; the platform is factory.yaml's release."""
    v3 = doc.kind == PACKAGER and doc.version == 3
    found: dict[str, dict[str, str]] = {"buildrequires": {}, "requires": {}}
    for i, deps in enumerate(s.dependencies[:1]):
        for field_, pairs in (("buildrequires", deps.buildrequires), ("requires", deps.requires)):
            for name, streams in pairs:
                where = ("configurations", 0, field_, name) if v3 else ("dependencies", i, field_, name)
                what = f"{field_} {name}"
                if name == "platform":
                    if not v3:
                        lose(where, what, "the platform is the release factory composes for (factory.yaml)")
                elif not streams:
                    lose(where, what, "any stream: a factory module depends on exactly one stream")
                elif any(x.startswith("-") for x in streams):
                    lose(
                        where,
                        what,
                        f"stream exclusions {list(streams)}: factory names the one stream it depends on",
                    )
                elif len(streams) > 1:
                    lose(
                        where,
                        what,
                        f"several streams {list(streams)}: a factory module depends on exactly one stream",
                    )
                elif streams[0] not in known.get(name, set()):
                    lose(
                        where, what, f"{name}:{streams[0]} is neither imported nor defined at the destination"
                    )
                else:
                    found[field_][name] = streams[0]
    if v3 and s.dependencies:
        lose(
            ("configurations", 0, "platform"),
            "platform",
            "the platform is the release factory composes for (factory.yaml)",
        )
    for i in range(1, len(s.dependencies)):
        lose(
            ("dependencies", i),
            f"dependencies[{i}]",
            "several dependency sets (one build each): factory builds against the first only",
        )
    return tuple(sorted(found["buildrequires"].items())), tuple(sorted(found["requires"].items()))


def _pins(doc: Document, s: ModuleStream, context: Context, lose: _Lose) -> list[Pin]:
    mbs = s.xmd.get("mbs", {}) if isinstance(s.xmd.get("mbs"), dict) else {}
    built = mbs.get("rpms", {}) if isinstance(mbs.get("rpms"), dict) else {}
    nsid = f"{s.name}:{s.stream}"
    orders = _buildafter_levels(s.components)
    pins = []
    for c in s.components:
        at = ("components", "rpms", c.key)
        if not PACKAGE.match(c.key):
            lose(at, f"component {c.key}", "not a package name")
            continue
        ref_at: tuple[str | int, ...] = (*at, "ref")

        def lose_ref(what: str, why: str, ref_at: tuple[str | int, ...] = ref_at) -> None:
            lose(ref_at, what, why)

        ref, branch = _pin_ref(c, built.get(c.key), s.stream, lose_ref)
        if not BRANCH.match(branch):
            lose((*at, "ref"), f"component {c.key}", f"{branch!r} is not a branch name")
            continue
        arches = tuple(a for a in c.arches if a in ARCHES)
        if c.arches and set(c.arches) - ARCHES:
            lose(
                (*at, "arches"),
                f"component {c.key} arches",
                f"{sorted(set(c.arches) - ARCHES)} are not factory arches",
            )
            if not arches:
                continue
        buildorder = orders.get(c.key, c.buildorder)
        if not -1000 <= buildorder <= 1000:
            lose(
                (*at, "buildorder"),
                f"component {c.key} buildorder",
                f"{buildorder} is outside -1000..1000: 0 written",
            )
            buildorder = 0
        if c.buildafter:
            lose(
                (*at, "buildafter"),
                f"component {c.key} buildafter",
                f"expressed as buildorder {buildorder} (a level of the buildafter graph)",
            )
        for flag, on, reason in (
            ("cache", bool(c.cache), "factory builds from the dist-git repository's sources"),
            ("multilib", bool(c.multilib), "factory builds no multilib"),
            ("buildroot", c.buildroot, "factory builds every component in a clean buildroot"),
            ("srpm-buildroot", c.srpm_buildroot, "factory builds every component in a clean buildroot"),
            ("buildonly", c.buildonly, "factory ships every RPM a component builds"),
        ):
            if on:
                lose((*at, flag), f"component {c.key} {flag}", reason)
        pins.append(
            Pin(
                component=c.key,
                ref=ref,
                branch=branch,
                repository=_repository(c, context) or None,
                rationale="" if c.rationale == generated_rationale(nsid) else c.rationale,
                buildorder=buildorder,
                arches=arches,
            )
        )
    return pins


def _exported_binaries(factory: Mapping[str, object]) -> list[BinaryPin]:
    """The binary pins `factory export pungi` wrote in `xmd.factory.binaries`."""
    raw = factory.get("binaries")
    found = []
    for component, pin in raw.items() if isinstance(raw, dict) else ():
        if isinstance(pin, dict) and isinstance(pin.get("source"), str) and isinstance(pin.get("build"), str):
            arches = pin.get("arches")
            found.append(
                BinaryPin(
                    str(component),
                    pin["source"],
                    pin["build"],
                    str(pin.get("rationale", "")),
                    int(pin.get("buildorder", 0)),
                    tuple(str(a) for a in arches) if isinstance(arches, list) else (),
                )
            )
    return found


def _binary_pins(s: ModuleStream, pins: list[Pin], context: Context, lose: _Lose) -> list[BinaryPin]:
    """The components as binary pins of the builds the stream's artifacts are RPMs of, in the
    context's source; a component no artifact in the source leads to is left out, said so."""
    built: dict[str, set[str]] = {}
    for artifact in s.artifacts:
        nvr = context.artifact_builds.get(artifact)
        if nvr is None:
            lose(("artifacts", "rpms"), f"artifact {artifact}", f"not in source {context.source}")
            continue
        built.setdefault(nvr.rsplit("-", 2)[0], set()).add(nvr)
    found = []
    for pin in pins:
        names = {c.name or c.key for c in s.components if c.key == pin.component}
        nvrs = sorted(n for name in names for n in built.get(name, ()))
        at = ("components", "rpms", pin.component)
        if not nvrs:
            lose(
                at, f"component {pin.component}", f"no artifact of it is in source {context.source}: left out"
            )
            continue
        if len(nvrs) > 1:
            lose(
                at,
                f"component {pin.component}",
                f"artifacts of several builds ({', '.join(nvrs)}): {nvrs[-1]} pinned",
            )
        nvr = nvrs[-1]
        found.append(
            BinaryPin(nvr.rsplit("-", 2)[0], context.source, nvr, pin.rationale, pin.buildorder, pin.arches)
        )
    return found


def _artifact_name(nevra: str) -> str:
    """The package name of an artifact NEVRA (`glibc-0:2.28-1.fc29.x86_64`: glibc)."""
    return nevra.rsplit("-", 2)[0]


def _pin_ref(c: RpmComponent, built: object, stream: str, lose: _LoseHere) -> tuple[str, str]:
    """(exact commit or "", branch) of a component."""
    recorded = built.get("ref") if isinstance(built, dict) else None
    commit = recorded if isinstance(recorded, str) and COMMIT.match(recorded) else ""
    if COMMIT.match(c.ref):
        if not commit:
            lose(
                f"component {c.key} ref",
                f"a commit without the branch it follows: the pin follows {stream} (dist-git's branch for the module's stream)",
            )
        return c.ref, stream
    if ABBREVIATED.match(c.ref):
        lose(
            f"component {c.key} ref",
            f"{c.ref} looks like an abbreviated commit; factory pins full commits: read as a branch name",
        )
    if not c.ref:
        lose(
            f"component {c.key} ref",
            f"no ref: follows {SPEC_DEFAULT_BRANCH}, as the modulemd specification says",
        )
    return commit, c.ref or SPEC_DEFAULT_BRANCH


def _repository(c: RpmComponent, context: Context) -> str:
    """The pin's `repository` when it is not where factory.yaml's template puts the component."""
    template = context.distgit_url
    default = template.replace("{component}", c.key) if template else ""
    if c.repository:
        return "" if c.repository == default else c.repository
    if c.name and template:
        return template.replace("{component}", c.name)
    return ""


def _buildafter_levels(components: tuple[RpmComponent, ...]) -> dict[str, int]:
    """buildafter as buildorder: each component one level after the deepest it builds after."""
    after = {c.key: c.buildafter for c in components if c.buildafter}
    if not after:
        return {}
    levels: dict[str, int] = {}

    def level(key: str, trail: tuple[str, ...]) -> int:
        if key in levels:
            return levels[key]
        if key in trail:
            return 0  # libmodulemd refuses cycles; stay total anyway
        value = max((level(k, (*trail, key)) + 1 for k in after.get(key, ())), default=0)
        levels[key] = value
        return value

    return {c.key: level(c.key, ()) for c in components}


def _profiles(s: ModuleStream, allowed: set[str], lose: _Lose) -> tuple[Profile, ...]:
    profiles = []
    for p in s.profiles:
        at = ("profiles", p.name)
        if p.name in BUILD_PROFILES:
            lose(
                at,
                f"profile {p.name}",
                "a build-time profile: factory builds every component in a clean buildroot",
            )
            continue
        if not NAME.match(p.name):
            lose(at, f"profile {p.name}", "not a factory profile name")
            continue
        if p.default:
            lose(
                (*at, "default"),
                f"profile {p.name} default",
                "a variant's selection chooses the profiles it ships",
            )
        rpms = []
        for rpm in p.rpms:
            if rpm in allowed:
                rpms.append(rpm)
            else:
                lose(
                    (*at, "rpms"),
                    f"profile {p.name} rpm {rpm}",
                    "neither a component nor in api (factory requires one)",
                )
        profiles.append(Profile(p.name, p.description, tuple(rpms)))
    return tuple(sorted(profiles, key=lambda p: p.name))
