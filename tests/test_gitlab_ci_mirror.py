"""The real `.gitlab-ci.yml`'s `mirror` job, run by gitlab-ci-local after the composes.

The example distribution with this repository's `.gitlab-ci.yml` (`tests.test_gitlab_ci_local`'s
project: every job a runner of its own, lineage through a bare remote, outputs through the
artifact store, FACTORY_STORE: the job's release fetches what it releases from there), a runner's GnuPG home named in factory.yaml's `signing:`, and the
CI/CD variables a project sets: FACTORY_MIRROR, FACTORY_RELEASES, FACTORY_MIRROR_NODES. After one
push pipeline, the mirror serves the Server repo to dnf and the Atomic Host to ostree, signatures
checked, and the publications are in the remote's `refs/notes/mirrors`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline.tools import gpg
from tests.test_gitlab_ci_local import NULL_SHA, git, make_project, pytestmark, status
from tests.test_mirror import makecache, ostree_client, ostree_pull
from tests.test_sign_release import key

__all__ = ["key", "pytestmark"]  # the session signing key; gitlab-ci-local's skip conditions


def test_the_main_pipeline_releases_and_mirrors_what_it_composed(
    tmp_path_factory: pytest.TempPathFactory, key: tuple[Path, str], tmp_path: Path
) -> None:
    home, fingerprint = key
    project = make_project(tmp_path_factory.mktemp("gitlab-mirror"), max_jobs=500)  # one pipeline
    config = project.work / "factory.yaml"
    config.write_text(config.read_text() + f"signing:\n  key: {fingerprint}\n  gnupghome: {home}\n")
    project.commit("Sign with the runner's key\n")
    mirror, releases = tmp_path / "mirror", tmp_path / "releases"
    done = project.pipeline(
        "CI_PIPELINE_SOURCE=push",
        f"CI_COMMIT_BEFORE_SHA={NULL_SHA}",
        f"FACTORY_MIRROR={mirror}",
        f"FACTORY_RELEASES={releases}",
        "FACTORY_MIRROR_NODES=repo:Server ostree:AtomicHost/host",
    )
    assert done.returncode == 0, done.stdout[-5000:]
    assert status(done.stdout, "check") == "PASS" and status(done.stdout, "mirror") == "PASS"
    assert sorted(p.name for p in mirror.iterdir()) == ["ostree-AtomicHost-host", "repo-Server"]
    # What the mirror serves, its clients read: dnf (metadata signature checked) and ostree.
    cached = makecache((mirror / "repo-Server").as_uri(), tmp_path / "dnf", repo_gpgcheck=True)
    assert cached.returncode == 0, cached.stderr
    keyring = tmp_path / "key.gpg"
    gpg.export(home, fingerprint, keyring, armor=False)
    host = ostree_client(
        tmp_path / "host", (mirror / "ostree-AtomicHost-host" / "ostree" / "repo").as_uri(), keyring
    )
    pulled = ostree_pull(host)
    assert pulled.returncode == 0, pulled.stderr
    # The job pushed its records: each publication is on its compose in refs/notes/mirrors.
    listed = git(project.remote, "notes", "--ref=refs/notes/mirrors", "list").splitlines()
    assert len(listed) == 2  # the Server compose and the Atomic Host compose
    for tag in git(project.remote, "tag", "-l", "compose/*").split():
        shown = subprocess.run(
            ["git", "notes", "--ref=refs/notes/mirrors", "show", tag], cwd=project.remote, capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        if shown.returncode == 0:
            publication = json.loads(shown.stdout)["publications"][-1]
            assert publication["mirror"].startswith(str(mirror))
