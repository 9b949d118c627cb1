"""`factory import pungi`, `factory export pungi` and the round trip, with the real clients.

Pungi's own fixtures (tests/data/interop/pungi/, README there) are imported; the example
distribution is exported, checked with xmllint against Pungi's DTD, libcomps (dnf's comps
library) and libmodulemd, imported again, and must plan nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline import cli, schemas
from pipeline.core import definitions, graph, plan
from pipeline.core.errors import InvalidInput
from pipeline.formats import pungi, xmltree
from pipeline.git import repo as gitrepo
from pipeline.interop import from_pungi
from pipeline.tools import libmodulemd
from tests.conftest import ROOT, commit_tree, example_tree, example_upstream

PUNGI = Path(__file__).resolve().parent / "data" / "interop" / "pungi"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def new_repo(path: Path, *, sources: str | None = None) -> Path:
    """A definitions repository with the example's factory.yaml and nothing else (its upstream
    source beside it); `sources` replaces its `sources:` section."""
    config = (ROOT / "factory.yaml").read_text()
    if sources is not None:
        config = config[: config.index("sources:\n")] + sources
    commit_tree(path, {"factory.yaml": config.encode()}, "Empty\n")
    example_upstream(path / ".factory" / "upstream")
    return path


def test_factory_uids_from_pungi_uids() -> None:
    assert from_pungi.factory_uid("Server-optional") == "ServerOptional"
    assert from_pungi.factory_uid("Server-ResilientStorage") == "ServerResilientStorage"


def test_entities_are_refused_with_their_line() -> None:
    bomb = b'<?xml version="1.0"?>\n<!DOCTYPE v [\n<!ENTITY a "aaaa">\n]>\n<variants/>\n'
    with pytest.raises(InvalidInput, match=r"x.xml:3: entity declarations"):
        xmltree.parse("x.xml", bomb)


def test_pungi_fixtures_import_with_every_loss_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = new_repo(tmp_path / "repo", sources="")  # dist-git only: the example's source has x86_64 alone
    distgit = repo / ".factory" / "distgit"
    for package in ("dummy-bash", "dummy-lvm2"):  # two packages a dist-git provides; the rest none
        work = tmp_path / "src" / package
        subprocess.run(["git", "init", "-q", "-b", "f42", str(work)], check=True)
        (work / f"{package}.spec").write_text("Name: x\n", encoding="utf-8")
        git = ["git", "-C", str(work), "-c", "user.name=T", "-c", "user.email=t@example.invalid"]
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", "spec"], check=True)
        subprocess.run(
            ["git", "clone", "-q", "--bare", str(work), str(distgit / f"{package}.git")], check=True
        )
    variants, comps = str(PUNGI / "variants.xml"), str(PUNGI / "comps.xml")
    code, out, _ = run(
        capsys,
        "import",
        "pungi",
        variants,
        "--comps",
        comps,
        "--repo",
        str(repo),
        "--eol",
        "2030-01-01",
        "--branch",
        "f42",
    )
    assert code == 0
    assert f"{variants}:46: not carried over: group skype: no such group in {comps}" in out
    assert f"{variants}:32: not carried over: group gluster: no such group in {comps}" in out
    assert (
        f"{variants}:36: not carried over: variant Client arch i386: not an arch factory composes for" in out
    )
    assert f"{variants}:14: not carried over: variant Live: it selects no module factory can make" in out
    assert (
        f"{comps}:52: not carried over: package Dummy-firefox: no dist-git repository provides it on branch f42"
        in out
    )
    assert f"{comps}:85: not carried over: environment minimal" in out
    # firefox's and resilient-storage's packages have no dist-git: no modules, so the optional
    # and addon variants that only select those groups select nothing and are reported.
    assert (
        f"{variants}:70: not carried over: variant Server-optional: it selects no module factory can make"
        in out
    )
    assert sorted(p.name for p in (repo / "variants").iterdir()) == ["Client.yaml", "Server.yaml"]
    assert sorted(p.name for p in (repo / "modules").iterdir()) == ["core", "standard"]
    defs = definitions.load(gitrepo.worktree_files(repo))
    head = subprocess.run(
        ["git", "--git-dir", str(distgit / "dummy-bash.git"), "rev-parse", "f42"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert defs.modules["core:42"].components[0].ref == head
    assert [s.module for s in defs.variants["Server"].modules] == ["core:42", "standard:42"]
    code, _, err = run(capsys, "validate", "--repo", str(repo))
    assert code == 0 and "warning" not in err


def test_a_variants_xml_that_breaks_pungis_dtd_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = new_repo(tmp_path / "repo")
    bad = tmp_path / "variants.xml"
    bad.write_text(
        (PUNGI / "variants.xml").read_text(encoding="utf-8").replace('type="addon"', 'type="extra"')
    )
    code, _, err = run(
        capsys, "import", "pungi", str(bad), "--comps", str(PUNGI / "comps.xml"), "--repo", str(repo)
    )
    assert code == 2
    assert f"{bad}:5: element variant: validity error" in err
    assert not (repo / "variants").exists()


def test_the_example_exported_to_pungi_and_imported_again_plans_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    commit_tree(source, example_tree(), "Example\n")
    monkeypatch.chdir(source)
    assert run(capsys, "example", "distgit", ".factory/distgit")[0] == 0
    exported = tmp_path / "pungi"
    assert run(capsys, "export", "pungi", "--repo", str(source), "--out", str(exported))[0] == 0

    # Pungi's understanding: its DTD, dnf's comps library, libmodulemd.
    dtd = schemas.pungi_dtd()
    check = subprocess.run(
        ["xmllint", "--noout", "--nonet", "--dtdvalid", str(dtd), str(exported / "variants.xml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    libcomps = pytest.importorskip("libcomps")
    comps = libcomps.Comps()
    comps.fromxml_f(str(exported / "comps.xml"))
    assert {g.id for g in comps.groups} >= {"base-runtime-default", "base-runtime-boot", "httpd-minimal"}
    assert libmodulemd.validate_text((exported / "modules.yaml").read_text(encoding="utf-8")) == []
    server = next(
        v for v in pungi.read_variants("v", (exported / "variants.xml").read_bytes()) if v.id == "Server"
    )
    assert [m.name for m in server.modules] == ["base-runtime:f42", "python3:3.12", "httpd:2.4"]

    target = new_repo(tmp_path / "target")
    shutil.copytree(source / ".factory" / "distgit", target / ".factory" / "distgit")
    assert run(capsys, "import", "modulemd", str(exported / "modules.yaml"), "--repo", str(target))[0] == 0
    code, out, _ = run(
        capsys,
        "import",
        "pungi",
        str(exported / "variants.xml"),
        "--comps",
        str(exported / "comps.xml"),
        "--repo",
        str(target),
    )
    assert code == 0 and "not carried over:" not in out and "0 constructs not carried over" in out
    before = definitions.load(gitrepo.worktree_files(source))
    after = definitions.load(gitrepo.worktree_files(target))
    result = plan.plan(graph.build(before), graph.build(after))
    assert (result.nodes, result.removed) == ([], ())
    assert after.modules == before.modules and after.variants == before.variants
    code, _, err = run(capsys, "validate", "--repo", str(target))
    assert code == 0 and err == ""  # its dist-git is reachable: every pin checked

    # Once more changes nothing; a file that differs is refused, and nothing is written.
    assert (
        "0 files written"
        in run(capsys, "import", "modulemd", str(exported / "modules.yaml"), "--repo", str(target))[1]
    )
    edited = target / "modules" / "httpd" / "2.4.yaml"
    edited.write_text(edited.read_text(encoding="utf-8") + "# local note\n", encoding="utf-8")
    code, _, err = run(capsys, "import", "modulemd", str(exported / "modules.yaml"), "--repo", str(target))
    assert code == 2 and "would-overwrite" in err and "httpd/2.4.yaml" in err
    assert edited.read_text(encoding="utf-8").endswith("# local note\n")
    assert (
        run(capsys, "import", "modulemd", str(exported / "modules.yaml"), "--repo", str(target), "--force")[0]
        == 0
    )
    assert not edited.read_text(encoding="utf-8").endswith("# local note\n")


def test_imported_repodata_modules_validate_with_only_unreachable_pin_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = new_repo(tmp_path / "repo")
    modules = Path(__file__).resolve().parent / "data" / "interop" / "libmodulemd" / "f29-modules.yaml"
    code, out, _ = run(capsys, "import", "modulemd", str(modules), "--repo", str(repo), "--eol", "2019-11-26")
    assert code == 0 and "5 module streams imported" in out
    code, out, err = run(capsys, "validate", "--repo", str(repo))
    assert code == 0 and "5 modules and 0 variants are valid" in out
    lines = [line for line in err.splitlines() if ": warning[" in line]
    # Dist-git unreachable from here, and EOLs of 2019 that have come (`factory eol --due` retires).
    assert lines and all(
        "warning[unreachable-distgit]" in line or "warning[eol-reached]" in line for line in lines
    )
    assert "error" not in err


def test_an_import_that_imports_nothing_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every document refused (libmodulemd cannot read it, or it is a kind factory leaves out):
    the import would do nothing, so it says why and exits 2, writing nothing."""
    repo = new_repo(tmp_path / "repo")
    refused = tmp_path / "refused.yaml"
    refused.write_text(
        "---\ndocument: modulemd\nversion: 2\ndata:\n  name: a\n  stream: s\n  surprise: 1\n...\n"
        "---\ndocument: modulemd-defaults\nversion: 1\ndata:\n  module: a\n  stream: s\n...\n"
    )
    before = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if ".git" not in p.parts)
    code, out, err = run(capsys, "import", "modulemd", str(refused), "--repo", str(repo))
    assert code == 2
    assert f"{refused}:1: not carried over: document 1: libmodulemd:" in out
    assert "no module stream imported; 0 files written, 2 constructs not carried over" in out
    assert f"error[nothing-imported]: nothing imported from {refused}" in err and "Traceback" not in err
    after = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if ".git" not in p.parts)
    assert after == before
