"""Writing the overview site into a directory, whole or not at all.

The pages are written into a staging directory beside the target; only when every file is
there does the staging directory take the target's place (the old site is renamed away first,
then removed), so a reader or a publishing job never sees half a site. A directory that holds
something else than a site factory made is never replaced: the marker file says it is one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import InvalidInput

MARKER = ".factory-site"


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    files: int
    bytes: int


def write_site(pages: Iterable[tuple[str, str]], target: Path) -> Written:
    """Write (relative path, text) pages as the site in `target` (new, empty, or a site made
    before); InvalidInput when target is something else."""
    target = target.absolute()
    if target.exists() and (
        not target.is_dir() or (any(target.iterdir()) and not (target / MARKER).is_file())
    ):
        raise InvalidInput(
            f"{target} exists and is not a site factory made",
            hint="give a new or empty directory (a site made before is replaced)",
            code="not-a-site",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    files = size = 0
    made: set[Path] = set()
    try:
        staging.mkdir()
        for relative, text in pages:
            path = staging / relative
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            data = text.encode("utf-8")
            path.write_bytes(data)
            files += 1
            size += len(data)
        (staging / MARKER).write_text("made by `factory site`; replaced whole by the next one\n")
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Written(target, files, size)
