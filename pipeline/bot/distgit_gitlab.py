"""Component dist-git repositories kept as projects of a GitLab: read a branch head, make a branch.

`factory branch-release` branches every component. When factory.yaml's `distgit.url` puts
dist-git on the GitLab of `forge.gitlab.url` (`https://gitlab.example/rpms/{component}.git`),
each component is the project at that path (`rpms/openssl`) and its branches are made through
GitLab's branches API with python-gitlab, retried and translated as the GitLab forge does
(`GitLabCalls`): look, then act, so a retry after a lost answer never fails on a branch it made.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gitlab
import gitlab.exceptions as glexc

from pipeline.bot.forge import ForgeError
from pipeline.bot.forge_gitlab import GitLabCalls


class GitLabDistGit(GitLabCalls):
    """The dist-git projects under one GitLab instance (`client.url`)."""

    def project_path(self, url: str) -> str | None:
        """`rpms/openssl` for `https://gitlab.example/rpms/openssl.git`; None when url is not a
        project of this GitLab."""
        base = self._gl.url.rstrip("/") + "/"
        if not url.startswith(base):
            return None
        path = url.removeprefix(base).removesuffix("/").removesuffix(".git")
        return path or None

    def head(self, url: str, branch: str) -> str | None:
        """The commit a branch of the component at url points to; None when it has no such branch."""
        path = self._path_of(url)

        def read() -> str | None:
            try:
                found = self._gl.projects.get(path, lazy=True).branches.get(branch)
            except glexc.GitlabGetError as exc:
                if exc.response_code != 404:
                    raise
                return None
            return str(found.attributes["commit"]["id"])

        return self._retrying(f"reading branch {branch} of {path}", read)

    def create_branch(self, url: str, branch: str, start: str) -> bool:
        """Create `branch` at commit `start` in the component at url unless it exists: True if made."""
        path = self._path_of(url)
        project = self._gl.projects.get(path, lazy=True)

        def make() -> bool:
            try:
                project.branches.get(branch)
                return False
            except glexc.GitlabGetError as exc:
                if exc.response_code != 404:
                    raise
            project.branches.create({"branch": branch, "ref": start})
            return True

        return self._retrying(f"creating branch {branch} of {path}", make)

    def _path_of(self, url: str) -> str:
        path = self.project_path(url)
        if path is None:
            raise ForgeError(f"{url} is not a project of the GitLab at {self._gl.url}")
        return path


def gitlab_distgit(
    url: str,
    token: str,
    *,
    timeout: float = 10,
    tries: int = 4,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> GitLabDistGit:
    """The dist-git projects of the GitLab at url, written with `token` (PRIVATE-TOKEN)."""
    if not token:
        raise ForgeError("no GitLab token: set FACTORY_GITLAB_TOKEN")
    client = gitlab.Gitlab(url, private_token=token, timeout=timeout, retry_transient_errors=False)
    return GitLabDistGit(client, "dist-git", secrets=(token,), tries=tries, backoff=backoff, sleep=sleep)
