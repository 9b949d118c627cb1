"""`factory branch-release`: release 43 from 42 on the example, composed with the real tools; and
the same branching of dist-git and definitions on GitLab, through python-gitlab against the
loopback GitLab."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from pipeline import cli
from pipeline.bot import branching
from pipeline.bot.forge_choice import DistGitBranches
from pipeline.bot.forge_gitlab import gitlab_forge
from pipeline.core.config import ForgeConfig, ForgeKind, GitLabConfig
from pipeline.records.lineage import Lineage
from pipeline.workspace import Workspace
from tests.conftest import commit_tree, materialize_example
from tests.gitlab_server import GitLabServer

TOKEN = "glpat-branching-Secret"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out


def refs(repo: Path, prefix: str) -> dict[str, str]:
    listing = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)", prefix],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return dict(line.split() for line in listing.splitlines())


def test_release_43_composes_as_fl_43_and_leaves_42_where_it_was(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(example_repo)
    heads = materialize_example(example_repo)
    distgit = example_repo / ".factory" / "distgit"
    code, out = run(capsys, "compose", "--repo", repo, "--json")
    assert code == 0 and json.loads(out)["status"] == "FINISHED"
    latest_42 = refs(example_repo, "refs/composes/latest/42/")
    assert len(latest_42) == 42
    before = str(pygit2.Repository(repo).head.target)

    code, out = run(capsys, "branch-release", "43", "--repo", repo, "--json")
    assert code == 0
    done = json.loads(out)
    assert (done["action"], done["old"], done["new"], done["release_branch"]) == (
        "opened",
        "42",
        "43",
        "release/42",
    )
    # Every component has its f43 branch, at the head of f42.
    assert len(done["distgit"]) == 24 and all(b["created"] for b in done["distgit"])
    for component, branches in heads.items():
        git = pygit2.Repository(str(distgit / f"{component}.git"))
        assert str(git.branches.local["f43"].target) == branches["f42"]
    assert str(pygit2.Repository(repo).branches.local["release/42"].target) == before
    assert done["streams"] == [
        {"module": "base-runtime:f42", "stream": "f43", "path": "modules/base-runtime/f43.yaml"},
        {"module": "installer:f42", "stream": "f43", "path": "modules/installer/f43.yaml"},
    ]
    # Run again: nothing is made twice.
    code, out = run(capsys, "branch-release", "43", "--repo", repo, "--json")
    again = json.loads(out)
    assert (again["action"], again["merge_request"]) == ("unchanged", "1")
    assert not any(b["created"] for b in again["distgit"]) and not again["release_branch_created"]

    assert run(capsys, "mr", "merge", "1", "--repo", repo)[0] == 0
    assert run(capsys, "validate", "--repo", repo)[0] == 0
    defs = Workspace.open(example_repo).load("HEAD")
    assert (defs.config.release.version, defs.config.dist) == ("43", ".fl43")
    assert "base-runtime:f43" in defs.modules and "base-runtime:f42" not in defs.modules
    openssl = next(p for p in defs.modules["base-runtime:f43"].components if p.component == "openssl")
    assert (openssl.branch, openssl.ref) == ("f43", heads["openssl"]["f42"])  # the CVE fix, at the head

    # A compose of everything: 43's composes, and 42's latest good untouched.
    code, out = run(capsys, "compose", "--repo", repo, "--json")
    composed = json.loads(out)
    assert code == 0 and composed["status"] == "FINISHED"
    # A build made elsewhere is the same bytes in 43 (no %dist of ours): its 42 compose serves.
    binary = [n for n in composed["nodes"] if n["node"].startswith("binary:")]
    assert [(n["status"], n["compose_id"][:6]) for n in binary] == [("SKIPPED", "FL-42-")]
    ours = [n for n in composed["nodes"] if n not in binary]
    assert {n["status"] for n in ours} == {"COMPOSED"}
    assert all(n["compose_id"].startswith("FL-43-") for n in ours)
    assert refs(example_repo, "refs/composes/latest/42/") == latest_42
    assert len(refs(example_repo, "refs/composes/latest/43/")) == 42
    assert Lineage(example_repo).latest("repo:Server")["repo:Server"].startswith("FL-43-Server-")
    assert Lineage(example_repo, "42").latest("repo:Server")["repo:Server"].startswith("FL-42-Server-")

    # release/42 keeps composing 42: its latest good is all there, so nothing composes again.
    pygit2.Repository(repo).checkout("refs/heads/release/42")
    code, out = run(capsys, "compose", "--repo", repo, "--json")
    assert {(n["status"], n["compose_id"][:6]) for n in json.loads(out)["nodes"]} == {("SKIPPED", "FL-42-")}
    code, out = run(capsys, "latest", "repo:Server", "--repo", repo, "--json")
    assert json.loads(out)["repo:Server"].startswith("FL-42-")
    assert refs(example_repo, "refs/composes/latest/42/") == latest_42


def test_branching_from_another_release_or_to_itself_is_refused(
    example_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["branch-release", "43", "--from", "41", "--repo", str(example_repo)])
    assert code == 2 and "error[wrong-release]" in capsys.readouterr().err
    code, out = run(capsys, "branch-release", "42", "--repo", str(example_repo))
    assert (code, out.strip()) == (0, "nothing to do: master composes release 42 already")
    code = cli.main(["branch-release", "4 3", "--repo", str(example_repo)])
    assert code == 2 and "error[bad-release]" in capsys.readouterr().err


# -- on GitLab ------------------------------------------------------------------------------------------


MODULE = """# The base of a tiny distribution
document: factory-module
version: 1
name: base
stream: "f42"
summary: Base
description: The base.
license: MIT
eol: 2027-12-31
components:
  rpms:
    bash:
      ref: {bash}
      branch: f42
    zsh:
      ref: {zsh}
      branch: rawhide
"""

VARIANT = """document: factory-variant
version: 1
uid: Tiny
name: Tiny
release: "42"
eol: 2027-06-30
arches: [x86_64]
modules:
  - module: base:f42
outputs:
  - kind: repo
    name: os
"""


@pytest.fixture
def gitlab() -> Iterator[GitLabServer]:
    with GitLabServer(token=TOKEN, project="dist/tiny", default_branch="main") as server:
        for component in ("bash", "zsh"):
            project = server.add_project(f"rpms/{component}", "f42", {f"{component}.spec": "Name: x\n"})
            project.branches["rawhide"] = project.branches["f42"]
        yield server


def test_branch_release_on_gitlab(tmp_path: Path, gitlab: GitLabServer) -> None:
    heads = {c: gitlab.project(f"rpms/{c}").branches["f42"] for c in ("bash", "zsh")}
    tree = {
        "factory.yaml": (
            "document: factory-config\nversion: 1\n"
            'release: {name: Tiny Linux, short: TL, version: "42"}\ndist: .tl42\n'
            f"distgit: {{url: '{gitlab.url}/rpms/{{component}}.git'}}\noutput: {{dir: .factory/output}}\n"
            f"forge: {{kind: gitlab, gitlab: {{url: '{gitlab.url}', project: dist/tiny}}}}\n"
        ),
        "modules/base/f42.yaml": MODULE.format(**heads),
        "variants/Tiny.yaml": VARIANT,
    }
    commit_tree(tmp_path, {p: t.encode() for p, t in tree.items()}, "Tiny definitions\n")
    project = gitlab.project("dist/tiny")
    project.trees[project.branches["main"]] = dict(tree)
    git = pygit2.Repository(str(tmp_path))
    git.branches.local.create("main", git.head.peel(pygit2.Commit))
    ws = Workspace.open(tmp_path)
    config = ForgeConfig(ForgeKind.GITLAB, GitLabConfig(gitlab.url, "dist/tiny"))
    forge = gitlab_forge(gitlab.url, "dist/tiny", TOKEN, sleep=lambda _: None)
    distgit = DistGitBranches(ws, config, {"FACTORY_GITLAB_TOKEN": TOKEN})

    done = branching.branch_release(ws, forge, distgit, target_branch="main", new="43")
    assert done is not None and done.action == "opened"
    # dist-git: f43 of bash at f42's head; zsh follows rawhide, which is no release's branch.
    assert gitlab.project("rpms/bash").branches["f43"] == heads["bash"]
    assert "f43" not in gitlab.project("rpms/zsh").branches
    assert project.branches["release/42"] == project.branches["main"]
    files = gitlab.files("factory/branch/43", "dist/tiny")
    assert sorted(files) == ["factory.yaml", "modules/base/f43.yaml", "variants/Tiny.yaml"]
    assert 'version: "43"' in files["factory.yaml"] and "dist: .tl43" in files["factory.yaml"]
    assert 'stream: "f43"' in files["modules/base/f43.yaml"]
    assert "      branch: f43\n" in files["modules/base/f43.yaml"]
    assert "      branch: rawhide\n" in files["modules/base/f43.yaml"]
    assert (
        "  - module: base:f43\n" in files["variants/Tiny.yaml"]
        and 'release: "43"' in files["variants/Tiny.yaml"]
    )
    # Again: the branches are there, the merge request is the same.
    posts = gitlab.count("POST", r"/repository/branches$")
    again = branching.branch_release(ws, forge, distgit, target_branch="main", new="43")
    assert again is not None and again.action == "unchanged"
    assert gitlab.count("POST", r"/repository/branches$") == posts
    assert gitlab.count("POST", r"/merge_requests$") == 1
    assert all(r.headers.get("PRIVATE-TOKEN") == TOKEN for r in gitlab.requests)


def test_dist_git_elsewhere_is_refused_before_anything_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    heads = {"bash": "a" * 40, "zsh": "b" * 40}
    tree = {
        "factory.yaml": (
            "document: factory-config\nversion: 1\n"
            'release: {name: Tiny Linux, short: TL, version: "42"}\ndist: .tl42\n'
            "distgit: {url: 'https://src.example.invalid/rpms/{component}.git'}\noutput: {dir: .factory/output}\n"
        ),
        "modules/base/f42.yaml": MODULE.format(**heads),
        "variants/Tiny.yaml": VARIANT,
    }
    commit_tree(tmp_path, {p: t.encode() for p, t in tree.items()}, "Tiny definitions\n")
    code = cli.main(["branch-release", "43", "--repo", str(tmp_path)])
    assert code == 2
    assert (
        "error[remote-distgit]: cannot branch https://src.example.invalid/rpms/bash.git"
        in capsys.readouterr().err
    )
    git = pygit2.Repository(str(tmp_path))
    assert sorted(git.branches.local) == ["master"]  # no release/42, no merge request branch
    assert (
        subprocess.run(
            ["git", "for-each-ref", "refs/factory/"], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout
        == ""
    )
