"""yamlsource.parse: loose data with the place of every key and value, and hostile YAML refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.core import yamlsource
from pipeline.core.errors import Diagnostic

FILES = Path(__file__).parent / "data" / "bad" / "files"


def parse(text: str | bytes) -> yamlsource.Document:
    raw = text.encode() if isinstance(text, str) else text
    document = yamlsource.parse("x.yaml", raw)
    assert isinstance(document, yamlsource.Document), document
    return document


def refuse(text: str | bytes) -> Diagnostic:
    raw = text.encode() if isinstance(text, str) else text
    diagnostic = yamlsource.parse("x.yaml", raw)
    assert isinstance(diagnostic, Diagnostic), diagnostic
    assert diagnostic.path == "x.yaml"
    return diagnostic


SAMPLE = """\
# a comment
name: gtk
components:
  rpms:
    glib2: {ref: abc, branch: f42}
profiles: [default,
  minimal]
"""


def test_data_is_plain() -> None:
    assert parse(SAMPLE).data == {
        "name": "gtk",
        "components": {"rpms": {"glib2": {"ref": "abc", "branch": "f42"}}},
        "profiles": ["default", "minimal"],
    }


@pytest.mark.parametrize(
    ("path", "value_at", "key_at"),
    [
        (("name",), (2, 7), (2, 1)),
        (("components",), (4, 3), (3, 1)),
        (("components", "rpms"), (5, 5), (4, 3)),
        (("components", "rpms", "glib2"), (5, 12), (5, 5)),
        (("components", "rpms", "glib2", "branch"), (5, 31), (5, 23)),
        (("profiles",), (6, 11), (6, 1)),
        (("profiles", 1), (7, 3), (7, 3)),  # a list item has no key: the value's place
    ],
)
def test_positions_of_keys_and_values(
    path: yamlsource.Path, value_at: tuple[int, int], key_at: tuple[int, int]
) -> None:
    document = parse(SAMPLE)
    assert document.where(path) == value_at
    assert document.where(path, key=True) == key_at


def test_an_unknown_path_falls_back_to_its_nearest_parent() -> None:
    document = parse(SAMPLE)
    assert document.where(("components", "rpms", "gtk3", "ref")) == (5, 5)
    assert document.where(("nothing", "here")) == (2, 1)
    assert document.where(()) == (2, 1)


def test_positions_after_a_block_scalar() -> None:
    document = parse("description: >-\n  one\n  two\nlicense: MIT\n")
    assert document.data == {"description": "one two", "license": "MIT"}
    assert document.where(("license",)) == (4, 10)


def test_excerpt_puts_a_caret_under_the_column() -> None:
    assert yamlsource.excerpt("a: 1\nbb: [x\n", 2, 5) == "    bb: [x\n        ^"
    assert yamlsource.excerpt("\tk: v\n", 1, 2) == "     k: v\n     ^"
    assert yamlsource.excerpt("a: 1\n", 3, 1) == ""


def test_a_syntax_error_has_its_place_and_both_of_yamls_marks() -> None:
    """The bracket never closed (line 2) is where the diagnostic stands; YAML notices on line 3."""
    diagnostic = refuse("a: 1\nb: [1, 2\nc: 3\n")
    assert (diagnostic.code, diagnostic.line, diagnostic.col) == ("yaml-syntax", 2, 4)
    assert diagnostic.message == "while parsing a flow sequence: did not find expected ',' or ']'"
    assert diagnostic.excerpt == (
        "    2 | b: [1, 2\n"
        "      |    ^ while parsing a flow sequence\n"
        "    3 | c: 3\n"
        "      |  ^ did not find expected ',' or ']'"
    )


def test_a_syntax_error_with_one_mark_has_one_caret() -> None:
    diagnostic = refuse("a:\n\t- 1\n")
    assert (diagnostic.line, diagnostic.col) == (2, 1)
    assert diagnostic.excerpt == "     - 1\n    ^"


def test_a_tab_after_a_plain_scalar_stands_at_the_tab() -> None:
    """The plain scalar (line 1) is only what YAML was reading; the tab on line 2 is the mistake."""
    diagnostic = refuse("a: 1\n\tb: 2\n")
    assert (diagnostic.line, diagnostic.col) == (2, 1)
    assert (
        diagnostic.message == "while scanning a plain scalar: found a tab character that violates indentation"
    )


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ("a: 1\na: 2\n", 2, 1),
        ("a:\n  b: 1\n  c: 2\n  b: 3\n", 4, 3),
        ("a: {b: 1, b: 2}\n", 1, 11),
        ("- x: 1\n  x: 1\n", 2, 3),
        ("yes: 1\n'yes': 2\n", 2, 1),  # a boolean-looking key is its own text
        ("1: a\n'1': b\n", 2, 1),  # keys are strings
        ("base: &b {x: 1}\nother:\n  <<: *b\n  x: 2\n", 4, 3),  # a merge counts
    ],
)
def test_duplicate_keys_are_refused(text: str, line: int, col: int) -> None:
    diagnostic = refuse(text)
    assert (diagnostic.code, diagnostic.line, diagnostic.col) == ("yaml-duplicate-key", line, col)


def test_keys_yaml_would_turn_into_booleans_or_null_keep_their_text() -> None:
    assert parse("on: 1\nno: 2\n~: 3\nnull: 4\n").data == {"on": 1, "no": 2, "~": 3, "null": 4}


def test_a_merge_key_merges() -> None:
    assert parse("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n").data["other"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(
    "text",
    ["2027-12-31", "2027-1-5", "2027-02-30", "2027-13-45", "2027-12-31 10:00:00", "2027-12-31T10:00:00Z"],
)
def test_timestamps_stay_strings(text: str) -> None:
    assert parse(f"eol: {text}\n").data == {"eol": text}
    assert parse(f"eol: !!timestamp {text}\n").data == {"eol": text}
    assert parse(f"{text}: x\n").data == {text: "x"}


def test_other_scalars_keep_their_yaml_types() -> None:
    data = parse("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: \"2027-12-31\"\n").data
    assert data == {"a": 1, "b": "1", "c": True, "d": None, "e": 1.5, "f": "2027-12-31"}


@pytest.mark.parametrize(
    "text",
    [
        "a: !!int xyz\n",
        "a: !!float abc\n",
        "a: !!bool maybe\n",
        "? !!int xyz\n: 1\n",
        "a: !!binary zz\n",
        "a: !!python/object:os.system x\n",
        "a: !custom x\n",
    ],
)
def test_a_value_that_does_not_fit_its_tag_is_a_syntax_error(text: str) -> None:
    diagnostic = refuse(text)
    assert diagnostic.code == "yaml-syntax"
    assert diagnostic.line == 1


@pytest.mark.parametrize("text", ["? [a, b]\n: 1\n", "? {a: 1}\n: 1\n", "{[a]: 1}\n"])
def test_complex_keys_are_refused(text: str) -> None:
    assert refuse(text).code == "yaml-complex-key"


def test_an_empty_document_is_none() -> None:
    assert parse("").data is None
    assert parse("# only a comment\n").data is None


def test_a_second_document_is_refused() -> None:
    diagnostic = refuse("a: 1\n---\nb: 2\n")
    assert (diagnostic.code, diagnostic.line) == ("yaml-syntax", 2)


def test_an_undefined_alias_is_refused() -> None:
    assert refuse("a: *nowhere\n").code == "yaml-syntax"


def test_a_few_aliases_are_fine() -> None:
    assert parse("a: &x [1, 2]\nb: *x\nc: *x\n").data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}


def test_billion_laughs_is_refused_quickly() -> None:
    start = time.monotonic()
    diagnostic = refuse((FILES / "billion-laughs.yaml").read_bytes())
    assert diagnostic.code == "yaml-too-large"
    assert time.monotonic() - start < 5


def test_a_self_referencing_alias_is_refused() -> None:
    assert refuse("a: &a [*a]\n").code == "yaml-too-deep"
    assert refuse("a: &a {b: *a}\n").code == "yaml-too-deep"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_limit_is_fine() -> None:
    assert parse(nested(65)).data is not None
    assert parse("a:\n" + "".join("  " * i + "- \n" for i in range(1, 64))).data is not None


@pytest.mark.parametrize(
    "text",
    [
        nested(66),
        "{a: " * 100 + "1" + "}" * 100,
        "".join(" " * i + "a:\n" for i in range(100)),
        "- " * 100 + "x\n",
    ],
)
def test_runaway_nesting_is_refused(text: str) -> None:
    diagnostic = refuse(text)
    assert diagnostic.code == "yaml-too-deep"
    assert diagnostic.line >= 1 and diagnostic.col >= 1


def test_very_deep_nesting_is_refused_without_crashing() -> None:
    # 200,000 levels overflowed libyaml's recursive composer and killed the process.
    start = time.monotonic()
    assert refuse(nested(200_000)).code == "yaml-too-deep"
    assert refuse("- " * 200_000 + "x\n").code == "yaml-too-deep"
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (b"name: caf\xe9\n", 1),
        (b"a: 1\nb: 2\nname: caf\xe9\n", 3),
        (b"\xff\xfea\x00:\x00 \x001\x00\n\x00", 1),  # UTF-16
        (b"a: \xc3\n", 1),  # a truncated UTF-8 sequence
    ],
)
def test_non_utf8_is_refused(raw: bytes, line: int) -> None:
    diagnostic = refuse(raw)
    assert (diagnostic.code, diagnostic.line, diagnostic.col) == ("yaml-encoding", line, 1)


def test_a_utf8_byte_order_mark_is_fine() -> None:
    assert parse(b"\xef\xbb\xbfname: caf\xc3\xa9\n").data == {"name": "café"}


def test_control_characters_are_refused() -> None:
    assert refuse(b"a: \x00\n").code == "yaml-syntax"
