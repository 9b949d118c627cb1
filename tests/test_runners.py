"""The generated pipelines run as GitLab runners run them: every job on a fresh machine.

`factory ci generate` writes the child pipeline; its jobs run here as GitLab runs them: every job
whose `needs:` have all succeeded may start, and GitLab does not say in which order, so a job is
picked at random among them (a seeded `random.Random`: the seed is printed, and
FACTORY_TEST_RUNNER_SEED=N replays it) and up to two run at once (FACTORY_TEST_RUNNER_WORKERS;
with 1 a seed gives the same order every time). Each runs in a fresh clone of the Git remote (a
bare repository), with its own HOME and `.factory/`, given no artifacts of its needs (the
generated jobs ask for none) and only the CI/CD variables GitLab would give it, FACTORY_STORE
among them. The jobs share nothing but the remote, dist-git and the artifact store: Debian's
docker-registry on 127.0.0.1 (tests/registry.py). After the child pipeline, the parent's
`check` job runs `factory ci check` on another fresh clone.

(a) the first push of the example distribution composes every node; (b) the openssl backport
bump after it composes exactly the planned nodes, fetching the outputs of the unchanged ones it
reads from the store. The test prints what (b) fetched, and its ratio to all outputs' bytes.
The parent's jobs are `.gitlab-ci.yml`'s own `generate` and `check`.

Where jobs run: with this checkout's venv (FACTORY names its CLI, PATH is this machine's), and
again in the runner image (`make runner-image`, built once per session; skipped where it cannot
be built, i.e. not as root): its root file system unpacked, every job under chroot with an empty
environment but the job's variables, the image's PATH and its `factory` (the jobs' default), and
only the runners' directory of this machine mounted (tests/runner_image.py).

Why this test passed the first push while every generated module job had `needs: []` (issue 20):
it ran the jobs one at a time, each ready wave in name order, so `compose module:gnome:47` ran
before `compose module:gtk:3` and `compose module:installer:f42` before `compose
module:python3:3.12`, exactly the two jobs that fail on GitLab; but the remote it made held
`modules/`, `variants/` and `factory.yaml` only, no `policies/`, so the gate required no check:
GNOME's repoclosure ended in ERROR ("required module gtk:3 has no good compose and no good
builds") and GNOME became latest good all the same. The remote now holds the project's policies
and waivers, so the gate is the one GitLab's jobs meet, and a module's job needs the jobs of the
planned modules it buildrequires or requires (pipeline.core.batches).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import example
from pipeline.artifacts.store import open_store
from pipeline.records.lineage import Lineage
from tests import registry as oci_registry
from tests import runner_image as images
from tests.conftest import ROOT, example_upstream
from tests.gitlab_server import GitLabServer

NULL_SHA = "0" * 40
BUMPED = "modules/base-runtime/f42.yaml"
OLD_OPENSSL = "795545287474bedd5e207f70c50a64a10fc7632e"
CVE_FIX = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"  # in the example dist-git (tests/test_ci_generate.py)
FETCHED = re.compile(r"store: fetched (\d+) files \((\d+) bytes\)")
COMPOSED = re.compile(r"^(?:FINISHED|FINISHED_INCOMPLETE|DOOMED): (\d+) composed", re.MULTILINE)
OSTREE_JOB = "compose ostree:AtomicHost/host"
VENV_FACTORY = str(Path(sys.executable).parent / "factory")
SEED_VARIABLE = "FACTORY_TEST_RUNNER_SEED"  # replays an order of jobs (printed by every run)
WORKERS_VARIABLE = "FACTORY_TEST_RUNNER_WORKERS"  # jobs at once (default 2)


def git(cwd: Path, *argv: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    done = subprocess.run(["git", *argv], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


@dataclass
class Ran:
    """One pipeline run: the jobs in the order they ran, and what each fetched from the store."""

    jobs: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # the child pipeline's jobs, as they started
    fetched_files: int = 0
    fetched_bytes: int = 0
    per_job: dict[str, int] = field(default_factory=dict)
    composed: int = 0  # nodes the compose jobs composed (not skipped)
    clones: dict[str, Path] = field(default_factory=dict)
    output: dict[str, str] = field(default_factory=dict)


@dataclass
class Runners:
    """The shared world: the remote, dist-git, the store; and a counter of fresh machines."""

    top: Path
    remote: Path
    work: Path
    store: str
    machines: int = 0
    seed: int = field(default_factory=lambda: runner_seed())
    workers: int = field(default_factory=lambda: int(os.environ.get(WORKERS_VARIABLE, "2")))
    root: Path | None = None  # the runner image's root file system: jobs run in it (chroot)

    def machine(self, name: str) -> tuple[Path, dict[str, str]]:
        """A fresh runner: a clone of the remote at main, its own HOME; the job's base variables."""
        self.machines += 1
        where = self.top / "runners" / f"{self.machines:03d}-{re.sub(r'[^A-Za-z0-9]+', '-', name)}"
        home = where / "home"
        home.mkdir(parents=True)
        git(self.top, "clone", "-q", str(self.remote), str(where / "build"))
        env = {
            # in the image: its PATH, and its `factory` (the jobs' default); else this venv's
            **({"PATH": os.environ["PATH"], "FACTORY": VENV_FACTORY} if self.root is None else {}),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "FACTORY_STORE": self.store,
            "CI": "true",
            "GIT_AUTHOR_NAME": "runner",
            "GIT_AUTHOR_EMAIL": "runner@example.invalid",
            "GIT_COMMITTER_NAME": "runner",
            "GIT_COMMITTER_EMAIL": "runner@example.invalid",
        }
        return where / "build", env

    def push(self, before: str) -> Ran:
        """The pipeline of a push: .gitlab-ci.yml's `generate`, the child pipeline job by job,
        then its `check`."""
        head = git(self.work, "rev-parse", "HEAD").strip()
        ran = Ran()
        variables = {"CI_COMMIT_BEFORE_SHA": before, "CI_COMMIT_SHA": head, "CI_PIPELINE_SOURCE": "push"}
        self.run_parent_job("generate", variables, ran)
        child = yaml.safe_load((ran.clones["generate"] / "pipelines" / "child.yml").read_text())
        self.run_jobs(resolved_jobs(child), head, ran)
        self.run_parent_job("check", variables, ran)
        return ran

    def run_parent_job(self, name: str, variables: Mapping[str, str], ran: Ran) -> None:
        """A job of .gitlab-ci.yml, on a fresh runner."""
        job = gitlab_job(name)
        clone, env = self.machine(name)
        script = [*job["before_script"], *job["script"]]
        run_script(clone, env, script, {**variables, "CI_JOB_NAME": name}, name, ran, self.root)

    def run_jobs(self, jobs: Mapping[str, Mapping[str, Any]], head: str, ran: Ran) -> None:
        """Run a pipeline's jobs as GitLab does: any job whose needs all succeeded may start (one
        picked at random among them), `workers` at a time, each on a fresh runner."""
        rng = random.Random(self.seed)
        print(
            f"\nrunner order: seed {self.seed} ({SEED_VARIABLE}={self.seed} replays it), {self.workers} at once"
        )
        pending = dict(jobs)
        done: set[str] = set()
        running: dict[Future[subprocess.CompletedProcess[str]], tuple[str, Path]] = {}
        with ThreadPoolExecutor(self.workers) as pool:
            while pending or running:
                ready = sorted(n for n, j in pending.items() if all(d["job"] in done for d in j["needs"]))
                while ready and len(running) < self.workers:
                    name = ready.pop(rng.randrange(len(ready)))
                    job = pending.pop(name)
                    clone, env = self.machine(name)
                    variables = {**job.get("variables", {}), "CI_COMMIT_SHA": head, "CI_JOB_NAME": name}
                    script = [*job.get("before_script", []), *job["script"]]
                    running[pool.submit(execute, clone, env, script, variables, self.root)] = (name, clone)
                    ran.started.append(name)
                assert running, "the needs of the generated jobs form a cycle"
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: running[f][0]):
                    name, clone = running.pop(future)
                    why = f"seed {self.seed}, jobs started in this order: {ran.started}"
                    record(future.result(), name, clone, ran, why)
                    done.add(name)


def runner_seed() -> int:
    """The seed of the order jobs start in: FACTORY_TEST_RUNNER_SEED, else a new one."""
    given = os.environ.get(SEED_VARIABLE)
    return int(given) if given else random.SystemRandom().randrange(2**32)


def execute(
    clone: Path,
    env: Mapping[str, str],
    script: list[str],
    variables: Mapping[str, Any],
    root: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a job's script lines as GitLab's shell does (`set -eo pipefail`): here, or in the
    runner image's root (chroot, nothing of this machine but the runners' directory)."""
    text = "set -eo pipefail\n" + "\n".join(script)
    environment = {**env, **{k: str(v) for k, v in variables.items()}}
    if root is not None:
        top = clone.parent.parent.parent  # TOP/runners/NNN-name/build
        return images.in_root(root, text, cwd=str(clone), env=environment, binds=[top])
    return subprocess.run(
        ["bash", "-c", text],
        cwd=clone,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def run_script(
    clone: Path,
    env: Mapping[str, str],
    script: list[str],
    variables: Mapping[str, Any],
    name: str,
    ran: Ran,
    root: Path | None = None,
) -> None:
    """Run a job's script lines; fail the test if it fails."""
    record(execute(clone, env, script, variables, root), name, clone, ran)


def record(done: subprocess.CompletedProcess[str], name: str, clone: Path, ran: Ran, why: str = "") -> None:
    """Note what a job did; fail the test if it failed."""
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"job {name!r} failed ({why}):\n{output[-6000:]}"
    ran.jobs.append(name)
    ran.output[name] = output
    ran.clones[name] = clone
    ran.composed += sum(int(n) for n in COMPOSED.findall(output))
    for files, size in FETCHED.findall(output):
        ran.fetched_files += int(files)
        ran.fetched_bytes += int(size)
        ran.per_job[name] = ran.per_job.get(name, 0) + int(size)


def resolved_jobs(pipeline: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The jobs of a generated pipeline with their templates applied (`extends`); a file of
    several parts is not expected for the example."""
    templates = {k: v for k, v in pipeline.items() if k.startswith(".")}
    jobs = {
        k: v
        for k, v in pipeline.items()
        if not k.startswith(".") and k not in ("stages", "default", "workflow", "variables")
    }
    assert all("trigger" not in j for j in jobs.values()), "one pipeline expected for the example"

    def resolved(job: Mapping[str, Any]) -> dict[str, Any]:
        base = job.get("extends")
        merged = resolved(templates[base]) if isinstance(base, str) else {}
        return {**merged, **{k: v for k, v in job.items() if k != "extends"}}

    found = {name: resolved(job) for name, job in jobs.items()}
    for name, job in found.items():  # generated jobs always say what they need, and download nothing
        assert "needs" in job and all(d.get("artifacts") is False for d in job["needs"]), name
    return found


def made_at(runners: Runners, head: str) -> int:
    """How many nodes' latest good composes were made from the definitions commit head."""
    clone, env = runners.machine("count-made")
    subprocess.run(
        [VENV_FACTORY, "lineage", "pull", "--remote", "origin"],
        cwd=clone,
        env=env,
        check=True,
        capture_output=True,
    )
    lineage = Lineage(clone, "42")
    try:
        return sum(lineage.get(cid).commit == head for cid in lineage.latest().values())
    finally:
        lineage.close()


def ostree_log(clone: Path) -> list[str]:
    """The commits of the AtomicHost host ref in a runner's OSTree repository, newest first."""
    repo = clone / ".factory" / "output" / "ostree" / "AtomicHost" / "repo"
    refs = subprocess.run(["ostree", "refs", f"--repo={repo}"], capture_output=True, text=True, check=True)
    (ref,) = refs.stdout.split()
    log = subprocess.run(["ostree", "log", f"--repo={repo}", ref], capture_output=True, text=True, check=True)
    return [line.split()[1] for line in log.stdout.splitlines() if line.startswith("commit ")]


def all_output_bytes(runners: Runners) -> tuple[int, int]:
    """Files and bytes of every node's latest good compose (read from a fresh clone's lineage)."""
    clone, env = runners.machine("count")
    subprocess.run(
        [VENV_FACTORY, "lineage", "pull", "--remote", "origin"],
        cwd=clone,
        env=env,
        check=True,
        capture_output=True,
    )
    lineage = Lineage(clone, "42")
    try:
        records = [lineage.get(cid) for cid in lineage.latest().values()]
    finally:
        lineage.close()
    store = open_store(runners.store, root=clone, env={})
    for record in records:  # every latest good names its manifest, and the store has that one
        stored = store.manifest(record.compose_id)
        assert stored is not None and stored.digest() == record.manifest, record.compose_id
        assert stored.outputs() == record.outputs
    return sum(len(r.outputs) for r in records), sum(o.size for r in records for o in r.outputs)


def make_runners(top: Path, store: str) -> Runners:
    """The example distribution with a bare remote and dist-git beside it, pushed once."""
    remote, work, distgit = top / "remote.git", top / "work", top / "distgit"
    git(top, "init", "-q", "--bare", "-b", "main", str(remote))
    example.materialize(ROOT / "examples" / "distgit", distgit)
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for folder in ("modules", "variants", "policies", "waivers"):  # the gate is the project's
        shutil.copytree(ROOT / folder, work / folder)
    upstream = example_upstream(top / "upstream")  # the source, where every runner reads it
    config = (ROOT / "factory.yaml").read_text().replace(".factory/distgit/", f"{distgit}/")
    config = config.replace(".factory/upstream/", f"{upstream}/")
    (work / "factory.yaml").write_text(config)
    (work / ".gitignore").write_text(".factory/\npipelines/\n")
    git(work, "remote", "add", "origin", str(remote))
    commit(work, "The example distribution\n")
    return Runners(top, remote, work, store)


def commit(work: Path, message: str) -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", "origin", "main")
    return git(work, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[oci_registry.Registry]:
    running = oci_registry.start(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


def test_fresh_runners_sharing_only_git_distgit_and_a_registry_pass_the_first_push_and_the_bump(
    tmp_path: Path, registry: oci_registry.Registry
) -> None:
    first_push_then_bump(make_runners(tmp_path, f"oci://{registry.address}/factory-test"))


@pytest.mark.skipif(
    not os.environ.get("FACTORY_TEST_FILE_STORE_RUNNERS"),
    reason="the same on a file:// store doubles this module's minutes; FACTORY_TEST_FILE_STORE_RUNNERS=1 runs it",
)
def test_fresh_runners_sharing_only_git_distgit_and_a_directory_pass_the_first_push_and_the_bump(
    tmp_path: Path,
) -> None:
    first_push_then_bump(make_runners(tmp_path, f"file://{tmp_path / 'store'}"))


def test_the_same_with_every_job_in_the_runner_image(
    tmp_path: Path, registry: oci_registry.Registry, runner_image: images.RunnerImage
) -> None:
    root = image_root(runner_image, tmp_path / "image")
    (tmp_path / "world").mkdir()
    runners = make_runners(tmp_path / "world", f"oci://{registry.address}/factory-image-test")
    first_push_then_bump(replace(runners, root=root))


def image_root(image: images.RunnerImage, where: Path) -> Path:
    """The image's root file system, where `factory` is the image's own."""
    root = images.unpack(image, where / "rootfs")
    done = images.in_root(root, "command -v factory && factory --version")
    assert done.returncode == 0 and done.stdout.startswith("/usr/local/bin/factory\n"), done.stderr
    return root


def first_push_then_bump(runners: Runners) -> None:
    """(a) the first push, then (b) the openssl bump; print what (b) fetched."""
    first = runners.push(NULL_SHA)
    assert "42 planned nodes, all composed" in first.output["check"]
    assert first.composed == 42  # each node composed once, by the job of its batch
    assert first.fetched_files > 0  # the jobs after the first read their inputs from the store
    first_commits = ostree_log(first.clones[OSTREE_JOB])
    assert len(first_commits) == 1

    path = runners.work / BUMPED
    text = path.read_text()
    assert OLD_OPENSSL in text
    path.write_text(text.replace(OLD_OPENSSL, CVE_FIX))
    before = git(runners.work, "rev-parse", "HEAD").strip()
    bump_head = commit(runners.work, "openssl: the CVE backport\n")
    bump = runners.push(before)
    planned = re.search(r"(\d+) planned nodes, all composed", bump.output["check"])
    assert planned is not None, bump.output["check"]
    # Each node composed once, only planned ones: the planned nodes whose compose key changed
    # (an image whose package set holds no openssl keeps its key: container:Cloud/base).
    assert bump.composed == made_at(runners, bump_head) <= int(planned[1]) == 11
    assert bump.composed >= 10
    # OSTree history continued on a fresh runner: the new commit's parent is the first push's
    assert ostree_log(bump.clones[OSTREE_JOB])[1:] == first_commits
    files, size = all_output_bytes(runners)
    ratio = bump.fetched_bytes / size
    print(
        f"\nbump pipeline: {len(bump.jobs) - 2} compose jobs for {planned[1]} planned nodes; fetched "
        f"{bump.fetched_files} files, {bump.fetched_bytes} bytes from the store; all outputs: "
        f"{files} files, {size} bytes; ratio {ratio:.3f}"
    )
    for name, fetched in sorted(bump.per_job.items()):
        print(f"  {name}: fetched {fetched} bytes")
    assert bump.fetched_files > 0


def gitlab_job(name: str) -> dict[str, Any]:
    """A job of this repository's .gitlab-ci.yml with its templates applied (`extends`)."""
    config = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    job = dict(config[name])
    for base in job.pop("extends", []):
        job = {**config[base], **job}
    return job


def test_the_scheduled_reconcile_job_keeps_the_branch_history_it_observes_across_runners(
    tmp_path: Path,
) -> None:
    runners = make_runners(tmp_path, f"file://{tmp_path / 'store'}")
    files = {
        str(p.relative_to(runners.work)): p.read_text()
        for p in sorted(runners.work.rglob("*.yaml"))
        if ".git" not in p.parts
    }
    with GitLabServer(token="glpat-loopback-secret", project="group/distribution", files=files) as server:
        config = runners.work / "factory.yaml"
        forge = f"forge:\n  kind: gitlab\n  gitlab:\n    url: {server.url}\n    project: group/distribution\n"
        config.write_text(config.read_text().replace("forge:\n  kind: local\n", forge))
        commit(runners.work, "The bot works on GitLab\n")
        job = gitlab_job("reconcile")
        script = [*job["before_script"], *job["script"]]
        variables = {"CI_PIPELINE_SOURCE": "schedule", "FACTORY_GITLAB_TOKEN": server.token}

        clone, env = runners.machine("reconcile")
        run_script(clone, env, script, variables, "reconcile", Ran())
        first = git(runners.remote, "rev-parse", "refs/history/openssl/f42").strip()
        assert git(runners.remote, "rev-list", "--count", first).strip() == "1"

        # openssl's f42 branch moves; the next pass, on another fresh runner, continues the history
        distgit = tmp_path / "distgit"
        work = tmp_path / "openssl"
        git(tmp_path, "clone", "-q", "-b", "f42", str(distgit / "openssl.git"), str(work))
        (work / "NEWS").write_text("another fix\n")
        git(work, "add", "NEWS")
        git(work, "commit", "-q", "-m", "Another fix\n")
        git(work, "push", "-q", "origin", "f42")
        clone, env = runners.machine("reconcile")
        run_script(clone, env, script, variables, "reconcile", Ran())
        second = git(runners.remote, "rev-parse", "refs/history/openssl/f42").strip()
        assert git(runners.remote, "rev-list", "--count", second).strip() == "2"
        assert git(runners.remote, "rev-parse", f"{second}^").strip() == first
