"""Pungi variants (variants.xml) and the comps groups they use to factory variants and modules. Pure.

Variants are instantiated as Pungi does: every top-level `variant`, with its nested variants,
the addons and layered products it refers to (`<ref>`) and its optional variant; a child's
arches are the intersection with its parent's. Factory has no addons: each child becomes a
variant of its own (uid: the parent's uid and the child's id, e.g. `ServerOptional`), and the
relation is reported.

A variant selects:
- the module streams its `<modules>` lists (which must be defined at the destination: import
  their modulemd first), with the profiles whose groups `<name>-<profile>` it lists (the groups
  factory's own repos and `factory export pungi` write);
- one module per other comps group it lists: components from the group's packages that a
  dist-git repository provides (pinned at the head of the branch given; a package no dist-git
  provides is reported, never guessed), profiles `mandatory`, `default` (mandatory + default
  packages: what `dnf group install` installs) and `optional` (everything). With a source
  (`--source`), as Pungi composes from a tag's packages: binary pins of the builds the source
  holds for the group's packages (binary package names), the profiles listing those packages.

Release, EOL and artifacts come from the `<?factory-variant?>` instruction of an exported file;
otherwise the release is factory.yaml's, the EOL the one given, and the variant makes its flat
repo (what Pungi makes of every variant).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pipeline.core.model import BinaryPin, Module, ModuleSelection, Output, Pin, Profile, Variant
from pipeline.formats.pungi import Comps, CompsGroup, GroupRef, PungiVariant
from pipeline.interop.from_modulemd import NAME, STREAM_NAME
from pipeline.interop.report import Loss

VARIANT_ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x")
UID = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class Provided(StrEnum):
    """What dist-git says about a package name."""

    YES = "yes"  # a repository of that name has the branch
    NO = "no"  # no repository of that name, or it lacks the branch
    UNKNOWN = "unknown"  # its dist-git cannot be reached from here


class DistGitLookup(Protocol):
    """Whether a dist-git repository provides a package, and the head of its branch."""

    def provides(self, package: str, branch: str) -> tuple[Provided, str]: ...


class BuildLookup(Protocol):
    """The build a source holds of a binary package: (its component, its NVR), or None."""

    def build_of(self, package: str) -> tuple[str, str] | None: ...


@dataclass(frozen=True, slots=True)
class Context:
    release: str  # factory.yaml's release version: the release of variants that carry none
    stream: str  # the stream of modules made from comps groups
    branch: str  # the dist-git branch their pins follow
    eol: dt.date | None = None
    modules: Mapping[str, Module] = field(default_factory=dict)  # defined at the destination
    source: str = ""  # a binary package source: groups become binary pins of its builds


@dataclass(frozen=True, slots=True)
class Imported:
    variants: tuple[Variant, ...]
    modules: tuple[Module, ...]
    losses: tuple[Loss, ...]


def convert(
    variants_path: str,
    variants: tuple[PungiVariant, ...],
    comps_path: str,
    comps: Comps,
    context: Context,
    lookup: DistGitLookup,
    builds: BuildLookup | None = None,
) -> Imported:
    """Factory variants and the modules made from comps groups (binary pins of a source's builds
    when the context names one: `builds` finds them), and what did not fit."""
    state = _State(variants_path, comps_path, comps, context, lookup, builds)
    templates = {v.id: v for v in variants if v.type in ("addon", "layered-product")}
    referenced: set[str] = set()
    for top in variants:
        if top.type == "variant":
            state.variant(top, None, templates, referenced)
    for template in templates.values():
        if template.id not in referenced:
            state.lose_v(
                template.line,
                f"{template.type} {template.id}",
                "no variant refers to it, so Pungi never makes it",
            )
    for other in comps.others:
        state.lose_c(other.line, other.name, "factory has no comps environments, categories or langpacks")
    modules = tuple(m for m in state.group_modules.values() if m is not None)
    return Imported(tuple(state.out), modules, tuple(sorted(state.losses, key=Loss.sort_key)))


def factory_uid(pungi_uid: str) -> str:
    """A factory variant uid for a Pungi uid: `Server-optional` -> `ServerOptional`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", pungi_uid) if part)


class _State:
    def __init__(
        self,
        variants_path: str,
        comps_path: str,
        comps: Comps,
        context: Context,
        lookup: DistGitLookup,
        builds: BuildLookup | None = None,
    ) -> None:
        self.variants_path = variants_path
        self.comps_path = comps_path
        self.groups = {g.id: g for g in comps.groups}
        self.context = context
        self.lookup = lookup
        self.builds = builds
        self.losses: list[Loss] = []
        self.out: list[Variant] = []
        self.group_modules: dict[str, Module | None] = {}
        self.owner = {p.component: m.nsid for m in context.modules.values() for p in m.components}
        self.owner |= {b.component: m.nsid for m in context.modules.values() for b in m.binaries}

    def lose_v(self, line: int, what: str, reason: str) -> None:
        self.losses.append(Loss(self.variants_path, line, what, reason))

    def lose_c(self, line: int, what: str, reason: str) -> None:
        self.losses.append(Loss(self.comps_path, line, what, reason))

    def variant(
        self,
        node: PungiVariant,
        parent: tuple[str, tuple[str, ...]] | None,
        templates: Mapping[str, PungiVariant],
        referenced: set[str],
    ) -> None:
        pungi_uid = f"{parent[0]}-{node.id}" if parent else node.id
        arches = tuple(a for a in node.arches if not parent or a in parent[1])
        if parent:
            self.lose_v(
                node.line,
                f"{node.type} {pungi_uid}",
                f"factory has no {node.type} variants: imported as the variant {factory_uid(pungi_uid)}, without its parent's modules",
            )
        children = list(node.children)
        for ref in node.refs:
            if ref.name in templates:
                referenced.add(ref.name)
                children.append(templates[ref.name])
            else:
                self.lose_v(ref.line, f"ref {ref.name}", "no top-level addon or layered product has this id")
        if node.has_optional and not any(c.type == "optional" for c in children):
            self.lose_v(
                node.line, f"optional {pungi_uid}-optional", "an empty optional variant: nothing to select"
            )
        made = self._variant(node, pungi_uid, arches)
        if made is not None:
            self.out.append(made)
        for child in children:
            self.variant(child, (pungi_uid, arches), templates, referenced)

    def _variant(self, node: PungiVariant, pungi_uid: str, arches: tuple[str, ...]) -> Variant | None:
        what = f"variant {pungi_uid}"
        uid = factory_uid(pungi_uid)
        if uid != pungi_uid and node.type == "variant" and "-" not in pungi_uid:
            self.lose_v(node.line, what, f"not a factory uid: imported as {uid}")
        if not UID.match(uid):
            self.lose_v(node.line, what, f"{uid!r} is not a factory variant uid")
            return None
        kept = tuple(a for a in arches if a in VARIANT_ARCHES)
        for arch in arches:
            if arch not in VARIANT_ARCHES:
                self.lose_v(node.line, f"{what} arch {arch}", "not an arch factory composes for")
        for env in node.environments:
            self.lose_v(env.line, f"environment {env.name}", "factory has no comps environments")
        for tag in node.kojitags:
            self.lose_v(
                tag.line, f"kojitag {tag.name}", "factory composes modules from definitions, not Koji tags"
            )
        if node.buildinstallpackages:
            self.lose_v(
                node.line,
                f"{what} buildinstallpackages",
                "an installer is an iso output with packages (options.packages)",
            )
        selections = self._selections(node)
        extension = node.extension or {}
        eol = _date(extension.get("eol")) or self.context.eol
        if not kept or not selections or eol is None:
            reason = (
                "no arch factory composes for"
                if not kept
                else "it selects no module factory can make"
                if not selections
                else "no EOL: pass --eol DATE"
            )
            self.lose_v(node.line, what, reason)
            return None
        release = str(extension.get("release") or dict(node.release).get("version") or self.context.release)
        if node.release and not extension:
            self.lose_v(
                node.line,
                f"{what} release",
                "a layered product's own release name and short name: only its version is kept",
            )
        outputs = _outputs(extension.get("outputs"))
        return Variant(
            uid=uid,
            name=node.name or uid,
            release=release,
            eol=eol,
            arches=kept,
            modules=selections,
            outputs=outputs,
        )

    def _selections(self, node: PungiVariant) -> tuple[ModuleSelection, ...]:
        chosen: dict[str, list[str]] = {}
        for entry in node.modules:
            parts = entry.name.split(":")
            nsid = ":".join(parts[:2])
            if entry.glob:
                self.lose_v(
                    entry.line, f"module {entry.name}", "module globs: a variant names each module stream"
                )
            elif len(parts) < 2:
                self.lose_v(entry.line, f"module {entry.name}", "a module stream is NAME:STREAM")
            elif nsid not in self.context.modules:
                self.lose_v(
                    entry.line,
                    f"module {entry.name}",
                    "not defined at the destination: import its modulemd first",
                )
            else:
                if len(parts) > 2:
                    self.lose_v(
                        entry.line,
                        f"module {entry.name}",
                        "a variant selects a stream; the version and context are the composes'",
                    )
                chosen.setdefault(nsid, [])
        for ref in node.groups:
            for group_id in self._expand(ref):
                profile = self._profile_group(group_id, chosen)
                if profile is not None:
                    chosen[profile[0]].append(profile[1])
                    continue
                module = self._group_module(group_id, ref)
                if module is not None and module.nsid not in chosen:
                    names = [p.name for p in module.profiles]
                    chosen[module.nsid] = ["default"] if "default" in names else names[:1]
            if ref.default is not None or ref.uservisible is not None:
                self.lose_v(
                    ref.line,
                    f"group {ref.name} default/uservisible",
                    "factory's comps groups are never default and always visible",
                )
        return tuple(ModuleSelection(nsid, tuple(dict.fromkeys(p))) for nsid, p in chosen.items())

    def _expand(self, ref: GroupRef) -> list[str]:
        if not ref.glob:
            if ref.name not in self.groups and not self._looks_like_profile(ref.name):
                self.lose_v(ref.line, f"group {ref.name}", f"no such group in {self.comps_path}")
                return []
            return [ref.name]
        found = sorted(g for g in self.groups if fnmatch.fnmatchcase(g, ref.name))
        if not found:
            self.lose_v(ref.line, f"group {ref.name}", f"the glob matches no group of {self.comps_path}")
        return found

    def _looks_like_profile(self, group_id: str) -> bool:
        return any(
            group_id == f"{m.name}-{p.name}" for m in self.context.modules.values() for p in m.profiles
        )

    def _profile_group(self, group_id: str, chosen: Mapping[str, list[str]]) -> tuple[str, str] | None:
        """(module, profile) when a group is the profile group of a module the variant selects."""
        for nsid in chosen:
            module = self.context.modules.get(nsid)
            if module is None:
                continue  # a module made from a group: no profile groups of its own
            for profile in module.profiles:
                if group_id == f"{module.name}-{profile.name}":
                    return nsid, profile.name
        return None

    def _group_module(self, group_id: str, ref: GroupRef) -> Module | None:
        if group_id in self.group_modules:
            return self.group_modules[group_id]
        group = self.groups.get(group_id)
        module = None
        if group is None:
            self.lose_v(
                ref.line,
                f"group {group_id}",
                "a profile group of a module the variant does not list in <modules>",
            )
        else:
            module = self._module(group)
        self.group_modules[group_id] = module
        return module

    def _module(self, group: CompsGroup) -> Module | None:
        what = f"group {group.id}"
        if not NAME.match(group.id) or not STREAM_NAME.match(self.context.stream):
            self.lose_c(
                group.line, what, f"{group.id}:{self.context.stream} is not a factory module name:stream"
            )
            return None
        nsid = f"{group.id}:{self.context.stream}"
        if self.context.eol is None:
            self.lose_c(group.line, what, "a module needs an EOL: pass --eol DATE")
            return None
        if self.context.source and self.builds is not None:
            return self._binary_module(group, nsid, self.builds)
        pins: dict[str, Pin] = {}
        kinds: dict[str, set[str]] = {"mandatory": set(), "default": set(), "optional": set()}
        for req in group.packages:
            if req.name in pins:
                continue
            if req.name in self.owner and self.owner[req.name] != nsid:
                self.lose_c(
                    req.line,
                    f"package {req.name}",
                    f"already a component of {self.owner[req.name]}: a package belongs to one module",
                )
                continue
            answer, head = self.lookup.provides(req.name, self.context.branch)
            if answer == Provided.NO:
                self.lose_c(
                    req.line,
                    f"package {req.name}",
                    f"no dist-git repository provides it on branch {self.context.branch}",
                )
                continue
            if answer == Provided.UNKNOWN:
                self.lose_c(
                    req.line,
                    f"package {req.name}",
                    f"its dist-git cannot be reached from here: the pin follows {self.context.branch} without a commit, unverified",
                )
            if req.type == "conditional":
                self.lose_c(
                    req.line,
                    f"package {req.name}",
                    f"installed only with {req.requires} (conditional): in the optional profile",
                )
            pins[req.name] = Pin(req.name, head if answer == Provided.YES else "", self.context.branch)
            self.owner[req.name] = nsid
            kinds["optional" if req.type in ("optional", "conditional") else req.type].add(req.name)
        if not pins:
            self.lose_c(group.line, what, "no package of the group is provided by dist-git: no module made")
            return None
        self.lose_c(group.line, f"{what} license", "comps carries no license: NOASSERTION written")
        mandatory = sorted(kinds["mandatory"])
        default = sorted(kinds["mandatory"] | kinds["default"])
        everything = sorted(pins)
        profiles = [
            Profile(name, "", tuple(rpms))
            for name, rpms in (
                ("mandatory", mandatory if mandatory and kinds["default"] else []),
                ("default", default),
                ("optional", everything if kinds["optional"] else []),
            )
            if rpms
        ]
        return Module(
            name=group.id,
            stream=self.context.stream,
            summary=group.name or group.id,
            description=group.description or group.name or group.id,
            license="NOASSERTION",
            eol=self.context.eol,
            components=tuple(pins[name] for name in sorted(pins)),
            profiles=tuple(sorted(profiles, key=lambda p: p.name)),
        )

    def _binary_module(self, group: CompsGroup, nsid: str, builds: BuildLookup) -> Module | None:
        """The module of a group whose packages are builds the context's source holds."""
        source = self.context.source
        pins: dict[str, BinaryPin] = {}
        kinds: dict[str, list[str]] = {"mandatory": [], "default": [], "optional": []}
        for req in group.packages:
            found = builds.build_of(req.name)
            if found is None:
                self.lose_c(
                    req.line,
                    f"package {req.name}",
                    f"source {source} (with what it inherits) holds no such package",
                )
                continue
            component, nvr = found
            if component in self.owner and self.owner[component] != nsid:
                self.lose_c(
                    req.line,
                    f"package {req.name}",
                    f"its build {nvr} is already a component of {self.owner[component]}: a build belongs to one module",
                )
                continue
            if req.type == "conditional":
                self.lose_c(
                    req.line,
                    f"package {req.name}",
                    f"installed only with {req.requires} (conditional): in the optional profile",
                )
            pins.setdefault(component, BinaryPin(component, source, nvr))
            self.owner[component] = nsid
            kind = "optional" if req.type in ("optional", "conditional") else req.type
            if req.name not in kinds[kind]:
                kinds[kind].append(req.name)
        if not pins:
            self.lose_c(
                group.line,
                f"group {group.id}",
                f"no package of the group is in source {source}: no module made",
            )
            return None
        self.lose_c(group.line, f"group {group.id} license", "comps carries no license: NOASSERTION written")
        mandatory = sorted(kinds["mandatory"])
        default = sorted({*kinds["mandatory"], *kinds["default"]})
        everything = sorted({*default, *kinds["optional"]})
        profiles = [
            Profile(name, "", tuple(rpms))
            for name, rpms in (
                ("mandatory", mandatory if mandatory and kinds["default"] else []),
                ("default", default),
                ("optional", everything if kinds["optional"] else []),
            )
            if rpms
        ]
        assert self.context.eol is not None
        return Module(
            name=group.id,
            stream=self.context.stream,
            summary=group.name or group.id,
            description=group.description or group.name or group.id,
            license="NOASSERTION",
            eol=self.context.eol,
            components=(),
            profiles=tuple(sorted(profiles, key=lambda p: p.name)),
            binaries=tuple(pins[c] for c in sorted(pins)),
        )


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _outputs(raw: Any) -> tuple[Output, ...]:
    """The artifacts of an exported variant, or its flat repo (what Pungi makes of any variant)."""
    if not isinstance(raw, list):
        return (Output("repo", "os"),)
    outputs = []
    for entry in raw:
        layered = entry.get("from", ())
        outputs.append(
            Output(
                kind=str(entry["kind"]),
                name=str(entry["name"]),
                layered_on=(layered,) if isinstance(layered, str) else tuple(layered),
                options=tuple(sorted(entry.get("options", {}).items())),
            )
        )
    return tuple(outputs)
