"""The artifact kinds and checks factory knows: plugins found through entry points.

A kind is one class registered under the entry-point group `factory.artifacts` (its name is
the kind), a check one class under `factory.checks`; the built-in ones are registered the same
way in pyproject.toml, so a new kind is one module plus one line there.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pipeline.checks.base import Check
from pipeline.compose.base import Composer
from pipeline.core.errors import OperationFailed

ARTIFACTS = "factory.artifacts"
CHECKS = "factory.checks"


def _load(group: str) -> list[tuple[str, Any]]:
    found = []
    for entry in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            plugin = entry.load()()
        except Exception as exc:  # a broken plugin must say which one it is
            raise OperationFailed(
                f"plugin {entry.name} ({entry.value}) of {group} failed to load: {exc}",
                code="plugin-failed",
            ) from exc
        found.append((entry.name, plugin))
    return found


def kind_names() -> tuple[str, ...]:
    """The registered artifact kinds, without loading any plugin (for validation)."""
    return tuple(sorted({e.name for e in entry_points(group=ARTIFACTS)} - {"build", "binary", "module"}))


def composers() -> dict[str, Composer]:
    """Kind -> composer, for every registered artifact kind."""
    out: dict[str, Composer] = {}
    for name, plugin in _load(ARTIFACTS):
        if getattr(plugin, "kind", None) != name:
            raise OperationFailed(
                f"plugin {name} of {ARTIFACTS} says its kind is {getattr(plugin, 'kind', None)!r}",
                code="plugin-kind",
            )
        if not isinstance(getattr(plugin, "format", None), int):
            raise OperationFailed(
                f"plugin {name} of {ARTIFACTS} has no integer `format` (the version of its output)",
                code="plugin-failed",
            )
        out[name] = plugin
    return out


def checks() -> list[Check]:
    """Every registered check, by name."""
    return [plugin for _, plugin in _load(CHECKS)]
