"""Binary package sources (factory.yaml's `sources:`) and the binary pins that take builds from
them, as values, with the checks validation makes of them. Pure: no I/O.

A source is a yum repository per arch (`baseurl` with `{arch}`): a Koji tag's repository, a
mirror, an updates repository with advisories. Its builds are checked against its `gpgkey`
unless it says `allow_unsigned: true`; a build it lacks is looked up in what it `inherits`;
`source_baseurl` holds its source RPMs. `FACTORY_SOURCE_<NAME>_BASEURL` (the name upper-cased,
`-` as `_`) overrides a baseurl, so a CI job can read an internal mirror: what factory records
names the variable, never its value.

A binary pin's arches are those of the release: every arch a live variant is composed for
(restricted by the pin's `arches:`), the arches Koji and MBS build a component for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from pipeline.core.packages import SOURCE_ARCH, lookup_order, split_nvr

ARCH = "{arch}"
REPO_JSON = "repo.json"  # Koji writes it beside the arch directories of a tag's repository


class Automerge(StrEnum):
    """Which build bump merge requests of a source merge themselves once their pipeline passes."""

    NONE = "none"
    SECURITY = "security"  # those bringing a security advisory
    ALL = "all"

    def merges(self, security: bool) -> bool:
        return self is Automerge.ALL or (self is Automerge.SECURITY and security)


@dataclass(frozen=True, slots=True)
class Source:
    """One binary package source of factory.yaml. `via` names the variable that overrode its
    baseurl in this run ("" when none did)."""

    name: str
    baseurl: str
    gpgkey: str = ""
    allow_unsigned: bool = False
    inherits: tuple[str, ...] = ()
    source_baseurl: str = ""
    automerge: Automerge = Automerge.NONE
    via: str = field(default="", compare=False)

    def url(self, arch: str) -> str:
        """The repository of arch (`{arch}` replaced)."""
        return self.baseurl.replace(ARCH, arch)

    def srpm_url(self) -> str:
        """The repository of its source RPMs ("" when it has none)."""
        return self.source_baseurl.replace(ARCH, "src")


def override_variable(name: str) -> str:
    """The CI/CD variable that overrides a source's baseurl: FACTORY_SOURCE_F42_UPDATES_BASEURL."""
    return f"FACTORY_SOURCE_{name.upper().replace('-', '_')}_BASEURL"


def effective(source: Source, env: Mapping[str, str]) -> Source:
    """The source as this run reads it: its baseurl overridden by its variable when set."""
    variable = override_variable(source.name)
    value = env.get(variable, "")
    return replace(source, baseurl=value, via=variable) if value else source


def repo_json_url(repo_url: str, baseurl: str) -> str | None:
    """Where Koji's repo.json would be for a repository: the directory above the arch, when the
    baseurl's last part is `{arch}` (`<topurl>/repos/<tag>/latest/{arch}/`); else None."""
    if not baseurl.rstrip("/").endswith("/" + ARCH):
        return None
    return repo_url.rstrip("/").rsplit("/", 1)[0] + "/" + REPO_JSON


def release_arches(arches: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """The arches the release is composed for: every arch of the live variants, sorted."""
    return tuple(sorted({a for group in arches for a in group if a != "noarch"}))


def pin_arches(pin_arches: Sequence[str], release: Sequence[str]) -> tuple[str, ...]:
    """A binary pin's arches: the release's, restricted by the pin's `arches:` when that leaves
    any (a noarch-only pin has its noarch RPMs in every arch's repository)."""
    kept = tuple(a for a in release if a in pin_arches)
    return kept if kept else tuple(release)


# -- validation: problems as (file, JSON path, code, message), placed by `definitions` -------------


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem of a source or a pin: the file, the JSON path in it, the rule and the message."""

    path: str
    where: tuple[str | int, ...]
    code: str
    message: str


def config_problems(sources: Mapping[str, Source], path: str) -> Iterator[Problem]:
    """What is wrong in factory.yaml's `sources:` on its own: signing, inheritance."""
    for name, source in sorted(sources.items()):
        at = ("sources", name)
        if not source.gpgkey and not source.allow_unsigned:
            yield Problem(
                path,
                at,
                "unsigned-source",
                f"source {name} has no gpgkey: name the key its RPMs are signed with, "
                "or say allow_unsigned: true",
            )
        if source.gpgkey and source.allow_unsigned:
            yield Problem(
                path,
                (*at, "allow_unsigned"),
                "unsigned-source",
                f"source {name} has a gpgkey and allow_unsigned: true: its RPMs are checked against "
                "the key; drop one of them",
            )
        for i, parent in enumerate(source.inherits):
            if parent not in sources:
                known = ", ".join(sorted(sources))
                yield Problem(
                    path, (*at, "inherits", i), "unknown-source", f"no source {parent!r} (sources: {known})"
                )
    inherits = {n: s.inherits for n, s in sources.items()}
    for name in sorted(sources):
        trail = _cycle(name, inherits)
        if trail:
            yield Problem(
                path,
                ("sources", name, "inherits"),
                "inheritance-cycle",
                "sources inherit in a cycle: " + " -> ".join(trail),
            )


def _cycle(start: str, inherits: Mapping[str, Sequence[str]]) -> list[str]:
    """The cycle through start, if its inheritance leads back to it ([] otherwise)."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, trail = stack.pop()
        for parent in inherits.get(name, ()):
            if parent == start:
                return [*trail, parent]
            if parent not in seen:
                seen.add(parent)
                stack.append((parent, [*trail, parent]))
    return []


@dataclass(frozen=True, slots=True)
class PinRef:
    """A binary pin where it is written: the module file, its component, source, build and arches."""

    path: str
    component: str
    source: str
    build: str
    arches: tuple[str, ...]

    def where(self, key: str) -> tuple[str, ...]:
        return ("components", "rpms", self.component, key)


def pin_problems(pins: Iterable[PinRef], sources: Collection[str]) -> Iterator[Problem]:
    """What is wrong in binary pins on their own: an unknown source, a build of another package."""
    for pin in pins:
        if pin.source not in sources:
            known = ", ".join(sorted(sources)) or "none in factory.yaml"
            yield Problem(
                pin.path,
                pin.where("source"),
                "unknown-source",
                f"{pin.component}: no source {pin.source!r} (sources: {known})",
            )
        name = split_nvr(pin.build)[0]
        if name != pin.component:
            yield Problem(
                pin.path,
                pin.where("build"),
                "build-name",
                f"{pin.component}: {pin.build} is a build of {name}, not of {pin.component}",
            )


@dataclass(frozen=True, slots=True)
class Answer:
    """What reading one source told validation: `holds` (arch, NVR) of every build it holds when
    it answered; else why not (`problem`, naming the source), `broken` for an answer with broken
    metadata (an error), not for one that never came (a warning)."""

    source: str
    holds: frozenset[tuple[str, str]] = frozenset()
    problem: str = ""
    broken: bool = False

    @property
    def answered(self) -> bool:
        return not self.problem


def availability_problems(
    sources: Mapping[str, Source],
    config_path: str,
    pins: Iterable[PinRef],
    answers: Mapping[str, Answer],
    stored: Collection[str],
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of what the sources answered: a broken source is an error and an
    unreachable one a warning; a pinned build in neither its sources (with what they inherit)
    nor the artifact store (`stored`: NVRs with a compose there) is an error, one only in the
    store a warning. A build whose sources did not all answer is not judged."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for name, answer in sorted(answers.items()):
        if answer.answered:
            continue
        problem = Problem(
            config_path,
            ("sources", name, "baseurl"),
            "broken-source" if answer.broken else "unreachable-source",
            answer.problem + ("" if answer.broken else ": the builds pinned from it are not checked"),
        )
        (errors if answer.broken else warnings).append(problem)
    inherits = {n: s.inherits for n, s in sources.items()}
    for pin in pins:
        if pin.source not in sources:
            continue  # reported by pin_problems
        chain = lookup_order([pin.source], inherits)
        if not all(answers[s].answered for s in chain if s in answers):
            continue
        missing = [a for a in pin.arches if not any((a, pin.build) in answers[s].holds for s in chain)]
        if not missing and pin.arches:  # its source RPM from where it is, when that has them
            holder = next(s for s in chain if (pin.arches[0], pin.build) in answers[s].holds)
            if sources[holder].source_baseurl and (SOURCE_ARCH, pin.build) not in answers[holder].holds:
                missing = [SOURCE_ARCH]
        if not missing:
            continue
        where = _chain_text(chain)
        if pin.build in stored:
            warnings.append(
                Problem(
                    pin.path,
                    pin.where("build"),
                    "build-left-source",
                    f"{pin.component}: {pin.build} is no longer in {where} ({_missing_text(missing)}); "
                    "it composes from the artifact store, where an earlier compose put its RPMs",
                )
            )
        else:
            errors.append(
                Problem(
                    pin.path,
                    pin.where("build"),
                    "unknown-build",
                    f"{pin.component}: {pin.build} is not in {where} ({_missing_text(missing)}), "
                    "and the artifact store has no compose of it",
                )
            )
    return errors, warnings


def _missing_text(arches: Sequence[str]) -> str:
    """What of a build is missing: `no RPM for x86_64 comes from X.src.rpm`, `no source RPM`."""
    binary = [a for a in arches if a != SOURCE_ARCH]
    parts = [f"no RPM for {', '.join(binary)} has that sourcerpm"] if binary else []
    if SOURCE_ARCH in arches:
        parts.append("its source RPM is not in the source_baseurl of the source holding it")
    return "; ".join(parts)


def _chain_text(chain: Sequence[str]) -> str:
    head = f"source {chain[0]}"
    if len(chain) == 1:
        return head
    return f"{head} (nor {', '.join(chain[1:])}, which it inherits)"
