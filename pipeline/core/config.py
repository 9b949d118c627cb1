"""factory.yaml as frozen, typed values: the release, where dist-git, outputs and the artifact store
live, the builder, the forge, the signing key, CI's limits and the binary package sources. No I/O.

Every key `schemas/factory.json` allows has a field here, and every field is used by something
(a key nothing implements is not in the schema). `Config.from_raw` takes the loose data only
after the schema accepted it; `pipeline.core.definitions` is the one parser of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipeline.core.branches import DEFAULT_BRANCHES
from pipeline.core.sources import Automerge, Source

if TYPE_CHECKING:
    from pipeline.core.model import Pin


class BuilderKind(StrEnum):
    """Who builds components: `local` (rpmbuild on this machine) is the only builder so far."""

    LOCAL = "local"


class ForgeKind(StrEnum):
    """Where the bot opens merge requests: `local` (branches in this repository) or `gitlab`."""

    LOCAL = "local"
    GITLAB = "gitlab"


OSTREE_KEEP = 10  # commits of each ref a served OSTree repository keeps, unless factory.yaml says


@dataclass(frozen=True, slots=True)
class OstreeRetention:
    """How much history a released OSTree ref keeps: its `keep` newest commits (the head
    included); older ones are pruned, with their version refs (`pipeline.release.ostree_history`)."""

    keep: int = OSTREE_KEEP


@dataclass(frozen=True, slots=True)
class Release:
    """The release composed: `Factory Linux`, short `FL`, version `42` (compose IDs use the last two),
    the registry its container images are released to (`HOST[:PORT][/NAMESPACE]`, "" for none),
    how its served OSTree repositories keep history, and the branches of the definitions
    repository it composes from (`{default}`: the repository's default branch, `{version}`:
    `version`; `pipeline.core.branches`): only their composes move its latest good."""

    name: str
    short: str
    version: str
    registry: str = ""
    ostree: OstreeRetention = field(default_factory=OstreeRetention)
    branches: tuple[str, ...] = DEFAULT_BRANCHES


@dataclass(frozen=True, slots=True)
class DistGitConfig:
    """Where component dist-git lives: a path (relative to the repository) or URL with {component}."""

    url: str


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """Where composes write (relative to the repository unless absolute)."""

    dir: str


@dataclass(frozen=True, slots=True)
class BuilderConfig:
    kind: BuilderKind = BuilderKind.LOCAL


@dataclass(frozen=True, slots=True)
class GitLabConfig:
    """The GitLab project the bot and the plan notes write to; empty when not configured."""

    url: str = ""
    project: str = ""  # group/name


@dataclass(frozen=True, slots=True)
class ForgeConfig:
    kind: ForgeKind = ForgeKind.LOCAL
    gitlab: GitLabConfig = field(default_factory=GitLabConfig)


@dataclass(frozen=True, slots=True)
class SigningConfig:
    """The default signing key: a fingerprint and the GnuPG home holding it (both optional)."""

    key: str = ""
    gnupghome: str = ""


DEFAULT_STORE = "file:.factory/store"  # a directory beside the outputs, relative to the repository
DEFAULT_MAX_JOBS = 500  # GitLab is slow to create and to show pipelines of thousands of jobs


@dataclass(frozen=True, slots=True)
class CiConfig:
    """What `factory ci generate` keeps to: at most `max_jobs` jobs in one generated pipeline."""

    max_jobs: int = DEFAULT_MAX_JOBS


@dataclass(frozen=True, slots=True)
class Config:
    """factory.yaml: the release, where component dist-git lives, where outputs go, and more."""

    release: Release
    dist: str  # %dist of every RPM built, e.g. .fl42
    distgit: DistGitConfig
    output: OutputConfig
    builder: BuilderConfig = field(default_factory=BuilderConfig)
    forge: ForgeConfig = field(default_factory=ForgeConfig)
    signing: SigningConfig = field(default_factory=SigningConfig)
    # The artifact store every compose's files go to (`file:` or `oci:` URL); the CI/CD
    # variable FACTORY_STORE overrides it (pipeline.transfer).
    store: str = DEFAULT_STORE
    ci: CiConfig = field(default_factory=CiConfig)
    # Binary package sources (`sources:`, sorted by name): the yum repositories binary pins
    # take builds from.
    sources: tuple[Source, ...] = ()
    path: str = field(default="factory.yaml", compare=False)

    def source(self, name: str) -> Source | None:
        """The binary package source of that name, or None."""
        return next((s for s in self.sources if s.name == name), None)

    def distgit_for(self, pin: Pin) -> str:
        """Where the dist-git repository of a pin's component lives."""
        return pin.repository or self.distgit.url.replace("{component}", pin.component)

    @classmethod
    def from_raw(cls, data: dict[str, Any], path: str = "factory.yaml") -> Config:
        """The typed configuration of schema-valid loose data (what `schemas/factory.json` accepted)."""
        release = data["release"]
        forge = data.get("forge", {})
        gitlab = forge.get("gitlab", {})
        signing = data.get("signing", {})
        ci = data.get("ci", {})
        return cls(
            release=Release(
                release["name"],
                release["short"],
                release["version"],
                str(release.get("registry", "")),
                OstreeRetention(int(release.get("ostree", {}).get("keep", OSTREE_KEEP))),
                tuple(str(b) for b in release.get("branches", DEFAULT_BRANCHES)),
            ),
            dist=data["dist"],
            distgit=DistGitConfig(data["distgit"]["url"]),
            output=OutputConfig(data["output"]["dir"]),
            builder=BuilderConfig(BuilderKind(data.get("builder", {}).get("kind", BuilderKind.LOCAL))),
            forge=ForgeConfig(
                ForgeKind(forge.get("kind", ForgeKind.LOCAL)),
                GitLabConfig(str(gitlab.get("url", "")), str(gitlab.get("project", ""))),
            ),
            signing=SigningConfig(str(signing.get("key", "")), str(signing.get("gnupghome", ""))),
            store=str(data.get("store", DEFAULT_STORE)),
            ci=CiConfig(int(ci.get("max_jobs", DEFAULT_MAX_JOBS))),
            sources=tuple(
                Source(
                    name,
                    str(raw["baseurl"]),
                    str(raw.get("gpgkey", "")),
                    bool(raw.get("allow_unsigned", False)),
                    tuple(str(s) for s in raw.get("inherits", ())),
                    str(raw.get("source_baseurl", "")),
                    Automerge(raw.get("automerge", Automerge.NONE)),
                )
                for name, raw in sorted(data.get("sources", {}).items())
            ),
            path=path,
        )
