"""A third-party artifact kind, installed as a package with an entry point, composes like a built-in.

The plugin is a real distribution (package + dist-info with entry_points.txt) in a directory
put on sys.path, the way pip installs one; factory finds it through `factory.artifacts` and
`factory.checks`, validates variants that use its kind, composes them and records lineage.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.records.checks import read
from pipeline.records.lineage import Lineage
from tests.conftest import commit_tree, example_tree, materialize_example

PLUGIN = '''
"""A tarball of a variant's flat repo: one module and one entry point make a new kind."""

import tarfile
from pathlib import Path

from pipeline.core.gate import CheckResult
from pipeline.core.states import CheckState
from pipeline.compose.base import describe_tree


class TarballComposer:
    kind = "tarball"
    format = 1

    def tools(self):
        return {"tarfile": "stdlib"}

    def compose(self, job):
        repo = next(o for i in job.inputs.values() for o in i.outputs if o.path.endswith("/os/repodata/repomd.xml"))
        tree = (job.output_dir / repo.path).parent.parent
        target = job.workdir / f"{job.node.id.split('/')[-1]}.tar"
        with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(tree.rglob("*")):
                info = tar.gettarinfo(str(path), str(path.relative_to(tree)))
                info.mtime, info.uid, info.gid, info.uname, info.gname = job.source_date_epoch, 0, 0, "", ""
                if path.is_file():
                    with path.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
        return describe_tree(job.output_dir, job.workdir)


class TarballListsRepodata:
    name = "tarball-lists-repodata"
    kinds = frozenset({"tarball"})

    def run(self, job, outputs):
        tar = next(job.output_dir / o.path for o in outputs if o.path.endswith(".tar"))
        with tarfile.open(tar) as handle:
            names = handle.getnames()
        if "repodata/repomd.xml" in names:
            return CheckResult(self.name, CheckState.PASSED)
        return CheckResult(self.name, CheckState.FAILED, "no repodata/repomd.xml in the tarball")
'''

VARIANT = """\
document: factory-variant
version: 1
uid: Minimal
name: Minimal
release: "42"
eol: 2027-10-31
arches: [x86_64]
modules:
  - module: base-runtime:f42
    profiles: [minimal]
outputs:
  - kind: repo
    name: os
  - kind: tarball
    name: archive
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    (site / "factory_tarball").mkdir(parents=True)
    (site / "factory_tarball" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "factory_tarball-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: factory-tarball\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[factory.artifacts]\ntarball = factory_tarball:TarballComposer\n\n"
        "[factory.checks]\ntarball-lists-repodata = factory_tarball:TarballListsRepodata\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    root.mkdir()
    commit_tree(
        root, {**example_tree(), "variants/Minimal.yaml": VARIANT.encode()}, "Add a Minimal edition\n"
    )
    materialize_example(root)
    return root


def test_without_the_plugin_the_kind_is_unknown(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "--repo", str(repo)]) == 2
    assert "error[unknown-kind]: no artifact kind 'tarball'" in capsys.readouterr().err


def test_an_installed_plugin_validates_composes_and_is_checked(
    plugin: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "factory_tarball" not in sys.modules
    assert cli.main(["validate", "--repo", str(repo)]) == 0
    capsys.readouterr()
    assert cli.main(["compose", "tarball:Minimal/archive", "--repo", str(repo), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "FINISHED"
    assert {n["node"]: n["status"] for n in result["nodes"]}["tarball:Minimal/archive"] == "COMPOSED"
    lineage = Lineage(repo)
    compose_id = lineage.latest()["tarball:Minimal/archive"]
    assert compose_id.startswith("FL-42-Minimal-archive-")
    record = lineage.get(compose_id)
    assert [o.path.rsplit("/", 1)[-1] for o in record.outputs] == ["archive.tar"]
    assert ("tarfile", "stdlib") in record.tools
    assert [(t.check, t.state) for t in read(lineage, compose_id)] == [("tarball-lists-repodata", "PASSED")]
