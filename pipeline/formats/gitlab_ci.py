"""GitLab child pipelines of a plan, inside GitLab's limits at any size. Pure: no I/O.

`pipeline_files(plan, graph, base=, head=)` turns a plan into the data of one or more GitLab CI
files; `PipelineFile.text()` writes one as YAML, byte-identical for the same plan (sorted keys,
no timestamps). The file the parent pipeline triggers is always `child.yml`.

Limits this design keeps (GitLab's defaults; TOOLCHAIN.md "GitLab CI: schema and limits"):
- at most 50 `needs:` per job (`ci_needs_size_limit`);
- a configuration file of at most 1 MB *as parsed* (`max_yaml_size_bytes`: the memory Ruby
  takes for the loaded YAML, two to five times the text here), so every file stays under
  `Limits.max_parsed_bytes` (500 kB) by factory's upper bound of that measure
  (pipeline.formats.gitlab_ci_limits);
- child pipelines nest at most two levels (parent -> child -> grandchild), and the file a
  trigger job includes with `include: artifact:` must come from a job of the trigger's own
  pipeline;
- no more jobs per pipeline than `ci.max_jobs` (500: GitLab is slow to create and show bigger).

Batches (pipeline.core.batches): a job composes a module with its planned builds (`factory
compose module:NAME:STREAM --type ci`: compose makes what the module needs, with the local worker
pool), or shards of a big module's builds and then the module, or one other node. Its `needs:`
are the jobs of its planned inputs in the same pipeline: a module needs its shards (at most 50),
a variant's repo needs its modules' jobs, an image its repo and the image it is layered on. Inputs
that are not planned are unchanged: their latest good compose is in lineage already. A module's
job also needs the jobs of the planned modules it buildrequires or requires (its repoclosure
check reads their latest good: without the edge GitLab starts every module job at once, and the
first push's GNOME fails against a GTK not composed yet); an ordering only, no digest changes.

Why needs stay <= 50: a job whose inputs would take more than 50 needs in a pipeline goes to a
later pipeline, where it needs none of them: that whole pipeline comes after the pipelines holding
its inputs. A module's shards are capped at 50.

More than `max_jobs` jobs: when the jobs do not fit one pipeline (jobs, needs or bytes), they are
split into parts, `part-001.yml`..., and `child.yml` becomes a coordinator (level 1) whose first
job, `pipeline-files`, runs the same `factory ci generate` again (generation is deterministic:
the same bytes: only `--max-jobs` is an option, the other limits are the defaults) and keeps the
directory as its artifact; one trigger job per part (level 2)
includes its file from that job (`include: artifact:` names a job of the same pipeline, as GitLab
requires) with `strategy: depend`, so a trigger job ends when its part ends. A part's trigger job
needs the trigger jobs of the parts holding its inputs (transitively reduced; when that would be
more than 50 needs, it has none and waits for every earlier wave's stage instead). Regenerating
needs nothing but the clone the job has: not the parent's pipeline id (`needs:pipeline:`), which
gitlab-ci-local also does not implement.

How a failure stops only what depends on it: inside a pipeline, GitLab does not start a job
whose needs failed. Across parts, trigger jobs after the first wave run `when: always`, so a
failed part does not stop the parts that come after it; instead, a job with inputs in another
part starts (template `.compose after earlier parts`) with `factory ci check --inputs-of NODES`
(its targets, and the builds a module's job composes itself, FACTORY_BUILDS): it fails, naming
the input, unless every input of its nodes outside the job, and every module they (build)require,
is composed at head (the executor's rule, as `factory ci check` holds it). Its dependants in its
part then do not run.

Every job pulls lineage from the remote, composes its batch (`factory compose NODES --type ci`,
which skips what lineage says is done) and pushes lineage back, also when the compose failed, so
failures stay auditable. Outputs never travel as job artifacts: a compose is FINISHED only once
its files are in the artifact store (factory.yaml's `store:`, or the CI/CD variable
FACTORY_STORE), and a job fetches from there exactly the files of its inputs' latest good
composes it reads (pipeline.transfer). So a job downloads no artifacts of its needs
(`artifacts: false`: they only order it), keeps only its build logs (also of a failed job) for
people to read, and a part of a split plan reads what an earlier part made like any other job.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from pipeline import __version__
from pipeline.core.batches import JOB_PREFIX, Batch, Limits, Part, batches, job_name, partition
from pipeline.core.errors import OperationFailed
from pipeline.core.graph import Graph
from pipeline.core.plan import Plan
from pipeline.core.runs import RUN_VARIABLE
from pipeline.formats import libyaml
from pipeline.formats.gitlab_ci_limits import parsed_bytes

__all__ = ["JOB_PREFIX", "Limits", "job_name"]

CHILD = "child.yml"
DIRECTORY = "pipelines"
FILES_JOB = "pipeline-files"  # no spaces: gitlab-ci-local escapes them in its artifact folders only
NOOP_JOB = "nothing to compose"
STAGE = "compose"
FILES_STAGE = "pipeline files"
TEMPLATE = ".compose"
CHECKED = ".compose after earlier parts"
NODES_VARIABLE = "FACTORY_NODES"
# A module's job over other pipelines' nodes names the builds it composes itself, so its check
# leaves them out of the inputs it holds to earlier parts (FACTORY_NODES holds only the module).
BUILDS_VARIABLE = "FACTORY_BUILDS"
# Every job runs in the runner image (`make runner-image`: factory, its Python dependencies and
# the tools jobs run), so no job installs anything. FACTORY_IMAGE names it; each file sets the
# default in its own top-level `variables:` (the lowest precedence: a project CI/CD variable, e.g.
# the image pinned by digest, wins) and triggers forward no YAML variables (forwarded ones would
# become trigger variables in the child and override the project's, gitlab-org/gitlab#282475).
# `image:` is expanded by the runner, nested variables included
# (https://docs.gitlab.com/ci/variables/where_variables_can_be_used/).
IMAGE_VARIABLE = "FACTORY_IMAGE"
IMAGE = "${FACTORY_IMAGE}"  # gitlab-ci-local --force-shell-executor ignores it
DEFAULT_IMAGE = f"${{CI_REGISTRY_IMAGE}}/runner:{__version__}"  # what `make runner-image-push` pushes
FORWARD = {"pipeline_variables": True, "yaml_variables": False}
RUN_BOUND = "X" * 80  # longer than any run ID: what FACTORY_RUN adds to a file, at most
LOG_PATHS = (".factory/output/**/*.log",)
RETRY_WHEN = ("runner_system_failure", "scheduler_failure", "stuck_or_timeout_failure")
# The factory CLI: the image's (on PATH), unless a project variable FACTORY names another.
BEFORE_SCRIPT = (
    # Defaults in the script, not `variables:`, so a project variable FACTORY always wins.
    'export FACTORY="${FACTORY:-factory}" FACTORY_REMOTE="${FACTORY_REMOTE:-origin}"',
)
PULL = '"${FACTORY}" lineage pull --remote "${FACTORY_REMOTE}"'
CHECK_INPUTS = f'"${{FACTORY}}" ci check --no-pull --inputs-of ${{{NODES_VARIABLE}}} ${{{BUILDS_VARIABLE}:-}}'
COMPOSE_TYPE = "ci"  # what the jobs compose as (`--type`), and so the type of their run ID
COMPOSE = (
    f'"${{FACTORY}}" compose ${{{NODES_VARIABLE}}} --type {COMPOSE_TYPE} || failed=1',
    '"${FACTORY}" lineage push --remote "${FACTORY_REMOTE}"',
    'test -z "${failed:-}"',
)
DUMPER = libyaml.DUMPER
_RESOURCE_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")


@dataclass(frozen=True, slots=True)
class PipelineFile:
    """One generated GitLab CI file: its name in the output directory, header and data."""

    name: str
    header: str
    data: Mapping[str, Any]

    def text(self) -> str:
        return dump(self.data, self.header)


def part_file(index: int) -> str:
    """The file of part `index` (from 1): `part-001.yml`."""
    return f"part-{index:03d}.yml"


def part_job(index: int, count: int) -> str:
    """The coordinator's trigger job of part `index` (from 1) of `count`."""
    return f"compose part {index} of {count}"


def resource_group(node_id: str) -> str:
    """A GitLab resource group per node, so one node never composes twice at once.

    `module:base-runtime:f42` -> `compose/module/base-runtime/f42`, `build:openssl@9d0324eb` ->
    `compose/build/openssl_9d0324eb` (GitLab allows letters, digits, `-_./` here). A job takes
    the group of its first target.
    """
    kind, _, rest = node_id.partition(":")
    return "compose/" + _RESOURCE_UNSAFE.sub("_", f"{kind}/{rest.replace(':', '/')}")


def generate_command(base: str, head: str, limits: Limits, directory: str) -> str:
    """The `factory ci generate` that writes these files: the coordinator runs it again."""
    return (
        f'"${{FACTORY}}" ci generate --base {shlex.quote(base)} --head {shlex.quote(head)}'
        f" --max-jobs {limits.max_jobs} --out {shlex.quote(directory)}"
    )


def pipeline_files(
    plan: Plan,
    graph: Graph,
    *,
    base: str,
    head: str,
    limits: Limits | None = None,
    directory: str = DIRECTORY,
    title: str = "",
    run: str = "",
) -> dict[str, PipelineFile]:
    """Every file of the pipelines composing `plan` (nodes in `graph`), by file name.

    `base` and `head` are the revisions planned (commit ids, or `none`), `directory` where the
    files are written, relative to the repository: the coordinator writes them there again.
    `run`: the run ID of the pipeline generating them, set as FACTORY_RUN in every file, so the
    jobs of every child and part pipeline compose under the one run (`pipeline.core.runs`).
    """
    files = _pipeline_files(
        plan, graph, base=base, head=head, limits=limits, directory=directory, title=title
    )
    if not run:
        return files
    return {
        name: replace(f, data={**f.data, "variables": {**f.data.get("variables", {}), RUN_VARIABLE: run}})
        for name, f in files.items()
    }


def _pipeline_files(
    plan: Plan,
    graph: Graph,
    *,
    base: str,
    head: str,
    limits: Limits | None,
    directory: str,
    title: str,
) -> dict[str, PipelineFile]:
    limits = limits or Limits()
    header = f"Generated by `factory ci generate --base {base} --head {head}`: do not edit."
    summary = f"{len(plan.nodes)} nodes in {len(plan.tiers)} tiers; {plan.unchanged} unchanged."
    made = batches(plan, graph, limits)
    if not made:
        return {CHILD: PipelineFile(CHILD, f"{header}\n{summary}", _noop(title))}
    fixed = parsed_bytes(_frame(checked=True)) + parsed_bytes(
        {f"compose part {len(made)} of {len(made)}": {}, RUN_VARIABLE: RUN_BOUND}
    )
    parts = partition(made, limits, job_bytes=_job_bytes, budget=limits.max_parsed_bytes - fixed)
    if len(parts) == 1:
        jobs = f"{len(made)} jobs in one pipeline."
        return {CHILD: PipelineFile(CHILD, f"{header}\n{summary}\n{jobs}", _part_data(made, set(), set()))}
    if len(parts) + 1 > limits.max_jobs:
        raise OperationFailed(
            f"the plan needs {len(parts)} pipelines: more than one coordinator of {limits.max_jobs} jobs",
            hint="raise --max-jobs (ci.max_jobs)",
            code="ci-too-many-pipelines",
        )
    files = {CHILD: PipelineFile(CHILD, _coordinator_header(header, summary, parts, directory), {})}
    for index, part in enumerate(parts, 1):
        mine = {b.name for b in part.batches}
        comment = (
            f"{header}\nPart {index} of {len(parts)} (wave {part.wave + 1}): {len(part.batches)} jobs "
            f"composing {sum(len(b.nodes) for b in part.batches)} nodes."
        )
        files[part_file(index)] = PipelineFile(
            part_file(index), comment, _part_data(part.batches, mine, part.outside())
        )
    coordinator = _coordinator(parts, limits, generate_command(base, head, limits, directory), directory)
    files[CHILD] = PipelineFile(CHILD, files[CHILD].header, coordinator)
    return files


def _coordinator_header(header: str, summary: str, parts: Sequence[Part], directory: str) -> str:
    jobs = sum(len(p.batches) for p in parts)
    return f"{header}\n{summary}\n{jobs} jobs in {len(parts)} pipelines, triggered from {directory}/ by this one."


def _part_data(made: Sequence[Batch], mine: set[str], outside: set[str]) -> dict[str, Any]:
    """A pipeline of compose jobs; `mine` the batches of this file (all when empty), `outside` those
    whose inputs are partly in other files."""
    jobs: dict[str, Any] = {}
    for b in made:
        needs = [i for i in b.inputs if not mine or i in mine]
        jobs[b.name] = _compose_job(b, needs, checked=b.name in outside)
    return {**_frame(checked=bool(outside)), **jobs}


def _frame(*, checked: bool) -> dict[str, Any]:
    """A pipeline of compose jobs without its jobs: stages, defaults and the job templates."""
    templates: dict[str, Any] = {TEMPLATE: _template()}
    if checked:
        templates[CHECKED] = {"extends": TEMPLATE, "script": [PULL, CHECK_INPUTS, *COMPOSE]}
    return {**_head(), **templates}


def _head() -> dict[str, Any]:
    return {
        "stages": [STAGE],
        "variables": {IMAGE_VARIABLE: DEFAULT_IMAGE},
        "default": _defaults(),
        "workflow": {"rules": [{"when": "always"}]},
    }


def _defaults() -> dict[str, Any]:
    return {"image": IMAGE, "interruptible": True, "retry": {"max": 2, "when": list(RETRY_WHEN)}}


def _template() -> dict[str, Any]:
    artifacts = {"paths": list(LOG_PATHS), "expire_in": "1 week", "when": "always"}
    return {
        "stage": STAGE,
        "before_script": list(BEFORE_SCRIPT),
        "script": [PULL, *COMPOSE],
        "artifacts": artifacts,
    }


def _compose_job(batch: Batch, needs: Sequence[str], *, checked: bool) -> dict[str, Any]:
    return {
        "extends": CHECKED if checked else TEMPLATE,
        "needs": [{"job": n, "artifacts": False} for n in needs],  # inputs come from the store
        "resource_group": resource_group(batch.targets[0]),
        "variables": _variables(batch, checked=checked),
    }


def _variables(batch: Batch, *, checked: bool) -> dict[str, str]:
    found = {NODES_VARIABLE: " ".join(batch.targets)}
    builds = [n for n in batch.nodes if n not in batch.targets]
    if checked and builds:
        found[BUILDS_VARIABLE] = " ".join(builds)
    return found


def _job_bytes(batch: Batch, needs: Sequence[str]) -> int:
    """An upper bound of what a batch's job adds to its file as GitLab measures it (parsed): it
    checks its inputs when some are not among its needs (they are in other files)."""
    top = 2 * 29  # the file's top-level mapping grows by about 29 bytes per entry, doubling
    checked = len(needs) < len(batch.inputs)
    return top + parsed_bytes(batch.name) + parsed_bytes(_compose_job(batch, needs, checked=checked))


def _coordinator(parts: Sequence[Part], limits: Limits, command: str, directory: str) -> dict[str, Any]:
    count = len(parts)
    waves = 1 + max(p.wave for p in parts)
    jobs: dict[str, Any] = {
        FILES_JOB: {  # its own defaults: a trigger job takes few keywords, and no `default:`
            **_defaults(),
            "stage": FILES_STAGE,
            "needs": [],
            "before_script": list(BEFORE_SCRIPT),
            "script": [command],
            "artifacts": {"paths": [directory], "expire_in": "1 week"},
        }
    }
    for index, part in enumerate(parts, 1):
        job: dict[str, Any] = {
            "stage": f"{STAGE} {part.wave + 1}",
            "trigger": {
                "include": [{"artifact": f"{directory}/{part_file(index)}", "job": FILES_JOB}],
                "strategy": "depend",
                "forward": dict(FORWARD),
            },
        }
        needs = [FILES_JOB, *(part_job(d + 1, count) for d in part.after)]
        if len(needs) <= limits.max_needs:  # else the stages of the waves order it
            job["needs"] = needs
        if part.after:
            job["when"] = "always"  # a failed earlier part stops only the jobs over its nodes
        jobs[part_job(index, count)] = job
    return {
        "stages": [FILES_STAGE, *(f"{STAGE} {w + 1}" for w in range(waves))],
        "variables": {IMAGE_VARIABLE: DEFAULT_IMAGE},
        "workflow": {"rules": [{"when": "always"}]},
        **jobs,
    }


def _noop(title: str) -> dict[str, Any]:
    return {
        **_head(),
        NOOP_JOB: {
            "stage": STAGE,
            "needs": [],
            "script": [f"echo {shlex.quote('factory: ' + (title or 'the plan') + ' is empty')}"],
        },
    }


def dump(pipeline: Mapping[str, Any], header: str = "") -> str:
    """YAML text of a pipeline: sorted keys, block style, a comment header; deterministic.

    libyaml's emitter when PyYAML has it (ten times faster at Fedora scale; the tests hold it to
    the same bytes as PyYAML's own), else PyYAML's.
    """
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    body = yaml.dump(dict(pipeline), Dumper=DUMPER, sort_keys=True, default_flow_style=False, width=1000)
    return comment + body
