"""Property tests: whatever bytes arrive, the loader answers with diagnostics, never a crash.

Generated YAML text, generated structures, random bytes and mutations of the real files go
through `definitions.parse_file` and `definitions.load`. The only exception allowed out is
InvalidDefinitions, and every diagnostic has a place (line and column from 1) and a
kebab-case code.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core import definitions
from pipeline.core.errors import Diagnostic, InvalidDefinitions
from tests.conftest import example_tree, sources

TREE = example_tree()
PATHS = sorted(TREE)
# The example parsed once: loads take the files an example leaves alone from (a copy of) this.
CACHE: definitions.ParseCache = {}
definitions.load(sources(TREE), cache=CACHE)
KEBAB = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
CARET = re.compile(r"\^(?: .+)?$")
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Where a file may sit: each kind of definition, and places that are not definitions.
PLACES = [
    "factory.yaml",
    "modules/httpd/2.4.yaml",
    "modules/httpd-2.4.yaml",
    "variants/Server.yaml",
    "modules/a/b/c.yaml",
    "variants/Server.yml",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.dates().map(str)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
yamlish = st.text(alphabet=st.sampled_from("abc019 :-,[]{}#&*!|>'\"%@`?\n\t.~<="), max_size=200)
# YAML assembled from meaningful pieces: tags, anchors, merges, indentation, odd scalars.
TOKENS = [
    *("a", "b", "x1", "1", "0x1f", "1.5", "yes", "~", "null", "2027-12-31", "2027-13-45", "''", '""'),
    *(": ", ", ", "- ", "? ", "[", "]", "{", "}", "\n", "  ", "    ", "\t", "# c", "---\n", "...\n"),
    *("&a ", "*a", "&b ", "*b", "<<: ", "| ", ">- ", "'x", '"\\u12', "%YAML 1.1\n"),
    *("!!int ", "!!float ", "!!bool ", "!!str ", "!!null ", "!!binary ", "!!timestamp ", "!!set ", "!!omap "),
    *("!!map ", "!!seq ", "!local ", "!!python/name:os.system "),
]
yaml_pieces = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def check(diagnostics: Sequence[Diagnostic], paths: Collection[str]) -> None:
    for d in diagnostics:
        assert d.line >= 1 and d.col >= 1, d
        assert KEBAB.fullmatch(d.code), d
        assert d.message, d
        assert d.path in paths, d
        if d.excerpt:  # a caret under the column, then what YAML says is there (two marks)
            assert CARET.search(d.excerpt.splitlines()[-1]), d


def check_parse(path: str, raw: bytes) -> None:
    parsed, diagnostics = definitions.parse_file(path, raw)
    assert (parsed is None) == bool(diagnostics)
    check(diagnostics, [path])


def check_load(tree: dict[str, bytes]) -> None:
    try:
        definitions.load(sources(tree), cache=dict(CACHE))
    except InvalidDefinitions as exc:
        assert exc.diagnostics
        check(exc.diagnostics, {*tree, definitions.CONFIG_PATH})


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into loose data, the root included."""
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(paths_of(value, (*prefix, key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found.extend(paths_of(value, (*prefix, i)))
    return found


def replaced(data: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    """A copy of data with the value at path replaced (or deleted from its parent)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        out: Any = dict(data)
    else:
        out = list(data)
    if delete and not rest:
        del out[head]
    else:
        out[head] = replaced(data[head], rest, value, delete)
    return out


def mutate(text: bytes, kind: str, at: int, other: int) -> bytes:
    """One small edit of a file: delete, duplicate or swap lines, or drop, swap or insert bytes."""
    lines = text.splitlines(keepends=True)
    i, j = at % len(lines), other % len(lines)
    if kind == "delete-line":
        return b"".join(lines[:i] + lines[i + 1 :])
    if kind == "duplicate-line":
        return b"".join(lines[: i + 1] + lines[i:])
    if kind == "swap-lines":
        lines[i], lines[j] = lines[j], lines[i]
        return b"".join(lines)
    k = at % len(text)
    if kind == "drop-byte":
        return text[:k] + text[k + 1 :]
    if kind == "swap-bytes":
        return text[:k] + text[k + 1 : k + 2] + text[k : k + 1] + text[k + 2 :]
    return text[:k] + bytes([other % 256]) + text[k:]


MUTATIONS = ["delete-line", "duplicate-line", "swap-lines", "drop-byte", "swap-bytes", "insert-byte"]


@FUZZ
@given(st.sampled_from(PLACES), values)
def test_dumped_structures(path: str, data: Any) -> None:
    check_parse(path, yaml.safe_dump(data, allow_unicode=True).encode())


@FUZZ
@given(st.sampled_from(PLACES), yamlish)
def test_yaml_like_text(path: str, text: str) -> None:
    check_parse(path, text.encode())


@FUZZ
@given(st.sampled_from(PLACES), yaml_pieces)
def test_yaml_from_pieces(path: str, text: str) -> None:
    check_parse(path, text.encode())


@FUZZ
@given(st.sampled_from(PLACES), st.binary(max_size=300))
def test_random_bytes(path: str, raw: bytes) -> None:
    check_parse(path, raw)


@FUZZ
@given(st.sampled_from(PATHS), st.data(), values, st.booleans())
def test_real_files_with_a_value_replaced(path: str, data: st.DataObject, value: Any, delete: bool) -> None:
    original = yaml.safe_load(TREE[path])
    where = data.draw(st.sampled_from(paths_of(original)))
    changed = replaced(original, where, value, delete and bool(where))
    check_parse(path, yaml.safe_dump(changed, allow_unicode=True).encode())


@FUZZ
@given(st.sampled_from(PATHS), st.sampled_from(MUTATIONS), st.integers(0, 10_000), st.integers(0, 10_000))
def test_real_files_mutated(path: str, kind: str, at: int, other: int) -> None:
    check_parse(path, mutate(TREE[path], kind, at, other))


@settings(FUZZ, max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(PATHS), st.sampled_from(MUTATIONS), st.integers(0, 10_000), st.integers(0, 10_000)
        ),
        min_size=1,
        max_size=3,
    )
)
def test_load_of_a_mutated_tree(edits: list[tuple[str, str, int, int]]) -> None:
    tree = dict(TREE)
    for path, kind, at, other in edits:
        tree[path] = mutate(tree[path], kind, at, other)
    check_load(tree)


@settings(FUZZ, max_examples=100)
@given(st.sampled_from(PATHS), st.data(), values, st.booleans())
def test_load_with_a_value_replaced(path: str, data: st.DataObject, value: Any, delete: bool) -> None:
    original = yaml.safe_load(TREE[path])
    where = data.draw(st.sampled_from(paths_of(original)))
    changed = replaced(original, where, value, delete and bool(where))
    check_load({**TREE, path: yaml.safe_dump(changed, allow_unicode=True).encode()})


@settings(FUZZ, max_examples=50)
@given(st.sampled_from(PLACES), st.one_of(yamlish.map(str.encode), st.binary(max_size=200)))
def test_load_with_an_extra_file(path: str, raw: bytes) -> None:
    check_load({**TREE, path: raw})


# -- structure-aware: the parts the cross-checks look at, generated from the example's words --

NSIDS = ["base-runtime:f42", "gtk:3", "gnome:47", "httpd:2.4", "httpd:2.6", "python3:3.12", "nope:1"]
words = st.sampled_from(["default", "minimal", "boot", "os", "base", "host", "dvd", "httpd", "bash", "x"])
kinds = st.sampled_from(["repo", "ostree", "container", "iso", "vm", "squashfs"])
names = st.lists(words, min_size=1, max_size=3, unique=True)


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values the schema accepts three times in four, anything at all otherwise."""
    return st.one_of(good, good, good, values)


options = st.fixed_dictionaries(
    {},
    optional={
        "packages": mostly(names),
        "cmd": mostly(names),
        "volume_id": mostly(words),
        "ref": mostly(words),
        "comps": mostly(st.booleans()),
        "labels": mostly(st.dictionaries(words, words, max_size=2)),
    },
)
outputs = st.lists(
    st.fixed_dictionaries(
        {"kind": kinds, "name": words}, optional={"from": words | names, "options": options}
    ),
    max_size=5,
)
selections = st.lists(
    st.fixed_dictionaries({"module": st.sampled_from(NSIDS)}, optional={"profiles": names}),
    max_size=5,
)
streams = st.dictionaries(
    st.sampled_from([n.split(":")[0] for n in NSIDS]), st.sampled_from(["f42", "3", "47", "1"])
)


def with_changes(path: str, changes: dict[str, Any]) -> dict[str, bytes]:
    data = yaml.safe_load(TREE[path])
    data.update(changes)
    return {**TREE, path: yaml.safe_dump(data).encode()}


@settings(FUZZ, max_examples=300)
@given(outputs, selections)
def test_load_with_generated_outputs_and_selections(generated: list[Any], selected: list[Any]) -> None:
    changes: dict[str, Any] = {}
    if generated:
        changes["outputs"] = generated
    if selected:
        changes["modules"] = selected
    check_load(with_changes("variants/Cloud.yaml", changes))


@settings(FUZZ, max_examples=100)
@given(streams, streams, st.dates().map(str))
def test_load_with_generated_dependencies(build: dict[str, str], run: dict[str, str], eol: str) -> None:
    changes = {"dependencies": {"buildrequires": build, "requires": run}, "eol": eol}
    check_load(with_changes("modules/gtk/3.yaml", changes))
