"""What a release signed: one record per signature, each in its field's own form. No I/O.

A release's `RELEASE.json` and its note in `refs/notes/releases` list these records, and only
for signatures that were made: the signing code returns a record after the tool that made the
signature succeeded, never before. Paths are relative to the release directory.

| kind | what is signed | where the signature is | the client that checks it |
| --- | --- | --- | --- |
| rpm | an RPM | in the RPM's own header (`signature` = `path`) | `rpm -K`, dnf with gpgcheck |
| repodata | a repo's `repodata/repomd.xml` | `repomd.xml.asc` beside it | dnf with repo_gpgcheck, `gpg --verify` |
| ostree-commit | a commit of an OSTree repository | its `objects/XX/….commitmeta` | `ostree pull` with gpg-verify |
| ostree-summary | an OSTree repository's `summary` | `summary.sig` beside it | `ostree pull` with gpg-verify-summary |
| checksum | image files (ISOs, OCI archives) | a clearsigned `…-CHECKSUM` beside them | `gpg --verify`, `sha256sum -c` |
| container | an image pushed to a registry | `sigstore/NAME@sha256=…/signature-N` | `skopeo copy` under a `signedBy` policy |

An OSTree repository inside an installer ISO is signed too; its records carry `within`, the
ISO's path, and paths inside the image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class SignatureKind(StrEnum):
    RPM = "rpm"
    REPODATA = "repodata"
    OSTREE_COMMIT = "ostree-commit"
    OSTREE_SUMMARY = "ostree-summary"
    CHECKSUM = "checksum"
    CONTAINER = "container"


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature a release holds: what it signs, where it is, and by which key."""

    kind: SignatureKind
    signature: str  # where the signature is (relative to the release, or inside `within`)
    key: str  # the signing key's fingerprint
    path: str = ""  # the signed file or repository (empty for an image in a registry)
    image: str = ""  # docker://HOST[:PORT]/NAME@sha256:… for an image in a registry
    ref: str = ""  # an OSTree ref
    commit: str = ""  # the OSTree commit signed
    within: str = ""  # the image file the signed repository is inside (an installer ISO)
    files: tuple[str, ...] = ()  # what a CHECKSUM file lists (relative to the release)

    def to_json(self) -> dict[str, Any]:
        """The record as JSON: only the fields that say something."""
        found: dict[str, Any] = {"kind": str(self.kind), "signature": self.signature, "key": self.key}
        for name in ("path", "image", "ref", "commit", "within"):
            value = getattr(self, name)
            if value:
                found[name] = value
        if self.files:
            found["files"] = list(self.files)
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Signature:
        """A record `to_json` wrote."""
        return cls(
            kind=SignatureKind(data["kind"]),
            signature=str(data["signature"]),
            key=str(data["key"]),
            path=str(data.get("path", "")),
            image=str(data.get("image", "")),
            ref=str(data.get("ref", "")),
            commit=str(data.get("commit", "")),
            within=str(data.get("within", "")),
            files=tuple(str(f) for f in data.get("files", ())),
        )

    def sort_key(self) -> tuple[str, str, str, str, str]:
        return (self.kind, self.within, self.path, self.image, self.ref)


def ordered(signatures: Iterable[Signature]) -> tuple[Signature, ...]:
    """Signatures in the order records list them: by kind, then by what they sign."""
    return tuple(sorted(signatures, key=Signature.sort_key))


def counts(signatures: Iterable[Signature]) -> dict[str, int]:
    """How many signatures of each kind (for summaries)."""
    found: dict[str, int] = {}
    for signature in signatures:
        found[signature.kind] = found.get(signature.kind, 0) + 1
    return dict(sorted(found.items()))
