"""A Fedora-size plan becomes pipelines GitLab accepts (bench/plan_scale.py's tree, in memory).

23,000 components in 1,000 modules, 40 variants, 100 images: 24,140 nodes. The full plan and a
one-pin bump are turned into pipeline files and held to GitLab's schema, its limits (<= 50 needs,
<= `max_jobs` jobs, files well under 1 MB as GitLab measures them) and to the rules the schema
cannot see.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pipeline.core.batches import Limits, batches
from pipeline.core.definitions import load
from pipeline.core.graph import Graph, build
from pipeline.core.plan import Plan, plan
from pipeline.formats import gitlab_ci as ci
from pipeline.formats import gitlab_ci_limits as limits_of
from tests.conftest import ROOT, sources
from tests.gitlab_ci_tools import RUBY, requirements_missed, ruby_parsed_bytes, schema_errors

HEAD = "f" * 40


@dataclass
class Fedora:
    full: Plan
    head: Graph
    bump: Plan
    bumped: Graph
    expected_bump: set[str]  # the nodes a move of one pin must compose, from the generator's data


@pytest.fixture(scope="module")
def fedora() -> Fedora:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import plan_scale
    finally:
        sys.path.remove(str(ROOT / "bench"))
    dist = plan_scale.generate(23_000, 1_000, 40, 100, seed=42)
    files = plan_scale.render(dist)
    head = build(load(sources(files)))
    changed, component, _ = plan_scale.move_one_pin(dist, files, seed=42)
    bumped = build(load(sources(files)))
    expected = plan_scale.downstream_of(changed, changed.refs[component], component, dist)
    return Fedora(plan(Graph({}, {}), head), head, plan(head, bumped), bumped, expected)


def write(files: dict[str, ci.PipelineFile], folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    texts = {name: f.text() for name, f in files.items()}
    for name, text in texts.items():
        (folder / name).write_text(text)
    return texts


def test_the_full_plan_is_pipelines_gitlab_accepts(fedora: Fedora, tmp_path: Path) -> None:
    assert len(fedora.full.nodes) == 24_140
    limits = Limits()
    made = batches(fedora.full, fedora.head, limits)
    composed = Counter(n for b in made for n in b.nodes)
    assert set(composed) == {n.id for n in fedora.full.nodes} and set(composed.values()) == {1}
    texts = write(ci.pipeline_files(fedora.full, fedora.head, base="none", head=HEAD), tmp_path)
    assert limits_of.problems(texts, limits, ci.CHILD) == []
    assert schema_errors(sorted(tmp_path.iterdir())) == ""
    parts = {
        name: limits_of.jobs_of(yaml.safe_load(text)) for name, text in texts.items() if name != ci.CHILD
    }
    jobs = {job: name for name, found in parts.items() for job in found}
    assert sorted(jobs) == sorted(b.name for b in made)  # every batch is a job, once
    assert max(len(limits_of.need_names(j)) for found in parts.values() for j in found.values()) <= 50
    assert all(len(found) <= 500 for found in parts.values())
    # Every module's job starts after the jobs of the modules it (build)requires, across parts too
    assert requirements_missed(texts, fedora.head, set(composed)) == []
    # The parts of modules that require none in other parts run at once; the others, and the
    # repos and images, after the parts they need.
    coordinator = limits_of.jobs_of(yaml.safe_load(texts[ci.CHILD]))
    triggers = {name: job for name, job in coordinator.items() if "trigger" in job}
    assert len(triggers) == len(parts)
    modules = [n for n, found in parts.items() if all(j.split()[1].startswith("module:") for j in found)]
    later = [n for n in parts if n not in modules]
    assert modules and later
    first = []
    for index, name in enumerate(sorted(parts), 1):
        needs = set(limits_of.need_names(triggers[ci.part_job(index, len(parts))]))
        assert ci.FILES_JOB in needs
        if needs == {ci.FILES_JOB}:
            first.append(name)
    assert first and set(first) <= set(modules)


def test_a_one_pin_bump_is_one_small_pipeline(fedora: Fedora, tmp_path: Path) -> None:
    assert {n.id for n in fedora.bump.nodes} == fedora.expected_bump
    limits = Limits()
    texts = write(ci.pipeline_files(fedora.bump, fedora.bumped, base=HEAD, head=HEAD), tmp_path)
    assert list(texts) == [ci.CHILD]
    assert limits_of.problems(texts, limits, ci.CHILD) == []
    assert schema_errors([tmp_path / ci.CHILD]) == ""
    found = limits_of.jobs_of(yaml.safe_load(texts[ci.CHILD]))
    assert requirements_missed(texts, fedora.bumped, fedora.expected_bump) == []
    # the new build composes with its module: one job fewer than planned nodes
    assert len(found) == len(fedora.expected_bump) - 1
    module = next(n for n in fedora.expected_bump if n.startswith("module:"))
    assert found[ci.job_name(module)]["needs"] == []
    repos = [j for name, j in found.items() if name.startswith("compose repo:")]
    assert repos and all(limits_of.need_names(j) == [ci.job_name(module)] for j in repos)


def test_gitlab_measures_every_file_well_under_its_limit(fedora: Fedora, tmp_path: Path) -> None:
    if RUBY is None:
        pytest.skip("ruby is not installed (`make deps` installs it)")
    write(ci.pipeline_files(fedora.full, fedora.head, base="none", head=HEAD), tmp_path)
    measured = ruby_parsed_bytes(sorted(tmp_path.iterdir()))
    for path, size in measured.items():
        estimate = limits_of.parsed_bytes(yaml.safe_load(path.read_text()))
        assert size <= estimate <= Limits().max_parsed_bytes, path.name
        assert size < limits_of.GITLAB_MAX_BYTES / 2
