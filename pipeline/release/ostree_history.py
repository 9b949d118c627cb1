"""OSTree history on a release target: one long-lived archive repository that clients pull.

A release directory DIR (`factory release ID --to DIR`) holds, beside its releases
(`DIR/<compose-id>/`, `DIR/latest`), the served repository `DIR/ostree/repo`: the remote an
Atomic Host pulls from, with the history of every ref it ever released. Releasing an `ostree:`
compose adds, for each of its refs (one per arch):

1. the compose's commit and its objects, pulled from the output directory's repository without
   its parents (`ostree pull-local --depth=0`);
2. a new commit of the same tree whose parent is the ref's previously released commit
   (`ostree commit --orphan --tree=ref=COMPOSED --parent=PREVIOUS`), with rpm-ostree's `version`
   key (`42.20261121.0`, from the compose ID, as Fedora's commits carry it), the compose ID and
   the composed commit in its metadata, bound to the ref and its version ref (what a client
   pulling with gpg-verify checks), and signed as it is made;
3. a static delta from the previous released commit (`ostree static-delta generate`), so a host
   on the previous release fetches one delta instead of every changed object;
4. the version ref `version/<ref>/<version>`, then the ref itself, moved to the new commit.

Then retention, for every ref: version refs of commits beyond the `keep` newest are deleted and
`ostree prune --refs-only --depth=0 --retain-branch-depth=<ref>=<keep - 1>` removes the older
commits, their objects and the deltas to them; a commit some other ref still points at is never
removed, and a ref `factory retire` moved under `archive/` keeps its whole history
(`--retain-branch-depth=archive/<ref>=-1`: retire promises its commits stay). Last the summary
is regenerated and signed.

Why a new commit rather than the compose's own: the output directory's repository chains every
compose of the variant (nightly and CI composes, composes whose gate failed, composes never
released), so the compose's parent is rarely the released one, and pulling it with its history
would serve commits that were never released. The new commit shares the compose's tree objects
(nothing is stored twice), says which compose and composed commit it releases, and carries the
`version` rpm-ostree shows. Its timestamp is the later of the composed commit's and the previous
release's, so the commit is the same when a release is made again, and never older than its
parent (rpm-ostree refuses an upgrade to an older commit).

Releasing the compose that the ref's head already releases changes nothing (the summary is
written again only when it is older than a ref or delta, as a release killed half way leaves
it), so a release made again completes what a crash interrupted; releasing an older compose
again (a rollback) adds a new commit of its tree on top.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.compose.ostree import COMPOSE_ID, PACKAGE_SET, Commit, OstreeCompose
from pipeline.core.config import OSTREE_KEEP as OSTREE_KEEP
from pipeline.core.errors import InvalidInput
from pipeline.core.records import COMPOSE_TYPES, parse_compose_id
from pipeline.core.signatures import Signature, SignatureKind
from pipeline.records.releases import Served as Served  # what a release note records of it
from pipeline.release.ostree_sign import commitmeta
from pipeline.release.signer import Signer
from pipeline.tools import ostree

SERVED = "ostree/repo"  # the served repository, relative to the release directory
VERSION_REFS = "version/"  # version refs: version/<ref>/<version>
ARCHIVED = "archive/"  # where `factory retire` moves a retired ref (`retire.ARCHIVE_REFS`)
VERSION = "version"  # rpm-ostree's metadata key
COMPOSE_COMMIT = "factory.compose-commit"


def served_repo(release_dir: Path) -> Path:
    """The served OSTree repository of a release directory."""
    return release_dir / SERVED


def signatures(
    release_dir: Path, release: Path, served: tuple[Served, ...], key: str
) -> tuple[Signature, ...]:
    """The signature records of what a release added to the served repository: each commit's
    detached signature and the summary's, with paths relative to the release (`../ostree/repo`),
    each made only when its file is there (records never claim more than what was signed)."""
    repo = served_repo(release_dir)
    base = os.path.relpath(repo, release)
    found = []
    for made in served:
        if (repo / commitmeta(made.commit)).is_file():
            found.append(
                Signature(
                    SignatureKind.OSTREE_COMMIT,
                    signature=f"{base}/{commitmeta(made.commit)}",
                    key=key,
                    path=base,
                    ref=made.ref,
                    commit=made.commit,
                )
            )
    if found and (repo / "summary.sig").is_file():
        found.append(
            Signature(
                SignatureKind.OSTREE_SUMMARY, signature=f"{base}/summary.sig", key=key, path=f"{base}/summary"
            )
        )
    return tuple(found)


def version_of(compose_id: str) -> str:
    """rpm-ostree's version of a compose: `FL-42-AtomicHost-host-20261121.0` -> `42.20261121.0`
    (a nightly `.n.0` keeps its type: `42.20261121.n.0`)."""
    parts = parse_compose_id(compose_id)
    kind = COMPOSE_TYPES[parts.type_]
    return ".".join([parts.version, parts.date, *([kind] if kind else []), str(parts.respin)])


def version_ref(ref: str, version: str) -> str:
    return f"{VERSION_REFS}{ref}/{version}"


def release(
    repo: Path,
    source: Path,
    made: OstreeCompose,
    compose_id: str,
    *,
    keep: int,
    signer: Signer | None,
) -> tuple[Served, ...]:
    """Add a compose's commits (from the repository `source`) to the served repository `repo`
    as described above; what each ref serves now."""
    if keep < 1:
        raise InvalidInput("an OSTree ref must keep at least one commit", code="invalid-keep")
    ostree.init(repo)
    before = _state(repo)
    served = tuple(_add(repo, source, commit, compose_id, signer) for commit in made.commits)
    retain(repo, keep)
    if _state(repo) != before or not _summary_current(repo, signed=signer is not None):
        if signer is not None:
            ostree.sign_summary(repo, signer.key, signer.home)
        else:
            ostree.update_summary(repo)
    return served


def _state(repo: Path) -> tuple[dict[str, str], list[str]]:
    """What the summary lists: every ref's commit, and the static deltas."""
    return {ref: ostree.rev_parse(repo, ref) for ref in ostree.refs(repo)}, ostree.static_deltas(repo)


def _summary_current(repo: Path, *, signed: bool) -> bool:
    """Whether the summary was written after every ref and delta (a release killed between
    moving a ref and writing the summary leaves it older), and is signed as asked."""
    summary = repo / "summary"
    if not summary.is_file() or (repo / "summary.sig").is_file() != signed:
        return False
    written = [
        p.stat().st_mtime_ns for top in ("refs", "deltas") for p in (repo / top).rglob("*") if p.is_file()
    ]
    return summary.stat().st_mtime_ns >= max(written, default=0)


def _add(repo: Path, source: Path, made: Commit, compose_id: str, signer: Signer | None) -> Served:
    ref, composed = made.ref, made.commit
    version = version_of(compose_id)
    previous = ostree.head(repo, ref)
    if previous is not None and _releases(repo, previous) == (compose_id, composed):
        head = ostree.history(repo, ref)[0]
        return Served(ref, previous, head.version or version, head.parent, head.parent, composed)
    ostree.pull_objects(repo, source, composed)
    times = [entry.timestamp for entry in ostree.parse_log(ostree.log(repo, composed))[0][:1]]
    if previous is not None:
        times.append(ostree.history(repo, ref)[0].timestamp)
    commit = ostree.recommit(
        repo,
        composed,
        refs=[ref, version_ref(ref, version)],
        parent=previous,
        subject=f"{ref} {version} ({compose_id})",
        metadata={
            VERSION: version,
            COMPOSE_ID: compose_id,
            COMPOSE_COMMIT: composed,
            PACKAGE_SET: made.package_set_digest,
        },
        timestamp=max(times),
        key=signer.key if signer else None,
        home=signer.home if signer else None,
    )
    if previous is not None:
        ostree.static_delta(repo, previous, commit)
    ostree.set_ref(repo, version_ref(ref, version), commit)
    ostree.set_ref(repo, ref, commit)
    return Served(ref, commit, version, previous, previous, composed)


def _releases(repo: Path, commit: str) -> tuple[str | None, str | None]:
    """(compose ID, composed commit) a served commit releases."""
    return ostree.metadata(repo, commit, COMPOSE_ID), ostree.metadata(repo, commit, COMPOSE_COMMIT)


def retain(repo: Path, keep: int) -> None:
    """Keep the `keep` newest commits of every ref (and whatever another ref points at, and the
    whole history of an archived ref): drop the version refs of older commits, then prune."""
    refs = ostree.refs(repo)
    archived = [ref for ref in refs if ref.startswith(ARCHIVED)]
    branches = [ref for ref in refs if not ref.startswith((VERSION_REFS, ARCHIVED))]
    kept: set[str] = set()
    for ref in branches:
        kept.update(entry.commit for entry in ostree.history(repo, ref)[:keep])
    stale = [
        ref
        for ref in refs
        if ref.startswith(VERSION_REFS)
        and _branch_of(ref) in branches
        and ostree.rev_parse(repo, ref) not in kept
    ]
    for ref in stale:
        ostree.delete_ref(repo, ref)
    ostree.prune(repo, {ref: keep - 1 for ref in branches} | dict.fromkeys(archived, -1))


def _branch_of(version_ref_name: str) -> str:
    return version_ref_name.removeprefix(VERSION_REFS).rpartition("/")[0]
