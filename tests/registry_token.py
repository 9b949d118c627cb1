"""A token server for tests: the Docker registry token flow, as GitLab's registry uses it.

A registry configured with `auth: token` (see `registry.start(token=...)`) answers 401 with
`WWW-Authenticate: Bearer realm=…,service=…,scope=repository:NAME:ACTIONS`; the client asks the
realm for a token with Basic credentials and that scope, and sends it as `Bearer`. This server
checks the credentials and grants exactly the scope asked for (as GitLab does), in a JWT signed
RS256 with a throwaway key (openssl) whose certificate the registry trusts (`x5c` header).
Every grant is recorded, so a test can see which scopes the client asked for.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SERVICE = "factory-test-registry"
ISSUER = "factory-test-token-server"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenServer:
    """A loopback token endpoint (`realm`) for the users given."""

    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.key = directory / "token.key"
        self.cert = directory / "token.crt"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(self.key),
                "-out",
                str(self.cert),
                "-subj",
                "/CN=factory-test-token",
                "-days",
                "2",
            ],
            check=True,
            capture_output=True,
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True, capture_output=True
        ).stdout
        self.x5c = base64.b64encode(der).decode("ascii")
        self.users = users
        self.granted: list[str] = []  # the scopes granted, in order
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        given = request.headers.get("Authorization", "")
        user = ""
        if given.startswith("Basic "):
            name, _, password = base64.b64decode(given[6:]).decode("utf-8").partition(":")
            if self.users.get(name) == password:
                user = name
        if not user:
            request.send_response(401)
            request.end_headers()
            return
        query = parse_qs(urlsplit(request.path).query)
        access: list[dict[str, object]] = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
            with self.lock:
                self.granted.append(scope)
        body = json.dumps({"token": self.token(user, access)}).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def token(self, user: str, access: list[dict[str, object]]) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signed.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return f"{signed}.{_b64(signature)}"

    def config(self) -> str:
        """The registry's `auth:` section for this server."""
        return (
            f"auth:\n  token:\n    realm: {self.realm}\n    service: {SERVICE}\n"
            f"    issuer: {ISSUER}\n    rootcertbundle: {self.cert}\n"
        )

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
