"""Run IDs and compose IDs as productmd makes them (pipeline.core.runs, pipeline.records.runs)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from productmd.composeinfo import ComposeInfo, get_date_type_respin  # type: ignore[import-untyped]

from pipeline.core.errors import InvalidInput
from pipeline.core.records import COMPOSE_TYPES, compose_id, parse_compose_id
from pipeline.core.runs import from_env, is_run_id, parse_run_id, run_id
from pipeline.git.repo import open_repo
from pipeline.records import runs
from tests.conftest import commit_tree, example_tree


def productmd_id(short: str, version: str, date: str, type_: str, respin: int) -> str:
    info = ComposeInfo()
    info.release.short, info.release.version = short, version
    info.compose.date, info.compose.type, info.compose.respin = date, type_, respin
    made: str = info.create_compose_id()
    return made


@pytest.mark.parametrize("type_", sorted(COMPOSE_TYPES))
def test_a_run_id_is_productmds_compose_id_of_the_release(type_: str) -> None:
    made = run_id("FL", "42", "20261207", type_, 3)
    assert made == productmd_id("FL", "42", "20261207", type_, 3)
    assert parse_run_id(made) == ("FL", "42", "20261207", type_, 3)
    assert get_date_type_respin(made) == ("20261207", type_, 3)


def test_production_has_no_type_letter() -> None:
    assert run_id("FL", "42", "20261207", "production", 0) == "FL-42-20261207.0"
    assert run_id("FL", "42", "20261207", "nightly", 0) == "FL-42-20261207.n.0"
    assert compose_id("FL", "42", "base-runtime-f42", "20261207", "production", 0) == (
        "FL-42-base-runtime-f42-20261207.0"
    )


@pytest.mark.parametrize("type_", sorted(COMPOSE_TYPES))
def test_a_compose_id_is_productmds_with_the_nodes_name_after_the_version(type_: str) -> None:
    release = productmd_id("FL", "42", "20261207", type_, 2)
    made = compose_id("FL", "42", "base-runtime-f42", "20261207", type_, 2)
    assert made == release.replace("FL-42-", "FL-42-base-runtime-f42-", 1)
    assert get_date_type_respin(made) == ("20261207", type_, 2)


def test_run_ids_and_compose_ids_are_told_apart() -> None:
    assert is_run_id("FL-42-20261207.n.0") and is_run_id("FL-42-20261207.0")
    assert is_run_id("FL-42-20261207.ci.4711")
    for text in ("FL-42-Server-20261207.n.0", "FL-42-base-runtime-f42-20261207.0", "FL-42-2026120.n.0", "x"):
        assert not is_run_id(text), text
    with pytest.raises(InvalidInput) as caught:
        parse_compose_id("FL-42-20261207.n.0")  # a run ID is no compose ID
    assert caught.value.code == "invalid-compose-id"


def test_factory_run_wins_and_must_fit_the_release_and_the_type() -> None:
    env = {"FACTORY_RUN": "FL-42-20261201.ci.17", "CI_PIPELINE_IID": "99", "CI_PIPELINE_CREATED_AT": "2026-12-07T23:59:01Z"}  # fmt: skip
    assert from_env(env, "FL", "42", "ci") == "FL-42-20261201.ci.17"
    for short, version, type_ in (("FL", "42", "nightly"), ("FL", "43", "ci")):
        with pytest.raises(InvalidInput) as caught:
            from_env(env, short, version, type_)
        assert caught.value.code == "run-mismatch"
    with pytest.raises(InvalidInput) as caught:
        from_env({"FACTORY_RUN": "FL-42-Server-20261201.ci.17"}, "FL", "42", "ci")
    assert caught.value.code == "invalid-run-id"


def test_a_gitlab_pipeline_names_its_run_by_its_creation_date_and_iid() -> None:
    """Every job of a pipeline sees the same CI_PIPELINE_CREATED_AT and CI_PIPELINE_IID, also one
    that starts after midnight: the date is the pipeline's, not the job's."""
    env = {"CI_PIPELINE_IID": "4711", "CI_PIPELINE_CREATED_AT": "2026-12-07T23:59:58Z"}
    assert from_env(env, "FL", "42", "ci") == "FL-42-20261207.ci.4711"
    assert from_env({}, "FL", "42", "nightly") is None
    assert from_env({"CI_PIPELINE_IID": "4711"}, "FL", "42", "ci") is None


def test_runs_reserved_here_count_respins_per_date_and_type(tmp_path: Path) -> None:
    commit = commit_tree(tmp_path, example_tree(), "Example definitions\n")
    repo = open_repo(tmp_path)
    made = [
        runs.reserve(repo, "FL", "42", "20261207", t, commit) for t in ("nightly", "nightly", "production")
    ]
    made += [runs.reserve(repo, "FL", "42", "20261208", "nightly", commit)]
    made += [runs.reserve(repo, "FL", "42", "20261207", "production", commit)]
    assert made == [
        "FL-42-20261207.n.0",
        "FL-42-20261207.n.1",
        "FL-42-20261207.0",
        "FL-42-20261208.n.0",
        "FL-42-20261207.1",
    ]
    assert runs.reserved(repo) == sorted(made)
    assert runs.commit_of(repo, "FL-42-20261207.1") == commit
    assert runs.commit_of(repo, "FL-42-20261207.2") is None
    # git's own CLI reads them
    shown = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "refs/composes/runs/FL-42-20261207.0"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == commit


def test_a_reservation_skips_the_runs_of_other_clones(tmp_path: Path) -> None:
    """Run IDs that lineage notes pulled from a remote name are taken, though not reserved here."""
    commit = commit_tree(tmp_path, example_tree(), "Example definitions\n")
    taken = {"FL-42-20261207.n.0", "FL-42-20261207.n.1"}
    made = runs.reserve(open_repo(tmp_path), "FL", "42", "20261207", "nightly", commit, taken)
    assert made == "FL-42-20261207.n.2"


def test_runs_reserved_at_once_never_share_an_id(tmp_path: Path) -> None:
    commit = commit_tree(tmp_path, example_tree(), "Example definitions\n")
    found: list[str] = []

    def take() -> None:
        found.append(runs.reserve(open_repo(tmp_path), "FL", "42", "20261207", "nightly", commit))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(found) == [f"FL-42-20261207.n.{n}" for n in range(8)]
