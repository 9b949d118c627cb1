"""What the bot asks of a forge (where merge requests live), and what it hands it.

The bot decides (`decide.py`, pure) and a forge acts. Two forges implement the protocol: the
local one (branches in this repository, records under refs/factory/merge-requests/) and GitLab
(python-gitlab). Forges must be idempotent: `find` before `open`, so a rerun, a retry after a
timeout, or a create whose answer was lost never makes a second merge request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.core.errors import OperationFailed
from pipeline.core.states import MergeRequestState

OPENED, CLOSED, MERGED = MergeRequestState.OPENED, MergeRequestState.CLOSED, MergeRequestState.MERGED

# A head is a dist-git commit, or the NVR of a build a source holds (`glibc-2.41-11.fc42`).
_HEAD_MARKER = re.compile(r"<!-- factory:head=([0-9A-Za-z][0-9A-Za-z._+~^:-]{0,255}) -->")


def head_marker(*names: str) -> str:
    """The machine-readable line that ends a description and names the dist-git head (or build)
    it bumps to.

    Called as `head_marker(head)` or `head_marker(component, branch, head)`: the head is the last
    argument, and the only thing the marker records (the source branch names the rest).
    """
    if not names:
        raise TypeError("head_marker needs the head")
    return f"<!-- factory:head={names[-1]} -->"


def parse_head(description: str) -> str:
    """The head named by the last marker in a description; "" when it has none."""
    found = _HEAD_MARKER.findall(description or "")
    return found[-1] if found else ""


head_from_description = parse_head  # the same, under the name the GitLab forge imports


@dataclass(frozen=True, slots=True)
class MergeRequestSpec:
    """A merge request the bot wants to exist, with exactly this content."""

    source_branch: str  # factory/bump/<component>/<branch>, factory/bump-build/<component>/<source>
    target_branch: str  # the definitions repository's default branch
    title: str
    description: str  # Markdown; ends with a machine-readable marker naming `head`
    labels: tuple[str, ...]
    files: Mapping[str, str] = field(default_factory=dict)  # path -> whole new content
    head: str = ""  # the dist-git commit (or build) the pins move to: what makes two specs "the same bump"
    commit_message: str = ""
    removed: tuple[str, ...] = ()  # paths the commit deletes (a module stream renamed)


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """A merge request as the forge has it."""

    id: str  # the forge's number (GitLab iid, local sequence)
    source_branch: str
    target_branch: str
    state: str  # opened, closed, merged
    title: str
    description: str
    labels: tuple[str, ...]
    head: str  # the dist-git head (or build) the MR bumps to, read back from its marker
    web_url: str = ""
    auto_merge: bool = False  # set to merge once its pipeline passes (GitLab's merge_when_pipeline_succeeds)


class ForgeError(OperationFailed):
    """The forge refused or failed; keeps the HTTP status and body when there is one."""

    def __init__(
        self, message: str, *, code: str, status: int | None = None, body: str = "", hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint, code=code)
        self.status = status
        self.body = body


class Forge(Protocol):
    """Where merge requests are opened and found."""

    def find(self, source_branch: str) -> list[MergeRequest]:
        """Every merge request (any state) from that source branch, newest first."""
        ...

    def open(self, spec: MergeRequestSpec) -> MergeRequest:
        """Create the source branch with the spec's files committed, and the merge request."""
        ...

    def update(self, mr: MergeRequest, spec: MergeRequestSpec) -> MergeRequest:
        """Reset the source branch to a new commit with the spec's files; update text and labels."""
        ...

    def upsert_note(self, mr_id: str, marker: str, body: str) -> None:
        """Post a note on a merge request, or edit the one that contains marker (no duplicates)."""
        ...


class AutoMergingForge(Forge, Protocol):
    """A forge that can merge a merge request once its pipeline passes."""

    def merge_when_pipeline_succeeds(self, mr: MergeRequest) -> MergeRequest:
        """Merge the MR once its pipeline passes (at once when it has passed); the MR as it is
        then (merged, or open with `auto_merge` set). ForgeError when it cannot be merged."""
        ...


class BranchingForge(AutoMergingForge, Protocol):
    """A forge that can also make a branch of the definitions repository (`release/42`)."""

    def create_branch(self, name: str, start: str) -> bool:
        """Create branch `name` at the head of branch `start` unless it exists: True if made."""
        ...
