"""A static file server on 127.0.0.1 for tests: python's http.server in a thread, recording
every path it was asked for (what a mirror's web server would log)."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Served:
    """Where the directory is served, and every request made (`GET /path 200`)."""

    url: str
    requests: list[str] = field(default_factory=list)

    def paths(self, status: int | None = None) -> list[str]:
        """The paths asked for (only those answered with `status`, if given)."""
        found = []
        for line in list(self.requests):
            _, path, code = line.split(" ")
            if status is None or int(code) == status:
                found.append(path)
        return found


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[Served]:
    """Serve directory over HTTP until the block ends."""
    served = Served("")

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            served.requests.append(f"{self.command} {self.path} {code}")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: errors show as status codes in `requests`."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
