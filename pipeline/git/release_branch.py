"""Is a commit on one of its release's branches? The repository's refs and GitLab's variables,
read here; the decision is `pipeline.core.branches.decide` (its docstring holds the rule)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pipeline.core import branches
from pipeline.core.config import Release
from pipeline.git import repo as gitrepo


def on_release_branch(
    repo: gitrepo.Repository, commit: str, release: Release, env: Mapping[str, str]
) -> branches.OnBranch:
    """Whether `commit` is on one of `release`'s branches (factory.yaml's `release.branches` of
    the definitions composed), as a job with environment `env` sees it."""
    pipeline = branches.Pipeline.from_env(env)
    default = branches.default_branch(
        pipeline, commit, gitrepo.remote_head(repo), gitrepo.local_branches(repo)
    )
    names = branches.names(release.branches, release.version, default)
    containing = {
        name
        for name in names
        if any(gitrepo.is_ancestor(repo, commit, tip) for tip in gitrepo.branch_tips(repo, name))
    }
    return branches.decide(commit, names, containing, pipeline)


def off_release_branches(
    repo: gitrepo.Repository, commits: Iterable[str], release: Release, env: Mapping[str, str]
) -> set[str]:
    """The commits among `commits` that are on none of `release`'s branches now."""
    return {c for c in set(commits) if not on_release_branch(repo, c, release, env).moves_latest}
