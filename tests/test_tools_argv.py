"""Tool adapters build exact command lines; modulemd and comps are pure text. No processes here.

The modulemd documents are checked with libmodulemd (gi), which only Debian's python (the
venv made with --system-site-packages) can import.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.core import definitions
from pipeline.core.model import Module
from pipeline.core.nevra import Rpm
from pipeline.formats import comps, modulemd
from pipeline.tools import createrepo, graphviz, rpm, rpmbuild
from tests.conftest import example_tree, sources

EPOCH = 1767225600  # 2026-01-01T00:00:00Z


def example_module(nsid: str) -> Module:
    return definitions.load(sources(example_tree())).module(nsid)


def libmodulemd() -> Any:
    """The Modulemd 2.0 gi module, or skip: gi is only on Debian's system python."""
    try:
        import gi  # type: ignore[import-untyped, unused-ignore]

        gi.require_version("Modulemd", "2.0")
        from gi.repository import Modulemd  # type: ignore[import-untyped, unused-ignore]
    except (ImportError, ValueError):
        pytest.skip("libmodulemd (gi, Modulemd 2.0) needs Debian's python3: run with .venv/bin/pytest")
    return Modulemd


def parse_index(text: str) -> Any:
    """A libmodulemd ModuleIndex of text, asserting that every document parsed."""
    index = libmodulemd().ModuleIndex.new()
    ok, failures = index.update_from_string(text, True)
    assert ok, [f.get_gerror().message for f in failures]
    assert not failures
    return index


# -- rpmbuild ----------------------------------------------------------------------------------


def test_rpmbuild_argv_is_reproducible_and_puts_results_where_told() -> None:
    layout = rpmbuild.Layout(Path("/b/top"), Path("/b/src"), Path("/out/rpms"), Path("/out/srpms"))
    assert rpmbuild.build_argv(Path("/b/src/glibc.spec"), layout, ".fl42") == [
        "rpmbuild",
        "-ba",
        "--define",
        "_topdir /b/top",
        "--define",
        "_sourcedir /b/src",
        "--define",
        "_specdir /b/src",
        "--define",
        "_rpmdir /out/rpms",
        "--define",
        "_srcrpmdir /out/srpms",
        "--define",
        "_tmppath /b/top/tmp",
        "--define",
        "dist .fl42",
        "--define",
        "use_source_date_epoch_as_buildtime 1",
        "--define",
        "clamp_mtime_to_source_date_epoch 1",
        "--define",
        "_buildhost reproducible",
        "/b/src/glibc.spec",
    ]


def test_rpmbuild_layout_and_environment() -> None:
    assert rpmbuild.Layout.under(Path("/t")) == rpmbuild.Layout(
        Path("/t"), Path("/t/SOURCES"), Path("/t/RPMS"), Path("/t/SRPMS")
    )
    env = rpmbuild.build_env(EPOCH, {"PATH": "/usr/bin", "TZ": "Europe/Paris"})
    assert env == {"PATH": "/usr/bin", "SOURCE_DATE_EPOCH": "1767225600", "TZ": "UTC", "LC_ALL": "C"}


# -- createrepo_c / modifyrepo_c -------------------------------------------------------------------


def test_createrepo_argv_pins_everything_that_would_vary() -> None:
    pinned = [
        "--no-database",
        "--checksum=sha256",
        "--repomd-checksum=sha256",
        "--general-compress-type=gz",
        "--unique-md-filenames",
        "--revision=1767225600",
        "--set-timestamp-to-revision",
    ]
    assert createrepo.createrepo_argv(Path("/c/os"), EPOCH) == ["createrepo_c", "--quiet", *pinned, "/c/os"]
    assert createrepo.createrepo_argv(Path("/c/os"), EPOCH, update=True) == [
        "createrepo_c",
        "--quiet",
        *pinned,
        "--update",
        "--keep-all-metadata",
        "/c/os",
    ]


def test_modifyrepo_argv_for_modules_and_comps() -> None:
    modules = createrepo.Metadata(Path("/w/modules.yaml"), "modules")
    assert createrepo.modifyrepo_argv(modules, Path("/c/os/repodata")) == [
        "modifyrepo_c",
        "--mdtype=modules",
        "--compress-type=gz",
        "--checksum=sha256",
        "--unique-md-filenames",
        "/w/modules.yaml",
        "/c/os/repodata",
    ]
    group = createrepo.Metadata(Path("/w/comps.xml"), "group")
    assert createrepo.modifyrepo_argv(group, Path("/r"))[1] == "--mdtype=group"


# -- graphviz ----------------------------------------------------------------------------------------


def test_dot_argv_reads_stdin_and_writes_the_format_asked() -> None:
    assert graphviz.render_argv("svg") == ["dot", "-Tsvg"]
    assert graphviz.render_argv("png") == ["dot", "-Tpng"]


# -- rpm headers -------------------------------------------------------------------------------------


def test_rpm_query_argv_and_parsing() -> None:
    assert rpm.query_argv([Path("/a.rpm"), Path("/b.rpm")]) == [
        "rpm",
        "-qp",
        "--nosignature",
        "--nodigest",
        "--qf",
        rpm.QUERY_FORMAT,
        "/a.rpm",
        "/b.rpm",
    ]
    output = (
        "glibc\t0\t2.40\t1.fl42\tnoarch\t\t1767225600\tLGPL-2.1-or-later\n"
        "glibc\t0\t2.40\t1.fl42\tnoarch\tglibc-2.40-1.fl42.src.rpm\t1767225600\tLGPL-2.1-or-later\n"
    )
    source, binary = rpm.parse_query(output)
    assert source.buildtime == binary.buildtime == 1767225600
    assert source.is_source and not binary.is_source
    assert source.nevra == "glibc-0:2.40-1.fl42.src"
    assert binary.nevra == "glibc-0:2.40-1.fl42.noarch"
    assert binary.source_nevra == source.nevra == source.source_nevra
    assert (binary.filename, source.filename) == ("glibc-2.40-1.fl42.noarch.rpm", "glibc-2.40-1.fl42.src.rpm")


def test_source_nevra_keeps_the_epoch_and_dashes_in_names() -> None:
    binary = Rpm(
        "python3-requests",
        2,
        "2.32.3",
        "1.fl42",
        "noarch",
        "Apache-2.0",
        "python3-requests-2.32.3-1.fl42.src.rpm",
    )
    assert binary.source_nevra == "python3-requests-2:2.32.3-1.fl42.src"


# -- modulemd -----------------------------------------------------------------------------------------

PYTHON3_RPMS = [
    Rpm("python3", 0, "3.12.7", "1.fl42", "noarch", "Python-2.0.1", "python3-3.12.7-1.fl42.src.rpm"),
    Rpm("python3", 0, "3.12.7", "1.fl42", "noarch", "Python-2.0.1"),
    Rpm(
        "python3-requests",
        0,
        "2.32.3",
        "1.fl42",
        "noarch",
        "Apache-2.0",
        "python3-requests-2.32.3-1.fl42.src.rpm",
    ),
]


def python3_document() -> str:
    return modulemd.module_document(
        example_module("python3:3.12"),
        version=modulemd.module_version(EPOCH + 3600 * 13 + 61),
        context=modulemd.module_context("0123abcd" + "f" * 56),
        rpms=PYTHON3_RPMS,
    )


def test_version_and_context() -> None:
    assert modulemd.module_version(EPOCH) == 20260101000000
    assert modulemd.module_version(EPOCH + 3600 * 13 + 61) == 20260101130101
    assert modulemd.module_context("0123abcd" + "f" * 56) == "0123abcd"


def test_module_document_content() -> None:
    text = python3_document()
    doc = yaml.safe_load(text)
    assert text.startswith("---\ndocument: modulemd\nversion: 2\ndata:\n")
    data = doc["data"]
    assert (data["name"], data["stream"], data["version"], data["context"]) == (
        "python3",
        "3.12",
        20260101130101,
        "0123abcd",
    )
    assert data["license"] == {"module": ["MIT"], "content": ["Apache-2.0", "Python-2.0.1"]}
    assert data["artifacts"]["rpms"] == [
        "python3-0:3.12.7-1.fl42.noarch",
        "python3-0:3.12.7-1.fl42.src",
        "python3-requests-0:2.32.3-1.fl42.noarch",
    ]
    assert data["components"]["rpms"]["python3"]["ref"] == "720dc08b61b4dff4ca98d5be16c3a8191f9e62ba"
    assert data["components"]["rpms"]["python3"]["rationale"]
    assert data["profiles"]["http"]["rpms"] == [
        "python3",
        "python3-idna",
        "python3-requests",
        "python3-urllib3",
    ]
    assert data["api"]["rpms"] == ["python3", "python3-idna", "python3-requests", "python3-urllib3"]
    assert data["dependencies"] == [
        {"buildrequires": {"base-runtime": ["f42"]}, "requires": {"base-runtime": ["f42"]}}
    ]


def test_module_document_does_not_depend_on_rpm_order() -> None:
    module = example_module("python3:3.12")
    one = modulemd.module_document(module, version=1, context="abcdef01", rpms=PYTHON3_RPMS)
    other = modulemd.module_document(module, version=1, context="abcdef01", rpms=PYTHON3_RPMS[::-1])
    assert one == other


def test_libmodulemd_reads_the_module_document() -> None:
    index = parse_index(python3_document())
    stream = index.get_module("python3").get_stream_by_NSVCA("3.12", 20260101130101, "0123abcd", None)
    assert stream.get_mdversion() == 2
    assert "python3-0:3.12.7-1.fl42.noarch" in stream.get_rpm_artifacts()
    assert stream.get_rpm_component("python3").get_ref() == "720dc08b61b4dff4ca98d5be16c3a8191f9e62ba"
    assert sorted(stream.get_profile_names()) == ["default", "http"]


def test_merge_is_stable_and_idempotent() -> None:
    runtime = modulemd.module_document(
        example_module("base-runtime:f42"), version=1, context="aaaaaaaa", rpms=[]
    )
    python3 = python3_document()
    defaults = modulemd.defaults_document("python3", "3.12", ["default"])
    merged = modulemd.merge([python3, defaults, runtime, python3])
    assert merged == modulemd.merge([defaults, runtime, python3])
    assert modulemd.merge([merged]) == merged
    docs = list(yaml.safe_load_all(merged))
    assert [(d["document"], d["data"].get("name", d["data"].get("module"))) for d in docs] == [
        ("modulemd", "base-runtime"),
        ("modulemd", "python3"),
        ("modulemd-defaults", "python3"),
    ]
    index = parse_index(merged)
    assert sorted(index.get_module_names()) == ["base-runtime", "python3"]
    assert index.get_default_streams()["python3"] == "3.12"
    assert modulemd.merge([]) == ""


# -- comps --------------------------------------------------------------------------------------------


def test_comps_groups_per_selected_profile() -> None:
    runtime = example_module("base-runtime:f42")
    python3 = example_module("python3:3.12")
    groups = [comps.profile_group(python3, "http"), comps.profile_group(runtime, "minimal")]
    text = comps.comps_xml(groups)
    assert text == comps.comps_xml(groups[::-1])
    root = ET.fromstring(text.encode())
    assert [g.findtext("id") for g in root.iter("group")] == ["base-runtime-minimal", "python3-http"]
    http = next(g for g in root.iter("group") if g.findtext("id") == "python3-http")
    assert [(p.get("type"), p.text) for p in http.iter("packagereq")] == [
        ("default", "python3"),
        ("default", "python3-idna"),
        ("default", "python3-requests"),
        ("default", "python3-urllib3"),
    ]
    assert http.findtext("name") == "python3:3.12 http"


def test_comps_refuses_clashing_ids_and_unknown_profiles() -> None:
    python3 = example_module("python3:3.12")
    group = comps.profile_group(python3, "http")
    with pytest.raises(ValueError, match="python3-http"):
        comps.comps_xml([group, comps.Group(group.id, "other", "other", ("x",))])
    with pytest.raises(KeyError):
        comps.profile_group(python3, "nope")


def test_comps_escapes_text() -> None:
    text = comps.comps_xml([comps.Group("a-b", "A & B", "<desc>", ("p",))])
    root = ET.fromstring(text.encode())
    group = next(root.iter("group"))
    assert (group.findtext("name"), group.findtext("description")) == ("A & B", "<desc>")


def test_merged_modules_yaml_is_every_document_once_sorted_as_one_yaml_stream() -> None:
    rpms = PYTHON3_RPMS
    base = example_module("base-runtime:f42")
    one = modulemd.module_document(base, version=20260101000000, context="aaaaaaaa", rpms=rpms)
    two = modulemd.module_document(base, version=20250101000000, context="bbbbbbbb", rpms=rpms)
    defaults = modulemd.defaults_document("base-runtime", "f42", ["default"])
    merged = modulemd.merge([defaults, one, two, one])
    # The same bytes as one YAML stream of the distinct documents, modulemd before defaults,
    # older versions first; merging again (documents already parsed in this process) agrees.
    docs = [yaml.safe_load(text) for text in (two, one, defaults)]
    assert merged == yaml.dump_all(
        docs,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        explicit_end=True,
        width=1 << 16,
    )
    assert modulemd.merge([one, defaults, two]) == merged
    assert list(yaml.safe_load_all(merged)) == docs
