"""A real OCI registry for tests: Debian's docker-registry (the CNCF distribution registry) on a
free loopback port.

`start` writes a small config (filesystem storage under the directory, optional htpasswd
login), runs `docker-registry serve CONFIG` and waits until `GET /v2/` answers; `stop` ends that
process. Its log is kept in a file, so a test can read what the registry served.

(The artifact store's branch has tests/oci_registry.py with the same `start`/`Registry` shape;
the two can become one module.)
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARY = "/usr/bin/docker-registry"


@dataclass
class Registry:
    host: str
    port: int
    root: Path  # its storage directory
    config: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        """`HOST:PORT`, as image references and factory.yaml's release.registry name it."""
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _htpasswd(path: Path, users: dict[str, str]) -> None:
    """bcrypt entries, as the registry's htpasswd auth wants (libxcrypt makes them)."""
    with warnings.catch_warnings():  # crypt is deprecated (gone in 3.13); no package needed here
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    path.write_text(
        "".join(
            f"{u}:{crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n"
            for u, p in users.items()
        ),
        encoding="utf-8",
    )


def start(directory: Path, *, listen: str = "127.0.0.1", users: dict[str, str] | None = None) -> Registry:
    """A running registry storing under directory; with users, it asks for an htpasswd login."""
    if not Path(BINARY).exists():
        pytest.skip("docker-registry is not installed (make deps installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port(listen)
    auth = ""
    if users:
        _htpasswd(directory / "htpasswd", users)
        auth = f"auth:\n  htpasswd:\n    realm: factory-test\n    path: {directory / 'htpasswd'}\n"
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {listen}:{port}\n" + auth,
        encoding="utf-8",
    )
    log = directory / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([BINARY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    registry = Registry(listen, port, directory / "data", config, log, process)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://{listen}:{port}/v2/", timeout=2).close()
            return registry
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # up, and asking for a login
                return registry
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            registry.stop()
            raise RuntimeError(f"docker-registry did not start:\n{log.read_text()}")
        time.sleep(0.05)
