"""containers/image's configuration for signed images: names, lookaside paths, registries.d and
policy.json. Pure text.

An image released to a registry is named `HOST[:PORT]/NAMESPACE/<variant>/<output>` (registry
names are lowercase), tagged with its compose ID, and recorded by digest:
`docker://HOST[:PORT]/…@sha256:…`. skopeo's simple signing (`skopeo copy --sign-by`) stores each
signature in a *lookaside* directory at `<repository path>@sha256=<hex>/signature-<n>` (the
registry host is not part of the path); a client finds it through a `registries.d/*.yaml` file
that maps the repository to that directory's URL, and accepts the image only when its
`policy.json` asks for a `signedBy` signature with the release key.
"""

from __future__ import annotations

import base64
import json

DOCKER = "docker://"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def registry_host(registry: str) -> str:
    """`HOST[:PORT]` of a registry location such as `registry.example/group/project`."""
    return registry.split("/", 1)[0]


def is_loopback(registry: str) -> bool:
    """Whether the registry is on this machine (the only place plain HTTP is used)."""
    host = registry_host(registry)
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK


def repository(registry: str, variant_uid: str, name: str) -> str:
    """Where a variant's image goes: `<registry>/<variant>/<name>`, lowercase."""
    return f"{registry.rstrip('/')}/{variant_uid}/{name}".lower()


def by_digest(repo: str, digest: str) -> str:
    """The image reference a release records: `docker://REPO@sha256:…`."""
    return f"{DOCKER}{repo}@{digest}"


def by_tag(repo: str, tag: str) -> str:
    return f"{DOCKER}{repo}:{tag}"


def lookaside_path(repo: str, digest: str, index: int = 1) -> str:
    """Where signature `index` of an image lies in a lookaside directory (containers/image's layout)."""
    algorithm, _, hex_digest = digest.partition(":")
    path = repo.split("/", 1)[1] if "/" in repo else repo
    return f"{path}@{algorithm}={hex_digest}/signature-{index}"


def registries_d(scope: str, *, lookaside: str = "", staging: str = "") -> str:
    """A `registries.d/*.yaml` naming the lookaside URL of scope (a registry, namespace or
    repository): `lookaside` to read signatures from, `lookaside-staging` to write them to."""
    lines = ["docker:", f"  {json.dumps(scope)}:"]
    if lookaside:
        lines.append(f"    lookaside: {json.dumps(lookaside)}")
    if staging:
        lines.append(f"    lookaside-staging: {json.dumps(staging)}")
    return "\n".join(lines) + "\n"


def repository_of(image: str) -> str:
    """The repository of an image reference a release records (`docker://REPO@sha256:…`)."""
    return image.removeprefix(DOCKER).split("@", 1)[0]


def signed_by_policy(scope: str, public_key: bytes) -> str:
    """A `policy.json` that accepts images of scope only when signed by the key (an armored
    public key, carried in the policy as `keyData`: no path of any machine) and refuses every
    other image."""
    key_data = base64.b64encode(public_key).decode("ascii")
    policy = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {scope: [{"type": "signedBy", "keyType": "GPGKeys", "keyData": key_data}]},
        },
    }
    return json.dumps(policy, indent=2, sort_keys=True) + "\n"


def push_policy() -> str:
    """The `policy.json` factory pushes with: a compose's own oci-archive (its sha256 checked
    against lineage before) is accepted as the source; everything else is refused."""
    policy = {
        "default": [{"type": "reject"}],
        "transports": {"oci-archive": {"": [{"type": "insecureAcceptAnything"}]}},
    }
    return json.dumps(policy, indent=2, sort_keys=True) + "\n"
