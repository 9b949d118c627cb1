"""Onboarding builds made elsewhere: `factory import repo`, `factory import pungi --source` and
`factory import modulemd --source` pin the builds a source holds, with sources made in the tests
(rpmbuild, createrepo_c) and Pungi's and libmodulemd's own fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline import cli
from pipeline.core import definitions
from pipeline.git import repo as gitrepo
from tests import upstream_repo as up
from tests.conftest import ROOT, commit_tree, materialize_example

PUNGI = ROOT / "tests" / "data" / "interop" / "pungi"
MODULEMD = ROOT / "tests" / "data" / "interop" / "libmodulemd"
COMPS_PACKAGES = (
    "dummy-bash", "dummy-lvm2", "dummy-elinks", "dummy-tftp", "Dummy-firefox", "dummy-icedtea-web",
    "dummy-gfs2-utils", "dummy-lvm2-cluster", "dummy-pacemaker", "dummy-resource-agents",
    "dummy-imsettings-gnome",
)  # fmt: skip


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def config_with(source_dir: Path) -> bytes:
    """The example's factory.yaml with one source instead of its own: `f42`, unsigned."""
    text = (ROOT / "factory.yaml").read_text()
    text = text[: text.index("sources:\n")]
    return (
        text + f"sources:\n  f42:\n    baseurl: {source_dir}/{{arch}}/\n    allow_unsigned: true\n"
    ).encode()


def test_import_repo_pins_the_newest_build_of_each_package(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(example_repo)
    materialize_example(example_repo)
    code, out, err = factory(
        capsys, "import", "repo", "--source", "upstream", "--module", "extras:1", "zstd", "libzstd", "tzdata",
        "--repo", repo,
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[:2] == [
        "pinned tzdata at tzdata-2025a-1.fc42: tzdata",
        "pinned zstd at zstd-1.5.6-1.fc42: zstd, libzstd",  # a source name and a binary name: one pin
    ]
    written = example_repo / "modules" / "extras" / "1.yaml"
    data = yaml.safe_load(written.read_text())
    assert data["components"]["rpms"] == {
        "tzdata": {"source": "upstream", "build": "tzdata-2025a-1.fc42"},
        "zstd": {"source": "upstream", "build": "zstd-1.5.6-1.fc42"},
    }
    assert data["profiles"]["default"]["rpms"] == ["zstd", "libzstd", "tzdata"]
    code, _, err = factory(capsys, "validate", "--repo", repo)
    assert code == 0 and "warning" not in err
    # A newer build: a second import pins it.
    factory(
        capsys,
        "example",
        "upstream",
        str(example_repo / ".factory" / "upstream"),
        "--day",
        "idna-security-fix",
    )
    code, out, _ = factory(
        capsys, "import", "repo", "--source", "upstream", "--module", "idna:3", "python3-idna", "--repo", repo,
        "--out", str(example_repo / "elsewhere"),
    )  # fmt: skip
    assert code == 0 and out.startswith("pinned python3-idna at python3-idna-3.7-1.fc42: python3-idna")
    # Unknown packages: exit 2, the nearest names, nothing written.
    before = written.read_text()
    code, _, err = factory(
        capsys,
        "import",
        "repo",
        "--source",
        "upstream",
        "--module",
        "extras:1",
        "zstdd",
        "--repo",
        repo,
        "--force",
    )
    assert code == 2 and "no package 'zstdd' in source upstream" in err and "zstd" in err
    assert written.read_text() == before
    code, _, err = factory(
        capsys, "import", "repo", "--source", "nowhere", "--module", "x:1", "zstd", "--repo", repo
    )
    assert code == 2 and "no source 'nowhere'" in err

    # What was imported composes.
    commit_tree(
        example_repo, {p: (example_repo / p).read_bytes() for p in _tracked(example_repo)}, "extras\n"
    )
    code, out, err = factory(capsys, "compose", "module:extras:1", "--repo", repo, "--json")
    nodes = {n["node"]: n["status"] for n in json.loads(out)["nodes"]}
    assert code == 0, err
    assert nodes["binary:zstd-1.5.6-1.fc42"] == nodes["module:extras:1"] == "COMPOSED"


def _tracked(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for top in ("factory.yaml", "modules", "variants")
        for p in ([root / top] if (root / top).is_file() else (root / top).rglob("*.yaml"))
    )


@pytest.fixture(scope="module")
def comps_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A source holding a build of every package Pungi's comps fixture names, for its arches."""
    top = tmp_path_factory.mktemp("comps-source")
    built = [up.build(top / "builds", name, "1.0", "1.fc42", noarch=True) for name in COMPS_PACKAGES]
    for arch in ("x86_64", "ppc64le", "s390x"):
        up.make_repo(top / "f42" / arch, [p for b in built for p in b.rpms])
    yield top / "f42"


def test_import_pungi_pins_the_comps_groups_packages_to_a_sources_builds(
    comps_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    commit_tree(repo, {"factory.yaml": config_with(comps_source)}, "Empty\n")
    variants, comps = str(PUNGI / "variants.xml"), str(PUNGI / "comps.xml")
    code, out, err = factory(
        capsys, "import", "pungi", variants, "--comps", comps, "--source", "f42", "--eol", "2030-01-01",
        "--repo", str(repo),
    )  # fmt: skip
    assert code == 0, err
    # Every group's packages come from the source now, not only those a dist-git has.
    modules = sorted(p.name for p in (repo / "modules").iterdir())
    assert {"core", "standard", "firefox", "resilient-storage", "text-internet"} <= set(modules)
    defs = definitions.load(gitrepo.worktree_files(repo))
    core = defs.modules["core:42"]
    assert [(b.component, b.source, b.build) for b in core.binaries] == [
        ("dummy-bash", "f42", "dummy-bash-1.0-1.fc42")
    ]
    assert core.components == ()
    firefox = defs.modules["firefox:42"]
    assert [b.build for b in firefox.binaries] == ["Dummy-firefox-1.0-1.fc42", "dummy-icedtea-web-1.0-1.fc42"]
    assert "Server-optional: it selects no module" not in out  # its groups are made now
    assert "no dist-git repository provides it" not in out
    code, _, err = factory(capsys, "validate", "--repo", str(repo))
    assert code == 0 and "warning" not in err, err


@pytest.fixture(scope="module")
def module_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A source holding the builds three of the fixture's built modules name in `artifacts`."""
    top = tmp_path_factory.mktemp("module-source")
    built = [
        up.build(top / "b", "ninja-build", "1.8.2", "4.module_1991+4e5efe2f"),
        up.build(top / "b", "meson", "0.47.1", "5.module_1993+7c0a4d1e", noarch=True),
        up.build(top / "b", "python-django", "1.6.11.7", "3.module_2144+ad479803", noarch=True,
                 noarch_subpackages=["bash-completion"], named_subpackages=["python2-django"]),
    ]  # fmt: skip
    up.make_repo(top / "f29" / "x86_64", [p for b in built for p in b.rpms])
    yield top / "f29"


def test_import_modulemd_pins_a_built_modules_components_to_its_artifacts_builds(
    module_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    commit_tree(repo, {"factory.yaml": config_with(module_source)}, "Empty\n")
    fixture = str(MODULEMD / "f29-modules.yaml")
    code, out, err = factory(
        capsys, "import", "modulemd", fixture, "--source", "f42", "--arch", "x86_64", "--eol", "2030-01-01",
        "--repo", str(repo),
    )  # fmt: skip
    assert code == 0, err
    defs = definitions.load(gitrepo.worktree_files(repo))
    pins = {
        nsid: [(b.component, b.build) for b in m.binaries] for nsid, m in defs.modules.items() if m.binaries
    }
    assert pins["ninja:main"] == [("ninja-build", "ninja-build-1.8.2-4.module_1991+4e5efe2f")]
    assert pins["meson:main"] == [("meson", "meson-0.47.1-5.module_1993+7c0a4d1e")]
    assert pins["django:1.6"] == [("python-django", "python-django-1.6.11.7-3.module_2144+ad479803")]
    assert all(not m.components for m in defs.modules.values())
    # ReviewBoard's builds are not in the source: each artifact is named, no module is made.
    assert (
        f"{fixture}:" in out
        and "artifact ReviewBoard-0:2.5.17-17.module_1631+4353a891.noarch: not in source f42" in out
    )
    assert not any(n.startswith("reviewboard:") for n in defs.modules)
