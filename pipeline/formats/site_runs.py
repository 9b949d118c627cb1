"""The overview site's runs page: `runs.html#<run-id>` and its twin `runs.json`. Pure.

A run is one `factory compose` run or one CI pipeline (`pipeline.core.runs`); the page lists the
newest `RUNS_SHOWN` runs, newest first, each with the composes it made linked to their nodes'
pages, so "today's nightly" has one address: `runs.html#FL-42-20261207.n.0`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.core.records import Record
from pipeline.core.runs import parse_run_id
from pipeline.formats.site_html import e, state

RUNS_SHOWN = 100
PAGE = "runs.html"


@dataclass(frozen=True, slots=True)
class RunView:
    """One run: its ID, compose type, date, and the composes it made, oldest first."""

    id: str
    type_: str
    date: str  # YYYY-MM-DD
    composes: tuple[Record, ...]

    @property
    def finished(self) -> str:
        return max(r.finished for r in self.composes)


def run_views(records: Iterable[Record], shown: int = RUNS_SHOWN) -> list[RunView]:
    """The runs the records name (old records name none), newest first: the one whose last
    compose finished last first, then the greater run ID."""
    made: dict[str, list[Record]] = {}
    for record in records:
        if record.run:
            made.setdefault(record.run, []).append(record)
    views = []
    for run, composes in made.items():
        parts = parse_run_id(run)
        date = f"{parts.date[:4]}-{parts.date[4:6]}-{parts.date[6:]}"
        ordered = tuple(sorted(composes, key=lambda r: (r.finished, r.compose_id)))
        views.append(RunView(run, parts.type_, date, ordered))
    return sorted(views, key=lambda v: (v.finished, v.id), reverse=True)[:shown]


def anchor(record: Record, links: Mapping[str, str]) -> str | None:
    """Where a compose is on the site (its node's page, at the compose), None when nowhere."""
    page = links.get(record.node)
    if page is None:
        return None
    return page if "#" in page else f"{page}#{record.compose_id}"


def html(views: Sequence[RunView], links: Mapping[str, str], link: Callable[[str], str]) -> str:
    """The body of runs.html; `link` turns a page of `links` into an href from the site's root."""
    if not views:
        return "<p>No compose recorded a run yet.</p>"
    parts = [
        f"<p>The newest {len(views)} runs, newest first. A run's composes are those it made; the "
        "nodes it left unchanged keep the composes of earlier runs.</p>"
    ]
    for view in views:
        rows = []
        for r in view.composes:
            where = anchor(r, links)
            cid = f'<a href="{e(link(where))}">{e(r.compose_id)}</a>' if where else e(r.compose_id)
            rows.append(f"<tr><td>{cid}</td><td>{e(r.node)}</td><td>{state(r.status.lower())}</td></tr>")
        parts.append(
            f'<section id="{e(view.id)}" aria-labelledby="h-{e(view.id)}"><h2 id="h-{e(view.id)}">{e(view.id)}</h2>'
            f"<p>{e(view.type_)} run of {e(view.date)}: {len(view.composes)} composes, the last finished "
            f"{e(view.finished)}.</p><table><thead><tr><th>compose</th><th>node</th><th>status</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></section>"
        )
    return "".join(parts)


def json_page(
    views: Sequence[RunView], links: Mapping[str, str], page_stamp: dict[str, Any]
) -> dict[str, Any]:
    """The twin of runs.html."""
    return {
        "format": 1,
        "page": "runs",
        "stamp": page_stamp,
        "runs": [
            {
                "id": v.id,
                "type": v.type_,
                "date": v.date,
                "composes": [
                    {"compose_id": r.compose_id, "node": r.node, "status": r.status, "page": anchor(r, links)}
                    for r in v.composes
                ],
            }
            for v in views
        ],
    }
