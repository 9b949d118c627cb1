"""The sign and release use-cases: choose the signer, then sign a copy or publish.

`factory sign` and `factory release` call these. The signing key comes from the caller (the
command line) when given, else from factory.yaml's `signing:` of HEAD, else from
FACTORY_SIGNING_KEY (`pipeline.release.signer`); the registry container images are pushed to,
from the caller, else from factory.yaml's `release.registry` of HEAD. A compose's files are read
from the output directory of the factory.yaml it was composed from, fetched from the artifact
store first where they are not there.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.compose.base import InputCompose
from pipeline.core import gate
from pipeline.core.errors import OperationFailed
from pipeline.core.records import Record
from pipeline.records.lineage import Lineage
from pipeline.release import gating, sign
from pipeline.release import release_dir as publisher
from pipeline.transfer import open_transfer
from pipeline.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Key:
    """Which signing key to use: a GnuPG home and a fingerprint, each optional."""

    gnupghome: str = ""
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class SignedCopy:
    """A signed copy of a compose and what was signed in it."""

    path: Path
    signed: sign.Signed


@dataclass(frozen=True, slots=True)
class Released:
    """What `release` did, with the gate's decision and (when it did not pass) the owners."""

    published: publisher.Published
    decision: gate.Decision
    owners: tuple[str, ...]


def output_dir(ws: Workspace, record: Record) -> Path:
    """Where the compose's files are: output.dir of the factory.yaml it was composed from. Those
    not there (a fresh runner) are fetched from the artifact store (FACTORY_STORE, or `store:`
    of that factory.yaml), every digest checked (`pipeline.transfer`)."""
    config = ws.config(record.commit)
    path = Path(config.output.dir)
    path = path if path.is_absolute() else ws.root / path
    if record.outputs:
        transfer = open_transfer(config.store, root=ws.root, output_dir=path, env=os.environ)
        transfer.ensure(InputCompose(record.node, record.compose_id, record.outputs))
    return path


def signing_key(ws: Workspace, given: Key) -> Key:
    """The key given, completed from factory.yaml's `signing:` of HEAD."""
    configured = ws.config("HEAD").signing
    return Key(given.gnupghome or configured.gnupghome, given.fingerprint or configured.key)


def sign_copy(ws: Workspace, record: Record, key: Key, dest: Path | None = None) -> SignedCopy:
    """Copy a compose into dest (default: <output dir>/signed/<compose-id>) and sign the copy."""
    outputs = output_dir(ws, record)
    dest = dest or outputs / "signed" / record.compose_id
    if not record.outputs:
        raise OperationFailed(f"compose {record.compose_id} made nothing to sign", code="nothing-to-sign")
    with _signer(ws, signing_key(ws, key)) as signer:
        publisher.copy_outputs(record, outputs, dest)
        return SignedCopy(dest, sign.sign_tree(dest, signer, stem=record.compose_id))


def release(
    ws: Workspace,
    lineage: Lineage,
    record: Record,
    *,
    to: Path,
    key: Key,
    keep: int = 3,
    quarantine: Path | None = None,
    unsigned: bool = False,
    rev: str = "HEAD",
    registry: str = "",
) -> Released:
    """Publish a compose atomically into `to`, signed (unless `unsigned`), when its gate passes
    with the policies of `rev`; send it to quarantine, with its owners, when it fails.

    Container images go to `registry` (default: factory.yaml's release.registry), signed. An
    OSTree compose's served repository keeps the history `release.ostree.keep` of `rev` says."""
    decision = gating.decide(ws, lineage, record, rev)
    owners = () if decision.passed else gating.owners(ws, record, decision)
    outputs = output_dir(ws, record)
    signed = decision.passed and not unsigned  # a quarantined compose is never signed
    keys: contextlib.AbstractContextManager[sign.Signer | None] = (
        _signer(ws, signing_key(ws, key)) if signed else contextlib.nullcontext()
    )
    with keys as signer:
        signing = None
        if signer is not None:
            signing = publisher.Signing(signer, registry or ws.config("HEAD").release.registry)
        done = publisher.release(
            lineage,
            record,
            decision,
            output_dir=outputs,
            to=to,
            keep=keep,
            signing=signing,
            quarantine=quarantine,
            owners=owners,
            ostree_keep=ws.config(rev).release.ostree.keep,
        )
    return Released(done, decision, owners)


def _signer(ws: Workspace, key: Key) -> contextlib.AbstractContextManager[sign.Signer]:
    return sign.signer(gnupghome=key.gnupghome or None, key=key.fingerprint or None, base=ws.root)
