"""PENDING composes: a gate waiting for a check factory does not run (an openQA run), the result
recorded from outside (`factory check record`), and `factory gate ID --promote`; RUNNING check
states in refs/notes/tests. Small composers and checks of the tests' own, on a real Git
repository (`tests/test_gate.py`'s); the same days with the real composers are in
`tests/test_pending_e2e.py`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.compose.base import Job
from pipeline.core import gate, policies
from pipeline.core.gate import CheckResult
from pipeline.core.records import OutputFile, Record
from pipeline.core.states import CheckState, ComposeStatus, NodeStatus, RunStatus
from pipeline.git import notes
from pipeline.git.objects import GitObject
from pipeline.git.repo import open_repo
from pipeline.records import checks as testnotes
from pipeline.records.lineage import Lineage
from tests.conftest import commit_tree, example_tree
from tests.test_gate import Gated
from tests.test_gate import gated as gated  # the fixture
from tests.test_remote import clone
from tests.test_remote import compose as remote_compose
from tests.test_remote import remote as remote  # the fixture

OPENQA = b"""document: factory-policy
version: 1
rules:
  - description: the GTK stack is signed off in openQA before anything is built on it
    kinds: [module]
    nodes: ["module:gtk:*"]
    require: [openqa.install]
"""
GTK = "module:gtk:3"


def git(root: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True, check=True).stdout


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def require_openqa(gated: Gated) -> gate.Policy:
    """Merge the openQA policy; gtk's build changes, so module:gtk:3 composes again."""
    commit_tree(gated.root, {**example_tree(), "policies/openqa.yaml": OPENQA}, "Require openQA\n")
    gated.composers["build"].content = {"build:gtk3@b2838247": "a fix"}
    gated.composers["build"].tools = lambda: {"writer": "2"}  # type: ignore[method-assign]
    return policies.parse([("policies/openqa.yaml", OPENQA)])


def statuses(result: object) -> dict[str, tuple[str, str, str]]:
    return {r.node: (r.status, r.compose_id, r.message) for r in result.results}  # type: ignore[attr-defined]


def notes_ref(root: Path, ref: str) -> str:
    return git(root, "rev-parse", "-q", "--verify", ref).strip()


def test_a_compose_waiting_for_an_outside_check_is_pending_until_promoted(
    gated: Gated, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gated.run(gate.Policy()).status == RunStatus.FINISHED
    before = gated.lineage.latest()
    policy = require_openqa(gated)

    # The gate waits for openqa.install: PENDING, its dependants blocked, latest good kept.
    result = gated.run(policy)
    assert result.status == RunStatus.FINISHED_INCOMPLETE
    status, pending_id, message = statuses(result)[GTK]
    assert status == NodeStatus.PENDING
    assert message == f"{pending_id} waits for openqa.install (PENDING, required by policies/openqa.yaml:4)"
    blocked = statuses(result)["repo:Workstation"]
    assert blocked[0] == NodeStatus.BLOCKED
    assert blocked[2] == f"input {GTK} is pending: {message}"
    assert gated.lineage.latest()[GTK] == before[GTK]
    assert gated.lineage.latest()["repo:Workstation"] == before["repo:Workstation"]
    record = gated.lineage.get(pending_id)
    assert record.status == ComposeStatus.PENDING and record.outputs
    # The tag says what the compose was finished with; the note says what it is now.
    tag_line = git(gated.root, "tag", "-n1", "-l", f"compose/{pending_id}").split()
    assert tag_line == [f"compose/{pending_id}", "Compose", f"{pending_id}:", GTK, "PENDING"]
    # The required check is recorded PENDING with the compose, beside the checks that ran.
    recorded = {r.check: r for r in testnotes.read(gated.lineage, pending_id)}
    assert recorded["openqa.install"].state == CheckState.PENDING
    assert recorded["openqa.install"].started == recorded["openqa.install"].finished == ""
    assert recorded["repoclosure"].state == CheckState.PASSED

    # The next run composes nothing for it: it waits, and what is made from it stays blocked.
    ran = len(gated.composers["module"].ran)
    again = gated.run(policy)
    assert statuses(again)[GTK] == (NodeStatus.PENDING, pending_id, message)
    assert statuses(again)["repo:Workstation"][0] == NodeStatus.BLOCKED
    assert len(gated.composers["module"].ran) == ran

    # Still waiting: --promote says what is missing, exit 1, nothing written.
    lineage_before = notes_ref(gated.root, "refs/notes/lineage")
    code, out, _ = factory(capsys, "gate", pending_id, "--promote", "--repo", str(gated.root))
    assert code == 1
    assert out.splitlines()[-1].startswith("not promoted: still waiting for openqa.install")
    assert notes_ref(gated.root, "refs/notes/lineage") == lineage_before

    # openQA passes; the result is recorded from outside, then the compose is promoted.
    code, out, _ = factory(
        capsys, "check", "record", pending_id, "openqa.install", "--outcome", "PASSED",
        "--url", "https://openqa.example.invalid/tests/42", "--note", "install test passed",
        "--repo", str(gated.root),
    )  # fmt: skip
    assert code == 0
    assert out.splitlines() == [
        f"recorded openqa.install PASSED on {pending_id} ({GTK}, PENDING)",
        f"its gate now: gate pass (1 required checks satisfied); `factory gate {pending_id} --promote`"
        " makes it latest good",
    ]
    outside = {r.check: r for r in testnotes.read(gated.lineage, pending_id)}["openqa.install"]
    assert (outside.state, outside.url, outside.origin, outside.message) == (
        CheckState.PASSED,
        "https://openqa.example.invalid/tests/42",
        "external",
        "install test passed",
    )
    code, out, _ = factory(capsys, "gate", pending_id, "--promote", "--repo", str(gated.root), "--json")
    assert code == 0
    answer = json.loads(out)
    assert (answer["verdict"], answer["status"], answer["promoted"], answer["latest_good"]) == (
        "pass",
        "FINISHED",
        True,
        True,
    )
    assert gated.lineage.latest()[GTK] == pending_id
    promoted = gated.lineage.get(pending_id)
    assert promoted.status == ComposeStatus.FINISHED and promoted.promoted
    assert promoted.message.startswith("promoted: gate pass")
    # Auditable: the notes history holds the PENDING record and says when it changed.
    assert git(gated.root, "log", "-1", "--format=%s", "refs/notes/lineage") == (
        f"Promote {pending_id}: PENDING -> FINISHED\n"
    )
    tag = notes_ref(gated.root, f"refs/tags/compose/{pending_id}")
    older = json.loads(git(gated.root, "show", f"refs/notes/lineage~1:{tag[:2]}/{tag[2:]}"))
    assert older["status"] == "PENDING" and "promoted" not in older
    # Promoting again changes nothing.
    code, out, _ = factory(capsys, "gate", pending_id, "--promote", "--repo", str(gated.root))
    assert code == 0 and out.splitlines()[-1] == f"nothing to promote: {pending_id} is FINISHED"

    # The next run skips gtk and composes what is layered on it.
    after = statuses(gated.run(policy))
    assert after[GTK][:2] == (NodeStatus.SKIPPED, pending_id)
    assert after["repo:Workstation"][0] == NodeStatus.COMPOSED


def test_a_failed_outside_result_is_not_promoted(gated: Gated, capsys: pytest.CaptureFixture[str]) -> None:
    assert gated.run(gate.Policy()).status == RunStatus.FINISHED
    before = gated.lineage.latest()[GTK]
    pending_id = statuses(gated.run(require_openqa(gated)))[GTK][1]
    code, _, _ = factory(
        capsys, "check", "record", pending_id, "openqa.install", "--outcome", "FAILED",
        "--note", "anaconda crashed", "--repo", str(gated.root),
    )  # fmt: skip
    assert code == 0
    lineage_before = notes_ref(gated.root, "refs/notes/lineage")
    code, out, _ = factory(capsys, "gate", pending_id, "--promote", "--repo", str(gated.root))
    assert code == 1
    assert "openqa.install: FAILED - anaconda crashed" in out
    assert out.splitlines()[-1] == "not promoted: its gate fails (openqa.install)"
    assert notes_ref(gated.root, "refs/notes/lineage") == lineage_before
    assert gated.lineage.latest()[GTK] == before
    assert gated.lineage.get(pending_id).status == ComposeStatus.PENDING


def test_an_outside_check_with_nothing_to_check_is_recorded_not_applicable(
    gated: Gated, capsys: pytest.CaptureFixture[str]
) -> None:
    """openQA had no test for it: NOT_APPLICABLE, recorded as such; it satisfies the rule (which
    does not say `applicable: required`), so the compose may be promoted."""
    assert gated.run(gate.Policy()).status == RunStatus.FINISHED
    pending_id = statuses(gated.run(require_openqa(gated)))[GTK][1]
    code, out, _ = factory(
        capsys, "check", "record", pending_id, "openqa.install", "--outcome", "NOT_APPLICABLE",
        "--note", "no openQA test covers a library module", "--repo", str(gated.root),
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[0] == f"recorded openqa.install NOT_APPLICABLE on {pending_id} ({GTK}, PENDING)"
    recorded = {r.check: r.state for r in testnotes.read(gated.lineage, pending_id)}
    assert recorded["openqa.install"] == CheckState.NOT_APPLICABLE
    code, out, _ = factory(capsys, "gate", pending_id, "--promote", "--repo", str(gated.root))
    assert code == 0, out
    assert "openqa.install: NOT_APPLICABLE - did not apply: no openQA test covers a library module" in out
    assert gated.lineage.latest()[GTK] == pending_id


def test_check_record_refuses_bad_input_and_writes_nothing(
    gated: Gated, capsys: pytest.CaptureFixture[str]
) -> None:
    gated.run(gate.Policy())
    cid = gated.lineage.latest()[GTK]
    tests_before = notes_ref(gated.root, "refs/notes/tests")
    record = ["check", "record", "--repo", str(gated.root)]
    code, _, err = factory(capsys, *record, "not-a-compose", "openqa.install", "--outcome", "PASSED")
    assert code == 2 and "not a compose ID: 'not-a-compose'" in err
    code, _, err = factory(
        capsys, *record, "FL-42-nothing-20261121.t.0", "openqa.install", "--outcome", "PASSED"
    )
    assert code == 2 and "FL-42-nothing-20261121.t.0" in err
    code, _, err = factory(capsys, *record, cid, "openqa.install", "--outcome", "PASSED", "--url", "openqa")
    assert code == 2 and "--url: not an http(s) URL" in err
    with pytest.raises(SystemExit) as exited:
        cli.main([*record, cid, "openqa.install", "--outcome", "MAYBE"])
    assert exited.value.code == 2
    assert "invalid choice: 'MAYBE'" in capsys.readouterr().err
    assert notes_ref(gated.root, "refs/notes/tests") == tests_before


class Watching:
    """A check that looks at refs/notes/tests while it runs, through a handle of its own."""

    name = "watching"
    kinds = frozenset({"repo"})

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: dict[str, list[tuple[str, CheckState, str]]] = {}

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        lineage = Lineage(self.root)
        try:
            self.seen[job.compose_id] = [
                (r.check, r.state, r.finished) for r in testnotes.running(lineage, job.compose_id)
            ]
        finally:
            lineage.close()
        return CheckResult(self.name, CheckState.PASSED)


def test_a_check_is_recorded_running_while_it_runs(gated: Gated) -> None:
    watching = Watching(gated.root)
    gated.run(gate.Policy(), [watching])
    assert watching.seen  # it ran on every repo
    for cid, seen in watching.seen.items():
        # Checks run one after another: repoclosure has its result on the stand-in, watching is RUNNING.
        assert ("watching", CheckState.RUNNING, "") in seen, cid
        # Once the results are on the compose's tag, the RUNNING note is gone.
        assert testnotes.running(gated.lineage, cid) == []
        assert {r.check: r.state for r in testnotes.read(gated.lineage, cid)}["watching"] == CheckState.PASSED
    stand_in = testnotes.running_object(next(iter(watching.seen))).oid.hex()
    assert stand_in not in git(gated.root, "notes", "--ref=tests", "list")
    # The notes history shows it: a notes commit per check start, before the results.
    subjects = git(gated.root, "log", "--format=%s", "refs/notes/tests").splitlines()
    assert any(s.startswith("Check watching of ") and s.endswith(" is running") for s in subjects)


def test_pending_and_promoted_records_round_trip_and_old_notes_still_read() -> None:
    base = dict(
        compose_id="FL-42-gtk-3-20261121.t.0", node=GTK, input_digest="d", key="k", commit="c" * 40,
        inputs=(), pins=(), outputs=(), outputs_digest="", tools=(), started="2026-11-21T10:00:00Z",
        finished="2026-11-21T10:00:01Z",
    )  # fmt: skip
    pending = Record(**base, status=ComposeStatus.PENDING, message="waits for openqa.install")  # type: ignore[arg-type]
    assert "promoted" not in pending.to_json()
    assert Record.from_json(pending.to_json()) == pending
    promoted = Record(**base, status=ComposeStatus.FINISHED, promoted="2026-11-22T08:00:00Z")  # type: ignore[arg-type]
    assert Record.from_json(promoted.to_json()) == promoted
    old = {k: v for k, v in promoted.to_json().items() if k != "promoted"}  # written before issue 11
    assert Record.from_json(old).promoted == ""


def test_an_outside_result_travels_with_lineage_push_and_pull(
    remote: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner, tester = clone(remote, tmp_path / "runner"), clone(remote, tmp_path / "tester")
    cid = remote_compose(runner, "module:gtk:3", "gtk-3")
    assert cli.main(["lineage", "push", "--repo", str(runner)]) == 0
    # The test system's side: pull, record openQA's verdict, push.
    assert cli.main(["lineage", "pull", "--repo", str(tester)]) == 0
    code, _, _ = factory(
        capsys, "check", "record", cid, "openqa.install", "--outcome", "PASSED",
        "--url", "https://openqa.example.invalid/tests/7", "--repo", str(tester),
    )  # fmt: skip
    assert code == 0
    assert cli.main(["lineage", "push", "--repo", str(tester)]) == 0
    # The runner pulls it, and git's own client shows it.
    assert cli.main(["lineage", "pull", "--repo", str(runner)]) == 0
    lineage = Lineage(runner)
    found = [(r.check, r.state, r.url, r.origin) for r in testnotes.read(lineage, cid)]
    assert found == [
        ("openqa.install", CheckState.PASSED, "https://openqa.example.invalid/tests/7", "external")
    ]
    shown = json.loads(git(runner, "notes", "--ref=tests", "show", f"compose/{cid}"))
    assert shown["results"][0]["origin"] == "external"


def test_promoting_an_old_pending_compose_leaves_a_newer_latest_good(
    gated: Gated, capsys: pytest.CaptureFixture[str]
) -> None:
    gated.run(gate.Policy())
    pending_id = statuses(gated.run(require_openqa(gated)))[GTK][1]
    # gtk changes again and openQA is no longer required of it: a newer compose is latest good.
    gated.composers["build"].content = {"build:gtk3@b2838247": "another fix"}
    gated.composers["build"].tools = lambda: {"writer": "3"}  # type: ignore[method-assign]
    newer = statuses(gated.run(gate.Policy()))[GTK]
    assert newer[0] == NodeStatus.COMPOSED
    code, _, _ = factory(
        capsys,
        "check",
        "record",
        pending_id,
        "openqa.install",
        "--outcome",
        "PASSED",
        "--repo",
        str(gated.root),
    )
    assert code == 0
    code, out, _ = factory(capsys, "gate", pending_id, "--promote", "--repo", str(gated.root))
    assert code == 0
    assert out.splitlines()[-1].endswith(f"not latest good: a newer compose of {GTK} is")
    assert gated.lineage.get(pending_id).status == ComposeStatus.FINISHED
    assert gated.lineage.latest()[GTK] == newer[1]


def test_a_failed_compose_is_never_promoted(gated: Gated, capsys: pytest.CaptureFixture[str]) -> None:
    gated.composers["module"].failing = {GTK}
    failed_id = statuses(gated.run(gate.Policy()))[GTK][1]
    code, _, err = factory(capsys, "gate", failed_id, "--promote", "--repo", str(gated.root))
    assert code == 2 and "is FAILED: a failed compose is composed again, never promoted" in err
    assert GTK not in gated.lineage.latest()


def test_a_change_that_returns_none_removes_a_note_and_its_emptied_subtree(tmp_path: Path) -> None:
    commit_tree(tmp_path, {"a": b"a\n"}, "one\n")
    repo = open_repo(tmp_path)
    objects = [GitObject.make(b"blob", f"object {n}\n".encode()) for n in range(3)]
    names = [o.oid.hex() for o in objects]
    notes.update_notes(
        repo, "refs/notes/x", {n: b"note\n" for n in names}, "add\n", 1767225600, extra=objects
    )
    notes.update_notes(repo, "refs/notes/x", {names[0]: lambda old: None}, "remove\n", 1767225601)
    listed = git(tmp_path, "notes", "--ref=x", "list").split()
    assert sorted(listed[1::2]) == sorted(names[1:])
    assert git(tmp_path, "ls-tree", "--name-only", "refs/notes/x").split() == sorted(
        {n[:2] for n in names[1:]}
    )
    assert git(tmp_path, "fsck", "--no-dangling") == ""
