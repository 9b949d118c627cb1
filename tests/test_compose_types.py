"""Compose types and run IDs as Pungi users know them (issue 22, item 7), as a user meets them.

One repository of the example composes repo:Server (and what it needs) nightly, then as a
production run: the production run composes the modules and the repo again under production IDs
(no type letter) and reuses the builds; every compose records its run, and the run ID names them
all in `factory lineage`, `factory status` and the site. A CI pipeline's jobs share one run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from pipeline import cli
from pipeline.core.runs import parse_run_id
from tests.conftest import ROOT, commit_tree, example_tree, materialize_example

SITE_SCHEMA = Draft202012Validator(json.loads((ROOT / "pipeline" / "schemas" / "site.json").read_text()))
CI_VARIABLES = ("FACTORY_RUN", "CI_PIPELINE_IID", "CI_PIPELINE_CREATED_AT")


@pytest.fixture(scope="module")
def no_ci() -> Iterator[None]:
    """A run on one machine: no pipeline's variables (the suite may itself run in GitLab CI)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in CI_VARIABLES:
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, no_ci: None) -> Path:
    root = tmp_path_factory.mktemp("types")
    commit_tree(root, example_tree(), "Example definitions\n")
    materialize_example(root)
    return root


def compose(repo: Path, *argv: str) -> dict[str, object]:
    """`factory compose ... --json`, which must finish; what it printed."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert cli.main(["compose", *argv, "--repo", str(repo), "--json"]) == 0
    found: dict[str, object] = json.loads(buffer.getvalue())
    return found


def factory(capsys: pytest.CaptureFixture[str], repo: Path, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--repo", str(repo)])
    out, err = capsys.readouterr()
    return code, out, err


def made(run: dict[str, object]) -> dict[str, str]:
    """Node -> compose ID of what a run composed."""
    nodes = run["nodes"]
    assert isinstance(nodes, list)
    return {n["node"]: n["compose_id"] for n in nodes if n["status"] == "COMPOSED"}


def reused(run: dict[str, object]) -> dict[str, str]:
    nodes = run["nodes"]
    assert isinstance(nodes, list)
    return {n["node"]: n["compose_id"] for n in nodes if n["status"] == "SKIPPED"}


@pytest.fixture(scope="module")
def runs(repo: Path) -> dict[str, dict[str, object]]:
    """The nightly run, then the production run of repo:Server."""
    return {"nightly": compose(repo, "repo:Server"), "production": compose(repo, "repo:Server", "--type", "production")}  # fmt: skip


def test_a_production_run_has_a_production_id_and_so_has_what_it_composes(
    runs: dict[str, dict[str, object]],
) -> None:
    nightly, production = runs["nightly"], runs["production"]
    run = str(production["run"])
    date = parse_run_id(run).date
    assert run == f"FL-42-{date}.0"  # productmd's production compose ID: no type letter
    assert str(nightly["run"]) == f"FL-42-{parse_run_id(str(nightly['run'])).date}.n.0"
    # The modules and the repo are composed again, as production composes...
    assert made(production) == {
        "module:base-runtime:f42": f"FL-42-base-runtime-f42-{date}.0",
        "module:httpd:2.4": f"FL-42-httpd-2.4-{date}.0",
        "module:python3:3.12": f"FL-42-python3-3.12-{date}.0",
        "repo:Server": f"FL-42-Server-{date}.0",
    }
    # ...and the packages are the nightly's builds, and its binary pins (builds made elsewhere):
    # packages are shared by every compose type.
    builds = reused(production)
    assert builds and all(node.startswith(("build:", "binary:")) for node in builds)
    assert "binary:python3-idna-3.6-1.fc42" in builds
    assert builds == {n: c for n, c in made(nightly).items() if n.startswith(("build:", "binary:"))}


def test_what_ships_is_the_production_compose_and_its_metadata_says_so(
    repo: Path, runs: dict[str, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    server = made(runs["production"])["repo:Server"]
    code, out, _ = factory(capsys, repo, "latest", "repo:Server")
    assert (code, out) == (0, f"repo:Server  {server}\n")
    info = json.loads(
        (repo / ".factory/output/composes" / server / "compose/metadata/composeinfo.json").read_text()
    )
    assert (info["payload"]["compose"]["id"], info["payload"]["compose"]["type"]) == (server, "production")


def test_the_run_id_names_the_composes_of_the_run(
    repo: Path, runs: dict[str, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    run = str(runs["production"]["run"])
    code, out, _ = factory(capsys, repo, "lineage", run, "--json")
    assert code == 0
    listed = json.loads(out)
    assert (listed["run"], listed["type"]) == (run, "production")
    assert {c["node"]: c["compose_id"] for c in listed["composes"]} == made(runs["production"])
    code, out, _ = factory(capsys, repo, "lineage", made(runs["production"])["repo:Server"])
    assert code == 0 and f"\nrun       {run}\n" in out
    code, out, _ = factory(capsys, repo, "lineage", run)
    assert code == 0
    assert out.splitlines()[2] == "composes  4 made"
    code, out, _ = factory(capsys, repo, "status", run)
    assert code == 0
    assert out.splitlines()[0] == f"run {run}: 4 composes made:"
    code, out, _ = factory(capsys, repo, "status", run, "--json")
    answer = json.loads(out)
    assert answer["matched"] == "run" and answer["run"]["id"] == run
    assert {n["node"] for n in answer["nodes"]} == set(made(runs["production"]))
    SITE_SCHEMA.validate(answer)


def test_a_run_that_made_nothing_is_still_known_and_an_unknown_one_is_not(
    repo: Path, runs: dict[str, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    again = compose(repo, "repo:Server")  # nightly: the production composes have the keys
    assert made(again) == {}
    code, out, _ = factory(capsys, repo, "latest", "repo:Server")
    assert out == f"repo:Server  {made(runs['production'])['repo:Server']}\n"  # not moved back
    code, out, _ = factory(capsys, repo, "lineage", str(again["run"]))
    assert code == 0 and "composes  0 made" in out
    typo = str(again["run"])[:-1] + "9"
    code, _, err = factory(capsys, repo, "lineage", typo)
    assert code == 2 and err.startswith(
        f"factory: error[unknown-run]: no run '{typo}'\n  hint: did you mean "
    )


def test_respins_of_production_count_per_date(
    repo: Path, runs: dict[str, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    same = compose(repo, "repo:Server", "--type", "production")
    assert made(same) == {}  # nothing changed: the production composes are reused
    date = parse_run_id(str(same["run"])).date
    assert same["run"] == f"FL-42-{date}.1"
    tree = example_tree()
    path = "modules/httpd/2.4.yaml"
    tree[path] = tree[path].replace(b"  minimal:\n    rpms: [httpd]\n", b"  minimal:\n    rpms: [httpd]\n  ssl:\n    rpms: [mod_ssl]\n")  # fmt: skip
    commit_tree(repo, tree, "httpd: an ssl profile\n")
    changed = compose(repo, "repo:Server", "--type", "production")
    date = parse_run_id(str(changed["run"])).date
    assert changed["run"] == f"FL-42-{date}.2"
    respin = "1" if date == parse_run_id(str(runs["production"]["run"])).date else "0"
    assert made(changed) == {
        "module:httpd:2.4": f"FL-42-httpd-2.4-{date}.{respin}",
        "repo:Server": f"FL-42-Server-{date}.{respin}",
    }


def test_the_site_names_the_runs(repo: Path, runs: dict[str, dict[str, object]], capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    site = repo / ".factory" / "site"
    code, _, _ = factory(capsys, repo, "site", str(site))
    assert code == 0
    run = str(runs["production"]["run"])
    server = made(runs["production"])["repo:Server"]
    page = (site / "runs.html").read_text()
    assert f'<section id="{run}"' in page
    assert f'<a href="nodes/repo~Server.html#{server}">{server}</a>' in page
    node = (site / "nodes" / "repo~Server.html").read_text()
    assert f'run <a href="../runs.html#{run}">{run}</a>' in node
    twin = json.loads((site / "runs.json").read_text())
    SITE_SCHEMA.validate(twin)
    listed = {r["id"]: r for r in twin["runs"]}
    assert {c["compose_id"] for c in listed[run]["composes"]} == set(made(runs["production"]).values())
    SITE_SCHEMA.validate(json.loads((site / "nodes" / "repo~Server.json").read_text()))


def test_the_jobs_of_one_pipeline_share_its_run(
    repo: Path,
    runs: dict[str, dict[str, object]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two jobs of one GitLab pipeline, on runners of their own: the same CI_PIPELINE_IID and
    CI_PIPELINE_CREATED_AT, so the same run ID, reserved nowhere; `factory lineage` lists both."""
    monkeypatch.setenv("CI_PIPELINE_IID", "4711")
    monkeypatch.setenv("CI_PIPELINE_CREATED_AT", "2026-12-07T23:59:58Z")
    first = compose(repo, "module:gtk:3", "--type", "ci")
    second = compose(repo, "module:container-runtime:stable", "--type", "ci")
    assert first["run"] == second["run"] == "FL-42-20261207.ci.4711"
    code, out, _ = factory(capsys, repo, "lineage", "FL-42-20261207.ci.4711", "--json")
    nodes = {c["node"] for c in json.loads(out)["composes"]}
    assert code == 0 and {"module:gtk:3", "module:container-runtime:stable"} <= nodes
    monkeypatch.setenv("FACTORY_RUN", "FL-42-20261207.ci.4711")  # as `factory ci generate` sets it
    code, _, err = factory(capsys, repo, "compose", "module:gtk:3", "--type", "nightly")
    assert code == 2 and err.startswith(
        "factory: error[run-mismatch]: FACTORY_RUN=FL-42-20261207.ci.4711 is not"
    )
