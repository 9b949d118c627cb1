"""Run IDs: one name for every compose one `factory compose` run (or one CI pipeline) made. Pure.

A run ID is productmd's compose ID of the whole release, as `ComposeInfo.create_compose_id`
makes it and Pungi names a compose: `FL-42-20261207.n.0` (nightly), `FL-42-20261207.0`
(production: no type letter), `FL-42-20261207.t.0`, `FL-42-20261207.ci.4711`. The compose IDs
of its composes keep their node's name between the version and the date
(`FL-42-base-runtime-f42-20261207.n.0`), so the two never look alike.

Where a run's ID comes from:
- `FACTORY_RUN` when it is set: `factory ci generate` writes it into every pipeline file it
  generates, so every job of a GitLab pipeline (its child and part pipelines too, which have
  pipeline IDs of their own) composes under the parent pipeline's run;
- in a GitLab job without it, the pipeline's own: the date of `CI_PIPELINE_CREATED_AT` and the
  respin `CI_PIPELINE_IID` (unique in the project; every job of the pipeline sees the same);
- else (a run on one machine) the next respin of the day and type, reserved in the repository
  like a compose ID (`refs/composes/runs/<run-id>`, `pipeline.records.runs`): respins count per
  date and type, as productmd's do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from pipeline.core.errors import InvalidInput
from pipeline.core.records import COMPOSE_TYPES

RUN_VARIABLE = "FACTORY_RUN"
_RUN_RE = re.compile(
    r"(?P<short>[A-Za-z0-9_+.]+)-(?P<version>[A-Za-z0-9_+.]+)-(?P<date>\d{8})(?P<rest>(?:\.[a-z]+)?\.\d+)"
)
_CREATED = re.compile(r"(\d{4})-(\d{2})-(\d{2})T")


class RunIdParts(NamedTuple):
    """The parts of a run ID; `type_` is a key of COMPOSE_TYPES."""

    short: str
    version: str
    date: str
    type_: str
    respin: int


def run_id(short: str, version: str, date: str, type_: str, respin: int) -> str:
    """productmd's compose ID of the release: `FL-42-20261207.n.0`, production `FL-42-20261207.0`."""
    from productmd.composeinfo import ComposeInfo  # type: ignore[import-untyped]

    if type_ not in COMPOSE_TYPES:
        raise InvalidInput(f"unknown compose type {type_!r}", code="unknown-compose-type")
    info = ComposeInfo()
    info.release.short, info.release.version = short, version
    info.compose.date, info.compose.type, info.compose.respin = date, type_, respin
    made: str = info.create_compose_id()
    if parse_run_id(made) != (short, version, date, type_, respin):
        raise InvalidInput(f"cannot make a run ID of {made!r}", code="invalid-run-id")
    return made


def parse_run_id(text: str) -> RunIdParts:
    """The parts of a run ID (productmd's `get_date_type_respin` reads date, type and respin)."""
    from productmd.composeinfo import get_date_type_respin

    found = _RUN_RE.fullmatch(text)
    try:
        date, type_, respin = get_date_type_respin(text) if found else (None, None, None)
    except ValueError:  # a type productmd does not know
        date = None
    if found is None or date != found["date"] or type_ not in COMPOSE_TYPES or respin is None:
        raise InvalidInput(
            f"not a run ID: {text!r}",
            hint="expected SHORT-VERSION-YYYYMMDD[.TYPE].RESPIN, e.g. FL-42-20261207.n.0",
            code="invalid-run-id",
        )
    return RunIdParts(found["short"], found["version"], found["date"], str(type_), int(respin))


def is_run_id(text: str) -> bool:
    """Whether text is a run ID (a compose ID has a node name between version and date)."""
    try:
        parse_run_id(text)
    except InvalidInput:
        return False
    return True


def from_env(env: Mapping[str, str], short: str, version: str, type_: str) -> str | None:
    """The run ID the environment gives (`FACTORY_RUN`, else a GitLab pipeline's), checked
    against the release and the compose type; None when it gives none (reserve one)."""
    given = env.get(RUN_VARIABLE, "").strip()
    if given:
        parts = parse_run_id(given)
        if (parts.short, parts.version) != (short, version) or parts.type_ != type_:
            raise InvalidInput(
                f"{RUN_VARIABLE}={given} is not a {type_} run of {short}-{version}",
                hint=f"compose with --type {parts.type_}, or unset {RUN_VARIABLE}",
                code="run-mismatch",
            )
        return given
    iid, created = (
        env.get("CI_PIPELINE_IID", "").strip(),
        _CREATED.match(env.get("CI_PIPELINE_CREATED_AT", "")),
    )
    if not iid.isdigit() or created is None:
        return None
    return run_id(short, version, "".join(created.groups()), type_, int(iid))
