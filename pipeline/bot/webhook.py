"""`factory bot serve`: GitLab push webhooks and a timer, both turned into reconcile passes.

A push event names a component (`project.path_with_namespace`'s last part, or
`repository.name`) and a branch; the server answers 202 at once and queues a reconcile of that
component. One worker runs the passes, one at a time, coalescing repeats; it also runs a full
pass when it starts and every `interval` seconds, so nothing depends on a webhook arriving.

Requests must carry `X-Gitlab-Token` equal to the configured secret (compared in constant
time); without a configured secret every request is refused. Bodies are bounded.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.core.errors import FactoryError

log = logging.getLogger("factory.bot")

MAX_BODY = 1024 * 1024
SECRET_VARIABLE = "FACTORY_WEBHOOK_SECRET"
ALL = ""  # the queued name of a full pass

Reconcile = Callable[[str | None], object]  # component, or None for every tracked branch


class BotServer(ThreadingHTTPServer):
    """The webhook server and its reconcile worker. `start()` runs both in threads; `stop()` ends them."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        secret: str | None,
        reconcile: Reconcile,
        *,
        interval: float = 300.0,
        max_body: int = MAX_BODY,
    ) -> None:
        super().__init__(address, _Handler)
        self.secret = secret.encode() if secret else None
        self.reconcile = reconcile
        self.interval = interval
        self.max_body = max_body
        self.passes = 0  # reconcile passes run so far (for tests and logs)
        self._pending: list[str] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._workers: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def request_pass(self, component: str | None) -> None:
        """Queue a reconcile of one component (None: of everything); repeats coalesce."""
        name = ALL if component is None else component
        with self._wake:
            if name not in self._pending and ALL not in self._pending:
                self._pending.append(name)
            self._wake.notify_all()

    def start(self) -> None:
        for target in (self.serve_forever, self._work):
            thread = threading.Thread(target=target, daemon=True, name=f"factory-bot-{target.__name__}")
            thread.start()
            self._workers.append(thread)

    def wait(self, timeout: float) -> None:
        """Block until the server stops or timeout seconds pass."""
        if self._workers:
            self._workers[0].join(timeout=timeout)

    def stop(self) -> None:
        """Stop serving, let a running pass finish, and close the socket."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self.shutdown()
        for thread in self._workers:
            thread.join(timeout=30)
        self.server_close()

    def _work(self) -> None:
        due = time.monotonic()  # a full pass at start: catch up with what happened while down
        while True:
            with self._wake:
                while not self._pending and not self._stopping and time.monotonic() < due:
                    self._wake.wait(timeout=max(0.0, due - time.monotonic()))
                if self._stopping:
                    return
                name = self._pending.pop(0) if self._pending else ALL
            if name == ALL:
                due = time.monotonic() + self.interval
            self._run(None if name == ALL else name)

    def _run(self, component: str | None) -> None:
        what = component or "every tracked branch"
        try:
            self.reconcile(component)
        except FactoryError as exc:
            log.error("reconcile of %s failed: %s", what, exc.message)
        except Exception:
            log.exception("reconcile of %s failed with a bug", what)
        finally:
            self.passes += 1


class _Handler(BaseHTTPRequestHandler):
    server: BotServer
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = self._length()
        if not self._authorized():
            self._discard(length)
            self._answer(401, {"error": "missing or wrong X-Gitlab-Token"})
            return
        if length is None:
            self._answer(411, {"error": "Content-Length required"})
            return
        if length > self.server.max_body:
            self._discard(length)
            self._answer(413, {"error": f"body larger than {self.server.max_body} bytes"})
            return
        try:
            event = json.loads(self.rfile.read(length))
        except ValueError:
            self._answer(400, {"error": "body is not JSON"})
            return
        component, problem = push_component(event)
        if component is None:
            self._answer(200 if problem.startswith("ignored") else 400, {"status": problem})
            return
        self.server.request_pass(component)
        self._answer(202, {"status": "accepted", "component": component})

    def _authorized(self) -> bool:
        given = self.headers.get("X-Gitlab-Token")
        secret = self.server.secret
        if secret is None or given is None:
            return False
        return hmac.compare_digest(given.encode(), secret)

    def _length(self) -> int | None:
        try:
            value = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None
        return value if value >= 0 else None

    def _discard(self, length: int | None) -> None:
        """Read a refused body when it is small enough, so closing does not reset the connection."""
        if length is not None and length <= 4 * self.server.max_body:
            self.rfile.read(length)

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def push_component(event: Any) -> tuple[str | None, str]:
    """The component a GitLab push event is about, or None and why not."""
    if not isinstance(event, dict):
        return None, "event is not a JSON object"
    ref = event.get("ref")
    if not isinstance(ref, str) or not ref.startswith("refs/heads/"):
        return None, "ignored: not a push to a branch"
    project = event.get("project")
    repository = event.get("repository")
    name = None
    if isinstance(project, dict) and isinstance(project.get("path_with_namespace"), str):
        name = project["path_with_namespace"].rsplit("/", 1)[-1]
    elif isinstance(repository, dict) and isinstance(repository.get("name"), str):
        name = repository["name"]
    if not name:
        return None, "event names no project or repository"
    return name, ""


def make_server(
    host: str,
    port: int,
    secret: str | None,
    reconcile: Reconcile,
    *,
    interval: float = 300.0,
    max_body: int = MAX_BODY,
) -> BotServer:
    """A server bound to host:port (0: any free port), not yet started."""
    return BotServer((host, port), secret, reconcile, interval=interval, max_body=max_body)
