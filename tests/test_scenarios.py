"""The days of SCENARIOS.md, end to end on the embedded default, with every real tool.

Security backport day: the bot finds openssl's CVE backport and opens one security merge
request; it is merged; compose rebuilds exactly what the MR announced; the release replaces
the vulnerable artifacts; `why` then finds nothing current built from the old commit and the
Atomic Host's lineage names the fixed one.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.plugins import composers
from pipeline.records.lineage import Lineage
from tests.conftest import materialize_example
from tests.registry import Registry
from tests.registry import start as start_registry

VULNERABLE = "795545287474bedd5e207f70c50a64a10fc7632e"
FIXED = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"
RELEASED = ("repo:Server", "ostree:AtomicHost/host", "container:Cloud/httpd")


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out


def release_latest(
    capsys: pytest.CaptureFixture[str], repo: Path, releases: Path, key: tuple[Path, str], registry: Registry
) -> None:
    """Release the latest good of RELEASED, signed; the container to the test's registry."""
    latest = Lineage(repo).latest()
    for node in RELEASED:
        to = releases / node.replace(":", "-").replace("/", "-")
        code, _ = factory(
            capsys, "release", latest[node], "--repo", str(repo), "--to", str(to),
            "--gnupghome", str(key[0]), "--key", key[1], "--registry", f"{registry.address}/fl",
        )  # fmt: skip
        assert code == 0


@pytest.fixture
def signing_key(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
         "--quick-generate-key", "Scenario <scenario@example.invalid>", "ed25519", "sign", "never"],
        check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--list-secret-keys", "--with-colons"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
    yield home, fingerprint
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    running = start_registry(tmp_path / "registry")
    yield running
    running.stop()


def test_security_backport_day(
    example_repo: Path,
    tmp_path: Path,
    signing_key: tuple[Path, str],
    registry: Registry,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo, releases = example_repo, tmp_path / "releases"
    materialize_example(repo)
    assert factory(capsys, "compose", "--repo", str(repo), "--json")[0] == 0
    release_latest(capsys, repo, releases, signing_key, registry)

    # The bot's pass: one security MR for openssl, first, announcing the rebuild.
    code, out = factory(capsys, "bot", "reconcile", "--repo", str(repo), "--json")
    assert code == 0
    actions = json.loads(out)["actions"]
    assert "CVE-2026-1234" in actions[0]["title"] and "security" in actions[0]["labels"]
    code, out = factory(capsys, "mr", "show", "1", "--repo", str(repo))
    announced = set(re.findall(r"^\| \d+ \| `([^`]+)` \|", out, re.MULTILINE))
    assert {"build:openssl@9d0324eb", "module:base-runtime:f42", "iso:AtomicHost/installer"} <= announced

    # A release engineer merges it; the pipeline composes exactly what was announced.
    assert factory(capsys, "mr", "merge", "1", "--repo", str(repo))[0] == 0
    code, out = factory(capsys, "compose", "--repo", str(repo), "--since", "HEAD~1", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["status"] == "FINISHED"
    composed = {n["node"] for n in result["nodes"] if n["status"] == "COMPOSED"}
    kinds = set(composers())
    # All that was announced but the Cloud base image: openssl is not in its package set, so
    # its key did not change and it keeps its compose (the key decides, the plan announces).
    assert composed == {n for n in announced if n.split(":")[0] in kinds} - {"container:Cloud/base"}
    assert {n["node"]: n["status"] for n in result["nodes"]}["container:Cloud/base"] == "SKIPPED"
    release_latest(capsys, repo, releases, signing_key, registry)

    # Nothing current is built from the vulnerable commit any more but that base image (which
    # does not hold openssl) and the httpd image layered on it (which holds the fixed one):
    # lineage is kept by compose, and the base image was made from the repo compose that
    # shipped the vulnerable openssl. `why` does not follow package sets (yet).
    code, out = factory(capsys, "why", f"openssl@{VULNERABLE}", "--repo", str(repo), "--json")
    old = json.loads(out)
    current = {r["node"] for r in old if r["latest_good"] or r["released"]}
    assert current == {"container:Cloud/base", "container:Cloud/httpd"}
    # ...and the Atomic Host's lineage names the fixed one.
    host = Lineage(repo).latest()["ostree:AtomicHost/host"]
    code, out = factory(capsys, "lineage", host, "--tree", "--json", "--repo", str(repo))
    pins = {(c, ref) for record in json.loads(out) for c, ref in record["pins"]}
    assert ("openssl", FIXED) in pins and ("openssl", VULNERABLE) not in pins


MINIMAL = b"""\
# A new edition made of existing modules: base-runtime only, a repo and a container.
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
  - kind: container
    name: base
    options:
      packages: [filesystem, setup, bash, coreutils]
      cmd: [/bin/bash]
"""


def test_putting_an_edition_back_together_rebuilds_no_module(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = example_repo
    materialize_example(repo)
    assert factory(capsys, "compose", "repo:Cloud", "--repo", str(repo), "--json")[0] == 0
    (repo / "variants" / "Minimal.yaml").write_bytes(MINIMAL)
    subprocess.run(["git", "-C", str(repo), "add", "variants/Minimal.yaml"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=RelEng", "-c", "user.email=releng@example.invalid",
         "commit", "-q", "-m", "Add the Minimal edition"],
        check=True,
    )  # fmt: skip
    code, out = factory(capsys, "compose", "--since", "HEAD~1", "--repo", str(repo), "--json")
    assert code == 0
    nodes = {n["node"]: n["status"] for n in json.loads(out)["nodes"]}
    assert {n for n, status in nodes.items() if status == "COMPOSED"} == {
        "repo:Minimal",
        "container:Minimal/base",
    }
    assert all(nodes[n] == "SKIPPED" for n in nodes if n.startswith(("build:", "module:")))
