"""GitLab child pipelines: one CI job per planned node. Pure: no I/O.

`child_pipeline(plan, graph)` turns a plan into the data of a GitLab CI file; `dump` writes it
as YAML, byte-identical for the same plan (sorted keys, no timestamps).

Terminology (ARCHITECTURE.md): a planned *node* becomes one *job* named `compose <node id>`.
Its `needs:` are the jobs of its inputs that are planned too, so independent nodes run at once
on different runners and a failed node stops only the jobs that consume it. Inputs that are not
planned are unchanged: their latest good compose is in lineage already.

Every job pulls lineage from the remote, composes its node (`factory compose NODE --type ci`,
which skips what lineage says is done) and pushes lineage back, also when the compose failed, so
failures stay auditable. Outputs travel between jobs as GitLab artifacts of `.factory/output`
(each job re-uploads what it received, so a job sees its inputs' inputs too); at scale, point
`output.dir` in factory.yaml at a store shared by the runners and the artifacts are only a copy.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from pipeline.core.graph import Graph
from pipeline.core.plan import Plan

JOB_PREFIX = "compose "
NOOP_JOB = "nothing to compose"
STAGE = "compose"
IMAGE = "debian:12"  # as the parent pipeline; gitlab-ci-local --force-shell-executor ignores it
OUTPUT_PATHS = (".factory/output",)
RETRY_WHEN = ("runner_system_failure", "scheduler_failure", "stuck_or_timeout_failure")
# Finds the factory CLI: the venv a test or a runner already has, else `make venv` (debian:12).
BEFORE_SCRIPT = (
    # Defaults in the script, not `variables:`, so a project variable FACTORY always wins.
    'export FACTORY="${FACTORY:-.venv/bin/factory}" FACTORY_REMOTE="${FACTORY_REMOTE:-origin}"',
    'test -x "${FACTORY}" || command -v make >/dev/null || '
    "(apt-get update -qq && apt-get install -y -qq make >/dev/null)",
    'test -x "${FACTORY}" || make venv',
)
_RESOURCE_UNSAFE = re.compile(r"[^A-Za-z0-9_./-]")


def job_name(node_id: str) -> str:
    """The CI job of a node: `compose module:base-runtime:f42`."""
    return JOB_PREFIX + node_id


def resource_group(node_id: str) -> str:
    """A GitLab resource group per node, so one node never composes twice at once.

    `module:base-runtime:f42` -> `compose/module/base-runtime/f42`, `build:openssl@9d0324eb` ->
    `compose/build/openssl_9d0324eb` (GitLab allows letters, digits, `-_./` here).
    """
    kind, _, rest = node_id.partition(":")
    return "compose/" + _RESOURCE_UNSAFE.sub("_", f"{kind}/{rest.replace(':', '/')}")


def child_pipeline(plan: Plan, graph: Graph, *, title: str = "") -> dict[str, Any]:
    """The GitLab CI data of the child pipeline composing `plan` (whose nodes are in `graph`)."""
    planned = {n.id for n in plan.nodes}
    jobs: dict[str, Any] = {}
    for node in plan.nodes:
        inputs = sorted(i for i in graph.nodes[node.id].inputs if i in planned)
        jobs[job_name(node.id)] = _compose_job(node.id, inputs)
    if not jobs:
        jobs[NOOP_JOB] = {
            "stage": STAGE,
            "needs": [],
            "script": [f"echo {shlex.quote('factory: ' + (title or 'the plan') + ' is empty')}"],
        }
    return {
        "stages": [STAGE],
        "default": {
            "image": IMAGE,
            "interruptible": True,
            "retry": {"max": 2, "when": list(RETRY_WHEN)},
        },
        "workflow": {"rules": [{"when": "always"}]},
        **jobs,
    }


def _compose_job(node_id: str, inputs: Sequence[str]) -> dict[str, Any]:
    node = shlex.quote(node_id)
    return {
        "stage": STAGE,
        "needs": [{"job": job_name(i), "artifacts": True} for i in inputs],
        "resource_group": resource_group(node_id),
        "before_script": list(BEFORE_SCRIPT),
        "script": [
            '"${FACTORY}" lineage pull --remote "${FACTORY_REMOTE}"',
            f'"${{FACTORY}}" compose {node} --type ci || failed=1',
            '"${FACTORY}" lineage push --remote "${FACTORY_REMOTE}"',
            'test -z "${failed:-}"',
        ],
        "artifacts": {"paths": list(OUTPUT_PATHS), "expire_in": "1 day"},
    }


def dump(pipeline: Mapping[str, Any], header: str = "") -> str:
    """YAML text of a pipeline: sorted keys, block style, a comment header; deterministic."""
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    body = yaml.safe_dump(dict(pipeline), sort_keys=True, default_flow_style=False, width=1000)
    return comment + body
