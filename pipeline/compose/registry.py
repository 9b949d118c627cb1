"""The composers of every artifact kind factory can make."""

from __future__ import annotations

from pipeline.build.local import LocalBuilder
from pipeline.compose.base import Composer
from pipeline.compose.module import ModuleComposer
from pipeline.compose.variant import VariantRepoComposer


def composers() -> dict[str, Composer]:
    """Kind -> composer, for the built-in kinds."""
    found: list[Composer] = [LocalBuilder(), ModuleComposer(), VariantRepoComposer()]
    return {c.kind: c for c in found}
