"""Merging in the loopback GitLab (`tests/gitlab_server.py`), as GitLab's documentation says:

- `PUT /projects/:id/merge_requests/:iid/merge`
  (https://docs.gitlab.com/api/merge_requests/#merge-a-merge-request): an MR that is not open
  answers 405 ("405 Method Not Allowed": it "is not able to be merged"); a `sha` other than the
  source branch's head answers 409 ("SHA does not match HEAD of source branch"); changes that
  conflict with the target answer 422 ("Branch cannot be merged"). With
  `merge_when_pipeline_succeeds` (or, since 17.11, `auto_merge`) true, an MR whose head pipeline
  is still running is set to merge when it succeeds (200, `merge_when_pipeline_succeeds: true`,
  still `opened`; https://docs.gitlab.com/user/project/merge_requests/auto_merge/), one whose
  pipeline succeeded merges at once, and one whose pipeline failed, or that has none to wait for,
  answers 405. Without it, the MR merges at once.
- A merge makes a merge commit (GitLab's default merge method,
  https://docs.gitlab.com/user/project/merge_requests/methods/): parents the target's tip and the
  MR's head, the target's files with the MR's changes.
- Pipelines: a commit pushed to a branch whose files hold `.gitlab-ci.yml` gets a pipeline,
  running until the test finishes it; https://docs.gitlab.com/ci/pipelines/ ("a pipeline runs
  when you push a commit to a branch" of a project with a CI/CD configuration file). When it
  succeeds, every MR set to merge when its head pipeline succeeds merges.

Pure functions over the server's state; the server turns `Refused` into its error answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

CI_FILE = ".gitlab-ci.yml"
WAIT, MERGE = "wait", "merge"


class Refused(Exception):
    """GitLab's answer to a merge it will not make: status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


def accept(mr: Mapping[str, Any], head: str | None, pipeline: str | None, params: Mapping[str, Any]) -> str:
    """What a merge request asks: WAIT for the running pipeline, or MERGE now; else Refused."""
    if mr["state"] != "opened":
        raise Refused(405, "405 Method Not Allowed")
    if params.get("sha") and params["sha"] != head:
        raise Refused(409, "SHA does not match HEAD of source branch")
    wait = any(
        str(params.get(k, "")).lower() in ("true", "1")
        for k in ("merge_when_pipeline_succeeds", "auto_merge")
    )
    if wait and pipeline == "running":
        return WAIT
    if wait and pipeline != "success":
        raise Refused(405, "405 Method Not Allowed")
    return MERGE


def merged_tree(
    trees: Mapping[str, Mapping[str, str]], parents: list[str], head: str, target: str
) -> dict[str, str]:
    """The files of the merge of head (whose first parent is its base) into target; Refused 422
    when the target changed a file the MR changes."""
    base = trees[parents[0]] if parents else {}
    changes = {p: c for p, c in trees[head].items() if base.get(p) != c}
    removed = [p for p in base if p not in trees[head]]
    tree = dict(trees[target])
    if any(tree.get(p) != base.get(p) for p in [*changes, *removed]):
        raise Refused(422, "Branch cannot be merged")
    tree.update(changes)
    for path in removed:
        tree.pop(path, None)
    return tree


def finish(
    pipelines: MutableMapping[str, str],
    merge_requests: Iterable[dict[str, Any]],
    branches: Mapping[str, str],
    sha: str,
    status: str,
    merge: Callable[[dict[str, Any]], None],
) -> None:
    """A commit's running pipeline ends (`success` or `failed`); on success every open MR set to
    merge when its head pipeline succeeds, whose head it is, is merged."""
    if pipelines.get(sha) != "running":
        raise ValueError(f"no running pipeline of {sha}")
    pipelines[sha] = status
    if status != "success":
        return
    for mr in list(merge_requests):
        if (
            mr["state"] == "opened"
            and mr.get("merge_when_pipeline_succeeds")
            and branches.get(mr["source_branch"]) == sha
        ):
            merge(mr)
