"""The example distribution's dist-git: sources in `examples/distgit/`, made into bare repos.

Layout of `examples/distgit/<component>/`:
- without `history.yaml`: the directory's files are one commit, "Import <component>", on
  branch f42, with branch rawhide pointing at the same commit;
- with `history.yaml`: `commits`, oldest first, each with a `key`, its `branch`, a `message`
  and `tree`, the sub-directory holding the whole tree of that commit (a commit's parent is the
  previous commit on its branch, or `parent:`, the key of an earlier commit, to start a branch
  from it); and `branches`, more branches pointing at commits by key.

Author, committer and dates are fixed, so every machine gets the same commit hashes and the
pins in `modules/` name real commits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import InvalidInput
from pipeline.git import distgit

AUTHOR = ("Factory Example Packager", "packager@example.invalid")
EPOCH = 1767225600  # 2026-01-01T00:00:00Z: the time of every import commit
DAY = 86400


def component_dirs(source: Path) -> list[Path]:
    if not source.is_dir():
        raise InvalidInput(f"{source} is not a directory of example components", code="no-examples")
    return sorted(p for p in source.iterdir() if p.is_dir())


def history(component: Path) -> tuple[list[distgit.CommitSpec], dict[str, str]]:
    """The commits and extra branches of one example component."""
    path = component / "history.yaml"
    if not path.exists():
        commit = distgit.CommitSpec("import", "f42", f"Import {component.name}\n", _files(component), EPOCH)
        return [commit], {"rawhide": "import"}
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    commits = [
        distgit.CommitSpec(
            key=entry["key"],
            branch=entry["branch"],
            message=entry["message"].rstrip("\n") + "\n",
            files=_files(component / entry["tree"]),
            time=EPOCH + DAY * i,
            parent=entry.get("parent"),
        )
        for i, entry in enumerate(raw["commits"])
    ]
    return commits, dict(raw.get("branches", {}))


def _files(directory: Path) -> dict[str, bytes]:
    nested = (directory / "history.yaml").exists()
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not nested
    }


def materialize(source: Path, dest: Path) -> dict[str, dict[str, str]]:
    """Write one bare repository per component under dest; component -> branch -> head."""
    heads = {}
    for component in component_dirs(source):
        commits, branches = history(component)
        heads[component.name] = distgit.write_history(
            dest / f"{component.name}.git", commits, branches, AUTHOR
        )
    return heads
