"""The words of factory as frozen, typed values. No I/O.

See ARCHITECTURE.md for the glossary: component, pin, module, variant, artifact, node.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.config import Config


@dataclass(frozen=True, slots=True)
class Pin:
    """A module's reference to a component: an exact dist-git commit and the branch it follows.

    A pin with no `ref` ("") follows its branch's head: the compose resolves the head and
    records the commit it built in lineage.
    """

    component: str
    ref: str
    branch: str
    repository: str | None = None
    rationale: str = ""
    buildorder: int = 0
    arches: tuple[str, ...] = ()

    @property
    def follows_head(self) -> bool:
        return not self.ref


@dataclass(frozen=True, slots=True)
class BinaryPin:
    """A module's reference to a build made elsewhere: a source RPM's NVR (`build`) in one of
    factory.yaml's `sources` (a yum repository: a Koji tag's repo, a mirror). Its RPMs are
    downloaded and checked, never built here."""

    component: str
    source: str
    build: str
    rationale: str = ""
    buildorder: int = 0
    arches: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    rpms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Module:
    """One stream of one module (`modules/NAME/STREAM.yaml` or `modules/NAME-STREAM.yaml`)."""

    name: str
    stream: str
    summary: str
    description: str
    license: str
    eol: dt.date
    components: tuple[Pin, ...]  # dist-git pins, built by factory
    buildrequires: tuple[tuple[str, str], ...] = ()
    requires: tuple[tuple[str, str], ...] = ()
    profiles: tuple[Profile, ...] = ()
    api: tuple[str, ...] = ()
    servicelevels: tuple[tuple[str, dt.date], ...] = ()
    maintainers: tuple[str, ...] = ()
    retired: bool = False  # `retired: true`: past its End Of Life, composed no more
    binaries: tuple[BinaryPin, ...] = ()  # binary pins: builds made elsewhere, from a source
    path: str = field(default="", compare=False)

    @property
    def nsid(self) -> str:
        """`name:stream`, the way variants and dependencies name a module stream."""
        return f"{self.name}:{self.stream}"

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)


@dataclass(frozen=True, slots=True)
class ModuleSelection:
    """A variant's choice of a module stream and the profiles it ships."""

    module: str  # name:stream
    profiles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Output:
    """An artifact a variant makes: kind, name, the outputs it is layered on, options."""

    kind: str
    name: str
    layered_on: tuple[str, ...] = ()  # `from:` in YAML
    options: tuple[tuple[str, Any], ...] = ()  # sorted (key, value) pairs; values are JSON data

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True, slots=True)
class Variant:
    """An edition: a selection of modules and the artifacts made from them (`variants/UID.yaml`)."""

    uid: str
    name: str
    release: str
    eol: dt.date
    arches: tuple[str, ...]
    modules: tuple[ModuleSelection, ...]
    outputs: tuple[Output, ...]
    retired: bool = False  # `retired: true`: past its End Of Life, composed no more
    path: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class DistGitCommit:
    """One dist-git commit, for merge request texts."""

    id: str
    subject: str
    message: str


@dataclass(frozen=True, slots=True)
class Definitions:
    """Everything in one revision of the definitions repository, validated."""

    config: Config
    modules: dict[str, Module]  # keyed by name:stream
    variants: dict[str, Variant]  # keyed by uid

    def module(self, nsid: str) -> Module:
        return self.modules[nsid]

    def live_modules(self) -> dict[str, Module]:
        """The module streams not retired: what the artifact graph is made of."""
        return {nsid: m for nsid, m in self.modules.items() if not m.retired}

    def live_variants(self) -> dict[str, Variant]:
        """The variants not retired: what the artifact graph is made of."""
        return {uid: v for uid, v in self.variants.items() if not v.retired}
