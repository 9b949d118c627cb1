"""Editing pins as text: only the ref token changes; comments, quotes and layout stay."""

from __future__ import annotations

import pytest

from pipeline.bot.yamledit import replace_scalar, set_pin_refs
from pipeline.core.errors import InvalidInput

NEW = "9d0324eb8729aa2892ad87c5c54cb53cdc922b41"
OLD = "795545287474bedd5e207f70c50a64a10fc7632e"

MODULE = f"""\
# A module with every style a human might write   # trailing comment
name: base-runtime
stream: "f42"
components:
  rpms:
    # the TLS library
    openssl:
      ref: {OLD}   # pinned after review
      branch: f42
    quoted-double:
      ref: "{OLD}"
      branch: f42
    quoted-single: {{ref: '{OLD}', branch: f42}}
    flow: {{ref: {OLD}, branch: f42}}
    other-branch:
      ref: {OLD}
      branch: f41
profiles:
  default: {{rpms: [openssl, flow]}}   # flow list
"""


def edited_lines(before: str, after: str) -> list[int]:
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(a) == len(b)
    return [i + 1 for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


@pytest.mark.parametrize(
    ("component", "line", "expected"),
    [
        ("openssl", 8, f"      ref: {NEW}   # pinned after review\n"),
        ("quoted-double", 11, f'      ref: "{NEW}"\n'),
        ("quoted-single", 13, f"    quoted-single: {{ref: '{NEW}', branch: f42}}\n"),
        ("flow", 14, f"    flow: {{ref: {NEW}, branch: f42}}\n"),
    ],
)
def test_only_the_ref_changes(component: str, line: int, expected: str) -> None:
    after = set_pin_refs("m.yaml", MODULE, component, "f42", NEW)
    assert edited_lines(MODULE, after) == [line]
    assert after.splitlines(keepends=True)[line - 1] == expected


def test_a_pin_following_another_branch_is_left_alone() -> None:
    assert set_pin_refs("m.yaml", MODULE, "other-branch", "f42", NEW) == MODULE
    assert set_pin_refs("m.yaml", MODULE, "missing", "f42", NEW) == MODULE


def test_the_example_module_changes_in_one_line_only() -> None:
    from tests.conftest import ROOT

    text = (ROOT / "modules/base-runtime/f42.yaml").read_text()
    after = set_pin_refs("modules/base-runtime/f42.yaml", text, "openssl", "f42", NEW)
    assert edited_lines(text, after) == [text.splitlines().index(f"      ref: {OLD}") + 1]
    assert after.replace(NEW, OLD) == text


def test_crlf_line_endings_are_kept() -> None:
    text = MODULE.replace("\n", "\r\n")
    after = set_pin_refs("m.yaml", text, "openssl", "f42", NEW)
    assert after == text.replace(f"ref: {OLD}   #", f"ref: {NEW}   #")


def test_refuses_what_is_not_a_hash_or_not_yaml() -> None:
    with pytest.raises(InvalidInput):
        set_pin_refs("m.yaml", MODULE, "openssl", "f42", "main; rm -rf /")
    with pytest.raises(InvalidInput, match="does not parse"):
        set_pin_refs("m.yaml", "a: [", "openssl", "f42", NEW)


def test_replace_scalar_keeps_quotes() -> None:
    assert replace_scalar("a: 'x'\n", 1, 4, "y") == "a: 'y'\n"
    assert replace_scalar('a: "x" # c\n', 1, 4, "y") == 'a: "y" # c\n'
    assert replace_scalar("a: [x, z]\n", 1, 5, "y") == "a: [y, z]\n"
