"""Canonical JSON and the digests made from it.

Everything factory hashes or writes goes through here, so the same data gives the same bytes
on every machine: sorted keys, no insignificant whitespace, UTF-8.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """The canonical text of a JSON-compatible value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """sha256 (hex) of the canonical JSON of value."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def pretty_json(value: Any) -> str:
    """Sorted, indented JSON for humans and files (still deterministic)."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
