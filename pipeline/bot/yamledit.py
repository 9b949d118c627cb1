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
