"""Shared helpers: the example definitions tree as data, and real Git repositories."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, settings

from pipeline import schemas  # noqa: F401  (the JSON Schemas the core validates with)
from pipeline.core.definitions import SourceFile, is_definition
from pipeline.git.repo import blob_id
from tests import runner_image as runner_images
from tests.gpg_agents import gpg_agents_of_the_test, gpg_agents_session

__all__ = ["gpg_agents_of_the_test", "gpg_agents_session"]  # autouse: no test leaves a gpg-agent running

ROOT = Path(__file__).resolve().parent.parent

# Property tests run on shared CI machines: how fast examples come is not what they test.
settings.register_profile("factory", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("factory")


_UPSTREAM: list[Path] = []  # the example's upstream source, built once per test session


def example_upstream(dest: Path) -> Path:
    """A copy of the example's upstream source (`factory example upstream`) at dest."""
    if not _UPSTREAM:
        from pipeline import example_upstream as upstream

        built = Path(tempfile.mkdtemp(prefix="factory-test-upstream-"))
        atexit.register(shutil.rmtree, built, True)
        upstream.materialize(ROOT / "examples" / "upstream" / "upstream.yaml", built / "upstream")
        _UPSTREAM.append(built / "upstream")
    shutil.copytree(_UPSTREAM[0], dest)
    return dest


def materialize_example(root: Path) -> dict[str, dict[str, str]]:
    """What `make demo` makes beside the example definitions in root: the dist-git repositories
    (`factory example distgit .factory/distgit`; their branch heads returned) and the upstream
    source (`factory example upstream .factory/upstream`)."""
    from pipeline import example

    heads = example.materialize(ROOT / "examples" / "distgit", root / ".factory" / "distgit")
    if not (root / ".factory" / "upstream").exists():
        example_upstream(root / ".factory" / "upstream")
    return heads


def example_tree() -> dict[str, bytes]:
    """The example distribution's definition files, path -> bytes."""
    files = {"factory.yaml": (ROOT / "factory.yaml").read_bytes()}
    for top in ("modules", "variants"):
        for path in sorted((ROOT / top).rglob("*.yaml")):
            files[path.relative_to(ROOT).as_posix()] = path.read_bytes()
    return files


def sources(tree: Mapping[str, bytes]) -> list[SourceFile]:
    """SourceFiles over an in-memory tree."""
    return [SourceFile(p, blob_id(d), _constant(d)) for p, d in sorted(tree.items()) if is_definition(p)]


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def commit_tree(repo_dir: Path, tree: Mapping[str, bytes], message: str) -> str:
    """Write tree into the working directory of a real Git repository and commit it; the hash."""
    repo = (
        pygit2.Repository(str(repo_dir))
        if (repo_dir / ".git").exists()
        else pygit2.init_repository(str(repo_dir))
    )
    for old in [e.path for e in repo.index]:
        if old not in tree:
            (repo_dir / old).unlink()
            repo.index.remove(old)
    for path, data in tree.items():
        target = repo_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        repo.index.add(path)
    repo.index.write()
    signature = pygit2.Signature("Test", "test@example.invalid", 1767225600, 0)
    parents = [] if repo.head_is_unborn else [repo.head.target]
    oid = repo.create_commit("HEAD", signature, signature, message, repo.index.write_tree(), parents)
    return str(oid)


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A real Git repository holding the example definitions in one commit."""
    commit_tree(tmp_path, example_tree(), "Example definitions\n")
    return tmp_path


@pytest.fixture(scope="session")
def runner_image(tmp_path_factory: pytest.TempPathFactory) -> runner_images.RunnerImage:
    """The runner image, built once per session by `make runner-image` (tests/runner_image.py)."""
    why = runner_images.why_not()
    if why:
        pytest.skip(why)
    return runner_images.build(tmp_path_factory.mktemp("runner-image") / "layout")
