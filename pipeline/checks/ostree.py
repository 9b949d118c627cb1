"""The `ostree-fsck` check: the commit an ostree compose recorded is whole and says where it came from.

It runs `ostree fsck` on a copy of the recorded commits (without their history), checks each recorded commit out (`checkout -U`, into
a temporary directory) and reads its metadata: the compose ID and the package-set digest must
be the ones `ostree.json` records, and the tree must list the recorded packages.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from pipeline.compose.ostree import COMPOSE_ID, PACKAGE_SET, RPMS_TXT, Commit, OstreeCompose, load
from pipeline.core.errors import FactoryError
from pipeline.core.gate import CheckResult
from pipeline.core.job import InputCompose, Job
from pipeline.core.records import OutputFile
from pipeline.core.states import CheckState
from pipeline.tools import ostree


class OstreeFsckCheck:
    """fsck the repository, check out each commit, compare its metadata with ostree.json."""

    name = "ostree-fsck"
    kinds = frozenset({"ostree"})

    def run(self, job: Job, outputs: Sequence[OutputFile]) -> CheckResult:
        """PASSED, or FAILED with every problem found."""
        try:
            made = load(job, InputCompose(job.node.id, job.compose_id, tuple(outputs)))
        except (FactoryError, OSError, ValueError, KeyError) as exc:
            return CheckResult(self.name, CheckState.FAILED, f"cannot read the compose's ostree.json: {exc}")
        repo = job.output_dir / made.repo
        try:
            _fsck_commits(repo, made)
        except FactoryError as exc:
            return CheckResult(self.name, CheckState.FAILED, f"ostree fsck of {made.repo}: {exc.message}")
        problems = [p for commit in made.commits for p in _problems(repo, commit)]
        return CheckResult(
            self.name, CheckState.FAILED if problems else CheckState.PASSED, "; ".join(problems)
        )


def _fsck_commits(repo: Path, made: OstreeCompose) -> None:
    """fsck the compose's commits on their own: copied (without history) into a new repository,
    since a runner's repository holds older commits without their trees (fsck would refuse)."""
    with tempfile.TemporaryDirectory(prefix="factory-ostree-fsck-") as scratch:
        copy = Path(scratch) / "repo"
        ostree.init(copy)
        for commit in made.commits:
            ostree.pull_local(copy, repo, commit.commit, commit.ref)
        ostree.fsck(copy)


def _problems(repo: Path, commit: Commit) -> list[str]:
    where = f"{commit.ref} at {commit.commit[:12]}"
    try:
        found = {key: ostree.metadata(repo, commit.commit, key) for key in (COMPOSE_ID, PACKAGE_SET)}
        with tempfile.TemporaryDirectory(prefix="factory-ostree-check-") as scratch:
            tree = Path(scratch) / "tree"
            ostree.checkout(repo, commit.commit, tree)
            listing = tree / RPMS_TXT
            listed = listing.read_text(encoding="utf-8").split() if listing.is_file() else None
    except FactoryError as exc:
        return [f"{where}: {exc.message}"]
    problems = []
    if found[COMPOSE_ID] != commit.compose_id:
        problems.append(f"{where}: {COMPOSE_ID} is {found[COMPOSE_ID]!r}, expected {commit.compose_id!r}")
    if found[PACKAGE_SET] != commit.package_set_digest:
        problems.append(f"{where}: {PACKAGE_SET} is {found[PACKAGE_SET]!r}, not the recorded package set")
    if listed is None:
        problems.append(f"{where}: the checkout has no /{RPMS_TXT}")
    elif listed != [p.nevra for p in commit.packages]:
        problems.append(f"{where}: /{RPMS_TXT} does not list the recorded packages")
    return problems
