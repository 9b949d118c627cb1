"""End Of Life and new releases as decisions on the example's definitions. Pure: no Git, no clock."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.core import definitions, deps, lifecycle
from pipeline.core import graph as graphs
from pipeline.core.errors import InvalidInput
from pipeline.core.lifecycle import Target
from pipeline.core.model import Definitions
from tests.conftest import example_tree, sources

TODAY = dt.date(2026, 11, 26)
RETIRED = b"retired: true\n"


def load(edits: dict[str, tuple[str, str]] | None = None) -> Definitions:
    tree = example_tree()
    for path, (old, new) in (edits or {}).items():
        assert tree[path].count(old.encode()) == 1
        tree[path] = tree[path].replace(old.encode(), new.encode())
    return definitions.load(sources(tree))


def retire(*paths: str) -> dict[str, tuple[str, str]]:
    """Edits that retire the definitions in these files (`retired: true` under `eol:`)."""
    edits = {}
    for path in paths:
        line = next(x for x in example_tree()[path].decode().splitlines() if x.startswith("eol: "))
        edits[path] = (line + "\n", line + "\nretired: true\n")
    return edits


def test_targets_name_module_streams_and_variants() -> None:
    defs = load()
    assert lifecycle.parse_target("module:gtk:3", defs) == Target("module", "gtk:3")
    assert lifecycle.parse_target("variant:Workstation", defs).id == "variant:Workstation"
    for bad, code, hint in (
        ("module:gtk:4", "unknown-module", "did you mean module:gtk:3?"),
        ("module:nothing:1", "unknown-module", "modules: module:base-runtime:f42, "),
        ("variant:Workstaton", "unknown-variant", "did you mean variant:Workstation?"),
        ("variant:Desktop", "unknown-variant", "variants: "),
        ("xyzzy", "unknown-target", "module:NAME"),
        ("gtk", "unknown-target", "did you mean module:gtk:3?"),
    ):
        with pytest.raises(InvalidInput) as caught:
            lifecycle.parse_target(bad, defs)
        assert caught.value.code == code and hint in caught.value.hint


def test_a_date_that_has_come_retires_a_later_one_schedules() -> None:
    defs = load()
    gtk = Target("module", "gtk:3")
    now = lifecycle.change(defs, gtk, TODAY, TODAY)
    assert (now.retire, now.eol, now.old_eol, now.path) == (
        True,
        TODAY,
        dt.date(2027, 6, 30),
        "modules/gtk/3.yaml",
    )
    assert lifecycle.change(defs, gtk, dt.date(2026, 1, 1), TODAY).retire
    assert not lifecycle.change(defs, gtk, dt.date(2027, 1, 1), TODAY).retire


def test_a_module_is_refused_while_live_variants_or_modules_need_it() -> None:
    defs = load()
    gtk = lifecycle.change(defs, Target("module", "gtk:3"), TODAY, TODAY)
    found = lifecycle.blockers(lifecycle.apply(defs, [gtk]), gtk)
    assert [(b.kind, b.name, str(b.eol), b.why) for b in found] == [
        ("variant", "Workstation", "2027-05-31", "ships it"),
        ("module", "gnome:47", "2027-06-30", "requires it"),
    ]
    # Scheduled on Workstation's own EOL: only what outlives the date blocks it.
    later = lifecycle.change(defs, Target("module", "gtk:3"), dt.date(2027, 5, 31), TODAY)
    assert [b.name for b in lifecycle.blockers(lifecycle.apply(defs, [later]), later)] == ["gnome:47"]
    # Retired together with everything that needs it, nothing blocks it.
    together = [
        lifecycle.change(defs, Target("variant", "Workstation"), TODAY, TODAY),
        lifecycle.change(defs, Target("module", "gnome:47"), TODAY, TODAY),
        gtk,
    ]
    after = lifecycle.apply(defs, together)
    assert all(lifecycle.blockers(after, c) == [] for c in together)


def test_due_lists_variants_then_modules_whose_eol_has_come() -> None:
    defs = load()
    assert lifecycle.due(defs, TODAY) == []
    assert lifecycle.due(defs, dt.date(2027, 6, 30)) == [
        Target("variant", "Workstation"),
        Target("module", "gnome:47"),
        Target("module", "gtk:3"),
    ]
    retired = load(retire("variants/Workstation.yaml"))
    assert Target("variant", "Workstation") not in lifecycle.due(retired, dt.date(2027, 6, 30))


def test_the_graph_leaves_retired_definitions_out_and_nothing_else_moves() -> None:
    before = graphs.build(load())
    after = graphs.build(
        load(retire("variants/Workstation.yaml", "modules/gnome/47.yaml", "modules/gtk/3.yaml"))
    )
    gone = set(before.nodes) - set(after.nodes)
    assert gone == {
        "repo:Workstation",
        "module:gnome:47",
        "module:gtk:3",
        "build:gnome-shell@67f39e87",
        "build:glib2@8a994f55",
        "build:gtk3@b2838247",
    }
    assert set(after.nodes) <= set(before.nodes)
    assert all(after.digests[n] == before.digests[n] for n in after.nodes)


def test_retired_nodes_keep_a_build_a_live_module_shares() -> None:
    glib2 = "    glib2:\n      ref: 8a994f55e3f8a120fe79fed88767e3a89d30c829\n      branch: f42\n"
    edits = retire("variants/Workstation.yaml", "modules/gnome/47.yaml", "modules/gtk/3.yaml")
    edits["modules/ostree/2024.yaml"] = ("  rpms:\n", "  rpms:\n" + glib2)
    defs = load(edits)
    found = lifecycle.retired_nodes(defs)
    assert "build:glib2@8a994f55" not in found
    assert found == [  # inputs first
        "build:gnome-shell@67f39e87",
        "build:gtk3@b2838247",
        "module:gnome:47",
        "module:gtk:3",
        "repo:Workstation",
    ]


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("f42", "f43"),
        ("epel42", "epel43"),
        ("42", "43"),
        ("el-42", "el-43"),
        ("rawhide", None),
        ("f142", None),
        ("3.42", None),
        ("f4", None),
    ],
)
def test_release_branches_are_named_for_their_release(branch: str, expected: str | None) -> None:
    assert lifecycle.release_branch(branch, "42", "43") == expected


def test_release_tokens_change_only_where_they_stand_alone() -> None:
    assert lifecycle.release_token("FL-42-AtomicHost", "42", "43") == "FL-43-AtomicHost"
    assert lifecycle.release_token("FL/42/x86_64/host", "42", "43") == "FL/43/x86_64/host"
    assert lifecycle.release_token("f42-1420", "42", "43") == "f42-1420"


def test_deps_of_a_variant_list_what_reaches_its_eol_first() -> None:
    defs = load()
    shipped = deps.shipped(defs, "AtomicHost")
    assert [(d.name, d.relation, d.via, str(d.eol)) for d in shipped] == [
        ("container-runtime:stable", "selects", "AtomicHost", "2027-10-31"),
        ("installer:f42", "selects", "AtomicHost", "2027-10-31"),
        ("ostree:2024", "selects", "AtomicHost", "2027-10-31"),
        ("python3:3.12", "requires", "installer:f42", "2027-10-31"),
        ("base-runtime:f42", "selects", "AtomicHost", "2027-12-31"),
    ]
    retired = load(retire("variants/Workstation.yaml"))
    assert [d.retired for d in deps.dependants(retired, "gtk:3") if d.kind == "variant"] == [True]
