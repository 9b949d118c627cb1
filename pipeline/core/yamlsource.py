"""YAML text to plain data, keeping where every value and key sits in the file.

The result is loose data (dicts, lists, scalars) plus a map from JSON path to (line, column),
so schema and semantic errors can name the exact place. Timestamps stay strings (the schema
checks their format), duplicate keys are errors, and alias bombs and runaway nesting are
refused instead of exhausting memory.

Recording positions costs more than parsing, and they are only needed to report an error, so
`parse(..., positions=False)` takes a fast path for plain files (no anchors, aliases, tags or
deep nesting): libyaml builds the data directly and the document has no positions. Callers
parse again with positions when they have something to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from pipeline.core.errors import Diagnostic

if TYPE_CHECKING:
    from yaml._yaml import Mark as _CMark  # libyaml's marks, on the events of CSafeLoader

Path = tuple[str | int, ...]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_DEPTH = 64
_MAX_NODES = 200_000
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed YAML file: its data and the 1-based position of every path in it."""

    path: str
    text: str
    data: Any
    values: dict[Path, tuple[int, int]] = field(repr=False)
    keys: dict[Path, tuple[int, int]] = field(repr=False)
    positions: bool = True  # False when parsed by the fast path: where() then knows nothing

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Line and column of the value at path (or of its key), else of its nearest parent."""
        table = self.keys if key else self.values
        probe = path
        while True:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def excerpt(self, line: int, col: int) -> str:
        return excerpt(self.text, line, col)


def excerpt(text: str, line: int, col: int) -> str:
    """The source line with a caret under the column, indented for a terminal."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    source = lines[line - 1].expandtabs(1)
    return f"    {source}\n    {' ' * (max(col, 1) - 1)}^"


# Contexts whose mark is where the user's mistake starts (the simple key that lacks its colon,
# the quote or bracket never closed); in the others (a block mapping, the document, a plain
# scalar running into a tab on the next line) the context is only what encloses the problem,
# and the problem's mark is the place to look.
_CULPRIT_CONTEXTS = ("while scanning a simple key", "while scanning a quoted scalar", "while parsing a flow")


def _syntax_error(path: str, text: str, exc: yaml.MarkedYAMLError) -> Diagnostic:
    """A YAML error with both of PyYAML's marks: the context (`while scanning a simple key`,
    line 22) and the problem (`could not find expected ':'`, line 23), each line shown with
    its caret. The diagnostic stands at the mark that names the mistake."""
    marks = [
        (m.line + 1, m.column + 1, label)
        for m, label in ((exc.context_mark, exc.context), (exc.problem_mark, exc.problem))
        if m is not None and label
    ]
    if not marks:
        return Diagnostic(path, 1, 1, "yaml-syntax", str(exc).splitlines()[0] or "invalid YAML")
    context, problem = exc.context or "", exc.problem or ""
    culprit = marks[0] if context.startswith(_CULPRIT_CONTEXTS) else marks[-1]
    message = f"{context}: {problem}" if context and problem else (problem or context)
    if len(marks) == 2 and marks[0][:2] == marks[1][:2]:
        marks = marks[1:]  # one place: one caret
    shown = excerpt(text, *marks[0][:2]) if len(marks) == 1 else excerpts(text, marks)
    return Diagnostic(path, culprit[0], culprit[1], "yaml-syntax", message, shown)


def excerpts(text: str, marks: list[tuple[int, int, str]]) -> str:
    """Several source lines, numbered, each with a caret under its column and what is there:

    22 |       branch f42
       |       ^ while scanning a simple key
    23 |     mod_ssl:
       |     ^ could not find expected ':'
    """
    lines = text.splitlines()
    width = len(str(max(line for line, _, _ in marks)))
    out: list[str] = []
    previous = 0
    for line, col, label in sorted(marks):
        if not 1 <= line <= len(lines):
            continue
        if previous and line > previous + 1:
            out.append(f"    {' ' * width} ...")
        source = lines[line - 1].expandtabs(1)
        out.append(f"    {line:>{width}} | {source}")
        out.append(f"    {' ' * width} | {' ' * (max(col, 1) - 1)}^ {label}")
        previous = line
    return "\n".join(out)


class _Refused(Exception):
    def __init__(self, mark: yaml.Mark | _CMark | None, code: str, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.code = code
        self.message = message


def parse(path: str, raw: bytes, *, positions: bool = True) -> Document | Diagnostic:
    """Parse one YAML file; a Diagnostic (with a caret excerpt) if it is not usable YAML."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return Diagnostic(path, line, 1, "yaml-encoding", "file is not valid UTF-8")
    if not positions and _plain(text):
        data = _fast(text)
        if data is not _NOT_PLAIN:
            return Document(path, text, data, {}, {}, positions=False)
    loader = _Loader(text)
    try:
        if not _plain(text):
            _check_nesting(text)
        node = loader.get_single_node()
        builder = _Builder(loader)
        data = None if node is None else builder.build(node, (), 0)
    except yaml.MarkedYAMLError as exc:
        return _syntax_error(path, text, exc)
    except yaml.YAMLError as exc:
        return Diagnostic(path, 1, 1, "yaml-syntax", str(exc).splitlines()[0])
    except _Refused as exc:
        line, col = (exc.mark.line + 1, exc.mark.column + 1) if exc.mark else (1, 1)
        return Diagnostic(path, line, col, exc.code, exc.message, excerpt(text, line, col))
    finally:
        loader.dispose()
    return Document(path, text, data, builder.values, builder.keys)


_NOT_PLAIN = object()
_FAST_DEPTH_BOUND = _MAX_DEPTH // 2


def _plain(text: str) -> bool:
    """Whether a text can take the fast path: no anchors, aliases, tags, and shallow for sure.

    The depth bound is crude but safe: a level of nesting needs more indentation, a flow
    bracket, or an indicator (`-`, `:`) on its line, so their sum bounds the depth.
    """
    if "&" in text or "*" in text or "!" in text or "\t" in text:
        return False
    flow = 0
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        flow += stripped.count("[") + stripped.count("{")
        indicators = stripped.count("- ") + stripped.count(": ") + stripped.endswith((":", "-"))
        bound = len(line) - len(stripped) + indicators + flow
        if bound > _FAST_DEPTH_BOUND:
            return False
    return True


class _FastLoader(_Loader):  # type: ignore[valid-type,misc]
    """libyaml with the slow path's scalar rules: timestamps stay strings, keys stay strings."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in _Loader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [k for k, _ in node.value]
        if len({k.value for k in keys}) != len(keys) or any(k.tag != "tag:yaml.org,2002:str" for k in keys):
            raise _NotPlain  # duplicates and non-string keys: the slow path reports or converts them
        return super().construct_mapping(node, deep=True)  # type: ignore[no-any-return]


class _NotPlain(Exception):
    pass


def _fast(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FastLoader)
    except (_NotPlain, yaml.YAMLError, ValueError, TypeError):
        return _NOT_PLAIN  # the slow path gives the precise diagnostic


def _check_nesting(text: str) -> None:
    """Refuse runaway nesting from the event stream, before the (recursive) composer sees it.

    The composer recurses once per level (in C with libyaml, where a few 100,000 levels
    overflow the stack and kill the process), so the depth must be bounded before composing.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > _MAX_DEPTH + 1:
                raise _Refused(event.start_mark, "yaml-too-deep", "document is nested too deeply")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Builder:
    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.values: dict[Path, tuple[int, int]] = {}
        self.keys: dict[Path, tuple[int, int]] = {}
        self.count = 0

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _Refused(node.start_mark, "yaml-too-large", "document expands to too many nodes")
        if depth > _MAX_DEPTH:
            raise _Refused(node.start_mark, "yaml-too-deep", "document is nested too deeply")
        self.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node)
                if key in result:
                    raise _Refused(key_node.start_mark, "yaml-duplicate-key", f"duplicate key {key!r}")
                child = (*path, key)
                self.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                result[key] = self.build(value_node, child, depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _TIMESTAMP:
            return str(node.value)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            # An explicit tag on a value that does not fit it (`!!int abc`, `!!bool maybe`, `!!int`):
            # PyYAML's constructors fail with whatever Python raises (ValueError, KeyError, ...).
            raise _Refused(
                node.start_mark, "yaml-syntax", f"{node.value!r} is not a valid {node.tag}"
            ) from exc

    def _key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise _Refused(node.start_mark, "yaml-complex-key", "mapping keys must be plain scalars")
        value = self._scalar(node)
        if isinstance(value, bool) or value is None:
            # YAML 1.1 turns `on`, `no`, `~` into booleans and null; as keys they are surely names.
            return str(node.value)
        return str(value)
