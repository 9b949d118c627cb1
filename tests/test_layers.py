"""The shape of the package: which layer may import which, and where I/O may happen.

Every import in pipeline/ is read with `ast` (those inside functions and under TYPE_CHECKING
too), so a lazy import cannot slip past. The layers, lowest first (ARCHITECTURE.md):

    core                      pure: the words, definitions, graph, plan, gate, records
    formats                   pure writers of outside formats
    run                       the one place processes start
    git, tools                one door per outside thing
    records, artifacts,       every Git record factory writes (one owner each); the artifact store;
    graphcache, example       the graph cache; the example distribution
    build, compose, checks,   making and testing artifacts (plugins), their registry; a
    plugins, workspace        revision's definitions, graphs, config and policy

    engine                    running composes
    release, bot, overview    gating, signing, publication; the bump bot; the status and site
    commands, cli             arguments and output

A module may import its own layer and the lower ones, never a higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"

LAYERS: dict[str, int] = {
    "core": 0,
    "formats": 1,
    "run": 2,
    "retry": 2,  # the one retry loop (bounded attempts, growing waits)
    "schemas": 2,  # reads the JSON Schemas shipped in the package and gives them to the core
    "git": 3,
    "tools": 3,
    "records": 4,
    "artifacts": 4,
    "graphcache": 4,
    "example": 4,
    "example_upstream": 4,  # the example's upstream source: builds made elsewhere (rpmbuild, createrepo_c)
    "build": 5,
    "compose": 5,
    "checks": 5,
    "interop": 5,  # pure conversions between factory's definitions and modulemd / Pungi's formats
    "plugins": 5,  # the plugin registry: the composers and checks installed (entry points)
    "transfer": 5,  # a compose's files to and from the artifact store (the executor's and release's)
    "workspace": 5,  # reads the plugin registry (the kinds installed are part of its cache keys)
    "engine": 6,
    "release": 7,
    "bot": 7,
    # The build pipeline overview gathers facts from lineage, results, releases, the bump bot's
    # forge and the workspace, so it sits beside release and bot; only commands use it.
    "overview": 7,
    "commands": 8,
    "cli": 8,
}
IO_MODULES = ("subprocess", "pygit2", "sqlite3", "gitlab", "requests", "socket", "http", "urllib")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def part_of(path: Path) -> str:
    """The layer a file belongs to: its package under pipeline/, or its module's name."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imports(path: Path) -> list[str]:
    """Every module a file imports, as absolute dotted names."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.append(node.module)
            if node.module == "pipeline":  # `from pipeline import run`: names that are modules
                found.extend(f"pipeline.{alias.name}" for alias in node.names if alias.name in LAYERS)
    return found


def layer_of(module: str) -> str | None:
    """The layer of a `pipeline.*` module name; None for the package itself and outside modules."""
    parts = module.split(".")
    if parts[0] != "pipeline" or len(parts) < 2:
        return None
    return parts[1]


def test_every_part_of_the_package_has_a_layer() -> None:
    assert sorted({part_of(p) for p in modules()} - {"__init__"} - set(LAYERS)) == []


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_layer_and_lower_ones(path: Path) -> None:
    here = part_of(path)
    if here == "__init__":
        return
    upward = [
        module
        for module in imports(path)
        if (layer := layer_of(module)) is not None and LAYERS[layer] > LAYERS[here]
    ]
    assert upward == [], f"{here} (layer {LAYERS[here]}) imports {upward}"


def test_the_core_and_formats_do_no_io() -> None:
    """Neither imports an I/O module (importlib's resources and metadata are I/O: the JSON
    Schemas reach the core from `pipeline.schemas`, the plugins' kinds from the workspace)."""
    found = {
        str(p.relative_to(PACKAGE)): sorted(
            {
                m
                for m in imports(p)
                if m.split(".")[0] in IO_MODULES
                or m in ("os", "shutil", "tempfile", "importlib")
                or m.startswith("importlib.")
            }
        )
        for p in modules()
        if part_of(p) in ("core", "formats")
    }
    assert {path: io for path, io in found.items() if io} == {}


# Calls that touch the file system, by name (method or function): none in the pure layers.
FILE_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "glob", "rglob",
              "exists", "is_file", "is_dir", "mkdir", "stat", "unlink", "touch", "walk", "listdir", "scandir"}  # fmt: skip


def test_the_core_and_formats_touch_no_file() -> None:
    found = [
        f"{p.relative_to(PACKAGE)}:{node.lineno}: {name}()"
        for p in modules()
        if part_of(p) in ("core", "formats")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and (name := _called(node.func)) in FILE_CALLS
    ]
    assert found == []


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


# factory's ref namespaces (ARCHITECTURE.md: "records/"); branches, refs/heads/, are the user's.
FACTORY_REFS = ("refs/notes/", "refs/composes/", "refs/tags/compose/", "refs/history/", "refs/factory/")


def spelled_refs(path: Path) -> list[str]:
    """The factory refs a module spells as a value: a string (or the start of an f-string) that
    begins with one of factory's namespaces. Docstrings may name them; code may not."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        text = node.values[0] if isinstance(node, ast.JoinedStr) and node.values else node
        if (
            isinstance(text, ast.Constant)
            and isinstance(text.value, str)
            and id(text) not in docstrings
            and text.value.startswith(FACTORY_REFS)
        ):
            found.append(f"{path.relative_to(PACKAGE)}:{text.lineno}: {text.value!r}")
    return found


def test_only_records_name_factorys_refs() -> None:
    """Every ref factory writes is named in records/refs.py; everyone else imports the name."""
    found = sorted({ref for p in modules() if part_of(p) != "records" for ref in spelled_refs(p)})
    assert found == []
    named = {p.name for p in (PACKAGE / "records").glob("*.py") if spelled_refs(p)}
    assert named == {"refs.py"}


def test_only_records_parse_notes() -> None:
    """Notes are read and written through pipeline.git.notes by records/ alone (each record's
    module owns its note's format); git/ is the door itself."""
    users = sorted(
        str(p.relative_to(PACKAGE))
        for p in modules()
        if part_of(p) not in ("records", "git") and "pipeline.git.notes" in _git_modules(p)
    )
    assert users == []


def _git_modules(path: Path) -> set[str]:
    """The pipeline.git modules a file imports (`from pipeline.git import notes` included)."""
    found = set(imports(path))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "pipeline.git":
            found.update(f"pipeline.git.{alias.name}" for alias in node.names)
    return found


def test_only_run_starts_processes() -> None:
    users = [str(p.relative_to(PACKAGE)) for p in modules() if "subprocess" in imports(p)]
    assert users == ["run.py"]


def test_only_the_git_door_imports_pygit2() -> None:
    users = sorted({str(p.relative_to(PACKAGE).parent) for p in modules() if "pygit2" in imports(p)})
    assert users == ["git"]


def test_only_the_gitlab_forge_and_the_oci_store_speak_http() -> None:
    """python-gitlab and oras both speak HTTP through requests; nothing else does."""
    users = [
        str(p.relative_to(PACKAGE))
        for p in modules()
        if {m.split(".")[0] for m in imports(p)} & {"gitlab", "requests", "oras"}
    ]
    assert users == ["artifacts/oci.py", "bot/forge_gitlab.py"]


def test_composers_do_not_import_checks() -> None:
    """checks/ may read what composers make (their output formats); compose/ never imports
    checks/: the `Job` both take is `pipeline.core.job`, and the registry of both is
    `pipeline.plugins`."""
    users = sorted(
        str(p.relative_to(PACKAGE))
        for p in modules()
        if part_of(p) == "compose" and any(m.startswith("pipeline.checks") for m in imports(p))
    )
    assert users == []


def test_the_rpm_libraries_are_reached_through_their_adapters() -> None:
    """librepo, createrepo_c's and rpm's Python bindings each have their tool adapters."""
    users = {
        library: sorted(str(p.relative_to(PACKAGE)) for p in modules() if library in imports(p))
        for library in ("librepo", "createrepo_c", "rpm")
    }
    assert users == {
        "librepo": ["tools/yumrepo.py"],
        "createrepo_c": ["tools/updateinfo.py", "tools/yumrepo.py"],
        "rpm": ["tools/rpmlib.py"],
    }
