"""`deps`: what a module needs and what needs it, with EOLs. Pure."""

from __future__ import annotations

import pytest

from pipeline.core import definitions, deps
from pipeline.core.errors import InvalidInput
from tests.conftest import example_tree, sources


def test_dependencies_are_transitive_and_carry_eols() -> None:
    defs = definitions.load(sources(example_tree()))
    found = {d.name: d for d in deps.dependencies(defs, "installer:f42")}
    assert set(found) == {"base-runtime:f42", "python3:3.12"}
    assert found["python3:3.12"].relation == "requires+buildrequires"
    assert str(found["base-runtime:f42"].eol) == "2027-12-31"


def test_reverse_lists_modules_then_variants() -> None:
    defs = definitions.load(sources(example_tree()))
    found = deps.dependants(defs, "gtk:3")
    assert [(d.kind, d.name) for d in found] == [("module", "gnome:47"), ("variant", "Workstation")]
    everything = {d.name for d in deps.dependants(defs, "base-runtime:f42")}
    assert {"AtomicHost", "Cloud", "Server", "Workstation", "gnome:47", "python3:3.12"} <= everything


def test_find_module_by_name_or_nsid() -> None:
    defs = definitions.load(sources(example_tree()))
    assert deps.find_module(defs, "gtk") == "gtk:3"
    assert deps.find_module(defs, "gtk:3") == "gtk:3"
    with pytest.raises(InvalidInput, match="no module 'qt'"):
        deps.find_module(defs, "qt")
