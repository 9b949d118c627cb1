"""Run IDs reserved in the definitions repository: `refs/composes/runs/<run-id>`, on the commit
the run composed.

A run on one machine takes the next free respin of its day and type under the ref's lock, as a
compose takes its compose ID under `refs/composes/ids/`, so two runs at once never share an ID.
The ref stays after the run, so a run that made nothing (every node unchanged) is still known to
`factory lineage RUN-ID`. Like compose ID reservations the refs stay local: what travels is the
run ID in the lineage note of every compose the run made, so a reservation also skips the run IDs
the notes name (runs of other clones, pulled with `factory lineage pull`). A GitLab pipeline
reserves nothing: its run ID comes from the pipeline (`pipeline.core.runs.from_env`).
"""

from __future__ import annotations

from collections.abc import Collection

from pipeline.core.errors import OperationFailed
from pipeline.core.runs import run_id
from pipeline.git import refs
from pipeline.git.repo import Repository, ref_target
from pipeline.records.refs import RUNS

MAX_RESPIN = 10_000


def reserve(
    repo: Repository,
    short: str,
    version: str,
    date: str,
    type_: str,
    commit: str,
    taken: Collection[str] = (),
) -> str:
    """The next free run ID of the day and type (respin .0, .1, ...), reserved on `commit`;
    `taken`: run IDs in use elsewhere (those the lineage notes pulled from a remote name)."""
    ids = (run_id(short, version, date, type_, respin) for respin in range(MAX_RESPIN))
    candidates = (RUNS + run for run in ids if run not in taken)
    try:
        found = refs.claim(repo, candidates, lambda _: commit)
    except refs.Contention as exc:
        raise OperationFailed(exc.message, hint=exc.hint, code="runs-locked") from exc
    if found is None:
        raise OperationFailed(
            f"no free respin for a {type_} run of {short}-{version} on {date}", code="run-respins"
        )
    return found.removeprefix(RUNS)


def reserved(repo: Repository) -> list[str]:
    """Every run ID reserved here, sorted."""
    return [name.removeprefix(RUNS) for name in refs.names(repo, RUNS)]


def commit_of(repo: Repository, run: str) -> str | None:
    """The commit a run reserved here composed; None when it was not reserved here."""
    return ref_target(repo, RUNS + run)
