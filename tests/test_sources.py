"""Binary pins and sources in the pure core: parsing and validation, graph nodes and digests,
which RPMs a build brings, advisories cut to what ships, the record fields; and the small
adapters' pure parts (rpmkeys' output, updateinfo read back)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core import advisories, definitions, graph, packages, sources
from pipeline.core.batches import Limits, batches
from pipeline.core.errors import InvalidDefinitions
from pipeline.core.packages import KojiRepo, Package, Repository, RepoState
from pipeline.core.plan import plan
from pipeline.core.records import Record, compose_name
from pipeline.core.states import ComposeStatus
from pipeline.core.upstream import UpstreamRpm, read_upstream, upstream_json
from pipeline.tools import rpmkeys, rpmlib, updateinfo
from tests.conftest import sources as source_files

CONFIG = """document: factory-config
version: 1
release: {name: T, short: T, version: "42"}
dist: .t42
distgit: {url: "distgit/{component}.git"}
output: {dir: out}
sources:
  f42:
    baseurl: https://example.org/f42/{arch}/
    gpgkey: keys/f42.asc
  f42-updates:
    baseurl: https://example.org/f42-updates/{arch}/
    gpgkey: keys/f42.asc
    inherits: [f42]
"""

MODULE = """document: factory-module
version: 1
name: base
stream: f42
summary: s
description: d
license: MIT
eol: 2030-01-01
components:
  rpms:
    glibc:
      source: f42-updates
      build: glibc-2.41-11.fc42
    bash:
      ref: 78022c3d80f80028eeeb35d0fbf707c48a13ef5c
      branch: f42
"""

VARIANT = """document: factory-variant
version: 1
uid: V
name: V
release: "42"
eol: 2029-01-01
arches: [x86_64, aarch64]
modules:
  - module: base:f42
outputs:
  - kind: repo
    name: os
"""


def tree(config: str = CONFIG, module: str = MODULE, variant: str = VARIANT) -> dict[str, bytes]:
    return {
        "factory.yaml": config.encode(),
        "modules/base/f42.yaml": module.encode(),
        "variants/V.yaml": variant.encode(),
    }


def errors(files: dict[str, bytes]) -> list[str]:
    with pytest.raises(InvalidDefinitions) as raised:
        definitions.load(source_files(files))
    return [f"{d.path}:{d.line}: {d.code}: {d.message}" for d in raised.value.diagnostics]


# -- definitions ---------------------------------------------------------------------------------


def test_a_sources_automerge_says_which_bumps_merge_themselves() -> None:
    config = CONFIG.replace("inherits: [f42]", "inherits: [f42]\n    automerge: security")
    defs = definitions.load(source_files(tree(config)))
    policy = defs.config.source("f42-updates")
    assert policy is not None and policy.automerge == sources.Automerge.SECURITY
    assert policy.automerge.merges(True) and not policy.automerge.merges(False)
    assert defs.config.source("f42").automerge == sources.Automerge.NONE  # type: ignore[union-attr]
    assert sources.Automerge.ALL.merges(False)


def test_a_module_mixes_dist_git_and_binary_pins() -> None:
    defs = definitions.load(source_files(tree()))
    module = defs.modules["base:f42"]
    assert [p.component for p in module.components] == ["bash"]
    (pin,) = module.binaries
    assert (pin.component, pin.source, pin.build) == ("glibc", "f42-updates", "glibc-2.41-11.fc42")
    assert [s.name for s in defs.config.sources] == ["f42", "f42-updates"]
    assert defs.config.source("f42-updates") == sources.Source(
        "f42-updates", "https://example.org/f42-updates/{arch}/", "keys/f42.asc", False, ("f42",)
    )


@pytest.mark.parametrize(
    ("config", "module", "expected"),
    [
        (CONFIG.replace("    gpgkey: keys/f42.asc\n    inherits", "    inherits"), MODULE,
         "factory.yaml:12: unsigned-source: source f42-updates has no gpgkey"),
        (CONFIG.replace("inherits: [f42]", "inherits: [f41]"), MODULE,
         "factory.yaml:14: unknown-source: no source 'f41' (sources: f42, f42-updates)"),
        (CONFIG.replace("    gpgkey: keys/f42.asc\n  f42-updates", "    gpgkey: keys/f42.asc\n    inherits: [f42-updates]\n  f42-updates"), MODULE,
         "factory.yaml:11: inheritance-cycle: sources inherit in a cycle: f42 -> f42-updates -> f42"),
        (CONFIG, MODULE.replace("source: f42-updates", "source: f43"),
         "modules/base/f42.yaml:12: unknown-source: glibc: no source 'f43' (sources: f42, f42-updates)"),
        (CONFIG, MODULE.replace("build: glibc-2.41-11.fc42", "build: musl-1.2-1.fc42"),
         "modules/base/f42.yaml:13: build-name: glibc: musl-1.2-1.fc42 is a build of musl, not of glibc"),
        (CONFIG, MODULE.replace("      build: glibc-2.41-11.fc42\n", "      build: glibc-2.41-11.fc42\n      branch: f42\n"),
         "modules/base/f42.yaml:14: mixed-pin: glibc is a binary pin (source f42-updates, build glibc-2.41-11.fc42): it has no dist-git branch"),
        (CONFIG, MODULE.replace("      build: glibc-2.41-11.fc42\n", ""),
         "modules/base/f42.yaml:11: schema-required: $.components.rpms.glibc: 'build' is a required property"),
        (CONFIG, MODULE.replace("build: glibc-2.41-11.fc42", "build: glibc"),
         "modules/base/f42.yaml:13: schema-pattern: $.components.rpms.glibc.build: 'glibc' does not match"),
        (CONFIG.replace("inherits: [f42]", "inherits: [f42]\n    automerge: sometimes"), MODULE,
         "factory.yaml:15: schema-enum: $.sources.f42-updates.automerge: 'sometimes' is not one of"),
    ],
)  # fmt: skip
def test_bad_sources_and_binary_pins_are_errors_at_their_line(
    config: str, module: str, expected: str
) -> None:
    found = errors(tree(config, module))
    assert any(e.startswith(expected) for e in found), found


def test_two_modules_taking_one_build_for_other_arches_is_an_error() -> None:
    files = tree(
        module=MODULE.replace(
            "      build: glibc-2.41-11.fc42\n", "      build: glibc-2.41-11.fc42\n      arches: [x86_64]\n"
        )
    )
    other = MODULE.replace("name: base", "name: more").replace(
        "    bash:\n      ref: 78022c3d80f80028eeeb35d0fbf707c48a13ef5c\n      branch: f42\n", ""
    )
    files["modules/more/f42.yaml"] = other.encode()
    assert any(": conflicting-arches: glibc-2.41-11.fc42 is pinned for arches" in e for e in errors(files))


# -- the graph -----------------------------------------------------------------------------------


def test_a_binary_pin_is_one_node_named_by_its_build_for_the_release_arches() -> None:
    g = graph.build(definitions.load(source_files(tree())))
    node = g.nodes["binary:glibc-2.41-11.fc42"]
    assert node.kind == "binary" and node.inputs == ()
    assert node.definition == {"build": "glibc-2.41-11.fc42", "arches": ["aarch64", "x86_64"]}
    module = g.nodes["module:base:f42"]
    assert module.inputs == ("binary:glibc-2.41-11.fc42", "build:bash@78022c3d")
    assert module.definition["components"]["glibc"] == {
        "build": "glibc-2.41-11.fc42",
        "buildorder": 0,
        "arches": [],
    }
    assert g.order("binary:glibc-2.41-11.fc42") < g.order("module:base:f42")


def test_the_source_of_a_build_is_in_no_digest_its_arches_are() -> None:
    before = graph.build(definitions.load(source_files(tree())))
    renamed = CONFIG.replace("  f42-updates:", "  updates:")
    moved = graph.build(
        definitions.load(
            source_files(tree(renamed, MODULE.replace("source: f42-updates", "source: updates")))
        )
    )
    assert moved.digests == before.digests
    one_arch = graph.build(
        definitions.load(source_files(tree(variant=VARIANT.replace("[x86_64, aarch64]", "[x86_64]"))))
    )
    changed = {n for n in before.digests if one_arch.digests.get(n) != before.digests[n]}
    assert changed == {"binary:glibc-2.41-11.fc42", "module:base:f42", "repo:V"}


def test_a_binary_pin_is_composed_in_its_modules_ci_job_as_a_build_is() -> None:
    g = graph.build(definitions.load(source_files(tree())))
    made = {b.name: b.nodes for b in batches(plan(graph.Graph({}, {}), g), g, Limits())}
    assert made["compose module:base:f42"] == (
        "binary:glibc-2.41-11.fc42", "build:bash@78022c3d", "module:base:f42",
    )  # fmt: skip


def test_a_compose_id_holds_an_nvr_with_characters_it_cannot() -> None:
    g = graph.build(
        definitions.load(
            source_files(tree(module=MODULE.replace("glibc-2.41-11.fc42", "glibc-2.41~rc1-1.fc42")))
        )
    )
    assert compose_name(g.nodes["binary:glibc-2.41~rc1-1.fc42"].id) == "glibc-2.41_rc1-1.fc42"


# -- which RPMs a build brings -------------------------------------------------------------------


def package(
    name: str, arch: str, srpm: str = "glibc-2.41-11.fc42.src.rpm", evr: str = "0:2.41-11.fc42"
) -> Package:
    epoch, vr = evr.split(":")
    version, release = vr.split("-")
    filename = f"{name}-{version}-{release}.{arch}.rpm"
    return Package(
        name,
        int(epoch),
        version,
        release,
        arch,
        "" if arch == "src" else srpm,
        f"Packages/{filename}",
        "0" * 64,
        1,
    )


STATE = RepoState("f42-updates", "x86_64", "https://example.org/f42-updates/x86_64/", "1", "f" * 64)


def test_a_build_brings_its_arch_and_noarch_rpms_without_debug_or_multilib_ones() -> None:
    repo = Repository(STATE, (
        package("glibc", "x86_64"), package("glibc", "i686"), package("glibc-common", "x86_64"),
        package("glibc-doc", "noarch"), package("glibc-debuginfo", "x86_64"), package("glibc-debugsource", "x86_64"),
        package("bash", "x86_64", "bash-5.2-1.fc42.src.rpm", "0:5.2-1.fc42"),
    ))  # fmt: skip
    brought = packages.rpms_of_build(repo, "glibc-2.41-11.fc42", "x86_64")
    assert [p.nevra for p in brought] == [
        "glibc-0:2.41-11.fc42.x86_64", "glibc-common-0:2.41-11.fc42.x86_64", "glibc-doc-0:2.41-11.fc42.noarch",
    ]  # fmt: skip
    assert packages.rpms_of_build(repo, "glibc-2.41-9.fc42", "x86_64") == ()
    sources_repo = Repository(STATE, (package("glibc", "src"),))
    found = packages.source_rpm(sources_repo, "glibc-2.41-11.fc42")
    assert found is not None and found.nevra == "glibc-0:2.41-11.fc42.src"


def test_the_newest_build_of_each_package_by_rpms_own_version_order() -> None:
    held = [
        package("glibc", "x86_64", "glibc-2.41-9.fc42.src.rpm", "0:2.41-9.fc42"),
        package("glibc", "x86_64", "glibc-2.41-11.fc42.src.rpm", "0:2.41-11.fc42"),  # 11 > 9, not as text
        package("bash", "x86_64", "bash-5.2-1.fc42.src.rpm", "1:5.2-1.fc42"),
        package("bash", "x86_64", "bash-6.0-1.fc42.src.rpm", "0:6.0-1.fc42"),  # epoch 1 wins
    ]
    newest = packages.newest_builds(held, rpmlib.label_compare)
    assert {n: b.nvr for n, b in newest.items()} == {"glibc": "glibc-2.41-11.fc42", "bash": "bash-5.2-1.fc42"}


def test_a_sources_newest_builds_with_the_advisories_naming_them() -> None:
    x86 = Repository(STATE, (
        package("glibc", "x86_64", "glibc-2.41-9.fc42.src.rpm", "0:2.41-9.fc42"),
        package("glibc", "x86_64", "glibc-2.41-11.fc42.src.rpm", "0:2.41-11.fc42"),
    ), (advisory("FEDORA-1", "bugfix", "", "glibc-0:2.41-11.fc42.x86_64"),))  # fmt: skip
    arm = Repository(STATE, (
        package("glibc", "aarch64", "glibc-2.41-11.fc42.src.rpm", "0:2.41-11.fc42"),
        package("bash", "aarch64", "bash-5.2-1.fc42.src.rpm", "0:5.2-1.fc42"),
    ), (advisory("FEDORA-2", "security", "Important", "glibc-0:2.41-11.fc42.aarch64"),))  # fmt: skip
    held = packages.newest_with_advisories([x86, arm], rpmlib.label_compare)
    assert [(h.build.nvr, [a.id for a in h.advisories]) for h in held] == [
        ("bash-5.2-1.fc42", []),
        ("glibc-2.41-11.fc42", ["FEDORA-2", "FEDORA-1"]),
    ]


def test_inheritance_looks_a_build_up_depth_first_each_source_once() -> None:
    inherits = {"updates": ["base", "extras"], "base": ["bootstrap"], "extras": ["base"]}
    assert packages.lookup_order(["updates"], inherits) == ("updates", "base", "bootstrap", "extras")


# -- advisories ----------------------------------------------------------------------------------


def advisory(id_: str, type_: str, severity: str, *nevras: str) -> advisories.Advisory:
    listed = []
    for nevra in nevras:
        nv, arch = nevra.rsplit(".", 1)
        name, evr = nv.split("-0:")
        version, release = evr.split("-")
        listed.append(
            advisories.AdvisoryPackage(
                name, 0, version, release, arch, src=f"{name.split('-')[0]}-{version}-{release}.src.rpm"
            )
        )
    refs = (advisories.Reference("CVE-2026-5678", "cve"),) if type_ == "security" else ()
    return advisories.Advisory(id_, type_, severity=severity, references=refs,
                               collections=(advisories.PackageList("F42", "Fedora 42", tuple(listed)),))  # fmt: skip


def test_advisories_follow_the_packages_cut_to_the_nevras_shipped() -> None:
    notes = [
        advisory(
            "FEDORA-2", "security", "Important", "glibc-0:2.41-11.fc42.x86_64", "glibc-0:2.41-11.fc42.i686"
        ),
        advisory("FEDORA-1", "bugfix", "", "bash-0:5.2-2.fc42.x86_64"),
    ]
    (kept,) = advisories.shipped_in(notes, {"glibc-0:2.41-11.fc42.x86_64", "bash-0:5.2-1.fc42.x86_64"})
    assert kept.id == "FEDORA-2" and [p.nevra for p in kept.packages] == ["glibc-0:2.41-11.fc42.x86_64"]
    assert kept.cves == ("CVE-2026-5678",)


def test_advisories_naming_a_build_come_security_first_by_severity() -> None:
    notes = [
        advisory("B", "bugfix", "", "glibc-0:2.41-11.fc42.x86_64"),
        advisory("L", "security", "Low", "glibc-0:2.41-11.fc42.x86_64"),
        advisory("C", "security", "Critical", "glibc-0:2.41-11.fc42.x86_64"),
        advisory("X", "security", "Critical", "bash-0:5.2-2.fc42.x86_64"),
    ]
    assert [a.id for a in advisories.naming_build(notes, "glibc-2.41-11.fc42.src.rpm")] == ["C", "L", "B"]
    assert advisories.from_json(advisories.to_json(notes[1])) == notes[1]


def test_updateinfo_written_with_createrepo_c_reads_back_the_same(tmp_path: Path) -> None:
    note = advisories.Advisory(
        "FEDORA-2026-abc123", "security", title="glibc update", severity="Important", issued="2026-11-20 10:00:00",
        references=(advisories.Reference("CVE-2026-5678", "cve", "https://www.cve.org/CVERecord?id=CVE-2026-5678", "CVE-2026-5678"),),
        collections=(advisories.PackageList("F42", "Fedora 42", (
            advisories.AdvisoryPackage("glibc", 0, "2.41", "11.fc42", "x86_64", "glibc-2.41-11.fc42.x86_64.rpm", "glibc-2.41-11.fc42.src.rpm"),)),),
    )  # fmt: skip
    path = tmp_path / "updateinfo.xml"
    path.write_text(updateinfo.dump([note]))
    assert "<sum" not in path.read_text().replace("<summary", "")
    assert updateinfo.read(path) == (note,)


# -- sources: URLs, variables, what validation makes of their answers ------------------------------


def test_a_variable_overrides_a_baseurl_and_is_named_not_shown() -> None:
    source = sources.Source("f42-updates", "https://example.org/{arch}/", "k")
    assert sources.override_variable("f42-updates") == "FACTORY_SOURCE_F42_UPDATES_BASEURL"
    moved = sources.effective(
        source, {"FACTORY_SOURCE_F42_UPDATES_BASEURL": "http://mirror.internal/{arch}/"}
    )
    assert (moved.url("aarch64"), moved.via) == (
        "http://mirror.internal/aarch64/",
        "FACTORY_SOURCE_F42_UPDATES_BASEURL",
    )
    assert sources.effective(source, {}) == source and sources.effective(source, {}).via == ""


def test_kojis_repo_json_is_looked_for_above_the_arch_directory() -> None:
    base = "https://kojipkgs.example/repos/f42-build/latest/{arch}/"
    url = base.replace("{arch}", "x86_64")
    assert sources.repo_json_url(url, base) == "https://kojipkgs.example/repos/f42-build/latest/repo.json"
    assert sources.repo_json_url("https://m.example/f42/os/", "https://m.example/f42/os/") is None


def test_a_pins_arches_are_the_releases_restricted_by_its_own() -> None:
    release = sources.release_arches([["x86_64"], ["aarch64", "x86_64"], ["noarch"]])
    assert release == ("aarch64", "x86_64")
    assert sources.pin_arches(("x86_64",), release) == ("x86_64",)
    assert sources.pin_arches((), release) == sources.pin_arches(("noarch",), release) == release


def test_what_validation_makes_of_the_sources_answers() -> None:
    named = {
        "f42": sources.Source("f42", "u", "k", source_baseurl="s"),
        "f42-updates": sources.Source("f42-updates", "u", "k", inherits=("f42",)),
        "broken": sources.Source("broken", "u", "k"),
        "away": sources.Source("away", "u", "k"),
    }
    pin = sources.PinRef("modules/m.yaml", "glibc", "f42-updates", "glibc-2.41-11.fc42", ("x86_64",))
    answers = {
        "f42": sources.Answer(
            "f42", frozenset({("x86_64", "glibc-2.41-11.fc42"), ("src", "glibc-2.41-11.fc42")})
        ),
        "f42-updates": sources.Answer("f42-updates", frozenset()),
        "broken": sources.Answer("broken", problem="source broken (x86_64): Checksum mismatch", broken=True),
        "away": sources.Answer("away", problem="source away (x86_64): cannot be reached"),
    }
    errors, warnings = sources.availability_problems(named, "factory.yaml", [pin], answers, ())
    assert [(e.code, e.where) for e in errors] == [("broken-source", ("sources", "broken", "baseurl"))]
    assert [(w.code, w.where) for w in warnings] == [("unreachable-source", ("sources", "away", "baseurl"))]
    # Found through inheritance, its source RPM in f42's source_baseurl: nothing to say. Without
    # that source RPM it is an error; gone from the sources but in the store, a warning.
    answers["f42"] = sources.Answer("f42", frozenset({("x86_64", "glibc-2.41-11.fc42")}))
    errors, _ = sources.availability_problems(named, "factory.yaml", [pin], answers, ())
    assert [e.code for e in errors] == ["broken-source", "unknown-build"]
    assert "its source RPM is not in the source_baseurl" in errors[1].message
    answers["f42"] = sources.Answer("f42", frozenset())
    _, warnings = sources.availability_problems(named, "factory.yaml", [pin], answers, {"glibc-2.41-11.fc42"})
    assert [w.code for w in warnings] == ["unreachable-source", "build-left-source"]
    # A source of the chain that did not answer: the build is not judged.
    answers["f42"] = sources.Answer("f42", problem="source f42 (x86_64): cannot be reached")
    errors, _ = sources.availability_problems(named, "factory.yaml", [pin], answers, ())
    assert [e.code for e in errors] == ["broken-source"]


# -- what lineage records ------------------------------------------------------------------------

ENTRY = UpstreamRpm(
    "f42-updates", "https://kojipkgs.example/repos/f42-updates/latest/x86_64/glibc-2.41-11.fc42.x86_64.rpm",
    "glibc-0:2.41-11.fc42.x86_64", "a" * 64, "d534cf6e377aef72", "1764000000", "b" * 64, KojiRepo("f42-updates", 7001, 4200),
)  # fmt: skip


def test_a_binary_pin_record_round_trips_and_other_records_keep_their_bytes() -> None:
    base = dict(
        compose_id="TL-42-glibc-2.41-11.fc42-20261121.n.0", node="binary:glibc-2.41-11.fc42", input_digest="d",
        key="k", commit="c" * 40, inputs=(), pins=(), outputs=(), outputs_digest="", tools=(),
        started="2026-11-21T10:00:00Z", finished="2026-11-21T10:00:01Z", status=ComposeStatus.FINISHED,
    )  # fmt: skip
    plain = Record(**base)  # type: ignore[arg-type]
    assert "upstream" not in plain.to_json()
    made = Record(**base, upstream=(ENTRY,))  # type: ignore[arg-type]
    assert Record.from_json(made.to_json()) == made
    assert made.to_json()["upstream"][0]["koji"] == {"tag": "f42-updates", "id": 7001, "event_id": 4200}
    assert Record.from_json(Record.from_json(made.to_json()).to_json()).note() == made.note()


def test_upstream_json_round_trips_with_its_no_source_statement() -> None:
    text = upstream_json((ENTRY,), "source f42-updates has no source_baseurl")
    assert read_upstream(text) == ((ENTRY,), "source f42-updates has no source_baseurl")
    assert upstream_json(*read_upstream(text)) == text


# -- rpmkeys -------------------------------------------------------------------------------------


def test_rpmkeys_argv_and_what_its_output_says() -> None:
    db, a, b, c = Path("/k/db"), Path("/r/a.rpm"), Path("/r/b.rpm"), Path("/r/c.rpm")
    assert rpmkeys.checksig_argv(db, [a]) == ["rpmkeys", "--dbpath", "/k/db", "--checksig", "-v", "/r/a.rpm"]
    assert rpmkeys.import_argv(db, Path("/k/key.asc")) == [
        "rpmkeys",
        "--dbpath",
        "/k/db",
        "--import",
        "/k/key.asc",
    ]
    output = (
        "/r/a.rpm:\n    Header V4 RSA/SHA512 Signature, key ID 377aef72: OK\n    Header SHA256 digest: OK\n"
        "    Payload SHA256 digest: OK\n"
        "/r/b.rpm:\n    Header SHA256 digest: OK\n    Payload SHA256 digest: OK\n"
        "/r/c.rpm:\n    Header V4 EdDSA/SHA256 Signature, key ID 5b06576a: NOKEY\n    Header SHA256 digest: OK\n"
    )
    found = rpmkeys.parse_checksig(output, [a, b, c])
    assert found[a].ok and found[a].signatures == (("377aef72", "OK"),)
    assert not found[b].ok and found[b].reason() == "it is not signed"
    assert not found[c].ok and found[c].reason() == "it is signed by another key (key ID 5b06576a: NOKEY)"
