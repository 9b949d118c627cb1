"""Cross-checks between definition files, on typed values. Pure: no I/O.

Each problem names the file and the JSON path inside it; `definitions.py` turns the path into
a line and column. The only outside knowledge, which branches a component's dist-git has,
arrives through the `BranchLookup` protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pipeline.core import sources
from pipeline.core.config import Config
from pipeline.core.deps import closure
from pipeline.core.kinds import REPO
from pipeline.core.model import Module, Output, Variant

Path = tuple[str | int, ...]  # a JSON path into a definition file

# Which output kinds an output of each built-in kind may be layered on (`from:`).
LAYERING: dict[str, frozenset[str]] = {
    "repo": frozenset(),
    "ostree": frozenset(),
    "container": frozenset({"container"}),
    "iso": frozenset({"ostree"}),
}


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    where: Path
    code: str
    message: str
    at_key: bool = False


class BranchLookup(Protocol):
    """Answers what a component's dist-git holds; None when it cannot be reached."""

    def branches(self, url: str) -> frozenset[str] | None: ...

    def has_commit(self, url: str, ref: str) -> bool | None: ...


def check(
    config: Config | None,
    modules: list[Module],
    variants: list[Variant],
    branches: BranchLookup | None = None,
    kinds: Collection[str] = tuple(LAYERING),
    broken: Collection[str] = (),
    unsure: Mapping[str, Collection[str]] = {},
) -> list[Problem]:
    """Every cross-file problem of a definitions tree.

    `kinds` are the artifact kinds that have a composer (plugins add theirs); layering rules
    are known for the built-in ones, and a plugin kind may be layered on any output.
    `broken` are the name:stream of module files that failed to load (their errors are
    reported already): references to them are not errors again. `unsure` names, per file, the
    top-level fields the schema refused (`definitions.salvage` stood in for them): every check
    that reads one of them is skipped, the others run.
    """

    def doubt(path: str, *fields: str) -> bool:
        return any(f in unsure.get(path, ()) for f in fields)

    index: dict[str, Module] = {}
    problems: list[Problem] = []
    for module in modules:
        if module.nsid in index:
            other = index[module.nsid].path
            problems.append(
                Problem(
                    module.path,
                    ("name",),
                    "duplicate-module",
                    f"{module.nsid} is also defined in {other}",
                )
            )
        else:
            index[module.nsid] = module
    streams: dict[str, set[str]] = {}
    for module in index.values():
        streams.setdefault(module.name, set()).add(module.stream)
    for nsid in broken:
        name, _, stream = nsid.partition(":")
        streams.setdefault(name, set()).add(stream)
    for module in modules:
        problems.extend(_module_references(module, index, streams, doubt))
    problems.extend(_cycles(index))
    for variant in variants:
        problems.extend(_variant_problems(variant, index, streams, kinds, doubt))
    if config is not None:
        problems.extend(_source_problems(config, modules))
    if config is not None and branches is not None:
        problems.extend(_pins_in_distgit(config, modules, branches))
    return problems


def binary_pins(modules: Iterable[Module], release: Sequence[str]) -> list[sources.PinRef]:
    """Every binary pin of the modules where it is written, with its arches (the release's,
    restricted by the pin's `arches:`)."""
    return [
        sources.PinRef(m.path, b.component, b.source, b.build, sources.pin_arches(b.arches, release))
        for m in modules
        for b in m.binaries
    ]


def from_sources(found: Iterable[sources.Problem]) -> list[Problem]:
    """Problems of `core.sources` as cross-check problems (placed the same way)."""
    return [Problem(p.path, p.where, p.code, p.message) for p in found]


def _source_problems(config: Config, modules: list[Module]) -> list[Problem]:
    """factory.yaml's sources on their own, and the binary pins naming them."""
    named = {s.name: s for s in config.sources}
    pins = binary_pins(modules, ())
    found = from_sources(
        [*sources.config_problems(named, config.path), *sources.pin_problems(pins, set(named))]
    )
    # One node per build: two modules taking one build for other arches would disagree on it.
    first: dict[str, tuple[Module, tuple[str, ...]]] = {}
    for module in sorted(modules, key=lambda m: m.path):
        for b in module.binaries:
            arches = tuple(sorted(b.arches))
            seen = first.setdefault(b.build, (module, arches))
            if seen[1] != arches:
                found.append(
                    Problem(
                        module.path,
                        ("components", "rpms", b.component, "build"),
                        "conflicting-arches",
                        f"{b.build} is pinned for arches {list(arches) or 'of the release'} here and for "
                        f"{list(seen[1]) or 'the arches of the release'} in {seen[0].path}: one build, one set of arches",
                    )
                )
    return found


def _unknown(name: str, stream: str, streams: dict[str, set[str]]) -> tuple[str, str] | None:
    if name not in streams:
        return "unknown-module", f"no module named {name!r}"
    if stream not in streams[name]:
        known = ", ".join(sorted(streams[name]))
        return "unknown-stream", f"module {name} has no stream {stream!r} (streams: {known})"
    return None


Doubt = Callable[..., bool]  # doubt(path, *fields): whether the schema refused one of them


def _module_references(
    module: Module, index: dict[str, Module], streams: dict[str, set[str]], doubt: Doubt
) -> Iterator[Problem]:
    for field, deps in (("buildrequires", module.buildrequires), ("requires", module.requires)):
        for name, stream in deps:
            where = ("dependencies", field, name)
            bad = _unknown(name, stream, streams)
            if bad:
                yield Problem(module.path, where, bad[0], f"{field}: {bad[1]}", at_key=True)
            elif f"{name}:{stream}" not in index:
                continue  # its file failed to load: reported there
            elif doubt(module.path, "retired") or doubt(index[f"{name}:{stream}"].path, "retired"):
                continue
            elif index[f"{name}:{stream}"].retired and not module.retired:
                yield Problem(
                    module.path,
                    where,
                    "retired-dependency",
                    f"{field}: {name}:{stream} is retired (past its End Of Life, "
                    f"EOL {index[f'{name}:{stream}'].eol}): {module.nsid} cannot need it",
                    at_key=True,
                )
            elif field == "requires" and not module.retired:
                required = index[f"{name}:{stream}"]
                if module.eol > required.eol and not (
                    doubt(module.path, "eol") or doubt(required.path, "eol")
                ):
                    yield Problem(
                        module.path,
                        where,
                        "eol-conflict",
                        f"{module.nsid} (EOL {module.eol}) outlives {required.nsid} "
                        f"(EOL {required.eol}), which it requires",
                        at_key=True,
                    )
    shipped = {pin.component for pin in module.components} | {b.component for b in module.binaries}
    shipped |= set(module.api)
    for profile in () if doubt(module.path, "components", "api") else module.profiles:
        for i, rpm in enumerate(profile.rpms):
            if rpm not in shipped:
                yield Problem(
                    module.path,
                    ("profiles", profile.name, "rpms", i),
                    "unknown-package",
                    f"profile {profile.name!r} lists {rpm!r}, which is neither a component nor in api",
                )


def _cycles(index: dict[str, Module]) -> Iterator[Problem]:
    """One problem per dependency cycle (requires and buildrequires), naming the whole cycle."""
    edges = {
        nsid: sorted(f"{n}:{s}" for n, s in (*m.requires, *m.buildrequires) if f"{n}:{s}" in index)
        for nsid, m in index.items()
    }
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    reported: set[frozenset[str]] = set()
    for start in sorted(edges):
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        trail = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                trail.pop()
                state[node] = 2
            elif state.get(child) == 1:
                cycle = [*trail[trail.index(child) :], child]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    module = index[node]
                    name, stream = child.split(":", 1)
                    field = "requires" if (name, stream) in module.requires else "buildrequires"
                    yield Problem(
                        module.path,
                        ("dependencies", field, name),
                        "dependency-cycle",
                        "dependency cycle: " + " -> ".join(cycle),
                        at_key=True,
                    )
            elif not state.get(child):
                state[child] = 1
                trail.append(child)
                stack.append((child, iter(edges[child])))


def _variant_problems(
    variant: Variant,
    index: dict[str, Module],
    streams: dict[str, set[str]],
    kinds: Collection[str],
    doubt: Doubt,
) -> Iterator[Problem]:
    path = variant.path
    chosen: dict[str, int] = {}
    unsure = doubt(path, "modules")  # what it ships is not known for sure
    for i, selection in enumerate(variant.modules):
        where = ("modules", i, "module")
        name, stream = selection.module.split(":", 1)
        bad = _unknown(name, stream, streams)
        if bad:
            yield Problem(path, where, bad[0], bad[1])
            continue
        if name in chosen:
            earlier = variant.modules[chosen[name]].module
            code = "duplicate-selection" if earlier == selection.module else "conflicting-streams"
            yield Problem(path, where, code, f"{selection.module} conflicts with {earlier}, selected earlier")
            continue
        chosen[name] = i
        if selection.module not in index:
            unsure = True  # its file failed to load (reported there): what it ships is unknown
            continue
        module = index[selection.module]
        if (
            module.retired
            and not variant.retired
            and not doubt(path, "retired")
            and not doubt(module.path, "retired")
        ):
            yield Problem(
                path,
                where,
                "retired-module",
                f"{selection.module} is retired (past its End Of Life, EOL {module.eol}): "
                f"{variant.uid} cannot ship it; retire {variant.uid} or drop the module",
            )
        for j, profile in enumerate(() if doubt(module.path, "profiles") else selection.profiles):
            if module.profile(profile) is None:
                known = ", ".join(p.name for p in module.profiles) or "none"
                yield Problem(
                    path,
                    ("modules", i, "profiles", j),
                    "unknown-profile",
                    f"{selection.module} has no profile {profile!r} (profiles: {known})",
                )
    # Only the accepted selections: a refused one (unknown, conflicting) is reported already.
    selected = [variant.modules[i].module for i in chosen.values()]
    shipped = closure(selected, index)
    # A stood-in dependency list may leave out what it ships; stood-in components, what it holds.
    unsure = unsure or any(doubt(index[n].path, "dependencies", "components", "api") for n in shipped)
    owner: dict[str, str] = {}
    for nsid in shipped:
        module = index[nsid]
        sure = not any(doubt(p, "eol", "retired") for p in (path, module.path))
        if variant.eol > module.eol and not variant.retired and sure:
            through = next((s for s in selected if s != nsid and nsid in closure([s], index)), None)
            how = "" if nsid in selected or through is None else f" (required by {through})"
            yield Problem(
                path,
                ("eol",),
                "eol-conflict",
                f"{variant.uid} (EOL {variant.eol}) would ship {nsid}{how} past its EOL {module.eol}, "
                f"{(variant.eol - module.eol).days} days before the variant's",
            )
        for component in [p.component for p in module.components] + [b.component for b in module.binaries]:
            if component in owner:
                yield Problem(
                    path,
                    ("modules",),
                    "duplicate-package",
                    f"package {component!r} is shipped by both {owner[component]} and {nsid}",
                    at_key=True,
                )
            else:
                owner[component] = nsid
    packages = set(owner)
    for nsid in shipped:
        packages.update(index[nsid].api)
    yield from _output_problems(variant, None if unsure else packages, kinds)


def _output_problems(
    variant: Variant, packages: set[str] | None, kinds: Collection[str]
) -> Iterator[Problem]:
    """Problems of a variant's outputs; `packages` None: what it ships is not known for sure."""
    path = variant.path
    by_name: dict[str, Output] = {}
    repos = [o for o in variant.outputs if o.kind == REPO]
    for i, output in enumerate(variant.outputs):
        if output.name in by_name:
            yield Problem(
                path,
                ("outputs", i, "name"),
                "duplicate-output",
                f"a second output named {output.name!r}",
            )
        by_name.setdefault(output.name, output)
        if output.kind not in kinds:
            known = ", ".join(sorted(kinds))
            yield Problem(
                path,
                ("outputs", i, "kind"),
                "unknown-kind",
                f"no artifact kind {output.kind!r} (kinds: {known})",
            )
        if output.kind == REPO and output is not repos[0]:
            yield Problem(
                path, ("outputs", i), "multiple-repos", "a variant has exactly one flat repo output"
            )
        # The schema guarantees a list of names only for the known kinds.
        listed = output.option("packages", ()) if output.kind in LAYERING and packages is not None else ()
        for j, package in enumerate(listed):
            if packages is not None and package not in packages:
                yield Problem(
                    path,
                    ("outputs", i, "options", "packages", j),
                    "unknown-package",
                    f"output {output.name!r} installs {package!r}, which no module of {variant.uid} ships",
                )
    if not repos and any(o.kind != REPO for o in variant.outputs):
        yield Problem(
            path,
            ("outputs",),
            "missing-repo-output",
            f"{variant.uid} makes images but has no repo output to make them from",
            at_key=True,
        )
    for i, output in enumerate(variant.outputs):
        for name in output.layered_on:
            base = by_name.get(name)
            if base is None:
                yield Problem(
                    path,
                    ("outputs", i, "from"),
                    "unknown-output",
                    f"output {output.name!r} is layered on {name!r}, which {variant.uid} does not define",
                )
            elif base is output:
                yield Problem(
                    path,
                    ("outputs", i, "from"),
                    "output-cycle",
                    f"output {output.name!r} is layered on itself",
                )
            elif output.kind in LAYERING and base.kind not in LAYERING[output.kind]:
                allowed = ", ".join(sorted(LAYERING[output.kind])) or "nothing"
                yield Problem(
                    path,
                    ("outputs", i, "from"),
                    "bad-layering",
                    f"a {output.kind} output cannot be layered on a {base.kind} output ({output.kind} sits on: {allowed})",
                )
    yield from _output_cycles(variant, by_name)


def _output_cycles(variant: Variant, by_name: dict[str, Output]) -> Iterator[Problem]:
    for i, output in enumerate(variant.outputs):
        trail = [output.name]
        current = output
        while current.layered_on:
            nxt = by_name.get(current.layered_on[0])
            if nxt is None or nxt is current:
                break
            if nxt.name == output.name:
                yield Problem(
                    variant.path,
                    ("outputs", i, "from"),
                    "output-cycle",
                    "outputs layered in a cycle: " + " -> ".join([*trail, output.name]),
                )
                break
            if nxt.name in trail:
                break
            trail.append(nxt.name)
            current = nxt


def _pins_in_distgit(config: Config, modules: list[Module], lookup: BranchLookup) -> Iterator[Problem]:
    for module in modules:
        for pin in module.components:
            url = config.distgit_for(pin)
            known = lookup.branches(url)
            if known is None:
                continue  # unreachable dist-git: nothing to say
            where = ("components", "rpms", pin.component)
            if pin.branch not in known:
                yield Problem(
                    module.path,
                    (*where, "branch"),
                    "unknown-branch",
                    f"{pin.component} has no branch {pin.branch!r} in {url} (branches: {', '.join(sorted(known))})",
                )
            elif pin.ref and lookup.has_commit(url, pin.ref) is False:
                yield Problem(
                    module.path,
                    (*where, "ref"),
                    "unknown-ref",
                    f"{pin.component} has no commit {pin.ref} in {url}",
                )


def unreachable_pins(config: Config, modules: list[Module], lookup: BranchLookup) -> list[Problem]:
    """One warning per pin whose dist-git cannot be reached: its branch and commit go unchecked.

    When no pin's dist-git can be reached at all (a clone without dist-git, a CI job before it is
    materialized), that is one warning on factory.yaml's `distgit.url`, not one per pin: at
    Fedora scale that would be 23,000 lines saying the same thing.
    """
    found = []
    pins = 0
    for module in modules:
        for pin in module.components:
            pins += 1
            url = config.distgit_for(pin)
            if lookup.branches(url) is None:
                what = f"branch {pin.branch!r}" + (f" and commit {pin.ref[:12]}" if pin.ref else "")
                found.append(
                    Problem(
                        module.path,
                        ("components", "rpms", pin.component),
                        "unreachable-distgit",
                        f"{pin.component}: {url} cannot be reached from here: {what} not checked",
                        at_key=True,
                    )
                )
    if len(found) > 1 and len(found) == pins:
        message = (
            f"no component's dist-git can be reached from here ({config.distgit.url}): the branches and "
            f"commits of {pins} pins in {len(modules)} modules are not checked"
        )
        return [Problem(config.path, ("distgit", "url"), "unreachable-distgit", message)]
    return found
