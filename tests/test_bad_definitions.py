"""Bad definitions: every error the loader knows, each reported with its file and line.

tests/data/bad/cases.yaml holds the cases, each an edit of the example tree and the exact
diagnostics (code, path, line) it must produce; tests/data/bad/files/ holds whole files some
cases put into the tree. The CLI tests at the end run `factory validate` on real Git
repositories.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import cli
from pipeline.core import definitions
from pipeline.core.errors import Diagnostic, InvalidDefinitions
from tests.conftest import commit_tree, example_tree, sources

DATA = Path(__file__).parent / "data" / "bad"
CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "cases.yaml").read_text(encoding="utf-8"))

# Every code the definitions can be refused with; each must be exercised by some case.
CODES = {
    "yaml-syntax",
    "yaml-duplicate-key",
    "yaml-encoding",
    "yaml-too-deep",
    "yaml-too-large",
    "yaml-complex-key",
    "layout",
    "missing-config",
    "schema-required",
    "schema-pattern",
    "schema-additional-properties",
    "schema-type",
    "schema-const",
    "schema-format",
    "schema-min-items",
    "schema-enum",
    "schema-unique-items",
    "schema-property-names",
    "schema-min-properties",
    "schema-min-length",
    "schema-maximum",
    "schema-any-of",
    "path-mismatch",
    "duplicate-module",
    "unknown-module",
    "unknown-stream",
    "dependency-cycle",
    "eol-conflict",
    "retired-module",
    "retired-dependency",
    "duplicate-package",
    "unknown-profile",
    "unknown-package",
    "duplicate-selection",
    "conflicting-streams",
    "unknown-output",
    "bad-layering",
    "output-cycle",
    "missing-repo-output",
    "multiple-repos",
    "duplicate-output",
    "unknown-kind",
    "unknown-branch",
    "unknown-ref",
}
HEAD_LINE = re.compile(r"^(?P<path>[\w./-]+):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>[a-z0-9-]+)\]: .+$")


@dataclass(frozen=True, slots=True)
class FakeDistGit:
    """A BranchLookup from sets: every dist-git has `known` branches and every commit but `missing`.

    URLs in `unreachable` answer None, as a dist-git that cannot be reached does.
    """

    known: frozenset[str]
    missing: frozenset[str] = frozenset()
    unreachable: frozenset[str] = frozenset()

    def branches(self, url: str) -> frozenset[str] | None:
        return None if url in self.unreachable else self.known

    def has_commit(self, url: str, ref: str) -> bool | None:
        return None if url in self.unreachable else ref not in self.missing


def apply_edits(tree: dict[str, bytes], edits: list[dict[str, Any]]) -> dict[str, bytes]:
    """The tree after a case's edits (see the head of cases.yaml)."""
    out = dict(tree)
    for edit in edits:
        path = edit["path"]
        if "replace" in edit:
            old, new = edit["replace"]
            text = out[path]
            count = text.count(old.encode())
            assert count == 1, f"{path}: {old!r} occurs {count} times, not once"
            out[path] = text.replace(old.encode(), new.encode(edit.get("encoding", "utf-8")))
        elif edit.get("remove"):
            del out[path]
        elif "content" in edit:
            out[path] = edit["content"].encode()
        elif "copy" in edit:
            out[path] = out[edit["copy"]]
        elif "data" in edit:
            out[path] = (DATA / "files" / edit["data"]).read_bytes()
        else:
            raise AssertionError(f"unknown edit {edit!r}")
    return out


def replace(path: str, old: str, new: str) -> dict[str, Any]:
    """An edit replacing the one occurrence of old in a file."""
    return {"path": path, "replace": [old, new]}


def lookup_for(spec: dict[str, Any] | None) -> FakeDistGit | None:
    if spec is None:
        return None
    return FakeDistGit(frozenset(spec["branches"]), frozenset(spec.get("missing", ())))


def diagnostics_of(tree: dict[str, bytes], branches: FakeDistGit | None = None) -> list[Diagnostic]:
    with pytest.raises(InvalidDefinitions) as info:
        definitions.load(sources(tree), branches=branches)
    return info.value.diagnostics


def test_the_example_tree_is_valid() -> None:
    defs = definitions.load(sources(example_tree()), branches=FakeDistGit(frozenset({"f42"})))
    assert len(defs.modules) == 8
    assert len(defs.variants) == 4


def test_the_cases_cover_every_code() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    assert len(CASES) >= 35
    covered = {expect["code"] for case in CASES for expect in case["expect"]}
    assert CODES - covered == set()


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_definitions(case: dict[str, Any]) -> None:
    tree = apply_edits(example_tree(), case["edit"])
    found = diagnostics_of(tree, lookup_for(case.get("distgit")))
    got = sorted((d.code, d.path, d.line) for d in found)
    expected = sorted((e["code"], e["path"], e["line"]) for e in case["expect"])
    assert got == expected, "\n".join(d.render() for d in found)
    for diagnostic in found:
        assert diagnostic.col >= 1
        assert diagnostic.message
        assert HEAD_LINE.match(diagnostic.render().splitlines()[0])


def test_every_error_is_reported_at_once() -> None:
    tree = apply_edits(
        example_tree(),
        [
            replace("factory.yaml", "dist: .fl42", "dist: fl42"),
            replace("modules/httpd/2.4.yaml", "    rpms: [httpd]\n", "    rpms: [httpd, nginx]\n"),
            replace("variants/Cloud.yaml", "from: base", "from: bsae"),
        ],
    )
    with pytest.raises(InvalidDefinitions) as info:
        definitions.load(sources(tree))
    got = [(d.path, d.line, d.code) for d in info.value.diagnostics]
    assert got == [
        ("factory.yaml", 12, "schema-pattern"),
        ("modules/httpd/2.4.yaml", 30, "unknown-package"),
        ("variants/Cloud.yaml", 24, "unknown-output"),
    ]
    assert info.value.message == "3 errors in the definitions"


def test_a_syntax_error_shows_the_line_with_a_caret_under_the_column() -> None:
    tree = apply_edits(
        example_tree(), [replace("variants/Server.yaml", "  - module: httpd", "\t- module: httpd")]
    )
    [diagnostic] = diagnostics_of(tree)
    assert diagnostic.code == "yaml-syntax"
    source, caret = diagnostic.excerpt.splitlines()
    assert source == "    " + tree["variants/Server.yaml"].decode().splitlines()[
        diagnostic.line - 1
    ].expandtabs(1)
    assert caret == " " * (4 + diagnostic.col - 1) + "^"
    assert diagnostic.render().splitlines()[1:] == [source, caret]


def test_a_syntax_error_keeps_yamls_two_marks_and_stands_at_the_mistake() -> None:
    """PyYAML's context mark (the simple key, line 22) and problem mark (line 23) are both shown;
    the diagnostic stands on line 22, where the colon is missing (issue 22)."""
    edit = replace(
        "modules/httpd/2.4.yaml", "      branch: f42\n    mod_ssl:", "      branch f42\n    mod_ssl:"
    )
    [diagnostic] = diagnostics_of(apply_edits(example_tree(), [edit]))
    assert diagnostic.render().splitlines() == [
        "modules/httpd/2.4.yaml:22:7: error[yaml-syntax]: while scanning a simple key: could not find expected ':'",
        "    22 |       branch f42",
        "       |       ^ while scanning a simple key",
        "    23 |     mod_ssl:",
        "       |     ^ could not find expected ':'",
    ]


def test_a_syntax_error_in_an_enclosing_block_stands_at_the_problem() -> None:
    """ "while parsing a block mapping" only says what encloses the problem: the diagnostic
    stands where the problem is, the block's first line is shown above it, the lines between
    left out."""
    edit = replace("variants/Server.yaml", "  - module: python3:3.12\n", " - module: python3:3.12\n")
    [diagnostic] = diagnostics_of(apply_edits(example_tree(), [edit]))
    lines = diagnostic.render().splitlines()
    assert lines[0].startswith(
        "variants/Server.yaml:12:2: error[yaml-syntax]: while parsing a block mapping: "
    )
    assert lines[1:4] == [
        "     2 | document: factory-variant",
        "       | ^ while parsing a block mapping",
        "       ...",
    ]
    assert lines[4] == "    12 |  - module: python3:3.12"


def test_a_schema_error_points_at_the_offending_value() -> None:
    tree = apply_edits(example_tree(), [replace("factory.yaml", "dist: .fl42", "dist: fl42")])
    [diagnostic] = diagnostics_of(tree)
    assert (diagnostic.line, diagnostic.col) == (12, 7)
    assert diagnostic.message.startswith("$.dist: ")
    assert diagnostic.excerpt == "    dist: fl42\n          ^"


def test_an_unreachable_distgit_is_not_an_error() -> None:
    tree = apply_edits(example_tree(), [replace("modules/gnome/47.yaml", "branch: f42\n", "branch: f43\n")])
    with pytest.raises(InvalidDefinitions):
        definitions.load(sources(tree), branches=FakeDistGit(frozenset({"f42"})))
    shell = frozenset({".factory/distgit/gnome-shell.git"})
    definitions.load(sources(tree), branches=FakeDistGit(frozenset({"f42"}), unreachable=shell))


def test_cached_files_report_the_same_diagnostics() -> None:
    tree = apply_edits(example_tree(), [replace("variants/Cloud.yaml", "from: base", "from: os")])
    tree = apply_edits(tree, [replace("factory.yaml", "version: 1\n", "version: 2\n")])
    cache: definitions.ParseCache = {}
    runs = []
    for _ in range(2):
        with pytest.raises(InvalidDefinitions) as info:
            definitions.load(sources(tree), cache=cache)
        runs.append(info.value.diagnostics)
    assert [d.code for d in runs[0]] == ["schema-const", "bad-layering"]
    assert runs[0] == runs[1]


# -- the CLI, on real Git repositories -------------------------------------------------------


def write_tree(root: Path, tree: dict[str, bytes]) -> None:
    for path, data in tree.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def error_lines(err: str) -> list[tuple[str, int, int, str]]:
    found = [HEAD_LINE.match(line) for line in err.splitlines()]
    return [(m["path"], int(m["line"]), int(m["col"]), m["code"]) for m in found if m]


def test_cli_reports_every_error_of_the_working_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commit_tree(tmp_path, example_tree(), "Example definitions\n")
    edits = [
        replace("variants/Server.yaml", "module: httpd:2.4", "module: nginx:1"),
        replace("modules/gtk/3.yaml", "summary: GTK 3 toolkit\n", "summary: GTK 3 toolkit\nsummary: GTK\n"),
    ]
    write_tree(tmp_path, apply_edits(example_tree(), edits))
    status, out, err = run_cli(["validate", "--repo", str(tmp_path)], capsys)
    assert status == cli.EXIT_INVALID
    assert out == ""
    assert "Traceback" not in err
    # gtk's broken file is reported once, not again where gnome and Workstation name gtk:3.
    assert error_lines(err) == [
        ("modules/gtk/3.yaml", 7, 1, "yaml-duplicate-key"),
        ("variants/Server.yaml", 14, 13, "unknown-module"),
    ]
    assert "    summary: GTK\n    ^\n" in err
    assert err.endswith("factory: 2 errors in the definitions\n")


def test_cli_reports_schema_and_cross_check_errors_of_one_file_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A variant with a bad eol and an unknown stream, beside a module missing a colon: one run
    says all three (the variant's unknown stream used to wait for its eol to be fixed)."""
    commit_tree(tmp_path, example_tree(), "Example definitions\n")
    edits = [
        replace("variants/Server.yaml", "eol: 2027-10-31", "eol: 2027-13-31"),
        replace("variants/Server.yaml", "module: httpd:2.4", "module: httpd:2.5"),
        replace("modules/python3/3.12.yaml", "license: MIT", "license MIT"),
    ]
    write_tree(tmp_path, apply_edits(example_tree(), edits))
    status, out, err = run_cli(["validate", "--repo", str(tmp_path)], capsys)
    assert (status, out) == (cli.EXIT_INVALID, "")
    assert error_lines(err) == [
        ("modules/python3/3.12.yaml", 9, 1, "yaml-syntax"),
        ("variants/Server.yaml", 7, 6, "schema-format"),
        ("variants/Server.yaml", 14, 13, "unknown-stream"),
    ]
    assert "module httpd has no stream '2.5' (streams: 2.4)" in err
    assert err.endswith("factory: 3 errors in the definitions\n")


def test_cli_rev_validates_the_commit_not_the_working_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = example_tree()
    bad = apply_edits(good, [replace("variants/Cloud.yaml", "arches: [x86_64]", "arches: [x86_64")])
    commit_tree(tmp_path, good, "Example definitions\n")
    commit_tree(tmp_path, bad, "Break Cloud\n")
    write_tree(tmp_path, good)  # the working tree differs from HEAD: it is fixed, not committed

    status, out, err = run_cli(["validate", "--repo", str(tmp_path)], capsys)
    # No dist-git and no upstream source here: only warnings that the pins go unchecked, no error.
    assert (status, error_lines(err)) == (cli.EXIT_OK, [])
    assert {line.split(": ")[1] for line in err.splitlines() if ": warning[" in line} == {
        "warning[unreachable-distgit]",
        "warning[unreachable-source]",
    }
    assert "8 modules and 4 variants are valid" in out

    status, out, err = run_cli(["validate", "--repo", str(tmp_path), "--rev", "HEAD"], capsys)
    assert status == cli.EXIT_INVALID
    assert "Traceback" not in err
    assert error_lines(err) == [("variants/Cloud.yaml", 8, 9, "yaml-syntax")]  # the unclosed [

    status, out, err = run_cli(["validate", "--repo", str(tmp_path), "--rev", "HEAD~1"], capsys)
    assert (status, error_lines(err)) == (cli.EXIT_OK, [])


def test_cli_missing_config_in_a_commit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = example_tree()
    del tree["factory.yaml"]
    commit_tree(tmp_path, tree, "No config\n")
    status, _, err = run_cli(["validate", "--repo", str(tmp_path), "--rev", "HEAD"], capsys)
    assert status == cli.EXIT_INVALID
    assert "Traceback" not in err
    assert error_lines(err) == [("factory.yaml", 1, 1, "missing-config")]


def test_cli_unknown_revision_is_invalid_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commit_tree(tmp_path, example_tree(), "Example definitions\n")
    status, _, err = run_cli(["validate", "--repo", str(tmp_path), "--rev", "no-such-branch"], capsys)
    assert status == cli.EXIT_INVALID
    assert "Traceback" not in err
    assert "error[unknown-revision]" in err
