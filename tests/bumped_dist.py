"""A distribution composed twice, shared by the mirror and OSTree history tests (session scope).

The example definitions with the default policy: the Server repo and the Atomic Host's OSTree
commit (and what they need) composed, then composed again after the openssl CVE-2026-1234 bump,
which puts a new openssl into both. Tests release these composes into their own directories.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.records.lineage import Lineage
from tests.conftest import commit_tree, materialize_example
from tests.test_checks_repo import gated_tree

SERVER, HOST = "repo:Server", "ostree:AtomicHost/host"
MODULE = "modules/base-runtime/f42.yaml"
VULNERABLE, FIXED = b"795545287474bedd5e207f70c50a64a10fc7632e", b"9d0324eb8729aa2892ad87c5c54cb53cdc922b41"


@dataclass(frozen=True)
class Bumped:
    """The repository, its definitions at HEAD, and the composes before and after the bump."""

    root: Path
    tree: dict[str, bytes]
    server: tuple[str, str]
    host: tuple[str, str]


_MADE: dict[str, Bumped] = {}


@pytest.fixture(scope="session")
def bumped(tmp_path_factory: pytest.TempPathFactory) -> Bumped:
    if "made" in _MADE:
        return _MADE["made"]
    root = tmp_path_factory.mktemp("bumped")
    tree = gated_tree()
    commit_tree(root, tree, "Example definitions, gated\n")
    materialize_example(root)
    compose = ["compose", "--repo", str(root), "--type", "test", "--json", SERVER, HOST]
    assert cli.main(compose) == 0
    before = Lineage(root).latest()
    assert VULNERABLE in tree[MODULE]
    fixed = {**tree, MODULE: tree[MODULE].replace(VULNERABLE, FIXED)}
    commit_tree(root, fixed, "openssl: the CVE-2026-1234 backport\n")
    assert cli.main(compose) == 0
    after = Lineage(root).latest()
    made = Bumped(root, fixed, (before[SERVER], after[SERVER]), (before[HOST], after[HOST]))
    assert len(set(made.server)) == len(set(made.host)) == 2
    _MADE["made"] = made
    return made
