"""The overview after a compose where one node failed, read as a person reads it: `factory status`
on the command line and `factory site` in a real browser (Debian's headless Chromium).

The example distribution (with its default policy) is composed with the real tools, the Server
repo is released, gtk is then broken (its repo is no longer closed: the compose fails its gate
and blocks the Workstation repo), and the bump bot opens its merge requests (the openssl CVE
backport first). The screenshot of the overview is kept as a test artifact:
`<pytest's basetemp>/site-browser0/overview.png` (the test prints the exact path).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from pipeline import cli
from pipeline.records.lineage import Lineage
from tests.conftest import ROOT, commit_tree, materialize_example
from tests.test_checks_repo import VARIANT_REPOS, broken_gtk_tree, gated_tree

SCHEMA = Draft202012Validator(json.loads((ROOT / "pipeline" / "schemas" / "site.json").read_text()))
CHROMIUM = shutil.which("chromium")


def factory(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The repository after a compose where module:gtk:3 failed, with its site in `public/`."""
    root = tmp_path_factory.mktemp("site-browser")
    commit_tree(root, gated_tree(), "Example definitions, gated\n")
    materialize_example(root)
    assert cli.main(["compose", *VARIANT_REPOS, "--repo", str(root), "--type", "test", "--json"]) == 0
    server = Lineage(root).latest()["repo:Server"]
    releases = root / "releases" / "Server"
    assert cli.main(["release", server, "--repo", str(root), "--to", str(releases), "--unsigned"]) == 0
    commit_tree(root, broken_gtk_tree(), "gtk without glib2\n")
    assert cli.main(["compose", *VARIANT_REPOS, "--repo", str(root), "--type", "test", "--json"]) == 1
    assert cli.main(["bot", "reconcile", "--repo", str(root), "--json"]) == 0
    assert cli.main(["site", str(root / "public"), "--repo", str(root)]) == 0
    yield root


def browser(*argv: str, profile: Path) -> str:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make deps` installs it (Debian package chromium)")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def dom(page: Path, profile: Path) -> str:
    """The page's DOM after the browser rendered it."""
    return browser("--dump-dom", page.as_uri(), profile=profile)


class Reader(HTMLParser):
    """The text a person sees in each section (by its heading's id, or by the id of the row
    header that starts a build's rows on a builds page), and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.current = ""
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "h2" or (tag == "th" and values.get("scope") == "row" and values.get("id")):
            self.current = values.get("id") or ""
        for name in ("href", "src", "data"):
            if values.get(name):
                self.links.append(str(values[name]))

    def handle_data(self, data: str) -> None:
        self.sections.setdefault(self.current, []).append(data)

    def text(self, section: str) -> str:
        return " ".join(" ".join(self.sections.get(section, [])).split())


def read(text: str) -> Reader:
    reader = Reader()
    reader.feed(text)
    return reader


def test_status_answers_is_a_fresh_build_underway_is_it_complete_is_it_on_the_mirrors(
    composed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = factory(capsys, "status", "base-runtime", "--repo", str(composed))
    assert code == 0
    assert out.startswith("module:base-runtime:f42\n  a fresh build underway? not running; ")
    assert "open bump merge request !1 (openssl f42 to 9d0324eb)" in out.splitlines()[1]
    assert out.splitlines()[2].startswith("  complete? yes: latest good FL-42-base-runtime-f42-")
    mirrors = out.splitlines()[3]
    assert mirrors.startswith("  on the mirrors? released: repo:Server FL-42-Server-")
    assert "with its latest good compose; publication to mirrors not recorded" in mirrors
    lines = {line.split()[0]: line for line in out.splitlines()[4:]}
    module = lines["module:base-runtime:f42"]
    assert (
        "out-of-date" in module
        and "latest good FL-42-base-runtime-f42-" in module
        and "gate passed" in module
    )
    assert "open bump merge request !1 (openssl f42 to 9d0324eb)" in module  # a fresh build waits for it
    server = lines["repo:Server"]
    assert re.search(r"released FL-42-Server-\d{8}\.t\.0 to \S+/releases/Server/FL-42-Server-", server)
    assert "mirror not recorded" in server  # nothing records a mirror yet: never claimed
    code, out = factory(capsys, "status", "base-runtime", "--repo", str(composed), "--json")
    answer = json.loads(out)
    assert list(SCHEMA.iter_errors(answer)) == []
    assert answer["matched"] == "module"
    assert answer["answers"][0]["node"] == "module:base-runtime:f42"
    by_node = {n["node"]: n for n in answer["nodes"]}
    assert by_node["repo:Server"]["released"][0]["live"] is True
    assert by_node["repo:Server"]["mirror"] == "not-recorded"


def test_status_of_the_failed_module_names_its_owners_and_what_it_blocks(
    composed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = factory(capsys, "status", "gtk", "--repo", str(composed), "--json")
    assert code == 0
    by_node = {n["node"]: n for n in json.loads(out)["nodes"]}
    gtk = by_node["module:gtk:3"]
    assert gtk["state"] == "failed" and gtk["owners"] == ["desktop-sig@example.invalid"]
    assert gtk["gate"]["failed"] == ["repoclosure"]
    assert gtk["blocks"] == {"count": 1, "nodes": ["repo:Workstation"]}
    assert by_node["repo:Workstation"]["state"] == "blocked"
    assert by_node["repo:Workstation"]["blocked_by"] == ["module:gtk:3"]
    code, out = factory(capsys, "status", "no-such-thing", "--repo", str(composed))
    assert code == 2


def test_the_browser_shows_the_failure_with_its_owners_and_what_it_blocks(
    composed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = composed / "public" / "index.html"
    page = read(dom(index, tmp_path / "profile"))
    failures = page.text("failures")
    assert "module:gtk:3" in failures
    assert "repoclosure FAILED" in failures and "requires glib2" in failures
    assert "desktop-sig@example.invalid" in failures
    assert "repo:Workstation" in failures  # what it blocks
    assert "failed 1" in page.text("counts") and "blocked 1" in page.text("counts")
    assert "Made " in page.text("") and "from definitions commit" in page.text("")
    shot = composed / "overview.png"
    browser(f"--screenshot={shot}", "--window-size=1400,1000", index.as_uri(), profile=tmp_path / "profile")
    with capsys.disabled():
        print(f"\nscreenshot of the overview: {shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_a_node_page_in_the_browser_shows_lineage_both_ways(composed: Path, tmp_path: Path) -> None:
    page = composed / "public" / "nodes" / "module~base-runtime~f42.html"
    text = dom(page, tmp_path / "profile")
    reader = read(text)
    history = reader.text("history")
    assert "Made from" in history and "Used by" in history
    assert "build:openssl@79554528" in history and "dist-git commits" in history
    assert "openssl 795545287474" in history  # down to dist-git (its build's row has it whole)
    assert "repo:Server" in history and "repo:Workstation" in history  # what was built on it
    links = [link for link in reader.links if link.startswith("../")]
    # A build is a section of its module's builds page, each of its composes an anchor there.
    assert any(link.startswith("../builds/base-runtime~f42.html#FL-42-openssl-") for link in links)
    assert any(link.startswith("../nodes/repo~Server.html#FL-42-Server-") for link in links)
    builds = read(dom(composed / "public" / "builds" / "base-runtime~f42.html", tmp_path / "profile"))
    openssl = builds.text("build~openssl@79554528")
    every = builds.text("")  # what every build of the page shares, said once above the table
    assert "used by" in every + openssl and "module:base-runtime:f42" in every + openssl  # built on it
    assert "openssl at 795545287474bedd5e207f70c50a64a10fc7632e" in openssl  # its dist-git commit
    # Following a link lands on a page that says where that node stands.
    server = read(dom(page.parent / "repo~Server.html", tmp_path / "profile"))
    assert "released" in server.text("") and "not recorded" in server.text("")


def test_every_link_of_every_page_resolves_and_every_twin_validates(composed: Path) -> None:
    public = composed / "public"
    pages = sorted(public.rglob("*.html"))
    assert len(pages) > 40
    for page in pages:
        assert page.with_suffix(".json").is_file() or page.name == "index.html", page
        for link in read(page.read_text()).links:
            target, _, anchor = link.partition("#")
            where = (page.parent / target).resolve() if target else page
            assert where.is_file(), (page, link)
            if anchor:
                assert f'id="{anchor}"' in where.read_text(), (page, link)
    assert (public / "status.json").is_file()
    for twin in public.rglob("*.json"):
        assert list(SCHEMA.iter_errors(json.loads(twin.read_text()))) == [], twin


def test_site_replaces_a_site_it_made_and_refuses_any_other_directory(
    composed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "documents"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    code, _ = factory(capsys, "site", str(other), "--repo", str(composed))
    assert code == 2 and (other / "keep.txt").read_text() == "mine"
    target = tmp_path / "public"
    assert factory(capsys, "site", str(target), "--repo", str(composed))[0] == 0
    (target / "stray.html").write_text("old")
    code, out = factory(capsys, "site", str(target), "--repo", str(composed), "--json")
    assert code == 0 and json.loads(out)["index"] == str(target / "index.html")
    assert not (target / "stray.html").exists() and (target / "index.html").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".public")] == []
