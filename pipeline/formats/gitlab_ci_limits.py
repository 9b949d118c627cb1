"""What GitLab's schema cannot check of generated CI files: limits, needs, includes. Pure: no I/O.

GitLab's JSON schema (check-jsonschema's `vendor.gitlab-ci`) checks each file's shape; GitLab
itself refuses more, which `problems(files, limits)` finds:
- a file above `max_yaml_size_bytes` *as parsed*: GitLab loads the YAML and sums
  `ObjectSpace.memsize_of` over every object (Gitlab::Utils::DeepSize). `parsed_bytes` is an
  upper bound of that sum, with Ruby's object sizes (3.1; 3.2+ rounds objects up to 40, 80, 160,
  320 or 640-byte slots: the larger of the two is taken);
- a job with more `needs:` than `ci_needs_size_limit`, a need naming no job of its file or a job in
  a later stage, needs that form a cycle, an `extends:` naming no template;
- a pipeline with more jobs than `max_jobs`;
- a trigger including an artifact of a job outside its own pipeline, one that it neither needs
  nor follows by stage, a file no job keeps as artifact, and child pipelines nested deeper than
  two levels (the parent's child, then its children);
- a generated file no trigger reaches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import yaml

from pipeline.core.batches import Limits
from pipeline.formats import libyaml

GITLAB_MAX_BYTES = 1_000_000  # max_yaml_size_bytes by default (2 MB on newer GitLab)
MAX_DEPTH = 2  # levels of child pipelines below the parent
KEYWORDS = frozenset(
    {"default", "include", "stages", "variables", "workflow", "image", "services", "cache"}
    | {"before_script", "after_script", "spec"}
)
LOADER = libyaml.LOADER
_OBJECT = 40  # bytes of a Ruby object slot
_SLOTS = (40, 80, 160, 320, 640)


def parsed_bytes(value: Any) -> int:
    """An upper bound of the bytes GitLab counts for a loaded YAML value (see the module doc)."""
    if isinstance(value, str):
        length = len(value.encode())
        heap = _OBJECT if length <= 23 else _OBJECT + length + 1
        return max(heap, _slot(24 + length + 1))
    if isinstance(value, Mapping):
        n = len(value)
        own = _OBJECT if n == 0 else 168 if n <= 8 else _OBJECT + 29 * 2 ** math.ceil(math.log2(max(n, 32)))
        return own + sum(parsed_bytes(k) + parsed_bytes(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        n = len(value)
        own = _OBJECT if n <= 3 else _OBJECT + 8 * max(20, 2 * n)
        return max(own, _slot(16 + 8 * n)) + sum(parsed_bytes(v) for v in value)
    return 0  # integers, booleans and null are immediates


def _slot(size: int) -> int:
    return next((s for s in _SLOTS if size <= s), 0)


def jobs_of(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The jobs of a CI file: top-level mappings that are neither keywords nor templates."""
    return {
        k: v
        for k, v in data.items()
        if k not in KEYWORDS and not k.startswith(".") and isinstance(v, Mapping)
    }


def need_names(job: Mapping[str, Any]) -> list[str]:
    """The job names of a job's `needs:` (plain names or `job:` entries)."""
    return [n if isinstance(n, str) else str(n.get("job", "")) for n in job.get("needs") or ()]


def problems(files: Mapping[str, str], limits: Limits, root: str) -> list[str]:
    """Every rule the schema cannot check that these files (name -> YAML text) break."""
    found: list[str] = []
    loaded: dict[str, Mapping[str, Any]] = {}
    for name, text in sorted(files.items()):
        data = yaml.load(text, Loader=LOADER)
        if not isinstance(data, Mapping):
            found.append(f"{name}: not a mapping")
            continue
        loaded[name] = data
        size = parsed_bytes(data)
        if size > limits.max_parsed_bytes:
            found.append(f"{name}: {size} bytes as parsed, more than {limits.max_parsed_bytes}")
        if len(text.encode()) > GITLAB_MAX_BYTES // 2:
            found.append(f"{name}: {len(text.encode())} bytes of text, not well under 1 MB")
        found.extend(f"{name}: {p}" for p in _pipeline_problems(data, limits))
    found.extend(_include_problems(loaded, root))
    return found


def _pipeline_problems(data: Mapping[str, Any], limits: Limits) -> list[str]:
    found: list[str] = []
    jobs = jobs_of(data)
    stages = list(data.get("stages") or ["build", "test", "deploy"])
    if len(jobs) > limits.max_jobs:
        found.append(f"{len(jobs)} jobs, more than {limits.max_jobs}")
    for name, job in sorted(jobs.items()):
        template = job.get("extends")
        for t in [template] if isinstance(template, str) else list(template or ()):
            if t not in data:
                found.append(f"job {name!r} extends {t!r}, which is not in the file")
        needs = need_names(job)
        if len(needs) > limits.max_needs:
            found.append(f"job {name!r} has {len(needs)} needs, more than {limits.max_needs}")
        for need in needs:
            if need not in jobs:
                found.append(f"job {name!r} needs {need!r}, which is not a job of the file")
            elif _stage(jobs[need], data, stages) > _stage(job, data, stages):
                found.append(f"job {name!r} needs {need!r} of a later stage")
    cycle = _cycle({name: need_names(job) for name, job in jobs.items()})
    if cycle:
        found.append("needs form a cycle: " + " -> ".join(cycle))
    return found


def _stage(job: Mapping[str, Any], data: Mapping[str, Any], stages: list[Any]) -> int:
    stage = job.get("stage")
    template = job.get("extends")
    if stage is None and isinstance(template, str) and isinstance(data.get(template), Mapping):
        stage = data[template].get("stage")
    return stages.index(stage) if stage in stages else stages.index("test") if "test" in stages else 0


def _cycle(edges: Mapping[str, list[str]]) -> list[str]:
    """One cycle of a directed graph (as a path that ends where it starts), or []."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for start in sorted(edges):
        if start in state:
            continue
        path = [start]
        todo = [iter(edges.get(start, ()))]
        state[start] = 1
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                todo.append(iter(edges.get(nxt, ())))
    return []


def _include_problems(loaded: Mapping[str, Mapping[str, Any]], root: str) -> list[str]:
    """Triggers: same-pipeline artifact jobs, kept files, nesting depth, every file reached."""
    found: list[str] = []
    depth = {root: 1}
    todo = [root] if root in loaded else []
    if not todo:
        found.append(f"{root}: missing")
    while todo:
        name = todo.pop()
        data = loaded[name]
        jobs = jobs_of(data)
        stages = list(data.get("stages") or ["build", "test", "deploy"])
        for job_name, job in sorted(jobs.items()):
            trigger = job.get("trigger")
            if not isinstance(trigger, Mapping):
                continue
            for include in trigger.get("include") or ():
                artifact, source = str(include.get("artifact", "")), str(include.get("job", ""))
                where = f"{name}: trigger {job_name!r}"
                if source not in jobs:
                    found.append(f"{where} includes an artifact of {source!r}, not a job of its pipeline")
                    continue
                if source not in need_names(job) and _stage(jobs[source], data, stages) >= _stage(
                    job, data, stages
                ):
                    found.append(f"{where} neither needs nor follows {source!r}")
                kept = (jobs[source].get("artifacts") or {}).get("paths") or ()
                if not any(artifact == p or artifact.startswith(p.rstrip("/") + "/") for p in kept):
                    found.append(f"{where} includes {artifact!r}, which {source!r} does not keep")
                child = artifact.rsplit("/", 1)[-1]
                if child not in loaded:
                    found.append(f"{where} includes {artifact!r}, which was not generated")
                elif depth[name] + 1 > MAX_DEPTH:
                    found.append(
                        f"{where} nests {child} {depth[name] + 1} levels deep, more than {MAX_DEPTH}"
                    )
                elif child not in depth:
                    depth[child] = depth[name] + 1
                    todo.append(child)
    found.extend(f"{name}: no trigger includes it" for name in sorted(set(loaded) - set(depth)))
    return found
