"""The real `.gitlab-ci.yml` and a generated child pipeline, run by gitlab-ci-local.

A definitions repository (the example distribution, this repository's `.gitlab-ci.yml`) with a
bare Git repository on disk as `origin`; every job runs with the shell executor in its own copy
of the repository (`--shell-isolation`: one runner each), so lineage reaches the others only
through `factory lineage push|pull`. FACTORY (the venv's CLI) is a project variable in
`.gitlab-ci-local-variables.yml`, as it would be in GitLab's CI/CD settings.

gitlab-ci-local 4.65.1 is installed by `make test` into .factory/npm (GITLAB_CI_LOCAL overrides).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline import example
from tests.conftest import ROOT, example_upstream

TOOL = Path(
    os.environ.get("GITLAB_CI_LOCAL", ROOT / ".factory" / "npm" / "node_modules" / ".bin" / "gitlab-ci-local")
)
NULL_SHA = "0" * 40
NODE_MAJOR = 18  # gitlab-ci-local 4.65.1's engines: node >= 18


def _node_major() -> int:
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    return int(out.strip().lstrip("v").split(".")[0])


pytestmark = [
    pytest.mark.skipif(
        not TOOL.exists(), reason=f"gitlab-ci-local is not installed at {TOOL}: `make test` installs it"
    ),
    pytest.mark.skipif(
        _node_major() < NODE_MAJOR, reason=f"gitlab-ci-local 4.65.1 needs Node.js >= {NODE_MAJOR}"
    ),
    pytest.mark.skipif(shutil.which("rsync") is None, reason="gitlab-ci-local needs rsync"),
]


def git(cwd: Path, *argv: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    done = subprocess.run(["git", *argv], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


@dataclass
class Project:
    work: Path
    remote: Path
    distgit: Path

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD").strip()

    def pipeline(self, *variables: str) -> subprocess.CompletedProcess[str]:
        shutil.rmtree(self.work / ".gitlab-ci-local", ignore_errors=True)
        argv = [
            str(TOOL),
            "--force-shell-executor",
            "--shell-isolation",
            "--no-color",
        ]
        for variable in variables:
            argv += ["--variable", variable]
        return subprocess.run(argv, cwd=self.work, capture_output=True, text=True, timeout=300, check=False)

    def remote_tags(self) -> list[str]:
        return git(self.remote, "tag", "-l", "compose/*").split()


def make_project(top: Path, *, max_jobs: int | None = None) -> Project:
    """The example distribution with this repository's .gitlab-ci.yml, pushed to a bare remote.

    With `max_jobs`, `ci generate` splits the plan into pipelines of that many jobs. Every job
    shares composed outputs through the artifact store, a `file://` directory outside the copies
    (the project variable FACTORY_STORE, as runners would share a registry).
    """
    remote, work, distgit = top / "remote.git", top / "work", top / "distgit"
    git(top, "init", "-q", "--bare", "-b", "main", str(remote))
    example.materialize(ROOT / "examples" / "distgit", distgit)
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for folder in ("modules", "variants", "policies", "waivers"):  # the gate is the project's
        shutil.copytree(ROOT / folder, work / folder)
    pipeline = (ROOT / ".gitlab-ci.yml").read_text()
    upstream = example_upstream(top / "upstream")  # the source, where every runner reads it
    config = (ROOT / "factory.yaml").read_text().replace(".factory/distgit/", f"{distgit}/")
    config = config.replace(".factory/upstream/", f"{upstream}/")
    if max_jobs is not None:
        assert "--out pipelines'" in pipeline
        pipeline = pipeline.replace("--out pipelines'", f"--out pipelines --max-jobs {max_jobs}'")
    (work / ".gitlab-ci.yml").write_text(pipeline)
    (work / "factory.yaml").write_text(config)
    (work / ".gitignore").write_text(
        ".factory/\n.gitlab-ci-local/\n.gitlab-ci-local-variables.yml\npipelines/\n"
    )
    venv_factory = Path(sys.executable).parent / "factory"
    (work / ".gitlab-ci-local-variables.yml").write_text(
        f"FACTORY: {venv_factory}\nFACTORY_STORE: file://{top / 'store'}\n"
    )
    git(work, "remote", "add", "origin", str(remote))
    Project(work, remote, distgit).commit("The example distribution\n")
    return Project(work, remote, distgit)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("gitlab"))


def test_first_push_composes_everything_and_every_job_pushes_its_lineage(project: Project) -> None:
    head = git(project.work, "rev-parse", "HEAD").strip()
    done = project.pipeline("CI_PIPELINE_SOURCE=push", f"CI_COMMIT_BEFORE_SHA={NULL_SHA}")
    assert done.returncode == 0, done.stdout[-5000:]
    assert "42 planned nodes, all composed" in done.stdout
    child = (
        project.work / ".gitlab-ci-local" / "artifacts" / "generate" / "pipelines" / "child.yml"
    ).read_text()
    jobs = [line for line in child.splitlines() if line.startswith("compose ")]
    assert len(jobs) == 17  # batched: a module with its builds, each repo, each image
    assert status(done.stdout, "compose module:base-runtime:f42") == "PASS"
    tags = project.remote_tags()
    assert len(tags) == 42  # one compose per job: none composed twice, none lost
    notes = git(project.remote, "notes", "--ref=refs/notes/lineage", "list").splitlines()
    assert len(notes) == 42
    latest = git(project.remote, "for-each-ref", "--format=%(refname)", "refs/composes/latest/").split()
    assert len(latest) == 42
    for tag in tags:  # each made from the pushed commit
        assert git(project.remote, "rev-parse", f"{tag}^{{commit}}").strip() == head
    # One run: the generate job's pipeline named it (FACTORY_RUN in child.yml), and the 17 jobs
    # of the child pipeline, which has a pipeline IID of its own, composed under it.
    run = yaml.safe_load(child)["variables"]["FACTORY_RUN"]
    assert re.fullmatch(r"FL-42-\d{8}\.ci\.\d+", run)
    runs = {
        json.loads(git(project.remote, "notes", "--ref=refs/notes/lineage", "show", t))["run"] for t in tags
    }
    assert runs == {run}
    # The pages job pulled that lineage and published the overview: every node current.
    assert status(done.stdout, "pages") == "PASS"
    overview = json.loads(pages_file(project, "status.json"))
    assert overview["stamp"]["commit"] == head
    assert overview["counts"]["current"] == 42 and overview["failures"] == []


def test_merge_request_pipeline_plans_the_change(project: Project) -> None:
    base = git(project.work, "rev-parse", "HEAD").strip()
    git(project.work, "checkout", "-q", "-b", "reword-gtk")
    path = project.work / "modules" / "gtk" / "3.yaml"
    path.write_text(path.read_text().replace("summary: GTK 3 toolkit", "summary: The GTK 3 toolkit"))
    git(project.work, "commit", "-q", "-am", "Reword gtk\n")
    try:
        done = project.pipeline(
            "CI_PIPELINE_SOURCE=merge_request_event",
            f"CI_MERGE_REQUEST_DIFF_BASE_SHA={base}",
            "CI_MERGE_REQUEST_IID=7",
        )
    finally:
        git(project.work, "checkout", "-q", "main")
    assert done.returncode == 0, done.stdout[-5000:]
    artifacts = project.work / ".gitlab-ci-local" / "artifacts" / "plan"
    markdown = (artifacts / "plan.md").read_text()
    assert "module:gtk:3" in markdown and "repo:Workstation" in markdown
    assert "module:base-runtime:f42" not in markdown
    planned = {n["node"] for tier in json.loads((artifacts / "plan.json").read_text())["tiers"] for n in tier}
    assert planned == {"module:gtk:3", "repo:Workstation"}
    assert "the plan is not posted" in done.stdout  # no GitLab here: skipped, not failed
    assert status(done.stdout, "plan") == "PASS"
    assert status(done.stdout, "generate") is None and status(done.stdout, "check") is None


def test_a_failing_node_fails_the_check_though_the_trigger_job_passes(project: Project) -> None:
    before = git(project.work, "rev-parse", "HEAD").strip()
    clone = project.distgit.parent / "gnome-shell"
    git(
        project.distgit.parent,
        "clone",
        "-q",
        "-b",
        "f42",
        str(project.distgit / "gnome-shell.git"),
        str(clone),
    )
    (clone / "gnome-shell.spec").write_text("Name: gnome-shell\nthis is not a spec file\n")
    git(clone, "commit", "-q", "-am", "Break the spec\n")
    git(clone, "push", "-q", "origin", "f42")
    broken = git(clone, "rev-parse", "HEAD").strip()
    path = project.work / "modules" / "gnome" / "47.yaml"
    path.write_text(path.read_text().replace("67f39e87270214c420efa514c5cf1fff742966ad", broken))
    project.commit("Bump gnome-shell to a broken commit\n")
    done = project.pipeline("CI_PIPELINE_SOURCE=push", f"CI_COMMIT_BEFORE_SHA={before}")
    assert done.returncode != 0, done.stdout[-8000:]
    assert status(done.stdout, "compose") == "PASS"  # the trigger job: gitlab-ci-local never fails it
    assert status(done.stdout, "compose module:gnome:47") == "FAIL"  # the job of the broken build
    assert status(done.stdout, "compose repo:Workstation") is None  # its input failed
    assert status(done.stdout, "check") == "FAIL"
    assert f"build:gnome-shell@{broken[:8]}" in _line(done.stdout, "NOT COMPOSED")
    assert "3 not composed" in done.stdout  # the build, the module, the Workstation repo
    failed = [t for t in project.remote_tags() if f"gnome-shell-{broken[:8]}" in t]
    assert len(failed) == 1  # the failed compose's record was pushed too: auditable
    note = git(project.remote, "notes", "--ref=refs/notes/lineage", "show", failed[0])
    assert json.loads(note)["status"] == "FAILED"
    # The overview is published all the same, failure first, with what it blocks.
    assert status(done.stdout, "pages") == "PASS"
    overview = json.loads(pages_file(project, "status.json"))
    assert overview["failures"] == [f"build:gnome-shell@{broken[:8]}"]
    build = next(n for n in overview["nodes"] if n["node"] == f"build:gnome-shell@{broken[:8]}")
    assert build["state"] == "failed" and build["blocks"] == 2
    blocked = {n["node"] for n in overview["nodes"] if n["blocked_by"] == [build["node"]]}
    assert blocked == {"module:gnome:47", "repo:Workstation"}


def pages_file(project: Project, name: str) -> str:
    """A file of the `public` artifact the pages job left (what GitLab Pages would serve)."""
    return (project.work / ".gitlab-ci-local" / "artifacts" / "pages" / "public" / name).read_text()


def test_a_plan_split_into_pipelines_composes_everything_part_after_part(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    split = make_project(tmp_path_factory.mktemp("gitlab-split"), max_jobs=5)
    done = split.pipeline("CI_PIPELINE_SOURCE=push", f"CI_COMMIT_BEFORE_SHA={NULL_SHA}")
    assert done.returncode == 0, done.stdout[-5000:]
    assert "42 planned nodes, all composed" in done.stdout
    generated = split.work / ".gitlab-ci-local" / "artifacts" / "generate" / "pipelines"
    assert sorted(p.name for p in generated.iterdir()) == [
        "child.yml",
        *(f"part-00{i}.yml" for i in range(1, 5)),
    ]
    # the coordinator wrote the same files again and triggered every part
    assert status(done.stdout, "pipeline-files") == "PASS"
    for index in range(1, 5):
        assert status(done.stdout, f"compose part {index} of 4") == "PASS"
    again = split.work / ".gitlab-ci-local" / "artifacts" / "pipeline-files" / "pipelines"
    assert {p.name: p.read_text() for p in again.iterdir()} == {
        p.name: p.read_text() for p in generated.iterdir()
    }
    # the repos of part 3 checked that their modules (parts 1 and 2) were composed first
    assert "inputs of repo:Workstation at HEAD: 4 nodes, all composed" in done.stdout
    assert status(done.stdout, "compose repo:Workstation") == "PASS"
    assert len(split.remote_tags()) == 42


def status(stdout: str, job: str) -> str | None:
    """PASS or FAIL from gitlab-ci-local's summary line of a job; None when it did not run.

    A job of a child pipeline has the trigger jobs above it in its line: ` PASS  [compose] -> JOB`.
    """
    pattern = re.compile(rf"^ (PASS|FAIL) +(?:\[[^]]*\] -> )?{re.escape(job)}\s*$", re.MULTILINE)
    found = pattern.findall(stdout)
    return found[-1] if found else None


def _line(text: str, needle: str) -> str:
    return next((line for line in text.splitlines() if needle in line), "")


def listed_jobs(work: Path, *variables: str) -> list[str]:
    """The jobs gitlab-ci-local would run for a pipeline of the checked-out branch (`--list`)."""
    argv = [str(TOOL), "--list", "--no-color", *(a for v in variables for a in ("--variable", v))]
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=120, check=True)
    table = done.stdout[done.stdout.index("name ") :].splitlines()[1:]
    return [line.split()[0] for line in table if line.strip()]


def test_the_release_branches_compose_too(tmp_path: Path) -> None:
    """After `factory branch-release 43`, release/42 keeps composing 42 in CI: a push to it runs
    the same jobs as one to the default branch; other branches compose nothing."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    shutil.copy(ROOT / ".gitlab-ci.yml", work / ".gitlab-ci.yml")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "CI\n")
    git(work, "push", "-q", "origin", "main")
    composing = ["generate", "compose", "check", "retire"]
    assert listed_jobs(work, "CI_PIPELINE_SOURCE=push") == [*composing, "pages"]  # the site: main's
    git(work, "checkout", "-q", "-b", "release/42")
    assert listed_jobs(work, "CI_PIPELINE_SOURCE=push") == composing
    git(work, "checkout", "-q", "-b", "feature")
    assert listed_jobs(work, "CI_PIPELINE_SOURCE=push") == []
    assert listed_jobs(work, "CI_PIPELINE_SOURCE=schedule") == ["reconcile", "eol-due", "pages"]
