"""The embedded forge: merge requests as branches and records in the definitions repository.

A merge request is
- its source branch, `refs/heads/factory/bump/<component>/<branch>`: one commit with the spec's
  files on top of the target branch as it was when the MR was opened or last updated;
- its record, `refs/factory/merge-requests/<n>`: a commit whose tree holds `merge-request.json`
  (id, source, target, state, title, description, labels, head, commit, notes); each change
  is a new commit on the previous one, so the record keeps its own history.

Every ref moves by compare-and-swap; numbers are claimed by creating the record ref only if it
does not exist. `merge` fast-forwards the target branch, or makes a merge commit, and refuses
a conflict. Its pipeline is a compose of the MR's commit (`pipeline`, given by whoever makes the
forge): `merge_when_pipeline_succeeds` runs it and merges when every node it composed passed
its checks and gate, else leaves a note saying why not.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from pipeline.bot.forge import CLOSED, MERGED, OPENED, ForgeError, MergeRequest, MergeRequestSpec
from pipeline.core.errors import InvalidInput
from pipeline.git import refs
from pipeline.git import repo as gitrepo
from pipeline.git.repo import Repository
from pipeline.records.refs import MERGE_REQUESTS

PREFIX = MERGE_REQUESTS
FILE = "merge-request.json"


AUTOMERGE_MARKER = "<!-- factory:automerge -->"

# A merge request's pipeline: given the MR's commit and its target branch, "" when it passed, else
# why not.
Pipeline = Callable[[str, str], str]


class LocalForge:
    """Merge requests kept in one Git repository (implements pipeline.bot.forge.Forge)."""

    def __init__(
        self, repo: Repository, clock: Callable[[], float] = time.time, pipeline: Pipeline | None = None
    ) -> None:
        self.repo = repo
        self.clock = clock
        self.pipeline = pipeline

    # -- the Forge protocol ------------------------------------------------------------------------

    def find(self, source_branch: str) -> list[MergeRequest]:
        return [mr for mr in self.all() if mr.source_branch == source_branch]

    def open(self, spec: MergeRequestSpec) -> MergeRequest:
        commit = self._source_commit(spec)
        numbers = (f"{PREFIX}{n}" for n in itertools.count(self._next_number()))

        def opened(name: str) -> str:
            number = name.removeprefix(PREFIX)
            record = _record(number, spec, OPENED, commit)
            return self._record_commit(record, None, f"Open merge request !{number}")

        claimed = refs.claim(self.repo, numbers, opened)
        assert claimed is not None  # the numbers never run out
        self._move_branch(spec.source_branch, commit)
        return self.get(claimed.removeprefix(PREFIX))

    def update(self, mr: MergeRequest, spec: MergeRequestSpec) -> MergeRequest:
        commit = self._source_commit(spec)

        def change(record: dict[str, Any]) -> dict[str, Any]:
            if record["state"] != OPENED:
                raise ForgeError(
                    f"merge request !{mr.id} is {record['state']}: it cannot be updated", code="mr-not-open"
                )
            return {**_record(mr.id, spec, OPENED, commit), "notes": record.get("notes", [])}

        record = self._change(mr.id, change, f"Update merge request !{mr.id}")
        self._move_branch(spec.source_branch, commit)
        return _merge_request(record)

    def upsert_note(self, mr_id: str, marker: str, body: str) -> None:
        def change(record: dict[str, Any]) -> dict[str, Any]:
            notes = [n for n in record.get("notes", []) if marker not in n]
            return {**record, "notes": [*notes, body]}

        self._change(mr_id, change, f"Note on merge request !{mr_id}")

    def merge_when_pipeline_succeeds(self, mr: MergeRequest) -> MergeRequest:
        """Run the MR's pipeline (a compose of its commit, checked and gated) and merge it when it
        passes; when it does not, the MR stays open with a note saying why (and ForgeError)."""
        if self.pipeline is None:
            raise ForgeError("this local forge has no pipeline to wait for", code="no-pipeline")
        record = self.record(mr.id)
        if record["state"] != OPENED:
            raise ForgeError(f"merge request !{mr.id} is {record['state']}, not open", code="mr-not-open")
        failed = self.pipeline(record["commit"], record["target"])
        if failed:
            self.upsert_note(
                mr.id, AUTOMERGE_MARKER, f"Not merged: its pipeline failed: {failed}\n{AUTOMERGE_MARKER}"
            )
            raise ForgeError(f"!{mr.id} is not merged: its pipeline failed: {failed}", code="pipeline-failed")
        return self.merge(mr.id)

    # -- beyond the protocol: what `factory mr` does by hand -------------------------------------------

    def all(self) -> list[MergeRequest]:
        """Every merge request, newest first."""
        numbers = sorted((int(n) for n in self._numbers()), reverse=True)
        return [_merge_request(self._read(str(n))[1]) for n in numbers]

    def get(self, mr_id: str) -> MergeRequest:
        return _merge_request(self._read(mr_id)[1])

    def record(self, mr_id: str) -> dict[str, Any]:
        """The whole record, notes and source commit included."""
        return self._read(mr_id)[1]

    def close(self, mr_id: str) -> MergeRequest:
        """Close an open merge request without merging it."""

        def change(record: dict[str, Any]) -> dict[str, Any]:
            if record["state"] != OPENED:
                raise ForgeError(f"merge request !{mr_id} is {record['state']}, not open", code="mr-not-open")
            return {**record, "state": CLOSED}

        return _merge_request(self._change(mr_id, change, f"Close merge request !{mr_id}"))

    def merge(self, mr_id: str) -> MergeRequest:
        """Bring the MR's commit into its target branch (fast-forward or a merge commit), then mark
        it merged. Refuses conflicts, and a dirty working tree when the target is checked out."""
        record = self._read(mr_id)[1]
        if record["state"] != OPENED:
            raise ForgeError(f"merge request !{mr_id} is {record['state']}, not open", code="mr-not-open")
        target_ref = f"refs/heads/{record['target']}"
        checked_out = gitrepo.checked_out_branch(self.repo) == record["target"]
        if checked_out and not gitrepo.worktree_clean(self.repo):
            raise ForgeError(
                f"the working tree of {record['target']} has uncommitted changes",
                hint="commit or stash them, then merge again",
                code="uncommitted-changes",
            )

        def merge_into(target: str | None) -> str:
            if target is None:
                raise ForgeError(
                    f"the target branch {record['target']} does not exist", code="unknown-branch"
                )
            message = f"Merge {record['source']} (!{mr_id})\n\n{record['title']}\n"
            merged = gitrepo.merge_commit(self.repo, target, record["commit"], message, int(self.clock()))
            if merged is None:
                raise ForgeError(
                    f"merge request !{mr_id} conflicts with {record['target']}",
                    hint="rerun `factory bot reconcile` after the branch moves again, or bump by hand",
                    code="merge-conflict",
                )
            return merged

        try:
            merged = refs.update_ref(self.repo, target_ref, merge_into)
        except refs.Contention as exc:
            raise ForgeError(
                f"{record['target']} kept moving: merge abandoned", code="branch-contention"
            ) from exc
        assert merged is not None
        if checked_out:
            gitrepo.checkout_commit(self.repo, merged)
        done = self._change(mr_id, lambda r: {**r, "state": MERGED}, f"Merged merge request !{mr_id}")
        return _merge_request(done)

    def create_branch(self, name: str, start: str) -> bool:
        """Create branch `name` at the head of branch `start` unless it exists: True if made."""
        head = gitrepo.ref_target(self.repo, f"refs/heads/{start}")
        if head is None:
            raise ForgeError(f"the branch {start} does not exist", code="unknown-branch")
        return refs.create_if_absent(self.repo, f"refs/heads/{name}", head) is True

    # -- records ---------------------------------------------------------------------------------------

    def _numbers(self) -> list[str]:
        # By name under the prefix: listing every ref (24,000 compose refs at scale) costs a second.
        return [r.removeprefix(PREFIX) for r in refs.names(self.repo, PREFIX)]

    def _next_number(self) -> int:
        return max((int(n) for n in self._numbers() if n.isdigit()), default=0) + 1

    def _read(self, mr_id: str) -> tuple[str, dict[str, Any]]:
        if not mr_id.isdigit():
            raise InvalidInput(f"not a merge request number: {mr_id!r}", code="unknown-merge-request")
        commit = gitrepo.ref_target(self.repo, PREFIX + mr_id)
        if commit is None:
            raise InvalidInput(f"no merge request !{mr_id}", code="unknown-merge-request")
        return commit, self._load(commit)

    def _load(self, commit: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(gitrepo.read_record(self.repo, commit, FILE))
        return value

    def _record_commit(self, record: dict[str, Any], parent: str | None, message: str) -> str:
        data = (json.dumps(record, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
        return gitrepo.record_commit(self.repo, parent, FILE, data, message + "\n", int(self.clock()))

    def _change(
        self, mr_id: str, change: Callable[[dict[str, Any]], dict[str, Any]], message: str
    ) -> dict[str, Any]:
        self._read(mr_id)  # refuses an unknown merge request
        changed: list[dict[str, Any]] = []

        def write(parent: str | None) -> str:
            assert parent is not None  # a record is never deleted
            changed[:] = [change(self._load(parent))]
            return self._record_commit(changed[0], parent, message)

        try:
            refs.update_ref(self.repo, PREFIX + mr_id, write)
        except refs.Contention as exc:
            raise ForgeError(f"merge request !{mr_id} keeps changing: gave up", code="mr-contention") from exc
        return changed[0]

    def _source_commit(self, spec: MergeRequestSpec) -> str:
        """A commit with the spec's files on top of the target branch."""
        target = f"refs/heads/{spec.target_branch}"
        if gitrepo.ref_target(self.repo, target) is None:
            raise ForgeError(f"the target branch {spec.target_branch} does not exist", code="unknown-branch")
        files = {path: text.encode("utf-8") for path, text in spec.files.items()}
        message = spec.commit_message or spec.title + "\n"
        return gitrepo.commit_files(self.repo, target, files, message, int(self.clock()), spec.removed)

    def _move_branch(self, name: str, commit: str) -> None:
        gitrepo.set_ref(self.repo, f"refs/heads/{name}", commit)


def _record(mr_id: str, spec: MergeRequestSpec, state: str, commit: str) -> dict[str, Any]:
    return {
        "id": mr_id,
        "source": spec.source_branch,
        "target": spec.target_branch,
        "state": state,
        "title": spec.title,
        "description": spec.description,
        "labels": list(spec.labels),
        "head": spec.head,
        "commit": commit,
        "notes": [],
    }


def _merge_request(record: dict[str, Any]) -> MergeRequest:
    return MergeRequest(
        id=str(record["id"]),
        source_branch=record["source"],
        target_branch=record["target"],
        state=record["state"],
        title=record["title"],
        description=record["description"],
        labels=tuple(record["labels"]),
        head=record["head"],
        web_url=f"{PREFIX}{record['id']}",
    )
