"""factory.yaml as typed values: every key the schema allows has a field, one parser reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline import cli
from pipeline.core import definitions
from pipeline.core.config import OSTREE_KEEP, BuilderKind, Config, ForgeKind
from pipeline.core.definitions import SourceFile
from pipeline.core.errors import InvalidDefinitions
from pipeline.workspace import WORKTREE, Workspace
from tests.conftest import commit_tree, example_tree
from tests.test_layers import imports

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"

EVERY_KEY = b"""\
document: factory-config
version: 1
release: {name: Factory Linux, short: FL, version: "42", registry: "registry.gitlab.example/dist/factory", ostree: {keep: 4}, branches: ["{default}", "stable/{version}"]}
dist: .fl42
distgit: {url: "https://src.example/rpms/{component}.git"}
output: {dir: /srv/factory/output}
builder: {kind: local}
forge:
  kind: gitlab
  gitlab: {url: "https://gitlab.example", project: dist/factory}
signing: {key: 0123456789ABCDEF, gnupghome: /etc/factory/gnupg}
store: oci://registry.gitlab.example/dist/store
ci: {max_jobs: 200}
"""


def config_of(raw: bytes) -> Config:
    return definitions.load_config(SourceFile("factory.yaml", "0" * 40, lambda: raw))


def schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key path the schema allows (`forge.gitlab.url`), objects and leaves alike."""
    found = set()
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        found.add(path)
        found |= schema_paths(sub, f"{path}.")
    return found


def test_every_key_the_schema_allows_lands_in_a_typed_field() -> None:
    config = config_of(EVERY_KEY)
    assert config.release.name == "Factory Linux" and config.release.short == "FL"
    assert config.release.version == "42" and config.dist == ".fl42"
    assert config.release.registry == "registry.gitlab.example/dist/factory"
    assert config.release.ostree.keep == 4
    assert config.release.branches == ("{default}", "stable/{version}")
    assert config.distgit.url == "https://src.example/rpms/{component}.git"
    assert config.output.dir == "/srv/factory/output"
    assert config.builder.kind is BuilderKind.LOCAL
    assert config.forge.kind is ForgeKind.GITLAB
    assert (config.forge.gitlab.url, config.forge.gitlab.project) == (
        "https://gitlab.example",
        "dist/factory",
    )
    assert (config.signing.key, config.signing.gnupghome) == ("0123456789ABCDEF", "/etc/factory/gnupg")
    assert config.store == "oci://registry.gitlab.example/dist/store"
    assert config.ci.max_jobs == 200
    schema = json.loads(definitions.schema_texts()["factory.json"])
    fields = {"document", "version"}  # the file's own header: checked, not carried
    for path in schema_paths(schema) - fields:
        value: Any = config
        for part in path.split("."):
            value = getattr(value, part)  # an AttributeError names a key nothing carries


def test_the_optional_parts_have_defaults() -> None:
    config = config_of(example_tree()["factory.yaml"])
    assert config.forge.kind is ForgeKind.LOCAL and config.forge.gitlab.url == ""
    assert config.signing.key == "" and config.builder.kind is BuilderKind.LOCAL
    assert config.release.ostree.keep == OSTREE_KEEP
    assert config.release.branches == ("{default}", "release/{version}")
    assert config.store == "file:.factory/store" and config.ci.max_jobs == 500


def test_a_bad_factory_yaml_alone_is_refused_with_its_place() -> None:
    with pytest.raises(InvalidDefinitions) as info:
        config_of(EVERY_KEY.replace(b"builder: {kind: local}", b"builder: {kind: koji}"))
    [diagnostic] = info.value.diagnostics
    assert (diagnostic.path, diagnostic.line, diagnostic.code) == ("factory.yaml", 7, "schema-enum")
    with pytest.raises(InvalidDefinitions) as info:
        definitions.load_config(None)
    assert [d.code for d in info.value.diagnostics] == ["missing-config"]


@pytest.mark.parametrize(
    "registry",
    ["https://registry.example/x", "Registry.Example/dist", "registry.example/dist/", "reg:port/x"],
)
def test_a_release_registry_is_host_port_and_namespace_only(registry: str) -> None:
    """No scheme, no uppercase (registry names are lowercase), no trailing slash, a numeric port."""
    with pytest.raises(InvalidDefinitions) as info:
        config_of(EVERY_KEY.replace(b"registry.gitlab.example/dist/factory", registry.encode()))
    [diagnostic] = info.value.diagnostics
    assert (diagnostic.line, diagnostic.code) == (3, "schema-pattern")
    assert config_of(
        EVERY_KEY.replace(b"registry.gitlab.example/dist/factory", b"127.0.0.1:5000/fl")
    ).release.registry


def test_the_workspace_reads_the_config_of_a_revision_or_of_the_working_tree(tmp_path: Path) -> None:
    tree = example_tree()
    commit_tree(tmp_path, tree, "Example\n")
    (tmp_path / "factory.yaml").write_bytes(
        tree["factory.yaml"].replace(b"dir: .factory/output", b"dir: /srv/out")
    )
    ws = Workspace.open(tmp_path)
    assert ws.config("HEAD").output.dir == ".factory/output"
    assert ws.config(WORKTREE).output.dir == "/srv/out"


def test_a_command_reading_a_bad_config_exits_2_naming_file_line_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = example_tree()
    tree["factory.yaml"] = tree["factory.yaml"].replace(b"forge:\n  kind: local", b"forge:\n  kind: github")
    commit_tree(tmp_path, tree, "A forge factory does not know\n")
    code = cli.main(["bot", "reconcile", "--repo", str(tmp_path), "--target", "master", "--dry-run"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "factory.yaml:22:9: error[schema-enum]: $.forge.kind: 'github' is not one of" in err
    assert "Traceback" not in err


def test_the_bot_the_engine_and_the_commands_parse_no_yaml() -> None:
    """factory.yaml is parsed in one place (`core/definitions` through `core/yamlsource`): the
    bot, the CI, release and interop commands ask `Workspace.config(rev)` for the typed Config."""
    users = sorted(
        str(p.relative_to(PACKAGE))
        for part in ("bot", "commands", "engine", "release")
        for p in (PACKAGE / part).rglob("*.py")
        if "yaml" in imports(p)
    )
    assert users == []


def test_a_store_is_a_file_or_oci_url_and_max_jobs_a_number_of_jobs() -> None:
    for bad, line in ((b"store: s3://bucket/x\n", 12), (b"ci: {max_jobs: 1}\n", 12)):
        with pytest.raises(InvalidDefinitions) as info:
            config_of(EVERY_KEY.split(b"store:")[0] + bad)
        [diagnostic] = info.value.diagnostics
        assert (diagnostic.line, diagnostic.code) == (
            line,
            "schema-pattern" if b"s3" in bad else "schema-minimum",
        )


@pytest.mark.parametrize(
    "branches",
    ["[]", '["main", "main"]', '["{release}"]', '["release//{version}"]', '["-x"]', '["a b"]', '["x/"]'],
)
def test_release_branches_are_branch_names_with_default_and_version_only(branches: str) -> None:
    """At least one, each once, a legal branch name in which `{` only opens a placeholder."""
    with pytest.raises(InvalidDefinitions) as info:
        config_of(EVERY_KEY.replace(b'["{default}", "stable/{version}"]', branches.encode()))
    [diagnostic] = info.value.diagnostics
    assert diagnostic.line == 3 and diagnostic.code.startswith("schema-")
