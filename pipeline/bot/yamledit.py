"""Editing pins in module YAML as text: only the `ref:` values change, byte for byte.

A YAML dump would lose comments, quoting and layout, so the bot locates each value with the
positions the YAML parser gives (`pipeline.core.yamlsource`) and rewrites only its token: a plain
scalar stays plain, a quoted one keeps its quotes. Pure: text in, text out.
"""

from __future__ import annotations

import re

from pipeline.core import yamlsource
from pipeline.core.errors import Diagnostic, InvalidInput

_PLAIN = re.compile(r"[^\s,\]}#]+")
_HEX = re.compile(r"[0-9a-f]{7,64}")


def set_pin_refs(path: str, text: str, component: str, branch: str, new_ref: str) -> str:
    """The module file's text with every pin of component following branch moved to new_ref.

    Raises InvalidInput when the file does not parse or a ref is not a simple scalar token.
    """
    if not _HEX.fullmatch(new_ref):
        raise InvalidInput(f"not a commit hash: {new_ref!r}", code="invalid-commit")
    document = yamlsource.parse(path, text.encode("utf-8"))
    if isinstance(document, Diagnostic):
        raise InvalidInput(f"{path} does not parse: {document.render()}", code="invalid-yaml")
    data = document.data
    pins = data.get("components", {}).get("rpms", {}) if isinstance(data, dict) else {}
    pin = pins.get(component) if isinstance(pins, dict) else None
    if not isinstance(pin, dict) or pin.get("branch") != branch or "ref" not in pin:
        return text
    line, col = document.where(("components", "rpms", component, "ref"))
    edited = replace_scalar(text, line, col, new_ref, path)
    check = yamlsource.parse(path, edited.encode("utf-8"))
    if isinstance(check, Diagnostic) or check.data["components"]["rpms"][component].get("ref") != new_ref:
        raise InvalidInput(f"{path}:{line}: editing the ref of {component} went wrong", code="yaml-edit")
    return edited


def replace_scalar(text: str, line: int, col: int, value: str, path: str = "<text>") -> str:
    """text with the scalar starting at line:col (1-based) replaced by value, quoting kept."""
    lines = text.splitlines(keepends=True)
    if not 1 <= line <= len(lines):
        raise InvalidInput(f"{path}:{line}: no such line", code="yaml-edit")
    source = lines[line - 1]
    start = col - 1
    quote = source[start : start + 1]
    if quote in ("'", '"'):
        end = source.find(quote, start + 1)
        if end < 0:
            raise InvalidInput(f"{path}:{line}: a multi-line quoted ref cannot be edited", code="yaml-edit")
        token = source[start : end + 1]
        replacement = f"{quote}{value}{quote}"
    else:
        match = _PLAIN.match(source, start)
        if match is None:
            raise InvalidInput(f"{path}:{line}:{col}: no scalar to edit", code="yaml-edit")
        token = match.group(0)
        replacement = value
    if "\\" in token or (quote == "'" and "''" in token):
        raise InvalidInput(f"{path}:{line}: an escaped ref cannot be edited", code="yaml-edit")
    lines[line - 1] = source[:start] + replacement + source[start + len(token) :]
    return "".join(lines)


def _document(path: str, text: str) -> yamlsource.Document:
    document = yamlsource.parse(path, text.encode("utf-8"))
    if isinstance(document, Diagnostic):
        raise InvalidInput(f"{path} does not parse: {document.render()}", code="invalid-yaml")
    return document


def value_at(data: object, where: yamlsource.Path) -> object:
    """The value at a JSON path of loose YAML data; KeyError when it is not there."""
    for part in where:
        in_mapping = isinstance(data, dict) and isinstance(part, str) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_mapping or in_list):
            raise KeyError(part)
        data = data[part]  # type: ignore[index]
    return data


def set_scalar(path: str, text: str, where: yamlsource.Path, value: str, *, typed: bool = False) -> str:
    """The text with the scalar at a JSON path replaced by value (a string), quoting kept;
    `typed`: value is YAML (`true`), compared as what it reads as.

    Comments, layout and every other byte stay. Raises InvalidInput when the path holds no
    simple scalar token, or when the edited text does not read back as value there.
    """
    document = _document(path, text)
    try:
        old = value_at(document.data, where)
    except KeyError as exc:
        raise InvalidInput(f"{path}: no {'.'.join(map(str, where))} to edit", code="yaml-edit") from exc
    if isinstance(old, dict | list):
        raise InvalidInput(f"{path}: {'.'.join(map(str, where))} is not a scalar", code="yaml-edit")
    if old == (_typed(value) if typed else value):
        return text
    line, col = document.where(where)
    edited = replace_scalar(text, line, col, value, path)
    _check(path, edited, where, value, line, typed=typed)
    return edited


def add_key(path: str, text: str, after: str, key: str, value: str) -> str:
    """The text with `key: value` set in the top-level mapping: the scalar replaced when the key
    is there, else a new line right after the line of the key `after`, at its indentation."""
    document = _document(path, text)
    if not isinstance(document.data, dict) or after not in document.data:
        raise InvalidInput(f"{path}: no top-level {after!r} to add {key!r} after", code="yaml-edit")
    if key in document.data:
        return set_scalar(path, text, (key,), value, typed=True)
    line, col = document.where((after,), key=True)
    end, _ = document.where((after,))
    if end != line:
        raise InvalidInput(f"{path}:{line}: {after!r} spans several lines", code="yaml-edit")
    lines = text.splitlines(keepends=True)
    if not lines[line - 1].endswith("\n"):
        lines[line - 1] += "\n"
    lines.insert(line, f"{' ' * (col - 1)}{key}: {value}\n")
    edited = "".join(lines)
    _check(path, edited, (key,), value, line + 1, typed=True)
    return edited


def _typed(value: str) -> object:
    """What a YAML scalar reads as (`true` -> True); None when it does not parse."""
    document = yamlsource.parse("<value>", f"v: {value}\n".encode())
    return None if isinstance(document, Diagnostic) else document.data["v"]


def _check(
    path: str, edited: str, where: yamlsource.Path, value: str, line: int, *, typed: bool = False
) -> None:
    """Refuse an edit that does not read back as intended (value is YAML text when typed)."""
    check = yamlsource.parse(path, edited.encode("utf-8"))
    expected = _typed(value) if typed else value
    try:
        found = None if isinstance(check, Diagnostic) else value_at(check.data, where)
    except KeyError:
        found = None
    if found != expected or found is None:
        raise InvalidInput(f"{path}:{line}: editing {'.'.join(map(str, where))} went wrong", code="yaml-edit")


def set_pin_builds(path: str, text: str, component: str, source: str, new_build: str) -> str:
    """The module file's text with the binary pin of component taken from source moved to the
    build new_build: only that `build:` value changes. Unchanged text when the file has no such pin.

    Raises InvalidInput when the file does not parse or the build is not a simple scalar token.
    """
    data = _document(path, text).data
    pins = data.get("components", {}).get("rpms", {}) if isinstance(data, dict) else {}
    pin = pins.get(component) if isinstance(pins, dict) else None
    if not isinstance(pin, dict) or pin.get("source") != source or "build" not in pin:
        return text
    return set_scalar(path, text, ("components", "rpms", component, "build"), new_build)
