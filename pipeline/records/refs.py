"""factory's refs: every namespace it writes in a repository, named here and nowhere else.

Branches (`refs/heads/`) are the user's and stay where they are; everything else factory keeps
in Git lives under one of these, each owned by one module of `pipeline.records`:

    refs/notes/lineage              the record of every compose               records.lineage
    refs/notes/tests                check results (the name predates "check") records.checks
    refs/notes/releases             releases, quarantines, archived releases  records.releases
    refs/notes/mirrors              publications to mirrors                   records.mirrors
    refs/notes/gc                   composes whose files gc removed           records.collected
    refs/tags/compose/<id>          a compose's annotated tag                 records.lineage
    refs/composes/ids/<id>          a compose ID reserved while it runs       records.lineage
    refs/composes/latest/<release>/<node_ref>    latest good                  records.lineage
    refs/composes/retired/<release>/<node_ref>   a retired node's last good   records.lineage
    refs/composes/runs/<run-id>     a run ID reserved on this machine          records.runs
    refs/history/<component>/<branch>            branch history               records.history
    refs/history/sources/<source>                source history               records.source_history
    refs/factory/remotes/<remote>/...            what a remote held last time records.remote
    refs/factory/merge-requests/<n>              the local forge's MRs        bot.forge_local

Notes are keyed by the compose tag object they annotate (`records.jsonnotes`).
"""

from __future__ import annotations

from pipeline.core.records import node_from_suffix, node_ref

NOTES = "refs/notes/"
LINEAGE_NOTES = NOTES + "lineage"
CHECK_NOTES = NOTES + "tests"  # kept: the notes of every repository made so far are there
RELEASE_NOTES = NOTES + "releases"
MIRROR_NOTES = NOTES + "mirrors"
GC_NOTES = NOTES + "gc"

TAGS = "refs/tags/compose/"  # + compose ID
TAG_PREFIX = TAGS.removeprefix("refs/tags/")  # a compose tag object's own name: compose/<id>
COMPOSES = "refs/composes/"
IDS = COMPOSES + "ids/"  # + compose ID: reserved while the compose runs
LATEST = COMPOSES + "latest/"  # + <release>/<node_ref> (or, before releases, <node_ref>)
RETIRED = COMPOSES + "retired/"  # + <release>/<node_ref>
RUNS = COMPOSES + "runs/"  # + run ID: reserved by a local run (never pushed)

HISTORY = "refs/history/"  # + <component>/<branch>
SOURCE_HISTORY = HISTORY + "sources/"  # + <source>: a component named `sources` is refused

FACTORY = "refs/factory/"
TRACKING = FACTORY + "remotes/"  # + <remote>/{notes,latest,retired,history}/...
MERGE_REQUESTS = FACTORY + "merge-requests/"  # + number

# What `lineage push` and `pull` carry: every namespace above but reservations and tracking.
SHARED = (TAGS, NOTES, LATEST, RETIRED, HISTORY)


def tag(compose_id: str) -> str:
    """The ref of a compose's tag: `refs/tags/compose/<compose-id>`."""
    return TAGS + compose_id


def reservation(compose_id: str) -> str:
    """The ref that reserves a compose ID: `refs/composes/ids/<compose-id>`."""
    return IDS + compose_id


def latest_ref(release: str, node: str) -> str:
    """The latest-good ref of a node in a release: `refs/composes/latest/42/repo/Server`."""
    return f"{LATEST}{release}/{node_ref(node)}"


def legacy_latest_ref(node: str) -> str:
    """A node's latest-good ref of the layout without releases: `refs/composes/latest/repo/Server`."""
    return LATEST + node_ref(node)


def retired_ref(release: str, node: str) -> str:
    """Where a retired node's latest good goes: `refs/composes/retired/42/repo/Workstation`."""
    return f"{RETIRED}{release}/{node_ref(node)}"


def node_from_ref(ref: str) -> str:
    """The node id a `node_ref` suffix, or a whole `refs/composes/latest/...` name, stands for."""
    return node_from_suffix(ref.removeprefix(LATEST))
