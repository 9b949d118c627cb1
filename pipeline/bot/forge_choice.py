"""Which forge to act on, built from the typed configuration and the environment.

The one place a GitLab forge is made (the bot and `factory ci post-plan` both come here), and so
the one place that decides which token is sent:

- `FACTORY_GITLAB_TOKEN` (a project or personal access token with the api scope) is what writes
  to GitLab: it is sent as PRIVATE-TOKEN. Without it, making the GitLab forge fails with an error
  naming the variable, before any request.
- `CI_JOB_TOKEN` is never sent in its place. GitLab lets a CI/CD job token call only the
  endpoints listed under "Job token access" of https://docs.gitlab.com/ci/jobs/ci_job_token/
  (registries, packages, releases, deployments, environments, job artifacts, pipeline
  triggers, reading branches, commits, raw files, merge requests and their notes; of the calls
  the forge makes, only the GETs of merge requests and notes); anywhere else it is not even
  looked at, so the request is anonymous. Reading the project, a branch or a file's metadata, and every write the forge
  makes (branches, commits, merge requests, notes) would be refused (401 for a write, 404 for a
  read of a private project); the error says so. The forge has no way to send one.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from pipeline.bot.forge import BranchingForge
from pipeline.core.config import ForgeConfig, ForgeKind
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.workspace import Workspace

WRITE_TOKEN = "FACTORY_GITLAB_TOKEN"
JOB_TOKEN = "CI_JOB_TOKEN"


def make_forge(
    kind: str, ws: Workspace, target: str, clock: Callable[[], float] = time.time
) -> BranchingForge:
    """The forge to act on: `local` (this repository) or `gitlab` (factory.yaml's forge.gitlab of
    the target branch, and FACTORY_GITLAB_TOKEN)."""
    if kind == ForgeKind.LOCAL:
        from pipeline.bot.forge_local import LocalForge
        from pipeline.bot.local_pipeline import compose_pipeline

        return LocalForge(ws.repo, clock, compose_pipeline(ws))
    if kind != ForgeKind.GITLAB:
        raise InvalidInput(f"unknown forge {kind!r}", code="unknown-forge")
    config = ws.config(target).forge
    if not config.gitlab.url or not config.gitlab.project:
        raise InvalidInput(
            "factory.yaml has no forge.gitlab.url and forge.gitlab.project", code="no-gitlab-config"
        )
    return gitlab_forge(config, os.environ)


def gitlab_forge(
    config: ForgeConfig, env: Mapping[str, str], *, url: str = "", project: str = ""
) -> BranchingForge:
    """The GitLab forge of a project: `url` and `project` when given, else factory.yaml's
    forge.gitlab; the token from FACTORY_GITLAB_TOKEN (see above). Makes no request."""
    url = url or config.gitlab.url
    project = project or config.gitlab.project
    if not url or not project:
        raise OperationFailed(
            "no GitLab project: " + ("no URL" if not url else "no project path"),
            hint="set forge.gitlab.url and forge.gitlab.project in factory.yaml "
            "(in GitLab CI, CI_SERVER_URL and CI_PROJECT_PATH say it)",
            code="no-gitlab-config",
        )
    token = env.get(WRITE_TOKEN, "")
    if not token:
        refused = (
            f" ({JOB_TOKEN} is set, but GitLab lets a job token neither open merge requests nor write notes)"
            if env.get(JOB_TOKEN)
            else ""
        )
        raise OperationFailed(
            f"no GitLab token: {WRITE_TOKEN} is not set{refused}",
            hint=f"set {WRITE_TOKEN} to a project access token with the api scope and the Developer role "
            "(a masked CI/CD variable in GitLab)",
            code="no-gitlab-token",
        )
    try:
        module = importlib.import_module("pipeline.bot.forge_gitlab")
    except ImportError as exc:
        raise OperationFailed(
            "the GitLab forge is not available (pipeline.bot.forge_gitlab cannot be imported)",
            hint="install python-gitlab, or use --forge local",
            code="no-gitlab-forge",
        ) from exc
    build: Callable[[str, str, str], BranchingForge] = module.gitlab_forge
    return build(url, project, token)


class DistGitBranches:
    """Dist-git branches read and made where each component lives: a local repository through
    `pipeline.git.distgit`, a project of the GitLab of `forge.gitlab.url` through its API (with
    FACTORY_GITLAB_TOKEN, asked for only when such a component comes up)."""

    def __init__(self, ws: Workspace, config: ForgeConfig, env: Mapping[str, str]) -> None:
        from pipeline.git.distgit import DistGit

        self._local = DistGit(ws.root)
        self._config = config
        self._env = env
        self._gitlab: Any = None

    def _on_gitlab(self, url: str) -> Any:
        base = self._config.gitlab.url.rstrip("/")
        if not base or not url.startswith(base + "/"):
            if "://" in url.removeprefix("file://"):
                raise InvalidInput(
                    f"cannot branch {url}: it is neither a local repository nor on forge.gitlab.url "
                    f"({base or 'not set'})",
                    code="remote-distgit",
                )
            return None
        if self._gitlab is None:
            token = self._env.get(WRITE_TOKEN, "")
            if not token:
                raise OperationFailed(
                    f"no GitLab token: {WRITE_TOKEN} is not set (dist-git {url} is on GitLab)",
                    hint=f"set {WRITE_TOKEN} to an access token with the api scope that may push to dist-git",
                    code="no-gitlab-token",
                )
            module = importlib.import_module("pipeline.bot.forge_gitlab")
            self._gitlab = module.gitlab_distgit(base, token)
        return self._gitlab

    def head(self, url: str, branch: str) -> str | None:
        """The commit a component's branch points to (None: no such branch, or unreachable)."""
        remote = self._on_gitlab(url)
        found: str | None = remote.head(url, branch) if remote is not None else self._local.head(url, branch)
        return found

    def create_branch(self, url: str, branch: str, start: str) -> bool:
        """Make a component's branch at commit `start` unless it exists: True when made."""
        remote = self._on_gitlab(url)
        made: bool = (
            remote.create_branch(url, branch, start)
            if remote is not None
            else self._local.create_branch(url, branch, start)
        )
        return made
