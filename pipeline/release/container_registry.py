"""Releasing container images to a registry, signed with skopeo's simple signing.

A `container:` compose's oci-archive is pushed byte for byte (`skopeo copy --preserve-digests`)
to `<release.registry>/<variant>/<output>`, tagged with the compose ID, and signed by the
release key (`--sign-by`). skopeo writes the signature to the lookaside directory that a
private registries.d names as `lookaside-staging`: `sigstore/` of the release being staged,
so the signatures are published with the release, atomically. The release also carries what a
user needs to verify the image:

    sigstore/<repository path>@sha256=<hex>/signature-1   the signature
    containers/registries.d/<name>.yaml                   maps the repository to sigstore/
    containers/policy.json                                 signedBy the release key (the key
                                                           itself, as keyData), else reject
    RPM-GPG-KEY-factory                                    the key (armored)

and RELEASE.json names the image by digest, `docker://HOST[:PORT]/NAME@sha256:…`. The
registries.d file names the release's own `sigstore/` by its `file://` path, for this machine;
a mirror serves another one, naming the mirror's URL (`mirror_snippets`, `factory publish
--base-url`).

Credentials come from the environment and reach skopeo in a private auth file (never argv,
logs or records): FACTORY_REGISTRY_USER and FACTORY_REGISTRY_PASSWORD for the release registry
whatever its host; in a GitLab job, CI_REGISTRY_USER and CI_REGISTRY_PASSWORD when the release
registry is the project's own (CI_REGISTRY). Plain HTTP only for a registry on the loopback
interface.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.credentials import REGISTRY, registry_credentials
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.kinds import CONTAINER
from pipeline.core.signatures import Signature, SignatureKind
from pipeline.formats import containers
from pipeline.release.signer import Signer
from pipeline.run import CommandFailed
from pipeline.tools import skopeo

SIGSTORE = "sigstore"
CONTAINERS = "containers"
KIND = CONTAINER
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def tag_for(compose_id: str) -> str:
    """The image's tag: its compose ID ('+', legal in compose IDs, is not in tags)."""
    tag = compose_id.replace("+", "_")
    if not _TAG.fullmatch(tag):
        raise InvalidInput(f"{compose_id!r} cannot be an image tag", code="bad-image-tag")
    return tag


def image_of(node: str) -> tuple[str, str]:
    """(variant uid, output name) of a `container:<Variant>/<name>` node."""
    variant, _, name = KIND.name_of(node).partition("/")  # container:<Variant>/<name>
    return variant, name


def push_images(
    tree: Path,
    *,
    node: str,
    compose_id: str,
    registry: str,
    signer: Signer,
    public_key: Path,
    final: Path,
    env: Mapping[str, str] | None = None,
) -> list[Signature]:
    """Push and sign the oci-archive(s) of a container compose staged in tree; the signatures.

    `final` is where the release will be once renamed into place: the registries.d file the
    release carries points at its sigstore/ there.
    """
    if not KIND.of(node):
        return []
    variant, name = image_of(node)
    archives = sorted(tree.glob(f"compose/{variant}/*/images/{name}.tar"))
    if not archives:
        raise OperationFailed(f"{compose_id} ({node}) has no oci-archive to push", code="nothing-to-push")
    if len(archives) > 1:
        raise OperationFailed(f"{compose_id}: one image per arch is not supported yet", code="unsupported")
    repo = containers.repository(registry, variant, name)
    sigstore = tree / SIGSTORE
    sigstore.mkdir(exist_ok=True)
    found = []
    with tempfile.TemporaryDirectory(prefix="factory-push-") as private:
        scratch = Path(private)
        scratch.chmod(0o700)
        registries_d = scratch / "registries.d"
        registries_d.mkdir()
        (registries_d / "factory.yaml").write_text(
            containers.registries_d(repo, staging=sigstore.as_uri()), encoding="utf-8"
        )
        policy = scratch / "policy.json"
        policy.write_text(containers.push_policy(), encoding="utf-8")
        push = skopeo.Push(
            policy=policy,
            registries_d=registries_d,
            sign_by=signer.key,
            digestfile=scratch / "digest",
            authfile=_authfile(scratch, registry, env if env is not None else os.environ),
            passphrase_file=signer.passphrase_file,
            tls_verify=not containers.is_loopback(registry),
        )
        for archive in archives:
            destination = containers.by_tag(repo, tag_for(compose_id))
            try:
                digest = skopeo.push_signed(
                    skopeo.oci_archive(archive), destination, push, gnupghome=signer.home
                )
            except CommandFailed as exc:
                raise OperationFailed(
                    f"cannot push {destination}: {exc.message}",
                    hint=f"is the registry {containers.registry_host(registry)} up (`make demo-registry` "
                    "starts the demo's), and are FACTORY_REGISTRY_USER and FACTORY_REGISTRY_PASSWORD set "
                    "if it asks for a login?",
                    code="registry-push",
                ) from exc
            signature = f"{SIGSTORE}/{containers.lookaside_path(repo, digest)}"
            if not (tree / signature).is_file():
                raise OperationFailed(
                    f"skopeo pushed {destination} but wrote no signature at {signature}", code="sign-lost"
                )
            found.append(
                Signature(
                    SignatureKind.CONTAINER,
                    signature=signature,
                    key=signer.key,
                    path=archive.relative_to(tree).as_posix(),
                    image=containers.by_digest(repo, digest),
                )
            )
    _client_files(tree, repo, f"{variant}-{name}".lower(), final, public_key)
    return found


def _authfile(scratch: Path, registry: str, env: Mapping[str, str]) -> Path | None:
    """containers-auth.json with the registry's credentials (0600, in a private directory)."""
    found = registry_credentials(env, containers.registry_host(registry), prefix=REGISTRY)
    if found is None:
        return None
    token = base64.b64encode(f"{found[0]}:{found[1]}".encode()).decode("ascii")
    path = scratch / "auth.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"auths": {containers.registry_host(registry): {"auth": token}}}, handle)
    return path


def _client_files(tree: Path, repo: str, name: str, final: Path, public_key: Path) -> None:
    """What a user puts in /etc/containers to verify the image: a registries.d file naming the
    release's lookaside directory, and a policy requiring the release key's signature."""
    folder = tree / CONTAINERS / "registries.d"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(
        containers.registries_d(repo, lookaside=(final / SIGSTORE).as_uri()), encoding="utf-8"
    )
    (tree / CONTAINERS / "policy.json").write_text(
        containers.signed_by_policy(repo, public_key.read_bytes()), encoding="utf-8"
    )


SNIPPETS = f"{CONTAINERS}/registries.d/"  # a release's registries.d: the lookaside of this machine


def mirror_snippets(release: Path, node: str, served_at: str) -> dict[str, str]:
    """The registries.d files a mirror of a container release serves in place of the release's
    own (path in the release -> text): each names the lookaside as the mirror serves it,
    `<served_at>/sigstore`, `served_at` being the URL of the release's files on the mirror.
    Empty for a release that pushed no image."""
    if not KIND.of(node):
        return {}
    manifest = json.loads((release / "RELEASE.json").read_text(encoding="utf-8"))
    images = [
        s.image
        for s in (Signature.from_json(item) for item in manifest.get("signatures", ()))
        if s.kind == SignatureKind.CONTAINER and s.image
    ]
    if not images:
        return {}
    variant, name = image_of(node)
    return {
        f"{SNIPPETS}{variant}-{name}.yaml".lower(): "".join(
            containers.registries_d(repo, lookaside=f"{served_at.rstrip('/')}/{SIGSTORE}")
            for repo in sorted({containers.repository_of(image) for image in images})
        )
    }
