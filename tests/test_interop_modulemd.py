"""Importing modulemd: libmodulemd's annotated specifications and real repodata documents.

The documents under tests/data/interop/libmodulemd/ are public and unchanged (README there).
Every construct factory cannot express must come back as a Loss at the line that holds it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.interop import from_modulemd
from pipeline.interop.report import Loss
from pipeline.tools import libmodulemd

DATA = Path(__file__).resolve().parent / "data" / "interop" / "libmodulemd"
EOL = dt.date(2030, 1, 1)


@pytest.fixture(autouse=True)
def _needs_libmodulemd() -> None:
    try:
        libmodulemd.version()
    except Exception:
        pytest.skip("libmodulemd (gi) needs Debian's python3: run with .venv/bin/pytest")


def imported(name: str, **context: object) -> from_modulemd.Imported:
    path = DATA / name
    documents = libmodulemd.read(str(path), path.read_text(encoding="utf-8"))
    return from_modulemd.convert(documents, from_modulemd.Context(**context))  # type: ignore[arg-type]


def line_of(name: str, text: str, after: int = 0) -> int:
    """The 1-based line of the first line containing text (after line `after`)."""
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return next(
        i
        for i, line in enumerate(lines, start=1)
        if i > after and text in line and not line.lstrip().startswith("#")
    )


def losses_by_what(losses: tuple[Loss, ...]) -> dict[str, Loss]:
    return {x.what: x for x in losses}


def test_the_stream_v2_specification_imports_and_names_every_construct_left_out() -> None:
    result = imported("modulemd_stream_v2.yaml")
    [module] = result.modules
    assert module.nsid == "foo:latest"
    assert module.license == "MIT"
    assert module.eol == dt.date(2077, 10, 23)  # the latest service level EOL
    assert [name for name, _ in module.servicelevels] == [
        "bug_fixes",
        "rawhide",
        "security_fixes",
        "stable_api",
    ]
    assert [p.component for p in module.components] == ["bar", "baz", "xxx", "xyz"]
    xxx = next(p for p in module.components if p.component == "xxx")
    assert (xxx.arches, xxx.buildorder) == (("x86_64",), 0)
    assert next(p for p in module.components if p.component == "xyz").buildorder == 10
    bar = next(p for p in module.components if p.component == "bar")
    assert (bar.ref, bar.branch, bar.repository) == ("", "26ca0c0", "https://pagure.io/bar.git")
    assert [p.name for p in module.profiles] == ["container", "minimal"]
    assert module.api == ("bar", "bar-extras", "bar-devel", "baz", "xxx")  # the order written
    lost = losses_by_what(result.losses)
    spec = "modulemd_stream_v2.yaml"
    expected = {
        "module component includedmodule": line_of(spec, "includedmodule:"),
        "filter baz-nonfoo": line_of(spec, "rpms:", after=line_of(spec, "filter:")),
        "demodularized bar-old": line_of(spec, "rpms:", after=line_of(spec, "demodularized:")),
        "profile buildroot": line_of(spec, "    buildroot:"),
        "component xxx multilib": line_of(spec, "multilib: [x86_64]"),
        "component xxx arches": line_of(spec, "arches: [i686, x86_64]", after=line_of(spec, "xxx:")),
        "component bar cache": line_of(spec, "cache: https://example.com/cache"),
        "dependencies[1]": line_of(spec, "- buildrequires:", after=line_of(spec, "- buildrequires:")),
        "buildopts.rpms.macros": line_of(spec, "macros: |"),
        "xmd.some_key": line_of(spec, "some_key: some_data"),
        "references.tracker": line_of(spec, "tracker: http://www.example.com/"),
    }
    assert {what: lost[what].line for what in expected} == expected
    assert "abbreviated commit" in lost["component bar ref"].reason
    assert "platform" in lost["buildrequires platform"].reason


def test_a_packager_v2_document_needs_the_name_and_stream_dist_git_would_give() -> None:
    result = imported("modulemd_packager_v2.yaml")
    assert result.modules == ()
    assert any("pass --name and --stream" in x.reason for x in result.losses)
    path = DATA / "modulemd_packager_v2.yaml"
    documents = libmodulemd.read(str(path), path.read_text(encoding="utf-8"), name="foo", stream="latest")
    [module] = from_modulemd.convert(documents, from_modulemd.Context(eol=EOL)).modules
    assert (module.nsid, module.eol) == ("foo:latest", EOL)


def test_a_packager_v3_document_imports_its_first_configuration_and_reports_the_others() -> None:
    result = imported("modulemd_packager_v3.yaml", eol=EOL, known={"appframework": frozenset({"v1"})})
    [module] = result.modules
    assert module.buildrequires == (("appframework", "v1"),)
    assert module.requires == (("appframework", "v1"),)
    lost = losses_by_what(result.losses)
    assert lost["configuration CTX2"].line == line_of("modulemd_packager_v3.yaml", "- context: CTX2")
    assert lost["profile minimal default"].reason.startswith("a variant's selection")


def test_real_repodata_modules_keep_the_commits_mbs_recorded() -> None:
    result = imported(
        "f29-modules.yaml", eol=EOL, distgit_url="https://src.fedoraproject.org/rpms/{component}"
    )
    assert sorted(m.nsid for m in result.modules) == [
        "django:1.6",
        "dwm:latest",
        "meson:main",
        "ninja:main",
        "reviewboard:2.5",
    ]
    reviewboard = next(m for m in result.modules if m.name == "reviewboard")
    pin = next(p for p in reviewboard.components if p.component == "ReviewBoard")
    assert (pin.ref, pin.branch, pin.buildorder) == ("5d28213f6a797e5ce28ad05ab23f80fe67353da8", "2.5", 20)
    assert pin.repository == "git+https://src.fedoraproject.org/rpms/ReviewBoard"
    assert reviewboard.requires == (("django", "1.6"),) == reviewboard.buildrequires
    meson = next(m for m in result.modules if m.name == "meson")
    assert meson.requires == ()
    lost = losses_by_what(result.losses)
    assert lost["requires ninja"].reason.startswith("any stream")
    assert lost["requires ninja"].line == line_of("f29-modules.yaml", "ninja: []")
    user = line_of("f29-modules.yaml", "user:")
    assert lost["profile user rpm dwm-user"].line == line_of("f29-modules.yaml", "rpms:", after=user)
    assert [x.line for x in result.losses if x.what == "modulemd-defaults"] == [388, 396]


def test_without_an_eol_a_built_module_is_reported_not_invented() -> None:
    result = imported("f29-modules.yaml")
    assert result.modules == ()
    assert all("pass --eol" in x.reason for x in result.losses if x.what.startswith("document"))


SYNTHETIC = """\
---
document: modulemd
version: 2
data:
  name: app
  stream: "1"
  summary: An app
  description: An app.
  license:
    module: [MIT, BSD-3-Clause]
  dependencies:
  - buildrequires:
      runtime: [a, b]
      tools: [-old]
    requires:
      runtime: [a]
  components:
    rpms:
      first:
        rationale: built first
        ref: f1
      second:
        rationale: after first
        ref: f1
        buildafter: [first]
      third:
        rationale: after second
        ref: f1
        buildafter: [second, first]
...
---
document: modulemd
version: 2
data:
  name: broken
  stream: "1"
  summary: s
  description: d
  license: {module: [MIT]}
  surprise: 1
...
"""


def test_several_streams_exclusions_and_buildafter() -> None:
    documents = libmodulemd.read("synthetic.yaml", SYNTHETIC)
    known = {"runtime": frozenset({"a"}), "tools": frozenset({"new"})}
    result = from_modulemd.convert(documents, from_modulemd.Context(eol=EOL, known=known))
    [module] = result.modules
    assert module.license == "MIT AND BSD-3-Clause"
    assert module.buildrequires == () and module.requires == (("runtime", "a"),)
    assert {p.component: p.buildorder for p in module.components} == {"first": 0, "second": 1, "third": 2}
    lost = losses_by_what(result.losses)
    assert lost["buildrequires runtime"].reason.startswith("several streams ['a', 'b']")
    assert lost["buildrequires runtime"].line == 13
    assert lost["buildrequires tools"].reason.startswith("stream exclusions ['-old']")
    # libmodulemd refuses the second document; the first still imports.
    assert lost["document 2"].line == 31
    assert "Unexpected key in data: surprise [line 40" in lost["document 2"].reason
