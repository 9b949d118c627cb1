"""Names in an `oci://` store: its URL and the tag of a compose. Pure.

Plain HTTP is allowed only for a loopback registry (127.0.0.0/8, ::1, localhost), as container
tools do; credentials come from the environment (`pipeline.core.credentials`, prefix
FACTORY_STORE), GitLab's only for GitLab's own registry.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.artifacts.store import shown_url
from pipeline.core.errors import InvalidInput
from pipeline.core.records import parse_compose_id

_NAME_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
_HOST_RE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
HASHED_TAG_RE = re.compile(r"_h[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class OciLocation:
    """Where an oci:// store is: the registry (`host[:port]`, as GitLab's CI_REGISTRY writes it),
    the repository, and whether plain HTTP is allowed (loopback only)."""

    url: str
    registry: str
    repository: str
    plain_http: bool


def parse_oci_url(url: str) -> OciLocation:
    """The location an `oci://host[:port]/namespace` URL names; InvalidInput naming it otherwise."""

    def bad(why: str) -> InvalidInput:
        return InvalidInput(
            f"not an oci:// store URL: {shown_url(url)!r}: {why}",
            hint="use oci://HOST[:PORT]/NAMESPACE, e.g. oci://registry.example.com/group/project/store",
            code="invalid-store-url",
        )

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad(str(exc)) from None
    if parts.scheme.lower() != "oci":
        raise bad("the scheme is not oci")
    if parts.username is not None or parts.password is not None:
        raise bad("credentials do not belong in the URL (use FACTORY_STORE_USER and FACTORY_STORE_PASSWORD)")
    if parts.query or parts.fragment:
        raise bad("a query or fragment means nothing here")
    host = parts.hostname or ""
    if not host:
        raise bad("no registry host")
    if not _is_ip(host) and not _HOST_RE.fullmatch(host):
        raise bad(f"{host!r} is not a host name")
    repository = parts.path.strip("/")
    if not repository or not _NAME_RE.fullmatch(repository):
        raise bad("the namespace must be a repository name: lowercase letters, digits, '.', '_', '-', '/'")
    shown_host = f"[{host}]" if ":" in host else host
    registry = f"{shown_host}:{port}" if port is not None else shown_host
    return OciLocation(url, registry, repository, is_loopback(host))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether host is this machine for certain: 127.0.0.0/8, ::1 or localhost (nothing else)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tag_for(compose_id: str) -> str:
    """The OCI tag of a compose: its ID with '_' written '__' and '+' written '_x' (both legal in
    compose IDs; '+' is not in tags), or `_h<sha256>` for an ID too long for a tag."""
    parse_compose_id(compose_id)
    tag = compose_id.replace("_", "__").replace("+", "_x")
    if _TAG_RE.fullmatch(tag):
        return tag
    return "_h" + hashlib.sha256(compose_id.encode("utf-8")).hexdigest()


def compose_for(tag: str) -> str | None:
    """The compose ID of a tag made by `tag_for` (None for a hashed tag or a tag not ours)."""
    if HASHED_TAG_RE.fullmatch(tag):
        return None
    out, chars = [], iter(tag)
    for char in chars:
        if char == "_":
            escaped = next(chars, "")
            if escaped not in ("_", "x"):
                return None
            out.append("_" if escaped == "_" else "+")
        else:
            out.append(char)
    cid = "".join(out)
    try:
        parse_compose_id(cid)
    except InvalidInput:
        return None
    return cid
