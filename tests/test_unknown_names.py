"""Names that do not exist, as a user meets them: every command that takes a node, module,
variant, component, branch, compose ID, release, compose type or file says what does not exist
with its own code, offers the nearest names, and exits 2 (issue 22, item 5).

One repository of the example, with repo:Server and what it needs composed, serves them all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import cli
from tests.conftest import commit_tree, example_tree, materialize_example


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("names")
    commit_tree(root, example_tree(), "Example definitions\n")
    materialize_example(root)
    assert cli.main(["compose", "repo:Server", "--repo", str(root), "--json"]) == 0
    return root


def factory(capsys: pytest.CaptureFixture[str], repo: Path, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--repo", str(repo)])
    out, err = capsys.readouterr()
    return code, out, err


def server_compose(capsys: pytest.CaptureFixture[str], repo: Path) -> str:
    code, out, _ = factory(capsys, repo, "latest", "repo:Server")
    assert code == 0
    return out.split()[1]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["latest", "repo:Servr"],
            "error[unknown-node]: no node 'repo:Servr'\n  hint: did you mean repo:Server?",
        ),
        (["latest", "Servr"], "error[unknown-node]: no node 'Servr'\n  hint: did you mean repo:Server?"),
        (["latest", "--release", "43"], "error[unknown-release]: no release '43'\n  hint: releases: 42"),
        (
            ["publish", "repo:Servr", "--to", "mirror"],
            "error[unknown-node]: no node 'repo:Servr'\n  hint: did you mean repo:Server?",
        ),
        (
            ["compose", "repo:Servr"],
            "error[unknown-node]: no node 'repo:Servr' at HEAD\n  hint: did you mean repo:Server?",
        ),
        (
            ["compose", "--type", "nightyl"],
            "error[unknown-compose-type]: no compose type 'nightyl'\n  hint: did you mean nightly?",
        ),
        (
            ["compose", "--type", "bogus"],
            "error[unknown-compose-type]: no compose type 'bogus'\n  hint: compose types: ci, nightly, production, test",
        ),
        (
            ["deps", "httpd:2.5"],
            "error[unknown-module]: no module 'httpd:2.5'\n  hint: did you mean httpd:2.4?",
        ),
        (["deps", "gkt"], "error[unknown-module]: no module 'gkt'\n  hint: did you mean gtk:3?"),
        (
            ["deps", "variant:Servr"],
            "error[unknown-variant]: no variant 'variant:Servr'\n  hint: did you mean variant:Server?",
        ),
        (
            ["status", "repo:Servr"],
            "error[unknown-node]: no node 'repo:Servr'\n  hint: did you mean repo:Server?",
        ),
        (["status", "Servr"], "error[unknown-node]: no node 'Servr'\n  hint: did you mean repo:Server?"),
        (
            ["status", "opensl"],
            "error[unknown-component]: no component 'opensl'\n  hint: did you mean openssl?",
        ),
        (
            ["status", "httpd:2.5"],
            "error[unknown-module]: no module 'httpd:2.5'\n  hint: did you mean httpd:2.4?",
        ),
        (["status", "xyzzy"], "error[unknown-name]: no node, module or component named 'xyzzy'"),
        (
            ["impact", "opensl"],
            "error[unknown-component]: no component 'opensl' (no module pins it)\n  hint: did you mean openssl?",
        ),
        (
            ["impact", "openssl", "--branch", "f24"],
            "error[unknown-branch]: no branch 'f24' of openssl that a module follows\n  hint: did you mean f42?",
        ),
        (
            ["why", "opensl@abcdef0"],
            "error[unknown-component]: no component 'opensl'\n  hint: did you mean openssl?",
        ),
        (
            ["eol", "module:httpd:2.5", "--dry-run"],
            "error[unknown-module]: no module 'module:httpd:2.5' to retire\n  hint: did you mean module:httpd:2.4?",
        ),
        (
            ["history", "show", "opensl", "f42"],
            "error[unknown-component]: no component 'opensl'\n  hint: did you mean openssl?",
        ),
        (
            ["history", "show", "openssl", "f24"],
            "error[unknown-branch]: no branch 'f24' of openssl (pinned or recorded)\n  hint: did you mean f42?",
        ),
        (
            ["history", "record", "--component", "opensl"],
            "error[unknown-component]: no component 'opensl' (no module pins it)\n  hint: did you mean openssl?",
        ),
        (
            ["bot", "reconcile", "--component", "opensl", "--dry-run"],
            "error[unknown-component]: no component 'opensl' (no module pins it)\n  hint: did you mean openssl?",
        ),
        (
            ["ci", "check", "--inputs-of", "repo:Servr", "--no-pull"],
            "error[unknown-node]: no node 'repo:Servr' at HEAD\n  hint: did you mean repo:Server?",
        ),
        (
            ["import", "pungi", "missing.xml", "--comps", "comps.xml"],
            "error[missing-file]: variants file missing.xml does not exist",
        ),
        (
            ["import", "modulemd", "missing.yaml"],
            "error[missing-file]: modulemd file missing.yaml does not exist",
        ),
        (
            ["ci", "post-plan", "--mr", "1", "--file", "missing.md"],
            "error[missing-file]: plan file missing.md does not exist",
        ),
        (
            ["publish", "repo:Server", "--from", "missing", "--to", "mirror"],
            "error[missing-directory]: release directory missing does not exist",
        ),
        (
            ["lineage", "FL-42-nope-20261207.n.0"],
            "error[unknown-compose]: no compose 'FL-42-nope-20261207.n.0'\n  hint: `factory latest` lists",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_an_unknown_name_is_named_with_its_own_code_and_the_nearest_names(
    composed: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    error: str,
) -> None:
    monkeypatch.chdir(composed)  # relative file names are the user's, from the repository
    code, out, err = factory(capsys, composed, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"factory: {error}")
    assert "Traceback" not in err


def test_a_compose_id_one_respin_off_offers_the_compose_that_exists(
    composed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = server_compose(capsys, composed)
    typo = made[:-1] + "7"  # .n.0 -> .n.7
    for argv in (
        ["lineage", typo],
        ["lineage", typo, "--tree"],
        ["gate", typo],
        ["gate", typo, "--promote"],
        ["sign", typo],
        ["release", typo, "--to", "releases", "--unsigned"],
        ["check", "record", typo, "install", "--outcome", "PASSED"],
        ["publish", typo, "--to", "mirror"],
    ):
        code, _, err = factory(capsys, composed, *argv)
        assert (code, err) == (2, f"factory: error[unknown-compose]: no compose '{typo}'\n  hint: did you mean {made}?\n")  # fmt: skip


def test_a_node_that_exists_but_was_not_released_still_says_release_it_first(
    composed: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Known names keep their own answers: the node exists, it has no release (exit 1)."""
    code, _, err = factory(capsys, composed, "publish", "repo:Server", "--to", str(tmp_path / "mirror"))
    assert code == 1
    assert err.startswith(
        "factory: error[no-release]: no release of repo:Server to publish\n  hint: release it first"
    )
    code, _, err = factory(capsys, composed, "latest", "repo:Workstation")
    assert (code, err) == (
        2,
        "factory: error[no-latest-good]: repo:Workstation has no good compose in release 42\n",
    )
