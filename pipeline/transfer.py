"""The executor's traffic with the artifact store: fetch what a compose reads, put what it made.

A runner has only what it made itself and what it fetched: the local output directory
(`builds/<key>`, `composes/<id>`, `ostree/<Variant>/repo`) is a cache of the store. Before a
compose, `before` makes the files it reads of its inputs' latest good composes exist locally
(`reads`: an image skips its variant's source tree), and for kinds whose artifact has a history
(OSTree: `HISTORY`) the files of the node's own previous latest good compose that carry it (its
`ostree.json` and commit object), so a new commit's parent is the previous latest good commit
wherever it was made. After the compose, `complete`
fetches the outputs it reused without making them (an OSTree commit taken again when the
package set is unchanged) and what the repoclosure check reads of the modules a module requires;
`put` stores the files and returns the sha256 of the manifest its lineage record names.

Only files that are not already local are fetched. A fetched file is checked against the
lineage record of its compose (the store's manifest must list exactly the files the record
lists) and against its sha256 as it is written; a compose or blob missing from the store is an
OperationFailed naming the compose and the file: the compose fails, its dependants are blocked.

Fetched files may share their inode with the store's blobs (hard links): composers replace
files, they never edit one in place.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.artifacts.store import ArtifactStore, FetchReport, Tally, open_store, shown_url
from pipeline.checks.repo import CheckError, required_composes
from pipeline.compose.base import InputCompose, Job
from pipeline.core.errors import OperationFailed
from pipeline.core.kinds import MODULE, REPO
from pipeline.core.records import OutputFile

STORE_VARIABLE = "FACTORY_STORE"  # the CI/CD variable that overrides factory.yaml's `store:`
IMAGES = frozenset({"ostree", "container", "iso"})
# Kinds whose compose continues the node's previous one, and the files of it that carry the history.
HISTORY: Mapping[str, Callable[[str], bool]] = {
    "ostree": lambda path: path.endswith(("/ostree.json", ".commit", ".commitmeta")),
    # A binary pin takes its RPMs from its previous compose when its source no longer holds them.
    "binary": lambda path: True,
}


def reads(kind: str, input_node: str, path: str) -> bool:
    """Whether a compose of `kind` reads this file of an input: images (OSTree commits, containers,
    ISOs) install from a variant's binary trees, never from its source tree."""
    return not (kind in IMAGES and REPO.of(input_node) and "/source/" in path)


def store_url(configured: str, env: Mapping[str, str]) -> str:
    """The store a run uses: the FACTORY_STORE variable when set, else factory.yaml's `store:`."""
    return env.get(STORE_VARIABLE) or configured


def open_transfer(configured: str, *, root: Path, output_dir: Path, env: Mapping[str, str]) -> Transfer:
    """The transfer of a run: the store named by FACTORY_STORE or `store:` (relative to root)."""
    return Transfer(open_store(store_url(configured, env), root=root, env=env), output_dir)


@dataclass(frozen=True, slots=True)
class Moved:
    """What a run moved: files fetched from the store, taken from the local cache, already local;
    and files put (stored by the composes of the run)."""

    fetched: Tally = field(default_factory=Tally)
    cached: Tally = field(default_factory=Tally)
    present: Tally = field(default_factory=Tally)
    put: Tally = field(default_factory=Tally)

    def summary(self) -> str:
        return (
            f"store: fetched {self.fetched.files} files ({self.fetched.bytes} bytes), "
            f"{self.cached.files} from the local cache ({self.cached.bytes} bytes); "
            f"stored the {self.put.files} files ({self.put.bytes} bytes) of this run's composes"
        )


class Transfer:
    """Fetches and puts the files of one run's composes; called from the executor's workers."""

    def __init__(self, store: ArtifactStore, output_dir: Path) -> None:
        self.store = store
        self.output_dir = output_dir
        self._lock = threading.Lock()
        self._moved = Moved()

    @property
    def moved(self) -> Moved:
        with self._lock:
            return self._moved

    def before(self, job: Job) -> None:
        """Make the files a compose reads local: its inputs', and the history it continues."""
        for made in sorted(job.inputs.values(), key=lambda m: m.node):
            self.ensure(made, [o for o in made.outputs if reads(job.node.kind, made.node, o.path)])
        keeps = HISTORY.get(job.node.kind)
        if keeps is not None and job.previous is not None:
            self.ensure(job.previous, [o for o in job.previous.outputs if keeps(o.path)])

    def complete(self, job: Job, outputs: Sequence[OutputFile]) -> None:
        """Make the outputs a compose reused without writing them local (they are files of its
        previous compose or of an input), and what its checks read of the modules it requires."""
        missing = {(o.path, o.sha256) for o in outputs if not self._is_local(o)}
        if missing:
            for made in [job.previous, *job.inputs.values()]:
                if made is not None:
                    self.ensure(made, [o for o in made.outputs if (o.path, o.sha256) in missing])
        if job.node.kind == MODULE:
            try:
                required = required_composes(job)
            except CheckError:
                return  # the check says so itself (an ERROR result), not the compose
            for made, wanted in required:
                self.ensure(made, wanted)

    def put(self, compose_id: str, outputs: Sequence[OutputFile]) -> str:
        """Store a compose's files; the sha256 of its manifest (what its record names)."""
        manifest = self.store.put(compose_id, self.output_dir, outputs)
        with self._lock:
            self._moved = _add(self._moved, put=Tally(len(manifest.files), manifest.size))
        return manifest.digest()

    def ensure(self, made: InputCompose, wanted: Iterable[OutputFile] | None = None) -> None:
        """Fetch those of a compose's files (`wanted`, default all) that are not local."""
        missing = [o for o in (made.outputs if wanted is None else wanted) if not self._is_local(o)]
        if not missing:
            return
        manifest = self.store.manifest(made.compose_id)
        where = shown_url(self.store.url)
        if manifest is None:
            raise OperationFailed(
                f"compose {made.compose_id} ({made.node}) is not in the artifact store {where}, "
                f"and its file {missing[0].path} is not in {self.output_dir}",
                hint=f"a compose is stored when it finishes: is {STORE_VARIABLE} the store the "
                "pipeline that made it used?",
                code="store-missing",
            )
        if sorted(manifest.outputs(), key=lambda o: o.path) != sorted(made.outputs, key=lambda o: o.path):
            raise OperationFailed(
                f"compose {made.compose_id} ({made.node}): the manifest in the artifact store {where} "
                "does not list the files its lineage record lists",
                code="store-corrupt",
            )
        report = self.store.fetch(manifest, self.output_dir, only=[o.path for o in missing])
        with self._lock:
            self._moved = _add(self._moved, report=report)

    def _is_local(self, output: OutputFile) -> bool:
        """A regular file of the right size (hashing every input of every compose is too slow; a
        fetched file was hashed as it was written, a made one as it was described)."""
        try:
            info = os.lstat(self.output_dir / output.path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return info.st_size == output.size and os.path.isfile(self.output_dir / output.path)


def _add(moved: Moved, *, report: FetchReport | None = None, put: Tally | None = None) -> Moved:
    def plus(a: Tally, b: Tally) -> Tally:
        return Tally(a.files + b.files, a.bytes + b.bytes)

    if report is not None:
        moved = Moved(
            plus(moved.fetched, report.fetched),
            plus(moved.cached, report.cached),
            plus(moved.present, report.present),
            moved.put,
        )
    if put is not None:
        moved = Moved(moved.fetched, moved.cached, moved.present, plus(moved.put, put))
    return moved
