"""A non-editable install (`pip install .`) is a working factory: the schemas ship inside it.

The package is built from a copy of the sources (so the build leaves nothing in this checkout)
and installed into a fresh venv made like the project's (`/usr/bin/python3 -m venv
--system-site-packages`, without pip: this venv's pip installs into it with `--python`). Its dependencies are not downloaded: the venv sees this project's
.venv site-packages through a .pth line, which puts them on sys.path without running the .pth
files there (the editable install of this checkout is such a file), so `pipeline` can only
come from the installed copy; the test checks that it does. Then `factory validate` runs from
another directory against the example repository.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT, materialize_example

SYSTEM_PYTHON = Path("/usr/bin/python3")


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="Debian's python3 is not installed")
def test_pip_install_gives_a_factory_that_validates_from_another_directory(
    tmp_path: Path, example_repo: Path
) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT / "pipeline", source / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", source / "pyproject.toml")
    venv = tmp_path / "venv"
    made = run(
        [str(SYSTEM_PYTHON), "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], tmp_path
    )
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path)
    # The dependencies of this checkout's venv (pygit2, jsonschema, ...), not its editable pipeline.
    Path(site.stdout.strip(), "factory-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # This venv's pip installs into the new one (`--python`): ensurepip would take longer than the rest.
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    installed = run([*pip, "--no-deps", "--no-build-isolation", str(source)], tmp_path)
    assert installed.returncode == 0, installed.stderr
    shutil.rmtree(source)  # the install must not need its sources any more
    materialize_example(example_repo)  # pins checked
    where = tmp_path / "elsewhere"
    where.mkdir()
    found = run([str(python), "-c", "import pipeline; print(pipeline.__file__)"], where)
    assert found.stdout.startswith(site.stdout.strip() + "/pipeline/"), found.stdout + found.stderr
    validated = run([str(venv / "bin" / "factory"), "validate", "--repo", str(example_repo)], where)
    assert (validated.returncode, validated.stderr) == (0, "")
    assert validated.stdout == "worktree: 8 modules and 4 variants are valid\n"
    broken = example_repo / "factory.yaml"
    broken.write_text(broken.read_text().replace("dist: .fl42", "dist: fl42"))
    refused = run([str(venv / "bin" / "factory"), "validate", "--repo", str(example_repo)], where)
    assert refused.returncode == 2
    assert "factory.yaml:12:7: error[schema-pattern]: $.dist:" in refused.stderr
