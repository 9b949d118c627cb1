"""The branches a release composes from, and whether a commit is on one of them. Pure.

A release composes from its branches of the definitions repository: factory.yaml's
`release.branches`, by default the repository's default branch and `release/<version>` (the
branch `factory branch-release` leaves for the release it branches from, which keeps
composing that release). Only a compose of a commit on one of them moves the release's latest
good; a compose of any other commit (a scratch branch, a merge request) is recorded in lineage,
marked as made off the release's branches, and moves no latest-good ref.

The rule, in order:
1. in a merge request pipeline (GitLab's `CI_MERGE_REQUEST_IID`, set in its child pipelines
   too, or `CI_PIPELINE_SOURCE=merge_request_event`) composing the pipeline's own commit
   (`CI_COMMIT_SHA`): off the release's branches, whatever the commit;
2. in a branch pipeline of one of the release's branches (`CI_COMMIT_BRANCH`) composing the
   pipeline's own commit: on that branch (GitLab ran it for a push of that commit there; the
   runner's clone may be shallow and hold no other branch);
3. a commit that is the tip of one of the release's branches, or an ancestor of one, local
   (`refs/heads/B`) or remote-tracking (`refs/remotes/R/B`), is on it;
4. anything else is off the release's branches.

GitLab's variables describe the pipeline's commit only: composing another commit, or outside
CI, only the repository's refs decide. The repository's default branch is `CI_DEFAULT_BRANCH`
for the pipeline's commit, else the branch `refs/remotes/origin/HEAD` names (what `git clone`
records), else `main` or `master`, the first that exists.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

DEFAULT = "{default}"  # the repository's default branch
VERSION = "{version}"  # the release's version (factory.yaml's release.version)
DEFAULT_BRANCHES = (DEFAULT, "release/" + VERSION)
FALLBACK_DEFAULTS = ("main", "master")  # a repository without origin's HEAD: the first that exists
MERGE_REQUEST_EVENT = "merge_request_event"


@dataclass(frozen=True, slots=True)
class Pipeline:
    """What GitLab's predefined variables say of the pipeline a job runs in; all empty outside
    GitLab CI. https://docs.gitlab.com/ci/variables/predefined_variables/"""

    commit: str = ""  # CI_COMMIT_SHA: the commit the pipeline runs for
    branch: str = ""  # CI_COMMIT_BRANCH: set in branch pipelines only
    default_branch: str = ""  # CI_DEFAULT_BRANCH: the project's default branch
    merge_request: str = ""  # CI_MERGE_REQUEST_IID: merge request pipelines and their child pipelines
    source: str = ""  # CI_PIPELINE_SOURCE: push, merge_request_event, parent_pipeline, ...

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Pipeline:
        """The pipeline the environment describes (a job's variables)."""
        return cls(
            commit=env.get("CI_COMMIT_SHA", "").strip().lower(),
            branch=env.get("CI_COMMIT_BRANCH", "").strip(),
            default_branch=env.get("CI_DEFAULT_BRANCH", "").strip(),
            merge_request=env.get("CI_MERGE_REQUEST_IID", "").strip(),
            source=env.get("CI_PIPELINE_SOURCE", "").strip(),
        )

    def describes(self, commit: str) -> bool:
        """Whether the pipeline runs for this commit (its variables say nothing of others)."""
        return bool(self.commit) and self.commit == commit.lower()

    @property
    def for_merge_request(self) -> bool:
        return bool(self.merge_request) or self.source == MERGE_REQUEST_EVENT


@dataclass(frozen=True, slots=True)
class OnBranch:
    """Whether a commit is on one of the release's branches: the branch ("" for none), the
    branches looked at, and why, in words."""

    branch: str
    names: tuple[str, ...]
    why: str

    @property
    def moves_latest(self) -> bool:
        """Whether composes of the commit move the release's latest good."""
        return bool(self.branch)


def default_branch(
    pipeline: Pipeline, commit: str, remote_head: str | None, local: Collection[str]
) -> str | None:
    """The repository's default branch: CI_DEFAULT_BRANCH for the pipeline's own commit, else
    the branch origin's HEAD names, else `main` or `master` (the first of `local` branches that
    is one), else None."""
    if pipeline.describes(commit) and pipeline.default_branch:
        return pipeline.default_branch
    if remote_head:
        return remote_head
    return next((name for name in FALLBACK_DEFAULTS if name in local), None)


def names(patterns: Sequence[str], version: str, default: str | None) -> tuple[str, ...]:
    """The release's branch names: each of `patterns` with `{version}` and `{default}` filled in,
    in order, once each; a pattern naming `{default}` is left out when there is no default."""
    found: list[str] = []
    for pattern in patterns:
        if DEFAULT in pattern and default is None:
            continue
        name = pattern.replace(VERSION, version).replace(DEFAULT, default or "")
        if name not in found:
            found.append(name)
    return tuple(found)


def decide(commit: str, branches: Sequence[str], containing: Collection[str], pipeline: Pipeline) -> OnBranch:
    """Whether `commit` is on one of the release's `branches`, given the ones whose tip is the
    commit or one of its descendants (`containing`) and the pipeline composing it (the rule
    of this module's docstring)."""
    listed = tuple(branches)
    shown = ", ".join(listed) or "none"
    if pipeline.describes(commit) and pipeline.for_merge_request:
        mr = f" !{pipeline.merge_request}" if pipeline.merge_request else ""
        return OnBranch("", listed, f"composed by merge request pipeline{mr}, not by a push to {shown}")
    if pipeline.describes(commit) and pipeline.branch in listed:
        return OnBranch(pipeline.branch, listed, f"the pipeline of a push to {pipeline.branch}")
    for name in listed:
        if name in containing:
            return OnBranch(name, listed, f"on {name}")
    return OnBranch("", listed, f"on none of the release's branches ({shown})")
