"""`factory bot serve`: a real HTTP server on 127.0.0.1, talked to with urllib."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.bot.forge_choice import make_forge
from pipeline.bot.forge_local import LocalForge
from pipeline.bot.reconcile import reconcile
from pipeline.bot.webhook import BotServer, make_server, push_component
from pipeline.git.repo import open_repo
from pipeline.workspace import Workspace
from tests.conftest import materialize_example

SECRET = "s3cret-webhook-token"
PUSH = {
    "object_kind": "push",
    "ref": "refs/heads/f42",
    "project": {"path_with_namespace": "rpms/openssl"},
    "repository": {"name": "openssl"},
}


class Calls:
    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self.event = threading.Event()

    def __call__(self, component: str | None) -> None:
        self.seen.append(component)
        if component is not None:
            self.event.set()


@pytest.fixture
def served() -> Iterator[tuple[BotServer, Calls]]:
    calls = Calls()
    server = make_server("127.0.0.1", 0, SECRET, calls, interval=3600, max_body=1024)
    server.start()
    yield server, calls
    server.stop()


def post(server: BotServer, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_valid_push_is_accepted_and_reconciles_its_component(served: tuple[BotServer, Calls]) -> None:
    server, calls = served
    status, body = post(server, json.dumps(PUSH).encode(), SECRET)
    assert (status, body) == (202, {"component": "openssl", "status": "accepted"})
    assert calls.event.wait(10)
    assert "openssl" in calls.seen


@pytest.mark.parametrize("token", [None, "", "wrong", SECRET + "x"])
def test_missing_or_wrong_secret_is_refused(served: tuple[BotServer, Calls], token: str | None) -> None:
    server, calls = served
    status, _ = post(server, json.dumps(PUSH).encode(), token)
    assert status == 401
    assert "openssl" not in calls.seen


def test_no_configured_secret_refuses_everything() -> None:
    calls = Calls()
    server = make_server("127.0.0.1", 0, None, calls, interval=3600)
    server.start()
    try:
        assert post(server, json.dumps(PUSH).encode(), "")[0] == 401
        assert post(server, json.dumps(PUSH).encode(), "anything")[0] == 401
    finally:
        server.stop()


def test_oversized_and_malformed_bodies(served: tuple[BotServer, Calls]) -> None:
    server, calls = served
    assert post(server, b"{" + b" " * 2048 + b"}", SECRET)[0] == 413
    assert post(server, b"not json", SECRET)[0] == 400
    assert post(server, json.dumps({"ref": "refs/heads/f42"}).encode(), SECRET)[0] == 400
    assert post(server, json.dumps({**PUSH, "ref": "refs/tags/v1"}).encode(), SECRET)[0] == 200
    assert "openssl" not in calls.seen


def test_push_component() -> None:
    assert push_component(PUSH) == ("openssl", "")
    assert push_component({"ref": "refs/heads/f42", "repository": {"name": "bash"}}) == ("bash", "")
    assert push_component([])[0] is None


def test_the_timer_reconciles_everything() -> None:
    calls = Calls()
    done = threading.Event()

    def reconcile_all(component: str | None) -> None:
        calls(component)
        if calls.seen.count(None) >= 2:
            done.set()

    server = make_server("127.0.0.1", 0, SECRET, reconcile_all, interval=0.05)
    server.start()
    try:
        assert done.wait(10)
    finally:
        server.stop()


def test_a_push_runs_a_real_reconcile(example_repo: Path) -> None:
    materialize_example(example_repo)
    done = threading.Event()

    def run(component: str | None) -> None:
        ws = Workspace.open(example_repo)
        reconcile(ws, make_forge("local", ws, "master"), target="master", component=component)
        if component == "openssl":
            done.set()

    server = make_server("127.0.0.1", 0, SECRET, run, interval=3600)
    server.start()
    try:
        assert post(server, json.dumps(PUSH).encode(), SECRET)[0] == 202
        assert done.wait(30)
    finally:
        server.stop()
    titles = [mr.title for mr in LocalForge(open_repo(example_repo)).all()]
    assert "Bump openssl (f42) to 9d0324eb — CVE-2026-1234" in titles
