"""A distribution whose modules follow binary package sources, for the source history and build
bump tests. The sources are plain unsigned yum repositories in directories (tests/upstream_repo.py
builds them with rpmbuild, createrepo_c and createrepo_c's updateinfo API), changed between bot
passes as Bodhi changes an updates repository:

- `f42`: glibc-2.41-1.fc42, tzdata-2025a-1.fc42, bash-5.2.37-1.fc42;
- `f42-updates` (inherits f42): glibc-2.41-9.fc42 with a bugfix advisory.

Modules `base:f42` (glibc and tzdata from f42-updates) and `extras:1` (glibc from f42-updates,
bash from f42), variants `Base` (base:f42) and `Extras` (extras:1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests import upstream_repo as up
from tests.binary_world import make_repo as make_definitions_repo

BUILDS = {
    "glibc-2.41-1.fc42": ("glibc", "2.41", "1.fc42", False),
    "glibc-2.41-9.fc42": ("glibc", "2.41", "9.fc42", False),
    "glibc-2.41-10.fc42": ("glibc", "2.41", "10.fc42", False),
    "glibc-2.41-11.fc42": ("glibc", "2.41", "11.fc42", False),
    "tzdata-2025a-1.fc42": ("tzdata", "2025a", "1.fc42", True),
    "tzdata-2025b-1.fc42": ("tzdata", "2025b", "1.fc42", True),
    "bash-5.2.37-1.fc42": ("bash", "5.2.37", "1.fc42", False),
}
BUGFIX = "FEDORA-2026-0001"
REGRESSION = "FEDORA-2026-0002"
SECURITY = "FEDORA-2026-abc123"
CVE = "CVE-2026-5678"
BUG = "2345678"
TZDATA = "FEDORA-2026-0003"


@dataclass
class Sources:
    """The builds (made once) and the two repositories, rewritten by `publish`."""

    top: Path
    built: dict[str, up.Built] = field(default_factory=dict)

    def build_all(self) -> None:
        for nvr, (name, version, release, noarch) in BUILDS.items():
            subpackages = () if noarch else ("common",)
            self.built[nvr] = up.build(self.top / "builds", name, version, release, noarch=noarch,
                                       subpackages=subpackages)  # fmt: skip

    def publish(self, source: str, nvrs: list[str], advisories: Sequence[up.Advisory] = ()) -> Path:
        """The source's x86_64 repository made anew, holding exactly these builds."""
        directory = self.top / source / "x86_64"
        if directory.exists():
            for path in directory.iterdir():
                if path.is_file():
                    path.unlink()
            for path in (directory / "repodata").iterdir():
                path.unlink()
        rpms = [p for nvr in nvrs for p in self.built[nvr].rpms]
        return up.make_repo(directory, rpms, advisories)

    def advisory(
        self,
        id_: str,
        kind: str,
        severity: str,
        nvr: str,
        cves: tuple[str, ...] = (),
        bugs: tuple[str, ...] = (),
    ) -> up.Advisory:
        return up.Advisory(id_, kind, severity, cves, self.built[nvr].rpms, f"{nvr} update", bugs)

    def day0(self) -> None:
        self.publish("f42", ["glibc-2.41-1.fc42", "tzdata-2025a-1.fc42", "bash-5.2.37-1.fc42"])
        self.publish(
            "f42-updates", ["glibc-2.41-9.fc42"], [self.advisory(BUGFIX, "bugfix", "", "glibc-2.41-9.fc42")]
        )

    def security_day(self) -> None:
        """Bodhi pushes glibc 10 (a bugfix) and 11 (a security fix), and tzdata 2025b."""
        self.publish(
            "f42-updates",
            ["glibc-2.41-9.fc42", "glibc-2.41-10.fc42", "glibc-2.41-11.fc42", "tzdata-2025b-1.fc42"],
            [
                self.advisory(BUGFIX, "bugfix", "", "glibc-2.41-9.fc42"),
                self.advisory(REGRESSION, "bugfix", "", "glibc-2.41-10.fc42"),
                self.advisory(SECURITY, "security", "Important", "glibc-2.41-11.fc42", (CVE,), (BUG,)),
                self.advisory(TZDATA, "enhancement", "", "tzdata-2025b-1.fc42"),
            ],
        )


FACTORY = """document: factory-config
version: 1
release: {{name: Test Linux, short: TL, version: "42"}}
dist: .tl42
distgit: {{url: "{top}/distgit/{{component}}.git"}}
output: {{dir: .factory/output}}
sources:
  f42:
    baseurl: {top}/f42/{{arch}}/
    allow_unsigned: true
  f42-updates:
    baseurl: file://{top}/f42-updates/{{arch}}/
    allow_unsigned: true
    inherits: [f42]
{automerge}{extra}"""


def module(name: str, stream: str, pins: dict[str, tuple[str, str]]) -> str:
    lines = [
        "document: factory-module", "version: 1", f"name: {name}", f'stream: "{stream}"',
        f"summary: {name}, from elsewhere", "description: Builds made in Koji.", "license: MIT",
        "eol: 2030-12-31", "components:", "  rpms:",
    ]  # fmt: skip
    for component, (source, build) in pins.items():
        lines += [f"    {component}:", f"      source: {source}", f"      build: {build}  # pinned"]
    lines += ["profiles:", "  default:", f"    rpms: [{', '.join(pins)}]"]
    return "\n".join(lines) + "\n"


def variant(uid: str, nsid: str) -> str:
    return (
        f'document: factory-variant\nversion: 1\nuid: {uid}\nname: {uid}\nrelease: "42"\neol: 2030-06-30\n'
        f"arches: [x86_64]\nmodules:\n  - module: {nsid}\n    profiles: [default]\noutputs:\n"
        "  - kind: repo\n    name: os\n"
    )


def definitions(top: Path, extra: str = "", automerge: str = "") -> dict[str, bytes]:
    """The definition files; `automerge` is f42-updates' policy (none when empty)."""
    policy = f"    automerge: {automerge}\n" if automerge else ""
    tree = {
        "factory.yaml": FACTORY.format(top=top, extra=extra, automerge=policy),
        "modules/base/f42.yaml": module(
            "base",
            "f42",
            {"glibc": ("f42-updates", "glibc-2.41-9.fc42"), "tzdata": ("f42-updates", "tzdata-2025a-1.fc42")},
        ),
        "modules/extras/1.yaml": module(
            "extras",
            "1",
            {"glibc": ("f42-updates", "glibc-2.41-9.fc42"), "bash": ("f42", "bash-5.2.37-1.fc42")},
        ),
        "variants/Base.yaml": variant("Base", "base:f42"),
        "variants/Extras.yaml": variant("Extras", "extras:1"),
    }
    return {path: text.encode() for path, text in tree.items()}


def make_dist(root: Path, top: Path, extra: str = "", automerge: str = "") -> Path:
    """The definitions repository (branch master checked out)."""
    return make_definitions_repo(root, definitions(top, extra, automerge))
