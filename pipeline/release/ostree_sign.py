"""Signing an OSTree repository: a detached GPG signature on the commit of every ref, then a
signed summary (ostree's own `gpg-sign` and `summary -u --gpg-sign`).

A commit's signatures are its detached metadata, `objects/XX/<rest>.commitmeta`; the summary's
are `summary.sig`. Each record is made only once the file is there.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import OperationFailed
from pipeline.core.signatures import Signature, SignatureKind
from pipeline.release.signer import Signer
from pipeline.tools import ostree


def commitmeta(commit: str) -> str:
    """Where a commit's detached metadata (its signatures) lies in an archive repository."""
    return f"objects/{commit[:2]}/{commit[2:]}.commitmeta"


def ostree_repos(tree: Path) -> list[Path]:
    """OSTree repositories under tree: directories with `config`, `objects/` and `refs/`."""
    return sorted(
        p.parent
        for p in tree.rglob("config")
        if (p.parent / "objects").is_dir() and (p.parent / "refs").is_dir()
    )


def sign_ostree(repo: Path, signer: Signer, *, prefix: str = "", within: str = "") -> list[Signature]:
    """Sign the commit of every ref of an OSTree repo (once each), then its summary.

    Records name the repository as `prefix` (its path in the release, or in the image `within`).
    """
    signed: dict[str, str] = {}
    found = []
    base = prefix.rstrip("/")
    for ref in ostree.refs(repo):
        commit = ostree.rev_parse(repo, ref)
        if commit not in signed:
            ostree.gpg_sign(repo, commit, signer.key, signer.home)
            signed[commit] = ref
        _present(repo, commitmeta(commit))
        found.append(
            Signature(
                SignatureKind.OSTREE_COMMIT,
                signature=_join(base, commitmeta(commit)),
                key=signer.key,
                path=base or ".",
                ref=ref,
                commit=commit,
                within=within,
            )
        )
    ostree.sign_summary(repo, signer.key, signer.home)
    _present(repo, "summary.sig")
    found.append(
        Signature(
            SignatureKind.OSTREE_SUMMARY,
            signature=_join(base, "summary.sig"),
            key=signer.key,
            path=_join(base, "summary"),
            within=within,
        )
    )
    return found


def _join(base: str, path: str) -> str:
    return f"{base}/{path}" if base else path


def _present(repo: Path, path: str) -> None:
    if not (repo / path).is_file():
        raise OperationFailed(f"ostree signed {repo} but {path} is not there", code="sign-lost")
