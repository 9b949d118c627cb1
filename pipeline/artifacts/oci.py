"""The `oci://host[:port]/namespace` artifact store: any OCI distribution registry, through `oras`.

All composes live in one repository (`namespace`, e.g. `group/project/factory-store`), so the
registry stores a blob shared by many composes once. One compose is one OCI artifact:

    manifest (tagged `tag_for(compose_id)`), artifactType application/vnd.factory.compose.v1+json
      config  = the compose's factory manifest (canonical JSON, media type MANIFEST_MEDIA_TYPE):
                its digest is `Manifest.digest()`, the one a lineage record names
      layers  = one per file, media type FILE_MEDIA_TYPE, annotated with the file's path
                (org.opencontainers.image.title, so `oras pull` lays the tree out) and mode;
                a compose whose annotated manifest would pass the registries' 4 MB limit lists
                each distinct blob once, without annotations (the config still has every path)

Blobs go up first (a HEAD on /v2/<name>/blobs/<digest> first: a blob the registry has is not
sent again), streamed and hashed as they are read; then the config; the manifest last, and the
registry refuses a manifest whose blobs it lacks. Deleting a compose deletes its manifest; the
registry's own garbage collector (`registry garbage-collect`, GitLab's online GC) then frees
blobs no manifest references.

Plain HTTP is used only for a loopback registry (127.0.0.0/8, ::1, localhost), TLS with
certificate checks everywhere else, as container tools do. Credentials come from the
environment (`pipeline.core.credentials`) and never appear in a message, an error or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin

import oras.auth  # type: ignore[import-untyped]
import oras.provider  # type: ignore[import-untyped]
import oras.utils  # type: ignore[import-untyped]
import requests

from pipeline import retry
from pipeline.artifacts.blobs import CHUNK, BlobDir, DigestMismatch
from pipeline.artifacts.oci_names import HASHED_TAG_RE, OciLocation, compose_for, tag_for
from pipeline.artifacts.store import (
    FetchReport,
    Obtained,
    StoreReporter,
    describe_for_put,
    mismatch_error,
    parse_manifest,
    place_files,
    refuse_other_manifest,
)
from pipeline.core.canonical import canonical_json
from pipeline.core.credentials import STORE, registry_credentials
from pipeline.core.errors import OperationFailed
from pipeline.core.manifest import Manifest, ManifestFile
from pipeline.core.records import OutputFile

log = logging.getLogger("factory.store")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.factory.compose.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.factory.manifest.v1+json"
FILE_MEDIA_TYPE = "application/vnd.factory.file.v1"
TITLE = "org.opencontainers.image.title"
MODE = "io.factory.mode"
COMPOSE_ID = "io.factory.compose-id"
MANIFEST_LIMIT = 4_000_000  # bytes; distribution and most registries refuse manifests over 4 MiB
WORKERS = 8  # blobs moved at once
TIMEOUT = (30, 300)  # seconds to connect, and between two reads of an answer
RETRIES = 4  # attempts of a request that can be sent again, on a dropped connection or a 5xx
BACKOFF = retry.Backoff(first=0.2, most=5.0)  # before the second attempt, then twice as long
SWEEP_GRACE = 3600.0


class _Registry(oras.provider.Registry):  # type: ignore[misc]
    """oras's registry client, with the retries and credentials a store wants."""

    basic: str = ""  # base64 of user:password when the registry asks for Basic auth

    def do_request(
        self,
        url: str,
        method: str = "GET",
        data: Any = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        # oras's own retry sleeps 3 + 3**n seconds over 5 attempts on any failure (two minutes
        # against a registry that is down) and re-sends a body it has consumed. A store retries
        # only what can be sent again (no body, or bytes) on a dropped connection or a 5xx, a
        # few times quickly: distribution's filesystem storage answers 500 ("invalid checksum
        # digest format") to a HEAD that races a concurrent upload of the same blob.
        headers = dict(headers or {})
        if self.basic:
            headers["Authorization"] = f"Basic {self.basic}"
        attempts = RETRIES if data is None or isinstance(data, bytes) else 1
        for attempt in retry.attempts(attempts, BACKOFF):
            try:
                response: requests.Response = _send(self, url, method, data, dict(headers), json, stream)
                if response.status_code == 401 and attempts > 1 and self.rescoped(response, headers):
                    response = _send(self, url, method, data, dict(headers), json, stream)
            except requests.ConnectionError:
                if attempt.last:
                    raise
            else:
                if response.status_code < 500 or attempt.last:
                    return response
                response.close()
        raise AssertionError("unreachable")

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header the client has now (Basic, or the bearer token it holds)."""
        if self.basic:
            return {"Authorization": f"Basic {self.basic}"}
        found: dict[str, str] = self.auth.get_auth_header()
        return found

    def rescoped(self, response: requests.Response, headers: dict[str, str]) -> bool:
        """Get a new bearer token for the scope a 401 asks for; whether there is one.

        oras answers a 401 with the token it holds, which was granted for the scope of the first
        challenge (a pull, say); a registry that then asks for push (GitLab, Harbor) keeps
        answering 401 until a token for the new scope is requested.
        """
        if not isinstance(self.auth, oras.auth.TokenAuth) or not getattr(self.auth, "_basic_auth", None):
            return False
        _, changed = self.auth.authenticate_request(response, dict(headers), refresh=True)
        return bool(changed)


_send = oras.provider.Registry.do_request.__wrapped__  # oras's request, without its retry loop


class _TimeoutSession(requests.Session):
    """A session whose requests give up on a registry that stops answering (oras sets none)."""

    def __init__(self) -> None:
        super().__init__()
        # Ignore cookies, as oras does: some registries take one as a sign of a browser.
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)


class _HashingReader:
    """A file read by requests as a request body, hashed as it goes."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size if size and size > 0 else CHUNK)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk


class OciStore:
    """An artifact store in an OCI registry (see the module docstring for the layout)."""

    def __init__(
        self,
        location: OciLocation,
        *,
        env: Mapping[str, str],
        cache: Path,
        reporter: StoreReporter | None = None,
    ) -> None:
        self.location = location
        self.url = location.url
        self.cache = BlobDir(cache)
        self.reporter = reporter or StoreReporter()
        self._credentials = registry_credentials(env, location.registry, prefix=STORE)
        self._scheme = "http" if location.plain_http else "https"
        self._local = threading.local()  # one oras client per thread: each holds its own token
        self._clients: list[_Registry] = []
        self._basic: bool | None = None  # what the registry asks for, once pinged
        self._lock = threading.RLock()  # _redact takes it too, also inside _connect
        self._blob_locks: dict[str, threading.Lock] = {}

    # -- the protocol ---------------------------------------------------------------------------

    def put(self, compose_id: str, output_dir: Path, files: Sequence[OutputFile]) -> Manifest:
        """Store the files of a compose, then its manifest (see `ArtifactStore.put`)."""
        manifest = describe_for_put(compose_id, output_dir, files)
        existing = self.manifest(compose_id)
        if existing is not None:
            refuse_other_manifest(existing, manifest, self.url)
            return existing
        first: dict[str, ManifestFile] = {}
        for file in manifest.files:
            first.setdefault(file.sha256, file)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(lambda f: self._put_file(compose_id, output_dir, f), first.values()))
        config = manifest.to_bytes()
        self._put_bytes(config, manifest.digest())
        body = _oci_manifest(manifest, len(config))
        response = self._request(
            "PUT", self._manifest_url(tag_for(compose_id)), data=body, headers={"Content-Type": OCI_MANIFEST}
        )
        self._expect(response, (201,), f"storing the manifest of {compose_id}")
        return manifest

    def manifest(self, compose_id: str) -> Manifest | None:
        """The compose's manifest, or None (one that does not parse is an OperationFailed)."""
        response = self._request(
            "GET", self._manifest_url(tag_for(compose_id)), headers={"Accept": OCI_MANIFEST}
        )
        if response.status_code == 404:
            return None
        self._expect(response, (200,), f"reading the manifest of {compose_id}")
        config = _config_digest(response, compose_id, self.url)
        blob = self._request("GET", self._blob_url(config))
        self._expect(blob, (200,), f"reading the manifest of {compose_id}")
        if hashlib.sha256(blob.content).hexdigest() != config:
            raise OperationFailed(
                f"the manifest of {compose_id} in the store {self.url} is corrupt (its sha256 is not {config})",
                code="store-corrupt",
            )
        return parse_manifest(blob.content, compose_id, self.url)

    def has(self, compose_id: str) -> bool:
        response = self._request(
            "HEAD", self._manifest_url(tag_for(compose_id)), headers={"Accept": OCI_MANIFEST}
        )
        if response.status_code == 404:
            return False
        self._expect(response, (200,), f"looking for {compose_id}")
        return True

    def fetch(self, manifest: Manifest, output_dir: Path, only: Collection[str] | None = None) -> FetchReport:
        """Make the manifest's files exist under output_dir (see `ArtifactStore.fetch`)."""
        return place_files(manifest, output_dir, only, self, workers=WORKERS)

    def composes(self) -> list[str]:
        found = []
        for tag in self._tags():
            cid = compose_for(tag)
            if cid is None and HASHED_TAG_RE.fullmatch(tag):
                cid = self._annotated_compose(tag)
            if cid is not None:
                found.append(cid)
        return sorted(found)

    def delete(self, compose_id: str) -> bool:
        url = self._manifest_url(tag_for(compose_id))
        head = self._request("HEAD", url, headers={"Accept": OCI_MANIFEST})
        if head.status_code == 404:
            return False
        self._expect(head, (200,), f"deleting {compose_id}")
        digest = head.headers.get("Docker-Content-Digest", "")
        response = self._request("DELETE", self._manifest_url(digest))
        if response.status_code == 405:
            raise OperationFailed(
                f"the registry of {self.url} does not allow deleting manifests",
                hint="enable it (distribution: storage.delete.enabled: true)",
                code="store-delete",
            )
        self._expect(response, (202,), f"deleting {compose_id}")
        return True

    def sweep(self, keep: set[str], *, grace: float = SWEEP_GRACE) -> int:
        """Trim the local blob cache to `keep` (bytes freed). The registry frees its own blobs:
        its garbage collector removes those no manifest references once `delete` removed them."""
        return self.cache.sweep(keep, grace=grace)

    # -- BlobSource: the local cache, filled from the registry ------------------------------------

    def obtain(self, compose_id: str, file: ManifestFile) -> Obtained:
        with self._blob_lock(file.sha256):
            if self.cache.has(file.sha256):
                return Obtained(self.cache.path(file.sha256), "cached", verified=False)
            self._download(compose_id, file)
            return Obtained(self.cache.path(file.sha256), "fetched", verified=True)

    def corrupt(self, compose_id: str, file: ManifestFile, exc: DigestMismatch) -> Obtained:
        log.warning("the cached blob of %s was corrupt (%s): downloading it again", file.path, exc)
        with self._blob_lock(file.sha256):
            self.cache.path(file.sha256).unlink(missing_ok=True)
            self._download(compose_id, file)
        return Obtained(self.cache.path(file.sha256), "fetched", verified=True)

    # -- blobs ---------------------------------------------------------------------------------

    def _put_file(self, compose_id: str, output_dir: Path, file: ManifestFile) -> None:
        if self._blob_exists(file.sha256):
            self.reporter.already_stored(file.sha256, file.size)
            return
        for attempt in retry.attempts(RETRIES, BACKOFF):  # the retry reads the file again
            try:
                handle = (output_dir / file.path).open("rb")
            except OSError as exc:
                raise OperationFailed(
                    f"compose {compose_id}: cannot read file {file.path}: {exc.strerror}", code="store-put"
                ) from exc
            with handle:
                reader = _HashingReader(handle)
                response = self._upload(file.sha256, file.size, reader)
            if reader.digest.hexdigest() != file.sha256 or reader.size != file.size:
                raise OperationFailed(
                    f"compose {compose_id}: file {file.path} does not match its sha256: expected "
                    f"{file.sha256}, read {reader.digest.hexdigest()} ({reader.size} bytes)",
                    hint="the file changed after the compose described it",
                    code="store-put",
                )
            if response.status_code == 401 and not attempt.last:
                # the token expired or was granted for less (another scope): get a new one
                self._connect().rescoped(response, {})
                continue
            if response.status_code < 500 or attempt.last:
                break
        if response.status_code == 401:
            raise self._auth_error(response)
        self._expect(response, (201,), f"uploading {file.path} of {compose_id}")
        self.reporter.uploaded(file.sha256, file.size)

    def _put_bytes(self, data: bytes, sha256: str) -> None:
        if not self._blob_exists(sha256):
            response = self._upload(sha256, len(data), data)
            self._expect(response, (201,), "uploading a manifest")

    def _blob_exists(self, sha256: str) -> bool:
        response = self._request("HEAD", self._blob_url(sha256))
        if response.status_code == 404:
            return False
        self._expect(response, (200,), f"looking for blob sha256:{sha256}")
        return True

    def _upload(self, sha256: str, size: int, body: Any) -> requests.Response:
        """One monolithic upload (POST for a session, PUT of the bytes), streamed from `body`."""
        start = self._request("POST", f"{self._base()}/blobs/uploads/")
        self._expect(start, (202,), "starting an upload")
        location = start.headers.get("Location", "")
        if not location:
            raise OperationFailed(
                f"the registry of {self.url} gave no upload location", code="store-registry"
            )
        url = oras.utils.append_url_params(
            urljoin(f"{self._scheme}://{self.location.registry}/", location), {"digest": f"sha256:{sha256}"}
        )
        return self._request(
            "PUT",
            url,
            data=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            allow_401=True,
        )

    def _download(self, compose_id: str, file: ManifestFile) -> None:
        response = self._request("GET", self._blob_url(file.sha256), stream=True)
        with response:
            if response.status_code == 404:
                raise OperationFailed(
                    f"compose {compose_id}: file {file.path}: its blob sha256:{file.sha256} is missing "
                    f"from the store {self.url}",
                    code="store-missing",
                )
            self._expect(response, (200,), f"downloading {file.path} of {compose_id}")
            try:
                self.cache.add(file.sha256, _body(response, self._redact))
            except DigestMismatch as exc:
                raise mismatch_error(
                    compose_id, file.path, exc, f"its blob in the store {self.url}"
                ) from None
        self.reporter.downloaded(file.sha256, file.size)

    def _blob_lock(self, sha256: str) -> threading.Lock:
        with self._lock:
            return self._blob_locks.setdefault(sha256, threading.Lock())

    # -- tags ----------------------------------------------------------------------------------

    def _tags(self) -> Iterator[str]:
        url = f"{self._base()}/tags/list?n=1000"
        while url:
            response = self._request("GET", url)
            if response.status_code == 404:
                return  # the repository does not exist yet: no compose stored
            self._expect(response, (200,), "listing composes")
            yield from response.json().get("tags") or []
            following = response.links.get("next", {}).get("url", "")
            url = urljoin(f"{self._scheme}://{self.location.registry}/", following) if following else ""

    def _annotated_compose(self, tag: str) -> str | None:
        response = self._request("GET", self._manifest_url(tag), headers={"Accept": OCI_MANIFEST})
        self._expect(response, (200,), f"reading the manifest tagged {tag}")
        annotations = response.json().get("annotations") or {}
        cid = annotations.get(COMPOSE_ID)
        return cid if isinstance(cid, str) else None

    # -- HTTP ----------------------------------------------------------------------------------

    def _base(self) -> str:
        return f"{self._scheme}://{self.location.registry}/v2/{self.location.repository}"

    def _blob_url(self, sha256: str) -> str:
        return f"{self._base()}/blobs/sha256:{sha256}"

    def _manifest_url(self, reference: str) -> str:
        return f"{self._base()}/manifests/{reference}"

    def _request(
        self,
        method: str,
        url: str,
        *,
        data: Any = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        allow_401: bool = False,
    ) -> requests.Response:
        client = self._connect()
        try:
            if data is None or isinstance(data, bytes):
                response: requests.Response = client.do_request(
                    url, method, data=data, headers=headers, stream=stream
                )
            else:  # a streamed body is sent once: after a 401, oras would send it again, spent
                response = client.session.request(
                    method,
                    url,
                    data=data,
                    headers={**(headers or {}), **client.auth_headers()},
                    stream=stream,
                )
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc) from None
        except requests.RequestException as exc:
            raise OperationFailed(
                self._redact(f"cannot reach the artifact store {self.url}: {type(exc).__name__}: {exc}"),
                code="store-unreachable",
            ) from None
        except ValueError as exc:  # oras: "Cannot respond to request for authentication."
            raise OperationFailed(
                self._redact(f"the registry of {self.url} asked for a login factory cannot give: {exc}"),
                hint="set FACTORY_STORE_USER and FACTORY_STORE_PASSWORD (or CI_REGISTRY_USER and "
                "CI_REGISTRY_PASSWORD for the project's own registry)",
                code="store-auth",
            ) from None
        if response.status_code == 403 or (response.status_code == 401 and not allow_401):
            raise self._auth_error(response)
        return response

    def _connect(self) -> _Registry:
        """oras's client, made on first use after asking the registry how it wants to be logged in to."""
        client: _Registry | None = getattr(self._local, "client", None)
        if client is not None:
            return client
        with self._lock:
            if self._basic is None:
                ping = self._ping()
                challenge = ping.headers.get("WWW-Authenticate", "") if ping.status_code == 401 else ""
                self._basic = challenge.lower().startswith("basic")
            basic = self._basic
            client = _Registry(
                hostname=self.location.registry,
                insecure=self.location.plain_http,
                auth_backend="basic" if basic else "token",
            )
            # oras reads ~/.docker/config.json and ORAS_USER/ORAS_PASS on its own: the store's
            # credentials come from `registry_credentials` alone.
            client.auth._auth_config = {"auths": {}}
            client.session = client.auth.session = _TimeoutSession()
            client.auth._basic_auth = None
            if self._credentials is not None:
                user, password = self._credentials
                client.auth.set_basic_auth(user, password)
                if basic:
                    client.basic = client.auth._basic_auth
            self._clients.append(client)
        self._local.client = client
        return client

    def _ping(self) -> requests.Response:
        try:
            return requests.get(f"{self._scheme}://{self.location.registry}/v2/", timeout=30)
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc) from None
        except requests.RequestException as exc:
            raise OperationFailed(
                self._redact(f"cannot reach the artifact store {self.url}: {type(exc).__name__}: {exc}"),
                code="store-unreachable",
            ) from None

    def _tls_error(self, exc: Exception) -> OperationFailed:
        return OperationFailed(
            self._redact(f"no TLS connection to the artifact store {self.url}: {exc}"),
            hint="factory talks plain HTTP only to a registry on this machine (127.0.0.0/8, ::1, "
            "localhost); any other registry needs TLS with a trusted certificate",
            code="store-tls",
        )

    def _auth_error(self, response: requests.Response) -> OperationFailed:
        given = "with the credentials given" if self._credentials else "without credentials"
        return OperationFailed(
            self._redact(
                f"the registry of {self.url} refused access {given} "
                f"({response.status_code}{_registry_errors(response)})"
            ),
            hint="set FACTORY_STORE_USER and FACTORY_STORE_PASSWORD (or CI_REGISTRY_USER and "
            "CI_REGISTRY_PASSWORD for the project's own registry)",
            code="store-auth",
        )

    def _expect(self, response: requests.Response, statuses: tuple[int, ...], doing: str) -> None:
        if response.status_code not in statuses:
            raise OperationFailed(
                self._redact(
                    f"{doing} in the store {self.url}: the registry answered "
                    f"{response.status_code}{_registry_errors(response)}"
                ),
                code="store-registry",
            )

    def _redact(self, text: str) -> str:
        """text without any secret this store holds (password, its Basic form, a bearer token)."""
        secrets: list[str] = []
        if self._credentials is not None:
            user, password = self._credentials
            secrets += [password, base64.b64encode(f"{user}:{password}".encode()).decode()]
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            token = getattr(client.auth, "token", None)
            if isinstance(token, str):
                secrets.append(token)
        for secret in secrets:
            if secret:
                text = text.replace(secret, "[redacted]")
        return text


def _body(response: requests.Response, redact: Any) -> Iterator[bytes]:
    try:
        yield from response.iter_content(chunk_size=CHUNK)
    except requests.RequestException as exc:
        raise OperationFailed(redact(f"download interrupted: {exc}"), code="store-unreachable") from None


def _registry_errors(response: requests.Response) -> str:
    """The registry's error codes and messages (OCI distribution's error body), if any."""
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return ""
    found = [f"{e.get('code', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict)]
    return f": {'; '.join(found)}" if found else ""


def _config_digest(response: requests.Response, compose_id: str, url: str) -> str:
    try:
        config = response.json()["config"]
        media_type, digest = config["mediaType"], config["digest"]
    except (ValueError, KeyError, TypeError):
        media_type, digest = "", ""
    if media_type != MANIFEST_MEDIA_TYPE or not str(digest).startswith("sha256:"):
        raise OperationFailed(
            f"the artifact tagged for {compose_id} in {url} is not a factory compose", code="store-corrupt"
        )
    return str(digest).removeprefix("sha256:")


def _oci_manifest(manifest: Manifest, config_size: int) -> bytes:
    """The OCI image manifest of a compose (canonical JSON), within MANIFEST_LIMIT."""

    def body(layers: list[dict[str, Any]]) -> bytes:
        return canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": ARTIFACT_TYPE,
                "config": {
                    "mediaType": MANIFEST_MEDIA_TYPE,
                    "digest": f"sha256:{manifest.digest()}",
                    "size": config_size,
                },
                "layers": layers,
                "annotations": {COMPOSE_ID: manifest.compose_id},
            }
        ).encode("utf-8")

    annotated = body(
        [
            {
                "mediaType": FILE_MEDIA_TYPE,
                "digest": f"sha256:{f.sha256}",
                "size": f.size,
                "annotations": {TITLE: f.path, MODE: f"{f.mode:04o}"},
            }
            for f in manifest.files
        ]
    )
    if len(annotated) <= MANIFEST_LIMIT:
        return annotated
    plain = body(
        [
            {"mediaType": FILE_MEDIA_TYPE, "digest": f"sha256:{sha}", "size": size}
            for sha, size in manifest.blobs().items()
        ]
    )
    if len(plain) > MANIFEST_LIMIT:
        raise OperationFailed(
            f"compose {manifest.compose_id} has {len(manifest.blobs())} distinct files: more than one "
            f"OCI manifest can list ({len(plain)} bytes, registries take {MANIFEST_LIMIT})",
            hint="use a file:// store for composes this large",
            code="store-too-large",
        )
    return plain
