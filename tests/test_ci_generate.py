"""`factory ci generate`: batched child pipelines, checked against golden files, GitLab's schema
and the rules the schema cannot check."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import __version__, cli
from pipeline.core.batches import Batch, Limits, batches
from pipeline.core.definitions import load
from pipeline.core.errors import OperationFailed
from pipeline.core.graph import Graph, build
from pipeline.core.plan import Plan, plan
from pipeline.formats import gitlab_ci as ci
from pipeline.formats import gitlab_ci_limits as limits_of
from tests.conftest import ROOT, commit_tree, example_tree, materialize_example, sources
from tests.gitlab_ci_tools import schema_errors

DATA = Path(__file__).parent / "data" / "ci"
CVE_FIX = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"
OLD = "795545287474bedd5e207f70c50a64a10fc7632e"
BUMPED = "modules/base-runtime/f42.yaml"
BASE, HEAD = "1" * 40, "2" * 40  # the revisions the golden files name
NOTHING = Graph({}, {})


def graph_of(tree: dict[str, bytes]) -> Graph:
    return build(load(sources(tree)))


def bumped_tree() -> dict[str, bytes]:
    tree = example_tree()
    tree[BUMPED] = tree[BUMPED].replace(OLD.encode(), CVE_FIX.encode())
    return tree


def texts(files: Mapping[str, ci.PipelineFile]) -> dict[str, str]:
    return {name: f.text() for name, f in files.items()}


def openssl_bump() -> tuple[Plan, Graph]:
    base, head = graph_of(example_tree()), graph_of(bumped_tree())
    return plan(base, head), head


def everything(tree: dict[str, bytes] | None = None) -> tuple[Plan, Graph]:
    head = graph_of(tree or example_tree())
    return plan(NOTHING, head), head


def jobs(text: str) -> dict[str, Mapping[str, Any]]:
    return limits_of.jobs_of(yaml.safe_load(text))


# Regenerate the golden files with:
#   python -c 'from tests.test_ci_generate import *; write_golden()'
def golden_cases() -> dict[str, dict[str, str]]:
    bump, bumped = openssl_bump()
    full, head = everything()
    return {
        "openssl-bump": texts(ci.pipeline_files(bump, bumped, base=BASE, head=HEAD)),
        "example-max-jobs-5": texts(
            ci.pipeline_files(full, head, base="none", head=HEAD, limits=Limits(max_jobs=5))
        ),
    }


def write_golden() -> None:
    for case, files in golden_cases().items():
        for name, text in files.items():
            (DATA / case / name).parent.mkdir(parents=True, exist_ok=True)
            (DATA / case / name).write_text(text)


@pytest.mark.parametrize("case", ["openssl-bump", "example-max-jobs-5"])
def test_generated_files_match_the_golden_files(case: str) -> None:
    files = golden_cases()[case]
    assert sorted(files) == sorted(p.name for p in (DATA / case).iterdir())
    for name, text in files.items():
        assert text == (DATA / case / name).read_text(), name


def test_the_openssl_bump_is_one_pipeline_of_batched_jobs() -> None:
    bump, head = openssl_bump()
    files = ci.pipeline_files(bump, head, base=BASE, head=HEAD)
    assert list(files) == [ci.CHILD]
    found = jobs(files[ci.CHILD].text())
    fixed = f"build:openssl@{CVE_FIX[:8]}"
    assert "compose " + fixed not in found  # the new build composes with its module
    module = found["compose module:base-runtime:f42"]
    assert module["variables"] == {"FACTORY_NODES": "module:base-runtime:f42"}
    assert module["needs"] == [] and module["extends"] == ci.TEMPLATE
    repos = [found[f"compose repo:{v}"] for v in ("AtomicHost", "Cloud", "Server", "Workstation")]
    assert all(r["needs"] == [{"job": "compose module:base-runtime:f42", "artifacts": False}] for r in repos)
    assert len(found) == 1 + 4 + 5  # the module, every repo, every image


@pytest.mark.parametrize("max_jobs", [500, 8, 5])
@pytest.mark.parametrize("which", ["everything", "openssl-bump"])
def test_jobs_compose_every_planned_node_once_after_what_it_needs(which: str, max_jobs: int) -> None:
    planned, head = everything() if which == "everything" else openssl_bump()
    limits = Limits(max_jobs=max_jobs)
    made = {b.name: b for b in batches(planned, head, limits)}
    composed = [n for b in made.values() for n in b.nodes]
    assert sorted(composed) == sorted(n.id for n in planned.nodes)
    files = texts(ci.pipeline_files(planned, head, base="none", head=HEAD, limits=limits))
    assert limits_of.problems(files, limits, ci.CHILD) == []
    seen = {}
    for name, text in files.items():
        for job_name, job in jobs(text).items():
            if job_name.startswith(ci.JOB_PREFIX) and "trigger" not in job:
                seen[job_name] = name
                batch = made[job_name]
                builds = [n for n in batch.nodes if n not in batch.targets]
                assert job["variables"]["FACTORY_NODES"] == " ".join(batch.targets)
                if job["extends"] == ci.CHECKED and builds:  # what its check leaves out
                    assert job["variables"]["FACTORY_BUILDS"] == " ".join(builds)
                else:
                    assert "FACTORY_BUILDS" not in job["variables"]
                # needs: the batches of its planned inputs that are in its own file
                assert job["needs"] == [
                    {"job": i, "artifacts": False} for i in batch.inputs if i in jobs(text)
                ]
                mine = {i for i in batch.inputs if i in jobs(text)}
                assert (job["extends"] == ci.CHECKED) == (set(batch.inputs) != mine)
    assert sorted(seen) == sorted(made)
    # `factory compose TARGETS` makes what the targets need: within the plan, exactly the
    # batch's own nodes and those of batches it comes after
    for batch in made.values():
        done = {n for i in _before(batch.name, made) for n in made[i].nodes}
        needed = head.upstream(batch.targets) & {n.id for n in planned.nodes}
        assert needed - done == set(batch.nodes)


def _before(name: str, made: Mapping[str, Batch]) -> set[str]:
    """The batches a batch comes after, transitively."""
    found: set[str] = set()
    todo = [name]
    while todo:
        for i in made[todo.pop()].inputs:
            if i not in found:
                found.add(i)
                todo.append(i)
    return found


def test_an_empty_plan_is_one_noop_job(tmp_path: Path) -> None:
    graph = graph_of(example_tree())
    files = ci.pipeline_files(plan(graph, graph), graph, base=HEAD, head=HEAD)
    data = yaml.safe_load(files[ci.CHILD].text())
    assert list(limits_of.jobs_of(data)) == [ci.NOOP_JOB]
    assert data[ci.NOOP_JOB]["stage"] in data["stages"]
    (tmp_path / ci.CHILD).write_text(files[ci.CHILD].text())
    assert schema_errors([tmp_path / ci.CHILD]) == ""


@pytest.mark.parametrize(
    ("node", "group"),
    [
        ("module:base-runtime:f42", "compose/module/base-runtime/f42"),
        ("build:openssl@9d0324eb", "compose/build/openssl_9d0324eb"),
        ("ostree:AtomicHost/host", "compose/ostree/AtomicHost/host"),
        ("repo:Server", "compose/repo/Server"),
    ],
)
def test_resource_groups_are_sanitised_node_ids(node: str, group: str) -> None:
    assert ci.resource_group(node) == group


def test_generation_is_deterministic_and_round_trips() -> None:
    cases = golden_cases()
    assert cases == golden_cases()
    for files in cases.values():
        for text in files.values():
            body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
            assert ci.dump(yaml.safe_load(body)) == body


def test_libyaml_and_pyyaml_write_the_same_bytes() -> None:
    for files in golden_cases().values():
        for text in files.values():
            data = yaml.safe_load(text)
            python = yaml.dump(
                data, Dumper=yaml.SafeDumper, sort_keys=True, default_flow_style=False, width=1000
            )
            assert text.endswith(python)


def test_jobs_keep_logs_only_and_download_nothing_their_inputs_come_from_the_store(tmp_path: Path) -> None:
    full, head = everything()
    files = texts(ci.pipeline_files(full, head, base="none", head=HEAD, limits=Limits(max_jobs=5)))
    assert limits_of.problems(files, Limits(max_jobs=5), ci.CHILD) == []
    template = yaml.safe_load(files["part-001.yml"])[ci.TEMPLATE]
    assert template["artifacts"] == {
        "paths": [".factory/output/**/*.log"],
        "expire_in": "1 week",
        "when": "always",
    }
    iso = jobs(files["part-003.yml"])["compose iso:Server/dvd"]
    assert iso["needs"] == [{"job": "compose repo:Server", "artifacts": False}]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert schema_errors(sorted(tmp_path.iterdir())) == ""


INSTALLS = ("apt-get", "apt ", "make venv", "pip install", "dnf install", "npm ")


def _installs(job: Mapping[str, Any]) -> list[str]:
    lines = [*job.get("before_script", []), *job.get("script", [])]
    return [line for line in lines if any(word in line for word in INSTALLS)]


def test_every_job_runs_in_the_runner_image_and_installs_nothing() -> None:
    assert (
        ci.DEFAULT_IMAGE
        == f"${{CI_REGISTRY_IMAGE}}/runner:{__version__}"
        == f"${{CI_REGISTRY_IMAGE}}/runner:{version('factory')}"
    )
    for case, files in {**golden_cases(), "empty": texts(_empty())}.items():
        for name, text in files.items():
            data = yaml.safe_load(text)
            # the default in the file itself: triggers forward no YAML variables to it
            assert data["variables"] == {"FACTORY_IMAGE": ci.DEFAULT_IMAGE}, (case, name)
            for job_name, job in jobs(text).items():
                if "trigger" in job:
                    assert job["trigger"]["forward"] == {"pipeline_variables": True, "yaml_variables": False}
                    continue
                image = job.get("image") or data["default"]["image"]
                assert image == "${FACTORY_IMAGE}", (case, name, job_name)
            for job_name, job in data.items():
                if isinstance(job, dict) and ("script" in job or "before_script" in job):
                    assert _installs(job) == [], (case, name, job_name)
    # the parent pipeline: the same default, and only factory's own test job installs anything
    parent = yaml.safe_load((ROOT / ".gitlab-ci.yml").read_text())
    assert parent["variables"] == {"FACTORY_IMAGE": ci.DEFAULT_IMAGE}
    assert parent["default"]["image"] == "${FACTORY_IMAGE}"
    assert parent["compose"]["trigger"]["forward"] == {"pipeline_variables": True, "yaml_variables": False}
    for job_name, job in parent.items():
        if not isinstance(job, dict) or job_name in ("default", "variables", "test"):
            continue
        assert job.get("image", "${FACTORY_IMAGE}") == "${FACTORY_IMAGE}", job_name
        assert _installs(job) == [], job_name
    assert parent["test"]["image"] == "debian:12" and _installs(parent["test"])


def _empty() -> dict[str, ci.PipelineFile]:
    graph = graph_of(example_tree())
    return ci.pipeline_files(plan(graph, graph), graph, base=HEAD, head=HEAD)


def test_every_generated_file_is_valid_for_gitlab(tmp_path: Path) -> None:
    paths = []
    for case, files in golden_cases().items():
        for name, text in files.items():
            (tmp_path / case).mkdir(exist_ok=True)
            (tmp_path / case / name).write_text(text)
            paths.append(tmp_path / case / name)
    assert schema_errors(paths) == ""


def _split() -> dict[str, str]:
    return golden_cases()["example-max-jobs-5"]


def _mutated(name: str, change: object) -> dict[str, str]:
    files = _split()
    data = yaml.safe_load(files[name])
    assert callable(change)
    change(data)
    return {**files, name: ci.dump(data)}


def _set(path: list[str], value: object) -> object:
    def change(data: dict[str, object]) -> None:
        target: object = data
        for key in path[:-1]:
            assert isinstance(target, dict)
            target = target[key]
        assert isinstance(target, dict)
        target[path[-1]] = value

    return change


REPO = "compose repo:Server"
TRIGGER = "compose part 2 of 4"
BAD: list[tuple[str, object, str]] = [
    (
        "part-003.yml",
        _set(["compose container:Cloud/base", "needs"], ["compose nowhere"]),
        "not a job of the file",
    ),
    ("part-003.yml", _set([REPO, "needs"], ["compose iso:Server/dvd"]), "cycle"),
    ("part-003.yml", _set([REPO, "needs"], [REPO]), "cycle"),
    ("part-003.yml", _set([REPO, "extends"], ".nothing"), "extends '.nothing'"),
    (
        "child.yml",
        _set([TRIGGER, "trigger", "include"], [{"artifact": "pipelines/part-002.yml", "job": "generate"}]),
        "not a job of its pipeline",
    ),
    (
        "child.yml",
        _set([TRIGGER, "trigger", "include"], [{"artifact": "elsewhere/part-002.yml", "job": ci.FILES_JOB}]),
        "does not keep",
    ),
    (
        "child.yml",
        _set([TRIGGER, "trigger", "include"], [{"artifact": "pipelines/part-001.yml", "job": ci.FILES_JOB}]),
        "part-002.yml: no trigger includes it",
    ),
    (
        "part-004.yml",
        _set(
            ["compose deeper"],
            {
                "trigger": {
                    "include": [
                        {"artifact": "pipelines/child.yml", "job": "compose iso:AtomicHost/installer"}
                    ]
                }
            },
        ),
        "levels deep",
    ),
]


def test_a_failed_part_stops_only_the_jobs_over_its_nodes() -> None:
    files = _split()
    triggers = jobs(files[ci.CHILD])
    first, later = (
        ["compose part 1 of 4"],
        ["compose part 2 of 4", "compose part 3 of 4", "compose part 4 of 4"],
    )
    assert all("when" not in triggers[t] and triggers[t]["needs"] == [ci.FILES_JOB] for t in first)
    assert all(triggers[t]["when"] == "always" for t in later)  # run after a failed part too...
    assert all(triggers[t]["trigger"]["strategy"] == "depend" for t in first + later)  # ...once it ended
    # ...where every job over another part's nodes first checks that they are composed
    for name in ("part-002.yml", "part-003.yml", "part-004.yml"):
        data = yaml.safe_load(files[name])
        check = '"${FACTORY}" ci check --no-pull --inputs-of ${FACTORY_NODES} ${FACTORY_BUILDS:-}'
        assert data[ci.CHECKED]["script"][1] == check
    assert jobs(files["part-003.yml"])["compose repo:Server"]["extends"] == ci.CHECKED
    assert jobs(files["part-003.yml"])["compose iso:Server/dvd"]["extends"] == ci.TEMPLATE
    # python3 requires base-runtime, composed by part 1: its check leaves out the builds its job
    # composes; the installer needs python3 in its part
    python3 = jobs(files["part-002.yml"])["compose module:python3:3.12"]
    assert python3["extends"] == ci.CHECKED
    assert python3["variables"] == {
        "FACTORY_NODES": "module:python3:3.12",
        "FACTORY_BUILDS": "binary:python3-idna-3.6-1.fc42 build:python3-requests@289c064e "
        "build:python3-urllib3@20907f58 build:python3@720dc08b",
    }
    assert jobs(files["part-002.yml"])["compose module:installer:f42"]["extends"] == ci.TEMPLATE
    assert "FACTORY_BUILDS" not in jobs(files["part-001.yml"])["compose module:gtk:3"]["variables"]


def test_a_coordinator_needs_room_for_a_trigger_job_per_part() -> None:
    full, head = everything()
    with pytest.raises(
        OperationFailed, match="the plan needs 6 pipelines: more than one coordinator of 3 jobs"
    ):
        ci.pipeline_files(full, head, base="none", head=HEAD, limits=Limits(max_jobs=3))


@pytest.mark.parametrize(("name", "change", "expected"), BAD, ids=[e for _, _, e in BAD])
def test_the_checks_refuse_what_gitlab_refuses(name: str, change: object, expected: str) -> None:
    assert limits_of.problems(_split(), Limits(max_jobs=5), ci.CHILD) == []
    found = limits_of.problems(_mutated(name, change), Limits(max_jobs=5), ci.CHILD)
    assert any(expected in p for p in found), found


def test_the_checks_count_needs_jobs_and_bytes() -> None:
    files = _split()
    found = limits_of.problems(files, Limits(max_jobs=4, max_needs=2), ci.CHILD)
    assert found == [  # the coordinator: the files job and four triggers; one repo needs 3 modules
        "child.yml: 5 jobs, more than 4",
        "part-001.yml: 5 jobs, more than 4",
        "part-002.yml: 5 jobs, more than 4",
        "part-002.yml: job 'compose repo:AtomicHost' has 3 needs, more than 2",
        "part-003.yml: 5 jobs, more than 4",
    ]
    big = {
        **files,
        "part-001.yml": files["part-001.yml"] + "".join(f"x{i}: {{script: [echo]}}\n" for i in range(2000)),
    }
    assert any("bytes as parsed" in p for p in limits_of.problems(big, Limits(max_jobs=5000), ci.CHILD))


def test_the_schema_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = yaml.safe_load(_split()["child.yml"])
    broken[TRIGGER]["trigger"]["strategy"] = "wait for it"
    broken[TRIGGER]["when"] = "sometimes"
    (tmp_path / "child.yml").write_text(ci.dump(broken))
    assert "child.yml" in schema_errors([tmp_path / "child.yml"])


def test_parsed_bytes_bounds_what_ruby_measures_at_small_scale() -> None:
    from tests.gitlab_ci_tools import RUBY, ruby_parsed_bytes

    if RUBY is None:
        pytest.skip("ruby is not installed (`make deps` installs it)")
    folder = DATA / "example-max-jobs-5"
    measured = ruby_parsed_bytes(sorted(folder.iterdir()))
    for path, size in measured.items():
        estimate = limits_of.parsed_bytes(yaml.safe_load(path.read_text()))
        assert size <= estimate <= 1.25 * size, path.name


# -- the command ----------------------------------------------------------------------------------


def test_the_cli_prints_child_yml_of_a_plan_that_fits_one_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_tree(tmp_path, example_tree(), "Example\n")
    assert cli.main(["ci", "generate", "--repo", str(tmp_path), "--base", "0" * 40, "--head", "HEAD"]) == 0
    out = capsys.readouterr().out
    assert len([k for k in jobs(out) if k.startswith(ci.JOB_PREFIX)]) == 17
    first = cli_rev(tmp_path, "HEAD")
    assert out.startswith(f"# Generated by `factory ci generate --base none --head {first}`")
    commit_tree(tmp_path, bumped_tree(), "Bump openssl\n")
    assert cli.main(["ci", "generate", "--repo", str(tmp_path), "--base", "HEAD~1", "--head", "HEAD"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"# Generated by `factory ci generate --base {first} --head {cli_rev(tmp_path, 'HEAD')}`"
    )
    assert "compose module:base-runtime:f42" in jobs(out)


def cli_rev(repo: Path, rev: str) -> str:
    import pygit2

    return str(pygit2.Repository(str(repo)).revparse_single(rev).peel(pygit2.Commit).id)


def test_the_cli_writes_every_file_and_the_coordinator_writes_them_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_tree(tmp_path, example_tree(), "Example\n")
    argv = ["ci", "generate", "--repo", str(tmp_path), "--base", "none", "--head", "HEAD", "--max-jobs", "5"]
    assert cli.main(argv) == 2  # five files: not for stdout
    assert "give --out DIR" in capsys.readouterr().err
    assert cli.main([*argv, "--out", str(tmp_path.parent / "elsewhere")]) == 2
    assert "outside the repository" in capsys.readouterr().err
    out = tmp_path / "pipelines"
    out.mkdir()
    (out / "part-009.yml").write_text("left by a bigger plan\n")
    assert cli.main([*argv, "--out", str(out)]) == 0
    assert "wrote 5 pipeline files" in capsys.readouterr().out
    first = {p.name: p.read_text() for p in out.iterdir()}
    assert sorted(first) == ["child.yml", "part-001.yml", "part-002.yml", "part-003.yml", "part-004.yml"]
    assert limits_of.problems(first, Limits(max_jobs=5), ci.CHILD) == []
    assert schema_errors(sorted(out.iterdir())) == ""
    # The coordinator's first job runs `factory ci generate` again in its checkout: same bytes.
    (command,) = yaml.safe_load(first["child.yml"])[ci.FILES_JOB]["script"]
    words = shlex.split(command)
    assert words[0] == "${FACTORY}" and words[-2:] == ["--out", "pipelines"]
    for path in out.iterdir():
        path.unlink()
    monkeypatch.chdir(tmp_path)
    assert cli.main(words[1:]) == 0
    assert {p.name: p.read_text() for p in out.iterdir()} == first


def test_ci_max_jobs_of_factory_yaml_bounds_the_pipelines_unless_max_jobs_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = example_tree()
    tree["factory.yaml"] += b"ci:\n  max_jobs: 5\n"
    commit_tree(tmp_path, tree, "Example, five jobs a pipeline\n")
    out = tmp_path / "pipelines"
    argv = ["ci", "generate", "--repo", str(tmp_path), "--base", "none", "--head", "HEAD", "--out", str(out)]
    assert cli.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["child.yml", *(f"part-00{i}.yml" for i in range(1, 5))]
    assert all(len(jobs(p.read_text())) <= 5 for p in out.iterdir())
    capsys.readouterr()
    assert cli.main([*argv, "--max-jobs", "500"]) == 0  # the option wins
    assert sorted(p.name for p in out.iterdir()) == ["child.yml"]


def test_ci_check_of_inputs_fails_naming_what_is_not_composed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_tree(tmp_path, example_tree(), "Example\n")
    check = ["ci", "check", "--repo", str(tmp_path), "--no-pull"]
    assert cli.main([*check, "--inputs-of", "repo:Cloud", "container:Cloud/base"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("inputs of container:Cloud/base repo:Cloud at HEAD: 2 nodes, 2 not composed")
    assert "module:base-runtime:f42" in out and "module:httpd:2.4" in out
    assert "  repo:Cloud " not in out  # one of the job's own nodes, not an input
    # a module's job waits for the modules it requires (GNOME: GTK, and base-runtime through it)
    assert cli.main([*check, "--inputs-of", "module:gnome:47", "build:gnome-shell@67f39e87"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("inputs of build:gnome-shell@67f39e87 module:gnome:47 at HEAD: 2 nodes, 2 not")
    assert "  module:gtk:3 " in out and "  module:base-runtime:f42 " in out
    assert cli.main([*check, "--inputs-of", "repo:Nowhere"]) == 2
    assert cli.main(check) == 2
    assert cli.main([*check, "--base", "none", "--inputs-of", "repo:Cloud"]) == 2


def test_ci_check_names_the_required_module_a_module_not_composed_waited_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_tree(tmp_path, example_tree(), "Example\n")
    materialize_example(tmp_path)
    gnome_shell = "build:gnome-shell@67f39e87"
    assert cli.main(["compose", "--repo", str(tmp_path), "--type", "ci", gnome_shell]) == 0
    capsys.readouterr()
    assert cli.main(["ci", "check", "--repo", str(tmp_path), "--no-pull", "--base", "none", "--json"]) == 1
    report = {n["node"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert report[gnome_shell]["status"] == "OK"
    assert report["module:gtk:3"]["message"] == "input build:glib2@8a994f55 is not composed"
    assert report["module:gnome:47"]["message"] == (
        "no finished compose of it at head; required modules not composed: module:base-runtime:f42, module:gtk:3"
    )
    order = list(report)
    assert order.index("module:gtk:3") < order.index("module:gnome:47")


def test_post_plan_skips_outside_gitlab(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_md = tmp_path / "plan.md"
    plan_md.write_text("### plan\n")
    monkeypatch.delenv("CI_SERVER_URL", raising=False)
    assert cli.main(["ci", "post-plan", "--mr", "3", "--file", str(plan_md)]) == 0
    assert "not posted" in capsys.readouterr().out
    monkeypatch.setenv("CI_SERVER_URL", "https://gitlab.example")
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_PROJECT_PATH", "dist/factory")
    for name in ("FACTORY_GITLAB_TOKEN", "CI_JOB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["ci", "post-plan", "--mr", "3", "--file", str(plan_md)]) == 1
    assert "no GitLab token" in capsys.readouterr().err


class _Forge:
    def __init__(self) -> None:
        self.notes: dict[tuple[str, str], str] = {}

    def upsert_note(self, mr_id: str, marker: str, body: str) -> None:
        self.notes[(mr_id, marker)] = body


def test_post_plan_upserts_one_note_through_the_gitlab_forge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipeline.bot.forge_gitlab as forge_gitlab

    forge = _Forge()
    made: list[tuple[str, str, bool]] = []

    def fake(url: str, project: str, token: str, *, job_token: bool = False) -> _Forge:
        made.append((url, project, job_token))
        return forge

    monkeypatch.setattr(forge_gitlab, "gitlab_forge", fake)
    monkeypatch.setenv("CI_SERVER_URL", "https://gitlab.example")
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_PROJECT_PATH", "dist/factory")
    # A project access token writes the note; the job token may not (issue 10: it is never sent
    # as a private token, see tests/test_gitlab_tokens.py).
    monkeypatch.setenv("FACTORY_GITLAB_TOKEN", "project-secret")
    monkeypatch.setenv("CI_JOB_TOKEN", "job-secret")
    plan_md = tmp_path / "plan.md"
    for body in ("### plan v1\n", "### plan v2\n"):
        plan_md.write_text(body)
        assert cli.main(["ci", "post-plan", "--mr", "12", "--file", str(plan_md)]) == 0
    assert made == [("https://gitlab.example", "dist/factory", False)] * 2
    from pipeline.commands.ci import PLAN_MARKER

    assert forge.notes == {("12", PLAN_MARKER): "### plan v2\n"}
    assert "secret" not in capsys.readouterr().out


def test_every_pipeline_file_carries_the_parent_pipelines_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generate job of pipeline 4711 names the run; the jobs of the child and part pipelines,
    which have pipeline IDs of their own, get it as FACTORY_RUN; the coordinator, generating the
    files again in its own pipeline (another CI_PIPELINE_IID, FACTORY_RUN from its file), writes
    the same bytes."""
    commit_tree(tmp_path, example_tree(), "Example\n")
    monkeypatch.delenv("FACTORY_RUN", raising=False)
    monkeypatch.setenv("CI_PIPELINE_IID", "4711")
    monkeypatch.setenv("CI_PIPELINE_CREATED_AT", "2026-12-07T23:59:58Z")
    out = tmp_path / "pipelines"
    argv = ["ci", "generate", "--repo", str(tmp_path), "--base", "none", "--head", "HEAD", "--max-jobs", "5"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    first = {p.name: p.read_text() for p in out.iterdir()}
    assert len(first) == 5
    for name, text in first.items():
        variables = yaml.safe_load(text)["variables"]
        assert variables["FACTORY_RUN"] == "FL-42-20261207.ci.4711", name
        assert variables[ci.IMAGE_VARIABLE] == ci.DEFAULT_IMAGE, name  # the file's own variables stay
    assert limits_of.problems(first, Limits(max_jobs=5), ci.CHILD) == []
    assert schema_errors(sorted(out.iterdir())) == ""
    capsys.readouterr()
    monkeypatch.setenv("CI_PIPELINE_IID", "4712")  # the coordinator's own pipeline
    monkeypatch.setenv("FACTORY_RUN", "FL-42-20261207.ci.4711")  # from its file's variables
    (command,) = yaml.safe_load(first["child.yml"])[ci.FILES_JOB]["script"]
    monkeypatch.chdir(tmp_path)
    assert cli.main(shlex.split(command)[1:]) == 0
    assert {p.name: p.read_text() for p in out.iterdir()} == first
