"""`make runner-image`: the image GitLab jobs run in, checked the way a user checks an image.

The session fixture `runner_image` (tests/conftest.py) builds it with `make runner-image` into a
temporary OCI layout; skopeo reads its config and manifest, the layer's blob is checked against
both digests, `make runner-image-push` pushes it to Debian's docker-registry on 127.0.0.1 and the
pinned reference it prints is read back; `umoci raw unpack` makes its root file system, and
commands run in it under chroot with an empty environment: factory's version, the example
distribution's dist-git and `factory validate`, one module composed and checked, and what is
installed (every package of COMPOSE_PACKAGES, none of TEST_PACKAGES, no apt).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests import registry as oci_registry
from tests.conftest import ROOT, commit_tree, example_tree
from tests.runner_image import PATH, RunnerImage, in_root, make_variable, unpack

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TOOLS = (
    *("git", "rpmbuild", "rpmsign", "createrepo_c", "modifyrepo_c", "dnf", "ostree", "xorriso"),
    *("umoci", "skopeo", "gpg", "rsync", "factory"),
)
IMPORTS = (
    "import gi; gi.require_version('OSTree', '1.0'); gi.require_version('Modulemd', '2.0'); "
    "from gi.repository import OSTree, Modulemd; import dnf, hawkey, rpm, librepo, createrepo_c, pygit2, yaml, oras, gitlab"
)


def skopeo(*argv: str) -> Any:
    done = subprocess.run(["skopeo", *argv], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_skopeo_reads_its_config_and_its_one_layer(runner_image: RunnerImage) -> None:
    config = skopeo("inspect", "--config", f"oci:{runner_image.reference}")
    assert runner_image.tag == version("factory")
    assert config["os"] == "linux"
    assert config["config"]["Cmd"] == ["/bin/bash"]
    assert f"PATH={PATH}" in config["config"]["Env"]
    labels = config["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == runner_image.tag
    assert labels["org.opencontainers.image.title"] == "factory-runner"
    assert re.fullmatch(r"[0-9a-f]{40}(-modified)?", labels["org.opencontainers.image.revision"])
    assert any("mmdebstrap" in h.get("created_by", "") for h in config["history"])
    manifest = skopeo("inspect", "--raw", f"oci:{runner_image.reference}")
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == GZIP_LAYER
    blob = runner_image.layout / "blobs" / "sha256" / layer["digest"].removeprefix("sha256:")
    assert blob.stat().st_size == layer["size"]
    compressed, uncompressed, size = hashlib.sha256(), hashlib.sha256(), 0
    with blob.open("rb") as raw, gzip.open(raw) as tar:
        for chunk in iter(lambda: tar.read(1 << 20), b""):
            uncompressed.update(chunk)
            size += len(chunk)
        raw.seek(0)
        for chunk in iter(lambda: raw.read(1 << 20), b""):
            compressed.update(chunk)
    assert f"sha256:{compressed.hexdigest()}" == layer["digest"]
    assert config["rootfs"]["diff_ids"] == [f"sha256:{uncompressed.hexdigest()}"]
    print(f"\nrunner image: layer {layer['size']:,} bytes gzipped, {size:,} bytes as a tar")


def test_make_runner_image_push_pushes_it_and_prints_the_reference_to_pin(
    runner_image: RunnerImage, tmp_path: Path
) -> None:
    registry = oci_registry.start(tmp_path / "registry")
    try:
        target = f"{registry.address}/dist/factory"
        done = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "runner-image-push",
                f"RUNNER_LAYOUT={runner_image.layout}",
                f"REGISTRY={target}",
                "SKOPEO_FLAGS=--dest-tls-verify=false",  # the loopback registry speaks plain HTTP
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "mmdebstrap" not in done.stdout  # it pushed the image built, and built none
        pinned = re.search(r"pin it: FACTORY_IMAGE=(\S+)", done.stdout)
        assert pinned is not None, done.stdout
        assert pinned[1].startswith(f"{target}/runner@sha256:")
        local = skopeo("inspect", f"oci:{runner_image.reference}")
        pushed = skopeo("inspect", "--tls-verify=false", f"docker://{pinned[1]}")
        tagged = skopeo("inspect", "--tls-verify=false", f"docker://{target}/runner:{runner_image.tag}")
        assert pushed["Digest"] == tagged["Digest"] == pinned[1].split("@")[1]
        assert pushed["Layers"] == local["Layers"]
        assert pushed["Labels"]["org.opencontainers.image.version"] == runner_image.tag
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def root(runner_image: RunnerImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield unpack(runner_image, tmp_path_factory.mktemp("runner-root") / "rootfs")


def test_it_holds_what_jobs_run_and_nothing_the_tests_add(root: Path) -> None:
    done = in_root(root, "dpkg-query -W -f '${Package} ${db:Status-Status}\\n'")
    assert done.returncode == 0, done.stderr
    installed = {line.split()[0] for line in done.stdout.splitlines() if line.endswith(" installed")}
    assert set(make_variable("COMPOSE_PACKAGES")) <= installed
    assert not installed & {*make_variable("TEST_PACKAGES"), "nodejs", "npm", "chromium-common"}
    assert not installed & {"apt", "ruby3.1", "docker.io", "graphviz"}
    assert in_root(root, "command -v apt-get || command -v apt").returncode != 0  # no job installs
    for tool in TOOLS:
        assert in_root(root, f"command -v {tool}").returncode == 0, tool
    done = in_root(root, f'/opt/factory/bin/python -c "{IMPORTS}"')
    assert done.returncode == 0, done.stderr


def test_factory_validates_and_composes_the_example_in_it_with_nothing_else_installed(root: Path) -> None:
    done = in_root(root, "factory --version")
    assert (done.returncode, done.stdout.strip()) == (0, f"factory {version('factory')}")
    # a job's clone: the example distribution, its dist-git as sources
    tree = {**example_tree()}
    for path in sorted((ROOT / "examples" / "distgit").rglob("*")):
        if path.is_file():
            tree[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    for folder in ("policies", "waivers"):
        for path in sorted((ROOT / folder).glob("*.yaml")):
            tree[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    commit_tree(root / "work", tree, "The example distribution\n")
    script = (
        "factory example distgit .factory/distgit --source examples/distgit >/dev/null"
        " && factory validate && factory compose module:base-runtime:f42 --type ci"
    )
    done = in_root(root, script, cwd="/work", env={"HOME": "/root"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "FINISHED: 10 composed" in output  # nine builds and the module: rpmbuild, createrepo_c, its gate
