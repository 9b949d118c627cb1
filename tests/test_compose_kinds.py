"""The build, module and repo composers with the real tools on the example distribution.

One module-scoped fixture materializes the example dist-git, builds every component the
Server variant ships with rpmbuild, composes its three modules and then the Server repo, the
way the executor would (Jobs made by hand). The tests then read the results with the tools
that consume them: dnf, libmodulemd, productmd, rpm.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import example, run
from pipeline.build.local import COMPLETE, LOG, BuildFailed, LocalBuilder
from pipeline.compose.base import Composer, InputCompose, Job
from pipeline.compose.binary import BinaryComposer
from pipeline.compose.module import ModuleComposer
from pipeline.compose.sources import SourceReader
from pipeline.compose.variant import VariantRepoComposer
from pipeline.core import definitions, graph
from pipeline.core.canonical import canonical_json, digest
from pipeline.core.model import Definitions, Module, Pin
from pipeline.core.records import OutputFile
from pipeline.engine import sources as binary_sources
from pipeline.git import distgit as distgits
from tests.conftest import example_tree, materialize_example, sources
from tests.test_tools_argv import parse_index

EPOCH = 1767225600  # the definitions commit time the executor would pass
DATE = "20261121"
VARIANT = "Server"


@dataclass
class Composed:
    """Everything the fixture made, and what it needs to make more."""

    root: Path  # the definitions checkout: .factory/distgit and .factory/output under it
    defs: Definitions
    graph: graph.Graph
    builder: LocalBuilder
    done: dict[str, InputCompose]  # node id -> its compose

    @property
    def output_dir(self) -> Path:
        return self.root / ".factory" / "output"

    def job(self, node_id: str, compose_id: str, *, output_dir: Path | None = None) -> Job:
        """A Job as the executor makes it: inputs from self.done, workdir made empty."""
        node = self.graph.nodes[node_id]
        out = output_dir or self.output_dir
        workdir = out / "builds" / node.digest[:32] if node.kind == "build" else out / "composes" / compose_id
        workdir.mkdir(parents=True, exist_ok=True)
        inputs = {i: self.done[i] for i in node.inputs}
        return Job(node, compose_id, self.defs, inputs, out, workdir, self.root, EPOCH)

    def compose(self, node_id: str, compose_id: str) -> InputCompose:
        node = self.graph.nodes[node_id]
        composers: dict[str, Composer] = {
            "binary": BinaryComposer(),
            "build": self.builder,
            "module": ModuleComposer(),
            "repo": VariantRepoComposer(),
        }
        composer = composers[node.kind]
        job = self.job(node_id, compose_id)
        if node.kind == "binary":  # its RPMs' checksums, as the executor resolves them first
            resolved = binary_sources.resolve(
                node, self.defs, SourceReader(self.defs.config, self.root, {}), None
            )
            assert not isinstance(resolved, str), resolved
            job = dataclasses.replace(job, node=resolved)
        made = InputCompose(node_id, compose_id, tuple(composer.compose(job)))
        self.done[node_id] = made
        return made

    def path(self, output: OutputFile) -> Path:
        return self.output_dir / output.path

    def compose_dir(self, node_id: str) -> Path:
        return self.output_dir / "composes" / self.done[node_id].compose_id


def compose_id(node_id: str) -> str:
    name = node_id.split(":", 1)[1].replace(":", "-").split("@")[0]
    return f"FL-42-{name}-{DATE}.t.0"


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Composed:
    root = tmp_path_factory.mktemp("factory")
    materialize_example(root)
    defs = definitions.load(sources(example_tree()))
    made = Composed(root, defs, graph.build(defs), LocalBuilder(root / "scratch"), {})
    needed = made.graph.upstream([f"repo:{VARIANT}"])
    for node_id in sorted(needed, key=made.graph.order):
        made.compose(node_id, compose_id(node_id))
    return made


def sha_list(outputs: tuple[OutputFile, ...] | list[OutputFile], workdir: str) -> list[tuple[str, str]]:
    """(path inside the compose, sha256) of every output: equal lists mean equal composes."""
    return sorted((o.path.split(workdir + "/", 1)[1], o.sha256) for o in outputs)


# -- builds ---------------------------------------------------------------------------------------


def test_a_build_makes_binary_and_source_rpms_and_keeps_its_log(composed: Composed) -> None:
    build = composed.done["build:python3@720dc08b"]
    names = sorted(Path(o.path).name for o in build.outputs)
    assert names == ["python3-3.12.7-1.fl42.noarch.rpm", "python3-3.12.7-1.fl42.src.rpm"]
    rpm_file = composed.path(next(o for o in build.outputs if o.path.endswith(".noarch.rpm")))
    assert (rpm_file.parent / COMPLETE).is_file()
    assert (rpm_file.parent / LOG).is_file()  # kept beside the RPMs, but not an output
    # Build and file times come from the dist-git commit (SOURCE_DATE_EPOCH), not the clock.
    distgit = composed.root / ".factory" / "distgit" / "python3.git"
    committed = distgits.commit_time(distgit, "720dc08b61b4dff4ca98d5be16c3a8191f9e62ba")
    assert rpm_file.stat().st_mtime == committed
    header = run.run(["rpm", "-qp", "--qf", "%{BUILDTIME} %{BUILDHOST}", str(rpm_file)])
    assert header == f"{committed} reproducible"


def test_the_same_pin_built_into_two_stores_is_byte_identical(composed: Composed, tmp_path: Path) -> None:
    first = composed.done["build:python3@720dc08b"]
    job = composed.job("build:python3@720dc08b", "FL-42-python3-again", output_dir=tmp_path / "other-store")
    second = composed.builder.compose(job)
    rpms = sorted((Path(o.path).name, o.sha256) for o in first.outputs if o.path.endswith(".rpm"))
    assert rpms == sorted((Path(o.path).name, o.sha256) for o in second if o.path.endswith(".rpm"))
    assert len(rpms) == 2


def test_a_build_that_exists_is_never_redone(composed: Composed, tmp_path: Path) -> None:
    build = composed.done["build:glibc@cf490c13"]
    before = {o.path: os.stat(composed.path(o)) for o in build.outputs}
    unused = tmp_path / "scratch"  # the builder would lock and build there
    again = LocalBuilder(unused).compose(composed.job("build:glibc@cf490c13", "FL-42-glibc-again"))
    assert again == list(build.outputs)
    assert not unused.exists()
    after = {o.path: os.stat(composed.path(o)) for o in build.outputs}
    assert {p: (s.st_ino, s.st_mtime_ns) for p, s in before.items()} == {
        p: (s.st_ino, s.st_mtime_ns) for p, s in after.items()
    }


def test_a_killed_build_is_not_taken_as_done(composed: Composed, tmp_path: Path) -> None:
    store = tmp_path / "store"
    job = composed.job("build:setup@f6ed7331", "FL-42-setup-killed", output_dir=store)
    (job.workdir / "setup-2.15.0-1.fl42.noarch.rpm").write_bytes(b"half an rpm")
    outputs = composed.builder.compose(job)
    assert (job.workdir / COMPLETE).is_file()
    rpm_out = next(o for o in outputs if o.path.endswith(".noarch.rpm"))
    built = next(o for o in composed.done["build:setup@f6ed7331"].outputs if o.path.endswith(".noarch.rpm"))
    assert rpm_out.sha256 == built.sha256
    assert not [p for p in job.workdir.parent.iterdir() if p.name.startswith(".")]  # no staging left


BROKEN_SPEC = b"""\
Name:           broken
Version:        1
Release:        1%{?dist}
Summary:        A package whose build fails
License:        MIT
BuildArch:      noarch

%description
Fails in %install.

%install
echo "factory-test: the install step fails here" >&2
exit 3

%files
"""


def test_a_broken_spec_fails_with_the_log_tail(composed: Composed, tmp_path: Path) -> None:
    distgit = tmp_path / ".factory" / "distgit" / "broken.git"
    spec = distgits.CommitSpec("import", "f42", "Import broken\n", {"broken.spec": BROKEN_SPEC}, EPOCH)
    ref = distgits.write_history(distgit, [spec], {}, example.AUTHOR)["f42"]
    pin = Pin("broken", ref, "f42")
    module = Module("broken", "1", "Broken", "Broken.", "MIT", dt.date(2030, 1, 1), (pin,))
    defs = dataclasses.replace(composed.defs, modules={**composed.defs.modules, module.nsid: module})
    definition = {"component": "broken", "ref": ref, "dist": ".fl42", "arches": []}
    node_id = graph.build_id(pin)
    value = canonical_json(definition)
    node = graph.Node(node_id, "build", value, (), digest({"node": node_id, "definition": definition}))
    workdir = tmp_path / "out" / "builds" / "broken"
    workdir.mkdir(parents=True)
    job = Job(node, "FL-42-broken-x", defs, {}, tmp_path / "out", workdir, tmp_path, EPOCH)
    with pytest.raises(BuildFailed) as failed:
        LocalBuilder(tmp_path / "scratch").compose(job)
    message = failed.value.message
    assert "factory-test: the install step fails here" in message
    # Where the log is, never a path of this machine: the message goes into lineage and the site.
    assert "failed (log: builds/broken/build.log in the output directory):" in message
    assert str(tmp_path) not in message, message
    assert failed.value.code == "build-failed"
    assert "factory-test: the install step fails here" in (workdir / LOG).read_text()
    assert not (workdir / COMPLETE).exists()


# -- module composes -------------------------------------------------------------------------------


def test_a_module_repo_is_hard_links_of_its_builds(composed: Composed) -> None:
    module = composed.done["module:python3:3.12"]
    built = {
        Path(o.path).name: os.stat(composed.path(o)).st_ino
        for i in composed.graph.nodes["module:python3:3.12"].inputs
        for o in composed.done[i].outputs
        if o.path.endswith(".rpm")
    }
    linked = {
        Path(o.path).name: os.stat(composed.path(o)).st_ino for o in module.outputs if o.path.endswith(".rpm")
    }
    assert linked == built
    assert len(linked) == 8  # three builds and a binary pin, each with its source RPM
    repo = composed.compose_dir("module:python3:3.12") / "repo"
    assert sorted(p.name for p in (repo / "Packages").iterdir()) == [
        "python3-3.12.7-1.fl42.noarch.rpm",
        "python3-idna-3.6-1.fc42.noarch.rpm",  # a build made elsewhere, taken from upstream
        "python3-requests-2.32.3-1.fl42.noarch.rpm",
        "python3-urllib3-2.2.3-1.fl42.noarch.rpm",
    ]


def test_composing_a_module_twice_gives_identical_outputs(composed: Composed) -> None:
    first = composed.done["module:python3:3.12"]
    job = composed.job("module:python3:3.12", "FL-42-python3-3.12-20261121.t.1")
    second = ModuleComposer().compose(job)
    assert sha_list(first.outputs, first.compose_id) == sha_list(second, job.compose_id)
    # every record, modules included, carries the revision: no wall-clock time anywhere
    repomd = (job.workdir / "repo" / "repodata" / "repomd.xml").read_text()
    assert repomd.count("<timestamp>") == repomd.count(f"<timestamp>{EPOCH}</timestamp>") == 5
    assert 'type="modules"' in repomd and 'type="updateinfo"' in repomd  # python3-idna's advisory


def test_libmodulemd_reads_the_module_metadata(composed: Composed) -> None:
    node = composed.graph.nodes["module:python3:3.12"]
    text = (composed.compose_dir(node.id) / "modules.yaml").read_text()
    stream = parse_index(text).get_module("python3").get_all_streams()[0]
    assert stream.get_NSVCA() == f"python3:3.12:20260101000000:{node.digest[:8]}"
    assert sorted(stream.get_rpm_artifacts()) == [
        "python3-0:3.12.7-1.fl42.noarch",
        "python3-0:3.12.7-1.fl42.src",
        "python3-idna-0:3.6-1.fc42.noarch",
        "python3-idna-0:3.6-1.fc42.src",
        "python3-requests-0:2.32.3-1.fl42.noarch",
        "python3-requests-0:2.32.3-1.fl42.src",
        "python3-urllib3-0:2.2.3-1.fl42.noarch",
        "python3-urllib3-0:2.2.3-1.fl42.src",
    ]
    assert sorted(stream.get_content_licenses()) == ["Apache-2.0", "BSD-3-Clause", "MIT", "Python-2.0.1"]


# -- the variant repo --------------------------------------------------------------------------------


def variant_tree(composed: Composed) -> Path:
    return composed.compose_dir(f"repo:{VARIANT}") / "compose"


def test_the_variant_repo_has_every_shipped_rpm_per_arch(composed: Composed) -> None:
    os_tree = variant_tree(composed) / VARIANT / "x86_64" / "os"
    names = sorted(p.name for p in (os_tree / "Packages").iterdir())
    assert len(names) == 15 and "httpd-2.4.62-1.fl42.noarch.rpm" in names
    assert "python3-idna-3.6-1.fc42.noarch.rpm" in names  # taken from the upstream source
    source = variant_tree(composed) / VARIANT / "source" / "tree" / "Packages"
    assert len(list(source.iterdir())) == 15
    modules = parse_index((composed.compose_dir(f"repo:{VARIANT}") / "modules.yaml").read_text())
    assert sorted(modules.get_module_names()) == ["base-runtime", "httpd", "python3"]
    assert modules.get_default_streams() == {"base-runtime": "f42", "httpd": "2.4", "python3": "3.12"}
    repomd = (os_tree / "repodata" / "repomd.xml").read_text()
    assert 'type="modules"' in repomd and 'type="group"' in repomd


def test_the_variant_repo_is_reproducible_apart_from_its_compose_id(composed: Composed) -> None:
    first = composed.done[f"repo:{VARIANT}"]
    job = composed.job(f"repo:{VARIANT}", "FL-42-Server-20261121.t.1")
    second = VariantRepoComposer().compose(job)

    def trees(outputs: list[OutputFile] | tuple[OutputFile, ...], cid: str) -> list[tuple[str, str]]:
        return [(p, s) for p, s in sha_list(outputs, cid) if not p.startswith("compose/metadata/")]

    assert trees(first.outputs, first.compose_id) == trees(second, job.compose_id)


def test_productmd_loads_the_compose_metadata(composed: Composed) -> None:
    import productmd.compose  # type: ignore[import-untyped]

    tree = variant_tree(composed)
    loaded = productmd.compose.Compose(str(tree))
    info, rpms = loaded.info, loaded.rpms
    assert info.compose.id == "FL-42-Server-20261121.t.0"
    assert (info.compose.type, info.compose.date, info.compose.respin) == ("test", DATE, 0)
    assert (info.release.short, info.release.version, info.release.name) == ("FL", "42", "Factory Linux")
    paths = info.variants[VARIANT].paths
    assert paths.os_tree == {"x86_64": "Server/x86_64/os"}
    assert paths.source_packages == {"x86_64": "Server/source/tree/Packages"}
    by_srpm = rpms.rpms[VARIANT]["x86_64"]
    python3 = by_srpm["python3-0:3.12.7-1.fl42.src"]
    assert python3["python3-0:3.12.7-1.fl42.noarch"]["category"] == "binary"
    assert python3["python3-0:3.12.7-1.fl42.src"]["category"] == "source"
    every_path = [entry["path"] for srpm in by_srpm.values() for entry in srpm.values()]
    assert len(every_path) == 30 and all((tree / p).is_file() for p in every_path)
    # what productmd writes, it reads back and writes again byte for byte
    for name, kept in (("composeinfo.json", info), ("rpms.json", rpms)):
        assert kept.dumps() == (tree / "metadata" / name).read_text()
        assert json.loads(kept.dumps())["header"]["version"]


@pytest.fixture
def dnf_root(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """An empty installroot and an environment for dnf on Debian; the gpg-agents stopped after."""
    home = tmp_path / "home"
    home.mkdir()
    # Debian's rpm keeps its database in ~/.rpmdb; the installroot's belongs in the usual place.
    (home / ".rpmmacros").write_text("%_dbpath /usr/lib/sysimage/rpm\n")
    root = tmp_path / "root"
    root.mkdir()
    yield root, {**os.environ, "HOME": str(home)}
    for agent_home in {p.parent for top in (root, home) for p in top.rglob("pubring.*")}:
        subprocess.run(["gpgconf", "--homedir", str(agent_home), "--kill", "gpg-agent"], check=False)


def dnf(root: Path, env: dict[str, str], repo: Path, *args: str) -> str:
    argv = [
        "dnf",
        "-y",
        "-q",
        f"--installroot={root}",
        "--releasever=42",
        "--setopt=reposdir=/nonexistent",
        f"--repofrompath=variant,file://{repo}",
        "--repo=variant",
        "--setopt=variant.gpgcheck=0",
        "--setopt=module_platform_id=platform:fl42",
        "--setopt=install_weak_deps=False",
        *args,
    ]
    return run.run(argv, env=env)


def installed(root: Path) -> list[str]:
    out = run.run(
        ["rpm", "--root", str(root), "--dbpath", "/usr/lib/sysimage/rpm", "-qa", "--qf", "%{NAME}\n"]
    )
    return sorted(out.split())


@pytest.mark.skipif(shutil.which("dnf") is None, reason="dnf is not installed")
def test_dnf_installs_a_module_profile_and_a_comps_group(
    composed: Composed, dnf_root: tuple[Path, dict[str, str]]
) -> None:
    root, env = dnf_root
    repo = variant_tree(composed) / VARIANT / "x86_64" / "os"
    dnf(root, env, repo, "module", "install", "python3:3.12/http")
    # requests pulls urllib3 and python3, which pull glibc, openssl, ... from base-runtime
    assert installed(root) == [
        "ca-certificates",
        "filesystem",
        "glibc",
        "openssl",
        "python3",
        "python3-idna",
        "python3-requests",
        "python3-urllib3",
        "setup",
    ]
    dnf(root, env, repo, "group", "install", "httpd-default")
    assert {"httpd", "mod_ssl", "systemd", "bash", "coreutils"} <= set(installed(root))
    assert not (Path(env["HOME"]) / ".rpmdb").exists() and not (root / "root" / ".rpmdb").exists()


@pytest.mark.skipif(shutil.which("dnf") is None, reason="dnf is not installed")
def test_a_repo_output_with_comps_false_has_no_groups(
    composed: Composed, dnf_root: tuple[Path, dict[str, str]]
) -> None:
    tree = example_tree()
    tree["variants/Server.yaml"] = tree["variants/Server.yaml"].replace(
        b"  - kind: repo\n    name: os\n", b"  - kind: repo\n    name: os\n    options: {comps: false}\n"
    )
    node = graph.build(definitions.load(sources(tree))).nodes[f"repo:{VARIANT}"]
    assert node.digest != composed.graph.nodes[f"repo:{VARIANT}"].digest  # the option plans the repo again
    job = dataclasses.replace(composed.job(f"repo:{VARIANT}", "FL-42-Server-20261121.t.7"), node=node)
    outputs = VariantRepoComposer().compose(job)
    os_tree = job.workdir / "compose" / VARIANT / "x86_64" / "os"
    repomd = (os_tree / "repodata" / "repomd.xml").read_text()
    assert 'type="modules"' in repomd and 'type="group"' not in repomd
    assert not any(o.path.endswith("/comps.xml") for o in outputs)
    root, env = dnf_root
    with pytest.raises(run.CommandFailed):
        dnf(root, env, os_tree, "group", "install", "httpd-default")
    dnf(root, env, os_tree, "module", "install", "httpd:2.4/default")  # the modules are still there
    assert "httpd" in installed(root)
