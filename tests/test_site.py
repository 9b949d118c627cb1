"""The overview site as a pure rendering of the status: pages, JSON twins, links, the graph.

No temp dirs: the pages are rendered into memory from the facts of tests/test_status.py (the
example distribution composed once, then gtk broken and failing, a bump merge request open).
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pipeline.build.local import log_location
from pipeline.core.facts import BranchHead, BumpRequest, CheckRun
from pipeline.core.overview import detail
from pipeline.core.states import CheckState
from pipeline.core.status import Status, compute
from pipeline.formats import site, site_style, status_json
from tests.conftest import ROOT
from tests.test_status import FIXED, GRAPH, Lineage, _passing, broken_gtk, facts, graph_of

MADE = "2026-11-21T12:00:00Z"
SCHEMA = Draft202012Validator(json.loads((ROOT / "pipeline" / "schemas" / "site.json").read_text()))


def failing_status() -> Status:
    lineage = Lineage()
    defs, graph = graph_of(broken_gtk())
    lineage.compose(GRAPH)  # everything, from the example as it is
    lineage.compose(graph, ["module:gtk:3"], fail=["module:gtk:3"])
    checks = {r.compose_id: _passing(r) for r in lineage.records}
    checks[lineage.records[-1].compose_id] = [
        CheckRun("repoclosure", CheckState.FAILED, "gtk3 requires glib2", "t", "t")
    ]
    server = next(r for r in reversed(lineage.records) if r.node == "repo:Server")
    checks[server.compose_id] = [  # an install check that found nothing to install
        CheckRun("install", CheckState.NOT_APPLICABLE, "nothing to install", "t", "t"),
        CheckRun("repoclosure", CheckState.PASSED, "", "t", "t"),
    ]
    return compute(
        facts(
            lineage,
            defs=defs,
            graph=graph,
            checks=checks,
            branches={("openssl", "f42"): BranchHead("openssl", "f42", FIXED, "2026-11-21T08:00:00Z")},
            bumps=(
                BumpRequest("1", "Bump openssl (f42) to 9d0324eb", "openssl", "f42", FIXED, ("security",)),
            ),
        )
    )


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return dict(site.pages(failing_status(), MADE))


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "data") and value:
                self.hrefs.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> Links:
    found = Links()
    found.feed(text)
    return found


def builds_of(twin: dict[str, Any]) -> list[dict[str, Any]]:
    """The builds of a builds page's twin, whole: `shared` and `shared_compose` merged in."""
    return [
        {
            **twin["shared"],
            **entry,
            "history": [{**twin["shared_compose"], **c} for c in entry["history"]],
        }
        for entry in twin["nodes"]
    ]


def resolve(page: str, href: str) -> str:
    target = href.split("#", 1)[0]
    parts: list[str] = []
    for part in (PurePosixPath(page).parent / target).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def test_every_page_has_a_json_twin_that_validates(pages: dict[str, str]) -> None:
    html = [p for p in pages if p.endswith(".html")]
    assert {"index.html", "eol.html", "graph.html", "components/index.html", "lists/all.html"} <= set(html)
    for page in html:
        assert site.twin(page) in pages, page
    for path, text in pages.items():
        if path.endswith(".json"):
            errors = [e.message for e in SCHEMA.iter_errors(json.loads(text))]
            assert errors == [], path
    assert "nodes/module~gtk~3.json" in pages


def test_a_builds_twin_says_once_what_its_builds_share_and_each_build_whole_merged(
    pages: dict[str, str],
) -> None:
    status = failing_status()
    links = {v.id: site.page_of(status.facts.graph, v.id) for v in status.views()}
    twin = json.loads(pages["builds/base-runtime~f42.json"])
    assert twin["shared"]["owners"] == ["base-runtime-sig@example.invalid"]  # said once, not in each
    assert all("owners" not in entry for entry in twin["nodes"])
    whole = [status_json.build_entry(detail(status, b["node"]), links) for b in twin["nodes"]]
    assert builds_of(twin) == json.loads(json.dumps(whole))
    assert len(twin["nodes"]) > 1 and all(len(b["history"]) >= 1 for b in whole)


def test_the_schema_refuses_a_twin_that_says_more_than_it_may(pages: dict[str, str]) -> None:
    overview = json.loads(pages["status.json"])
    overview["nodes"][0]["mirror"] = "on-the-mirrors"
    assert list(SCHEMA.iter_errors(overview))
    overview = json.loads(pages["status.json"])
    overview["nodes"][0]["state"] = "green"
    assert list(SCHEMA.iter_errors(overview))
    node = json.loads(pages["nodes/module~gtk~3.json"])
    del node["history"]
    assert list(SCHEMA.iter_errors(node))


def test_every_link_resolves_inside_the_site(pages: dict[str, str]) -> None:
    for path, text in pages.items():
        if not path.endswith((".html", ".svg")):
            continue
        for href in parse(text).hrefs:
            assert "://" not in href and not href.startswith("/"), (path, href)
            target = path if href.startswith("#") else resolve(path, href)
            assert target in pages, (path, href)
            if "#" in href:  # the section or compose it points at is there
                assert f'id="{href.split("#", 1)[1]}"' in pages[target], (path, href)


def test_the_overview_shows_the_failure_first_with_its_owners_and_what_it_blocks(
    pages: dict[str, str],
) -> None:
    text = pages["index.html"]
    failures = text[text.index('id="failures"') : text.index('id="running"')]
    assert "module:gtk:3" in failures and "desktop-sig@example.invalid" in failures
    assert "repo:Workstation" in failures
    assert text.index('id="failures"') < text.index('id="every"')
    overview = json.loads(pages["status.json"])
    assert overview["failures"] == ["module:gtk:3"]
    assert overview["counts"]["failed"] == 1 and overview["counts"]["blocked"] == 1
    gtk = next(n for n in overview["nodes"] if n["node"] == "module:gtk:3")
    assert gtk["blocks"] == 1 and gtk["owners"] == ["desktop-sig@example.invalid"]
    workstation = next(n for n in overview["nodes"] if n["node"] == "repo:Workstation")
    assert workstation["state"] == "blocked" and workstation["blocked_by"] == ["module:gtk:3"]
    gtk_page = json.loads(pages["nodes/module~gtk~3.json"])["status"]
    assert gtk_page["blocks"] == {"count": 1, "nodes": ["repo:Workstation"]}
    assert "Made 2026-11-21T12:00:00Z from definitions commit" in text


def test_a_node_page_shows_lineage_both_ways_and_its_checks(pages: dict[str, str]) -> None:
    page = pages["nodes/module~base-runtime~f42.html"]
    links = parse(page).hrefs
    assert any(h.startswith("../builds/base-runtime~f42.html#FL-42-openssl-") for h in links)  # made from
    assert any(h.startswith("../nodes/repo~Server.html#FL-42-Server-") for h in links)  # used by
    twin = json.loads(pages["nodes/module~base-runtime~f42.json"])
    newest = twin["history"][0]
    # down to the dist-git commit: named on the module's page, linked from its build's row
    commit = next(p["commit"] for p in newest["pins"] if p["component"] == "openssl")
    assert f"openssl <code>{commit[:12]}</code>" in page
    build_row = next(h for h in links if h.startswith("../builds/base-runtime~f42.html#FL-42-openssl-"))
    builds = pages["builds/base-runtime~f42.html"]
    row = builds[builds.index(f'id="{build_row.split("#")[1]}"') :].split("</tr>", 1)[0]
    assert (
        f'<a href="../components/base-runtime~f42.html#openssl">openssl</a> at <code>{commit}</code>' in row
    )
    assert newest["checks"][0]["check"] == "repoclosure"
    assert newest["gate"]["state"] == "passed"
    assert {r["node"] for r in newest["used_by"]} >= {"repo:Server", "repo:Cloud"}
    reasons = {r["cause"] for r in twin["status"]["reasons"]}
    assert reasons == {"branch-moved", "bump-open"}
    group = json.loads(pages["components/base-runtime~f42.json"])
    assert group["group"] == "base-runtime:f42"
    component = next(c for c in group["components"] if c["component"] == "openssl")
    f42 = next(p for p in component["pins"] if p["branch"] == "f42")
    assert f42["waiting"] and f42["bumps"] == ["1"] and f42["head"]["commit"] == FIXED


def test_a_check_that_did_not_apply_shows_as_such_and_satisfies_the_gate(pages: dict[str, str]) -> None:
    twin = json.loads(pages["nodes/repo~Server.json"])
    newest = twin["history"][0]
    install = next(c for c in newest["gate"]["required"] if c["check"] == "install")
    assert (install["state"], install["satisfied"]) == ("NOT_APPLICABLE", True)
    assert newest["gate"]["state"] == "passed"
    page = pages["nodes/repo~Server.html"]
    assert '<span class="state s-not-applicable">not-applicable</span>' in page
    assert ".s-not-applicable{" in site_style.STYLE or ",.s-not-applicable" in site_style.STYLE


def test_a_failed_builds_log_is_a_link_a_reader_opens() -> None:
    """The message of a failed build names its log where it is kept (the CI job's artifacts,
    `pipeline.build.local.log_location`): the pages link it, and name no path of a machine."""
    job = "https://gitlab.example/dist/factory/-/jobs/4711"
    build = next(n for n in GRAPH.nodes if n.startswith("build:openssl@"))
    runner = Path("/builds/dist/factory")  # where a runner clones the project (CI_PROJECT_DIR)
    log = runner / ".factory/output/builds/abc/build.log"
    where = log_location(log, runner / ".factory/output", {"CI_JOB_URL": job, "CI_PROJECT_DIR": str(runner)})
    assert where == f"{job}/artifacts/file/.factory/output/builds/abc/build.log"
    lineage = Lineage()
    lineage.compose(GRAPH)
    failed = lineage.compose(GRAPH, [build], fail=[build])[build]
    text = f"rpmbuild of openssl at 795545287474 failed (log: {where}):\nerror: Bad exit status"
    lineage.records[-1] = dataclasses.replace(failed, message=text)
    pages = dict(site.pages(compute(facts(lineage)), MADE))
    link = f'(log: <a href="{where}">{where}</a>):'
    assert link in pages["index.html"]  # the failures, first on the overview
    assert link in pages["builds/base-runtime~f42.html"]
    assert not [p for p, t in pages.items() if str(runner) in t]
    # Outside CI, or a log the job does not keep: its place in the output directory.
    assert log_location(log, runner / ".factory/output", {}) == "builds/abc/build.log in the output directory"
    elsewhere = {"CI_JOB_URL": job, "CI_PROJECT_DIR": "/builds/other"}
    assert (
        log_location(log, runner / ".factory/output", elsewhere)
        == "builds/abc/build.log in the output directory"
    )


def test_lists_are_paginated_and_filtered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site, "PAGE_ROWS", 10)
    status = failing_status()
    pages = dict(site.pages(status, MADE))
    numbered = sorted(p for p in pages if p.startswith("lists/all") and p.endswith(".json"))
    rows = [n for p in ["lists/all.json", *[f"lists/all-{i}.json" for i in range(2, len(numbered) + 1)]]
            for n in json.loads(pages[p])["nodes"]]  # fmt: skip
    assert len(numbered) == -(-len(rows) // 10) > 1  # 10 rows a page
    # every node in the stable order: named, or counted in the row of its builds page (which names it)
    listed = []
    for row in rows:
        if "node" in row:
            listed.append(row["node"])
        else:
            builds = builds_of(json.loads(pages[site.twin(row["page"].removeprefix("../"))]))
            named = [b["node"] for b in builds if b["state"] == "current"]
            assert len(named) == row["count"]
            listed += named
    assert sorted(listed) == sorted(status.order) and len(listed) == len(set(listed))
    assert [n for n in listed if not n.startswith("build:")] == [
        n for n in status.order if not n.startswith("build:")
    ]
    overview = json.loads(pages["status.json"])  # a summary: the nodes not current, links to the lists
    assert [n["node"] for n in overview["nodes"]] == [
        n for n in status.order if status.nodes[n].state != "current"
    ]
    assert overview["lists"]["all"] == "lists/all.json" and all(
        path in pages for kind in ("kind", "state", "owner") for path in overview["lists"][kind].values()
    )
    failed = json.loads(pages["lists/state-failed.json"])
    assert [n["node"] for n in failed["nodes"]] == ["module:gtk:3"]
    owned = json.loads(pages["lists/owner-desktop-sig@example.invalid.json"])
    assert "module:gtk:3" in [n.get("node") for n in owned["nodes"]]
    assert 'href="all-2.html"' in pages["lists/all.html"]


def test_lists_count_the_current_builds_of_each_builds_page_in_one_row() -> None:
    status = failing_status()
    pages = dict(site.pages(status, MADE))
    rows = json.loads(pages["lists/kind-build.json"])["nodes"]
    folded = [r for r in rows if "builds" in r]
    graph = status.facts.graph
    current = [v.id for v in status.views() if v.kind == "build" and v.state == "current"]
    by_module: dict[str, int] = {}
    for node in current:
        module = site.build_group(graph, node)
        if module is not None:
            by_module[module] = by_module.get(module, 0) + 1
    assert {r["builds"]: r["count"] for r in folded} == by_module and by_module
    assert all(r["page"] == "../" + site.builds_page(r["builds"]) for r in folded)
    named = {r["node"] for r in rows if "node" in r}  # the builds that are not current, each by name
    assert named == {v.id for v in status.views() if v.kind == "build" and v.id not in current}
    html = pages["lists/kind-build.html"]
    assert (
        f'href="../builds/base-runtime~f42.html">{by_module["base-runtime:f42"]} builds of base-runtime:f42'
        in html
    )
    assert not {r["node"] for r in json.loads(pages["lists/all.json"])["nodes"] if "node" in r} & set(current)


def test_the_graph_colours_states_and_folds_builds_at_scale(
    monkeypatch: pytest.MonkeyPatch, pages: dict[str, str]
) -> None:
    svg = ET.fromstring(pages["graph/all.svg"])
    ns = "{http://www.w3.org/2000/svg}"
    boxes = {a.findtext(f"{ns}title"): next(a.iter(f"{ns}rect")).get("fill") for a in svg.iter(f"{ns}a")}
    assert boxes["module:gtk:3: failed"] == "#ef9a9a"
    assert boxes["repo:Workstation: blocked"] == "#e1bee7"
    monkeypatch.setattr(site, "FULL_GRAPH", 10)
    folded = dict(site.pages(failing_status(), MADE))
    assert "graph/all.svg" not in folded
    assert {"graph/Server.svg", "graph/Workstation.svg"} <= set(folded)
    assert (
        "(+" in folded["graph/Workstation.svg"]
        and "build:" not in json.loads(folded["graph.json"])["drawings"][0]
    )


def test_the_site_is_the_same_bytes_for_the_same_facts(pages: dict[str, str]) -> None:
    assert dict(site.pages(failing_status(), MADE)) == pages


def test_slugs_are_distinct_and_safe() -> None:
    ids = ["module:a:b", "module:a/b", "ostree:A/b", "build:x@1", "build:x_1", "repo:.hidden", "build:é@1"]
    slugs = [site.slug(i) for i in ids]
    assert len(set(slugs)) == len(ids)
    assert all(
        set(s) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-+@~,_") for s in slugs
    )
    assert not any(s.startswith(".") for s in slugs)


def test_status_json_is_what_factory_status_prints() -> None:
    status = failing_status()
    view = status.nodes["repo:Workstation"]
    value: dict[str, Any] = {
        "query": "repo:Workstation",
        "matched": "node",
        "commit": status.facts.commit,
        "nodes": [status_json.node_status(view, site.node_page(view.id))],
        "components": [],
        "answers": [],
    }
    assert list(SCHEMA.iter_errors(value)) == []
    assert value["nodes"][0]["blocked_by"] == ["module:gtk:3"]
