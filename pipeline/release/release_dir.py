"""Publishing a compose: atomically into a release directory, or into quarantine.

Layout of a release directory DIR:

    DIR/<compose-id>/            one release: copies of the compose's files, signed, with
                                 RELEASE.json (written last, before the rename)
    DIR/latest -> <compose-id>   switched by rename(2) of a new symlink over it
    DIR/.staging-<compose-id>/   a release being made (removed and made again after a crash)
    DIR/.trash-<compose-id>/     an old release being removed
    DIR/ostree/repo/             the served OSTree repository, when DIR releases an `ostree:` node:
                                 long-lived, with history, deltas and version refs
                                 (`pipeline.release.ostree_history`)

A release is made in its staging directory beside the target, every file and directory
fsync'ed, then renamed into place; `latest` is switched only after that, and old releases go
only after `latest` left them, so at any instant (a SIGKILL included) `latest` points at a
complete release, old or new, and running the same release again completes it. The RPMs are
copies, not the build store's hard links, because signing rewrites them (`pipeline.release.sign`).

RELEASE.json records exactly what was signed, by which key, and where each signature is (one
record per signature, `pipeline.core.signatures`); a container compose is pushed to the
registry and signed there while the release is staged (`pipeline.release.container_registry`), its
signatures in the release's `sigstore/`. A release that would sign nothing is refused before
anything is written, unless it is asked for unsigned (`--unsigned`); then RELEASE.json says
`"unsigned": true` and lists no signature, and nothing is pushed to a registry.

A compose whose gate fails is not published: it goes to the quarantine directory
(`DIR/../quarantine/<compose-id>` by default), unsigned, with FAILURE.txt and failure.json
naming the failed checks and the owners to tell. A compose whose gate is pending is refused.
Every release and quarantine is recorded as a note on the compose's tag in
`refs/notes/releases` (`pipeline.records.releases`), with the same signature records as
RELEASE.json, and its directory relative to the checkout when it is inside it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.compose.ostree import OSTREE_JSON, OstreeCompose
from pipeline.core.canonical import pretty_json
from pipeline.core.errors import OperationFailed
from pipeline.core.gate import Decision
from pipeline.core.kinds import OSTREE
from pipeline.core.records import OutputFile, Record
from pipeline.core.signatures import Signature
from pipeline.core.states import ReleaseStatus, Verdict
from pipeline.records import releases as release_notes
from pipeline.records.lineage import Lineage
from pipeline.records.releases import LATEST as LATEST
from pipeline.release import container_registry as registries
from pipeline.release import ostree_history
from pipeline.release.sign import PUBLIC_KEY, Signer, sign_tree, signable
from pipeline.tools import gpg, ostree

MANIFEST = "RELEASE.json"
STAGING, TRASH = ".staging-", ".trash-"


@dataclass(frozen=True, slots=True)
class Signing:
    """How a release is signed: the key, and the registry container images go to ("": none)."""

    signer: Signer
    registry: str = ""


@dataclass(frozen=True, slots=True)
class Published:
    """What `release` did: `released` or `quarantined`, where, the releases it removed, and the
    signatures the release holds (none when it was released unsigned)."""

    status: ReleaseStatus
    path: Path
    removed: tuple[str, ...] = ()
    signed_by: str = ""
    signatures: tuple[Signature, ...] = ()
    ostree: tuple[ostree_history.Served, ...] = ()  # what the served OSTree repository got


def release(
    lineage: Lineage,
    record: Record,
    decision: Decision,
    *,
    output_dir: Path,
    to: Path,
    keep: int = 3,
    signing: Signing | None = None,
    quarantine: Path | None = None,
    owners: tuple[str, ...] = (),
    ostree_keep: int = ostree_history.OSTREE_KEEP,
) -> Published:
    """Publish a compose into `to` (gate passed) or into quarantine (gate failed), signed with
    `signing` (None: unsigned, as `--unsigned` asks). `ostree_keep`: the commits each ref of the
    served OSTree repository keeps."""
    if not record.outputs:
        raise OperationFailed(
            f"compose {record.compose_id} made nothing to release ({record.status}: {record.message})",
            code="nothing-to-release",
        )
    if decision.verdict == Verdict.PENDING:
        raise OperationFailed(
            f"the gate of {record.compose_id} is pending: {decision.summary()}",
            hint="run its checks first (factory compose runs them); `factory gate` shows what is missing",
            code="gate-pending",
        )
    if keep < 1:
        raise OperationFailed("--keep must be at least 1", code="invalid-keep")
    if decision.passed and signing is not None and not signable(o.path for o in record.outputs):
        raise OperationFailed(
            f"compose {record.compose_id} ({record.node}) has nothing factory signs: no RPM, repodata, "
            "OSTree repository or image file",
            hint="release it with --unsigned to publish it unsigned (its RELEASE.json will say so)",
            code="nothing-signed",
        )
    if not decision.passed:
        where = quarantine or to.parent / "quarantine"
        path = _quarantine(record, decision, output_dir, where, owners)
        _note(lineage, record.compose_id, ReleaseStatus.QUARANTINED, path, "", ())
        return Published(ReleaseStatus.QUARANTINED, path)
    to.mkdir(parents=True, exist_ok=True)
    with _locked(to):
        return _publish(lineage, record, output_dir, to, keep, signing, ostree_keep)


def _publish(
    lineage: Lineage,
    record: Record,
    output_dir: Path,
    to: Path,
    keep: int,
    signing: Signing | None,
    ostree_keep: int,
) -> Published:
    _clean(to)
    final = to / record.compose_id
    # First into the served OSTree repository (idempotent): it is what OSTree clients pull.
    served = _serve_ostree(record, output_dir, to, ostree_keep, signing.signer if signing else None)
    if not (final / MANIFEST).is_file():
        staging = to / f"{STAGING}{record.compose_id}"
        copy_outputs(record, output_dir, staging)
        if served:
            _drop_commit_copies(record, staging)
        signatures: tuple[Signature, ...] = ()
        if signing is not None:
            in_served = ostree_history.signatures(to, final, served, signing.signer.key)
            signatures = _sign(staging, record, signing, final, in_served)
        manifest = {
            "compose_id": record.compose_id,
            "node": record.node,
            "sequence": 1 + max((s for s, _ in releases(to)), default=0),
            "released": _now(),
            **_signed_fields(signing.signer.key if signing else "", signatures),
        }
        if served:
            manifest["ostree"] = {"repo": ostree_history.SERVED, "refs": [s.to_json() for s in served]}
        (staging / MANIFEST).write_text(pretty_json(manifest), encoding="utf-8")
        fsync_tree(staging)
        os.rename(staging, final)
        _fsync_dir(to)
    switch_latest(to, record.compose_id)
    removed = prune(to, keep)
    written = json.loads((final / MANIFEST).read_text(encoding="utf-8"))
    signatures = tuple(Signature.from_json(s) for s in written.get("signatures", ()))
    signed_by = str(written.get("signed_by", ""))
    _note(lineage, record.compose_id, ReleaseStatus.RELEASED, final, signed_by, signatures, served)
    return Published(ReleaseStatus.RELEASED, final, removed, signed_by, signatures, served)


def _sign(
    staging: Path, record: Record, signing: Signing, final: Path, served: tuple[Signature, ...] = ()
) -> tuple[Signature, ...]:
    """Sign the staged copy, push container images to the registry signed; every signature, with
    those of the served OSTree repository (made as its commits were)."""
    signed = sign_tree(staging, signing.signer, stem=record.compose_id)
    pushed: list[Signature] = []
    if signing.registry:
        pushed = registries.push_images(
            staging,
            node=record.node,
            compose_id=record.compose_id,
            registry=signing.registry,
            signer=signing.signer,
            public_key=staging / PUBLIC_KEY,
            final=final,
        )
    signatures = (*signed.signatures, *pushed, *served)
    if served and not (staging / PUBLIC_KEY).is_file():  # the key OSTree clients check with
        gpg.export(signing.signer.home, signing.signer.key, staging / PUBLIC_KEY)
    if not signatures:  # signable() said there was something: never claim a signed release
        raise OperationFailed(f"signing {record.compose_id} made no signature", code="nothing-signed")
    return signatures


def _signed_fields(key: str, signatures: tuple[Signature, ...]) -> dict[str, object]:
    """What RELEASE.json and the release note say about signing: the key, the public key's
    path, every signature, and whether the release is unsigned."""
    return {
        "signed_by": key if signatures else "",
        "public_key": PUBLIC_KEY if signatures else "",
        "signatures": [s.to_json() for s in signatures],
        "unsigned": not signatures,
    }


def _serve_ostree(
    record: Record, output_dir: Path, to: Path, keep: int, signer: Signer | None
) -> tuple[ostree_history.Served, ...]:
    """Add an `ostree:` compose's commits to the served repository of `to`; () for other kinds."""
    found = next((o for o in record.outputs if o.path.endswith(f"/{OSTREE_JSON}")), None)
    if found is None or not OSTREE.of(record.node):
        return ()
    made = OstreeCompose.from_json((output_dir / found.path).read_text(encoding="utf-8"))
    ostree.init(output_dir / made.repo)  # objects fetched from the artifact store come without one
    return ostree_history.release(
        ostree_history.served_repo(to),
        output_dir / made.repo,
        made,
        record.compose_id,
        keep=keep,
        signer=signer,
    )


def _drop_commit_copies(record: Record, staging: Path) -> None:
    """Remove the copies of an `ostree:` compose's objects (its commit and its tree) from its
    release: the served repository holds the commits released (a copied `objects/` beside it
    would only mislead)."""
    for output in record.outputs:
        if output.path.startswith("ostree/") and "/objects/" in output.path:
            path = staging / output.path
            path.unlink(missing_ok=True)
            for parent in path.parents:
                if parent == staging or any(parent.iterdir()):
                    break
                parent.rmdir()


def copy_outputs(record: Record, output_dir: Path, dest: Path) -> None:
    """Copy a compose's files into dest (made afresh), checking each against its sha256.

    `composes/<id>/x` lands at `dest/x`; files kept elsewhere keep their path under output_dir.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    prefix = f"composes/{record.compose_id}/"
    for output in record.outputs:
        relative = output.path.removeprefix(prefix)
        _copy_checked(output_dir / output.path, dest / relative, output)


def _copy_checked(source: Path, target: Path, output: OutputFile) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256()
    try:
        with source.open("rb") as src, target.open("xb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                sha.update(chunk)
                dst.write(chunk)
    except OSError as exc:
        raise OperationFailed(f"cannot copy {source}: {exc.strerror}", code="release-copy") from exc
    if sha.hexdigest() != output.sha256:
        raise OperationFailed(
            f"{source} changed since it was composed (sha256 {sha.hexdigest()}, lineage says {output.sha256})",
            code="output-changed",
        )
    shutil.copystat(source, target)


def releases(to: Path) -> list[tuple[int, str]]:
    """(sequence, compose ID) of the complete releases in `to`, oldest first."""
    found = []
    for child in to.iterdir() if to.is_dir() else ():
        manifest = child / MANIFEST
        if child.name.startswith(".") or child.is_symlink() or not manifest.is_file():
            continue
        with contextlib.suppress(ValueError, OSError):
            found.append((int(json.loads(manifest.read_text(encoding="utf-8"))["sequence"]), child.name))
    return sorted(found)


def switch_latest(to: Path, compose_id: str) -> None:
    """Point `to/latest` at the release, atomically: a new symlink renamed over the old one."""
    link = to / LATEST
    if link.is_symlink() and os.readlink(link) == compose_id:
        return
    temporary = to / f".{LATEST}-{compose_id}-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(compose_id)
    os.replace(temporary, link)
    _fsync_dir(to)


def prune(to: Path, keep: int) -> tuple[str, ...]:
    """Remove all but the `keep` newest releases (never the one `latest` points at)."""
    current = os.readlink(to / LATEST) if (to / LATEST).is_symlink() else ""
    ordered = [cid for _, cid in releases(to)]
    kept = set(ordered[-keep:]) | {current}
    removed = []
    for cid in ordered:
        if cid in kept:
            continue
        trash = to / f"{TRASH}{cid}"
        os.rename(to / cid, trash)  # out of sight first: never a half-removed release in DIR
        shutil.rmtree(trash)
        removed.append(cid)
    return tuple(removed)


@contextlib.contextmanager
def _locked(to: Path) -> Iterator[None]:
    """One release at a time into a directory (`DIR/.lock`, released by the kernel on a kill)."""
    with (to / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _clean(to: Path) -> None:
    """Remove what a killed release left: staging and trash directories, temporary symlinks."""
    for child in to.iterdir():
        if child.name.startswith((STAGING, TRASH)) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        elif child.name.startswith(f".{LATEST}-") and child.is_symlink():
            child.unlink()


def _quarantine(
    record: Record, decision: Decision, output_dir: Path, where: Path, owners: tuple[str, ...]
) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    final = where / record.compose_id
    if (final / "failure.json").is_file():
        return final
    staging = where / f"{STAGING}{record.compose_id}"
    copy_outputs(record, output_dir, staging)
    failed = [o for o in decision.outcomes if not o.satisfied]
    report = {
        "compose_id": record.compose_id,
        "node": record.node,
        "verdict": decision.verdict,
        "owners": list(owners),
        "failed": [{"check": o.requirement.check, "state": o.state, "reason": o.reason} for o in failed],
        "time": _now(),
    }
    lines = [
        f"Compose {record.compose_id} ({record.node}) failed its gate and was not released.",
        f"Owners: {', '.join(owners) or 'none listed'}",
        "",
        *(f"- {o.requirement.check} {o.state}: {o.reason}" for o in failed),
    ]
    (staging / "FAILURE.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (staging / "failure.json").write_text(pretty_json(report), encoding="utf-8")
    fsync_tree(staging)
    if final.exists():
        shutil.rmtree(final)
    os.rename(staging, final)
    _fsync_dir(where)
    return final


def _note(
    lineage: Lineage,
    compose_id: str,
    status: ReleaseStatus,
    path: Path,
    key: str,
    signatures: tuple[Signature, ...],
    served: tuple[ostree_history.Served, ...] = (),
) -> None:
    """Append the release (or quarantine) to the compose's note in refs/notes/releases, signed
    as RELEASE.json says (`_signed_fields`)."""
    entry = release_notes.ReleaseEntry(
        status,
        release_notes.recorded_path(lineage, path),  # never a path of this machine
        _now(),
        signed_by=key if signatures else "",
        public_key=PUBLIC_KEY if signatures else "",
        signatures=signatures,
        unsigned=not signatures,
        ostree=served,
    )
    release_notes.append(lineage, {compose_id: [entry]})


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under root (and root), so a rename publishes only data
    that is on disk."""
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
