"""The job a composer makes an artifact from and a check tests it with: the contract between the
executor and both kinds of plugin (`pipeline.compose.base.Composer`, `pipeline.checks.base.Check`),
which neither package owns, so neither imports the other for it. Values only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.graph import Node
from pipeline.core.model import Definitions
from pipeline.core.records import OutputFile


@dataclass(frozen=True, slots=True)
class InputCompose:
    """The latest good compose of one input node."""

    node: str
    compose_id: str
    outputs: tuple[OutputFile, ...]


@dataclass(frozen=True, slots=True)
class Job:
    """One node to compose (or its compose to check), with everything it is made from."""

    node: Node
    compose_id: str
    defs: Definitions
    inputs: Mapping[str, InputCompose]  # by node id
    output_dir: Path  # factory.yaml's output.dir, absolute; OutputFile paths are relative to it
    workdir: Path  # output_dir / "composes" / compose_id, created empty by the executor
    source_root: Path  # the definitions repository (dist-git paths in factory.yaml are relative to it)
    source_date_epoch: int  # for reproducible outputs: the time of the definitions commit
    commit: str = ""  # the definitions commit composed from (for labels and metadata)
    # The node's own latest good compose before this one: what a history continues (OSTree).
    previous: InputCompose | None = None

    def input_path(self, output: OutputFile) -> Path:
        return self.output_dir / output.path
