"""Branch history in Git: record, look back in time, mirror remote dist-git."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pygit2
import pytest

from pipeline import cli, example
from pipeline.core.errors import InvalidInput
from pipeline.git.distgit import DistGit
from pipeline.git.repo import Repository
from pipeline.records.history import BranchHistory, iso, parse_time, ref_name
from tests.conftest import ROOT, materialize_example

T0 = 1_800_000_000
A, B, C = "a" * 40, "b" * 40, "c" * 40


@pytest.fixture
def repo(tmp_path: Path) -> pygit2.Repository:
    return pygit2.init_repository(str(tmp_path / "defs"), bare=True)


def test_records_only_new_heads_and_answers_at_a_time(repo: pygit2.Repository) -> None:
    history = BranchHistory(Repository(repo))
    assert history.latest("openssl", "f42") is None
    first = history.record("openssl", "f42", A, T0)
    assert first is not None and first.head == A
    assert history.record("openssl", "f42", A, T0 + 10) is None  # unchanged: nothing recorded
    assert history.record("openssl", "f42", B, T0 + 100) is not None
    assert history.record("openssl", "f42", C, T0 + 200) is not None
    assert [o.head for o in history.log("openssl", "f42")] == [C, B, A]
    assert history.at("openssl", "f42", T0 - 1) is None
    assert history.at("openssl", "f42", T0 + 99).head == A  # type: ignore[union-attr]
    assert history.at("openssl", "f42", T0 + 100).head == B  # type: ignore[union-attr]
    assert history.at("openssl", "f42", T0 + 10**6).head == C  # type: ignore[union-attr]
    assert history.tracked() == [("openssl", "f42")]


def test_the_record_is_plain_git(repo: pygit2.Repository) -> None:
    BranchHistory(Repository(repo)).record("openssl", "f42", A, T0)
    commit = repo.revparse_single("refs/history/openssl/f42").peel(pygit2.Commit)
    assert commit.commit_time == T0
    data = json.loads(repo[commit.tree["observation.json"].id].peel(pygit2.Blob).data)
    assert data == {"component": "openssl", "branch": "f42", "head": A, "observed": iso(T0)}
    log = subprocess.run(
        ["git", "--git-dir", repo.path, "log", "--format=%s", "refs/history/openssl/f42"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert log.stdout == f"openssl f42 at {A[:12]}\n"


def test_concurrent_recorders_lose_nothing(repo: pygit2.Repository) -> None:
    heads = [f"{i:040x}" for i in range(1, 21)]

    def record(part: list[str]) -> None:
        mine = BranchHistory(Repository(pygit2.Repository(repo.path)))
        for head in part:
            mine.record("openssl", "f42", head, T0)

    threads = [threading.Thread(target=record, args=(heads[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.head for o in BranchHistory(Repository(repo)).log("openssl", "f42")) == heads


def test_times_and_names() -> None:
    assert parse_time("2027-01-01") == parse_time("2027-01-01T00:00:00Z") == parse_time("@1798761600")
    assert parse_time("2027-01-01T01:00:00+01:00") == 1798761600
    with pytest.raises(InvalidInput):
        parse_time("yesterday")
    assert ref_name("python3-requests", "f42") == "refs/history/python3-requests/f42"
    for bad in ("../x", "a..b", "x.lock", ""):
        with pytest.raises(InvalidInput):
            ref_name(bad, "f42")


def test_remote_dist_git_is_mirrored_into_the_cache(tmp_path: Path) -> None:
    heads = example.materialize(ROOT / "examples" / "distgit", tmp_path / "distgit")
    sources = DistGit(tmp_path, tmp_path / "cache")
    url = f"file://{tmp_path / 'distgit' / 'openssl.git'}"
    mirror = sources.mirror(url)
    assert mirror is not None and mirror.parent == tmp_path / "cache"
    assert DistGit(tmp_path).head(f"file://{mirror}", "f42") == heads["openssl"]["f42"]
    assert sources.mirror("https://127.0.0.1:1/nothing.git") is None
    assert "cannot fetch" in sources.problems["https://127.0.0.1:1/nothing.git"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_commands(example_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    heads = materialize_example(example_repo)
    code, out, _ = run(capsys, "history", "record", "--repo", str(example_repo), "--json")
    assert code == 0
    recorded = json.loads(out)["recorded"]
    assert {(o["component"], o["head"]) for o in recorded} >= {("openssl", heads["openssl"]["f42"])}
    code, out, _ = run(capsys, "history", "record", "--repo", str(example_repo))
    assert code == 0 and out.startswith("0 new heads of")
    code, out, _ = run(capsys, "history", "show", "openssl", "f42", "--repo", str(example_repo), "--json")
    assert code == 0 and json.loads(out)["head"] == heads["openssl"]["f42"]
    code, _, err = run(
        capsys, "history", "show", "openssl", "f42", "--repo", str(example_repo), "--at", "2020-01-01"
    )
    assert code == 2 and "no recorded head" in err and "Traceback" not in err
