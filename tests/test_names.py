"""Did you mean: the nearest names offered when a name names nothing (pipeline.core.names)."""

from __future__ import annotations

from pipeline.core.names import did_you_mean, nearest, unknown

NODES = [
    "repo:Server",
    "repo:Workstation",
    "repo:Cloud",
    "iso:Server/dvd",
    "ostree:AtomicHost/host",
    "repo:AtomicHost",
    "iso:AtomicHost/installer",
    "module:httpd:2.4",
]


def test_a_typo_in_a_node_id_finds_the_node() -> None:
    assert nearest("repo:Servr", NODES) == ["repo:Server"]
    assert did_you_mean("repo:Servr", NODES) == "did you mean repo:Server?"


def test_a_name_without_its_kind_finds_the_node_of_that_name() -> None:
    assert nearest("Servr", NODES) == ["repo:Server"]
    assert nearest("Workstaton", NODES) == ["repo:Workstation"]


def test_the_shared_kind_does_not_make_names_near() -> None:
    """`repo:Cloud` shares `repo:` with `repo:Servr`, which says nothing about the names."""
    assert "repo:Cloud" not in nearest("repo:Servr", NODES)
    assert nearest("repo:Xyzzy", NODES) == []


def test_only_names_about_as_near_as_the_nearest_are_offered() -> None:
    assert nearest("ostree:AtomicHost/hots", NODES) == ["ostree:AtomicHost/host"]


def test_a_name_in_another_case_comes_first() -> None:
    assert nearest("repo:server", NODES)[0] == "repo:Server"


def test_other_forms_of_a_name_count() -> None:
    modules = ["httpd:2.4", "gtk:3", "base-runtime:f42"]
    forms = {nsid: (nsid.split(":")[0],) for nsid in modules}
    assert nearest("gkt", modules, forms=forms) == ["gtk:3"]
    assert nearest("httpd:2.5", modules, forms=forms) == ["httpd:2.4"]


def test_several_near_names_are_all_offered() -> None:
    assert did_you_mean("ab", ["abc", "abd"]) == "did you mean abc or abd?"


def test_compose_ids_need_a_higher_cutoff() -> None:
    ids = ["FL-42-Server-20261207.n.0", "FL-42-Server-dvd-20261207.n.0", "FL-42-gnome-47-20261207.n.0"]
    assert nearest("FL-42-Server-20261207.n.1", ids, cutoff=0.9) == ["FL-42-Server-20261207.n.0"]
    assert nearest("FL-42-nope-20261207.n.0", ids, cutoff=0.9) == []


def test_the_error_has_the_kinds_code_and_the_hint() -> None:
    error = unknown("node", "repo:Servr", NODES, where=" at HEAD", listing="`factory graph` lists the nodes")
    assert (error.code, error.exit_code) == ("unknown-node", 2)
    assert error.message == "no node 'repo:Servr' at HEAD"
    assert error.hint == "did you mean repo:Server?"


def test_with_no_near_name_the_hint_lists_a_few_names_or_says_how_to_list_them() -> None:
    assert unknown("compose-type", "bogus", ["nightly", "test", "ci", "production"]).hint == (
        "compose types: ci, nightly, production, test"
    )
    many = [f"repo:V{n}" for n in range(40)]
    assert unknown("node", "zzz", many, listing="`factory graph` lists the nodes").hint == (
        "`factory graph` lists the nodes"
    )
