"""A real OCI registry for tests: Debian's docker-registry (the CNCF distribution registry) on a
free loopback port.

`start` writes a small config (filesystem storage under the directory, deletes enabled,
optional htpasswd login), runs `docker-registry serve CONFIG` and waits until `GET /v2/`
answers; `stop` ends that process. Its access log (combined format) is kept in a file, so a test
can count the requests the registry really served (`requests`), and reach a blob's bytes in its
storage (`blob_data`) or run its garbage collector (`garbage_collect`).
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.registry_token import TokenServer

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

    def requests(self, method: str, pattern: str, status: int | None = None) -> int:
        """How many requests the registry served with this method and a path matching pattern."""
        count = 0
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            found = re.search(r'"(\w+) (\S+) HTTP/[\d.]+" (\d+)', line)
            if found and found[1] == method and re.search(pattern, found[2]):
                count += status is None or int(found[3]) == status
        return count

    def blob_data(self, sha256: str) -> Path:
        """Where the registry keeps a blob's bytes (to corrupt or remove it in a test)."""
        return self.root / "docker/registry/v2/blobs/sha256" / sha256[:2] / sha256 / "data"

    def garbage_collect(self) -> str:
        """Run the registry's own garbage collector over its storage (untagged manifests too)."""
        done = subprocess.run(
            [BINARY, "garbage-collect", "--delete-untagged", str(self.config)],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

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


def start(
    directory: Path,
    *,
    listen: str = "127.0.0.1",
    users: dict[str, str] | None = None,
    token: TokenServer | None = None,
) -> Registry:
    """A running registry storing under directory; with users, it asks for an htpasswd login
    (Basic); with a token server, for bearer tokens from it (as GitLab's registry does)."""
    if not Path(BINARY).exists():
        pytest.skip("docker-registry is not installed (make deps installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port(listen)
    auth = ""
    if users:
        _htpasswd(directory / "htpasswd", users)
        auth = f"auth:\n  htpasswd:\n    realm: factory-test\n    path: {directory / 'htpasswd'}\n"
    if token is not None:
        auth = token.config()
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
