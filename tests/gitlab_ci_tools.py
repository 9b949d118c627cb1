"""GitLab's own checks of generated CI files, run as tools: its JSON schema and its size measure.

- `schema_errors(paths)`: check-jsonschema (PyPI, in the dev extras) with its built-in
  `vendor.gitlab-ci` schema, GitLab's own `ci.json`, and the `gitlab-ci` data transform
  (`!reference` tags); an empty string when every file is valid.
- `ruby_parsed_bytes(paths)`: what GitLab compares with `max_yaml_size_bytes`: the YAML loaded by
  Ruby's Psych and every object's `ObjectSpace.memsize_of` summed, as Gitlab::Utils::DeepSize
  does. Needs `ruby` (Debian's, installed by `make deps`).
- `started_after(texts)`: which jobs of generated pipelines have ended before a job starts, read
  from the files as GitLab orders jobs (`needs:`, else stages; a child pipeline after its trigger
  job's); `requirements_missed(texts, graph, planned)`: the planned modules a job's modules
  (build)require whose jobs may not have ended when it starts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.graph import Graph
from pipeline.formats.gitlab_ci_limits import jobs_of, need_names

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
RUBY = shutil.which("ruby")
# Gitlab::Config::Loader::Yaml loads with YAML.safe_load(..., aliases: true); Gitlab::Utils::
# DeepSize adds ObjectSpace.memsize_of of the value and, for arrays and hashes, of every member.
DEEP_SIZE_RB = """
require "objspace"
require "yaml"
def deep_size(object)
  size = ObjectSpace.memsize_of(object)
  case object
  when Array then object.each { |o| size += deep_size(o) }
  when Hash then object.each { |k, v| size += deep_size(k) + deep_size(v) }
  end
  size
end
ARGV.each do |path|
  data = YAML.safe_load(File.read(path), permitted_classes: [Symbol], permitted_symbols: [], aliases: true)
  puts "#{deep_size(data)} #{path}"
end
"""


def schema_errors(paths: Sequence[Path]) -> str:
    """check-jsonschema's report for the files against GitLab's CI schema; '' when all are valid."""
    argv = [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci"]
    done = subprocess.run([*argv, *map(str, paths)], capture_output=True, text=True, check=False)
    return "" if done.returncode == 0 else done.stdout + done.stderr


def ruby_parsed_bytes(paths: Sequence[Path]) -> dict[Path, int]:
    """Each file's size as GitLab measures it, by Ruby itself."""
    if RUBY is None:
        raise RuntimeError("ruby is not installed (`make deps` installs it)")
    done = subprocess.run(
        [RUBY, "-e", DEEP_SIZE_RB, *map(str, paths)], capture_output=True, text=True, check=True
    )
    sizes = {}
    for line in done.stdout.splitlines():
        size, path = line.split(" ", 1)
        sizes[Path(path)] = int(size)
    return sizes


def started_after(texts: Mapping[str, str], root: str = "child.yml") -> dict[str, set[str]]:
    """Every job of the pipelines `root` runs (a child pipeline, or a coordinator of parts) and the
    jobs that have ended when it starts, as GitLab orders them: a job with `needs:` after those,
    one without after every job of the earlier stages, transitively; the jobs of a part after
    every job of the parts whose trigger jobs end before the part's trigger job starts (a trigger
    job with `strategy: depend` ends when its pipeline does)."""
    loaded = {name: yaml.safe_load(text) for name, text in texts.items()}
    coordinator = _ordered(loaded[root])
    triggers = {name: job for name, job in jobs_of(loaded[root]).items() if "trigger" in job}
    if not triggers:
        return coordinator
    found: dict[str, set[str]] = {}
    included = {
        name: job["trigger"]["include"][0]["artifact"].rsplit("/", 1)[-1] for name, job in triggers.items()
    }
    for trigger, file in included.items():
        earlier = {j for t in coordinator[trigger] if t in included for j in jobs_of(loaded[included[t]])}
        for job, before in _ordered(loaded[file]).items():
            found[job] = before | earlier
    return found


def _ordered(data: Mapping[str, Any]) -> dict[str, set[str]]:
    jobs = jobs_of(data)
    stages = list(data.get("stages") or ["build", "test", "deploy"])

    def stage(job: Mapping[str, Any]) -> int:
        name = job.get("stage") or data.get(str(job.get("extends")), {}).get("stage", "test")
        return stages.index(name)

    direct = {
        name: set(need_names(job))
        if "needs" in job
        else {o for o, j in jobs.items() if stage(j) < stage(job)}
        for name, job in jobs.items()
    }
    closed: dict[str, set[str]] = {}

    def close(name: str) -> set[str]:
        if name not in closed:
            closed[name] = set(direct[name]).union(*(close(d) for d in direct[name]))
        return closed[name]

    return {name: close(name) for name in jobs}


def requirements_missed(texts: Mapping[str, str], graph: Graph, planned: set[str]) -> list[str]:
    """`JOB: MODULE` for every planned module that the modules a job composes buildrequire or
    require, directly or through other modules, whose job has not ended when that job starts."""
    after = started_after(texts)
    targets = {
        name: str(job["variables"]["FACTORY_NODES"]).split()
        for text in texts.values()
        for name, job in jobs_of(yaml.safe_load(text)).items()
        if "variables" in job
    }
    home = {node: name for name, nodes in targets.items() for node in nodes}
    return [
        f"{name}: {module}"
        for name, nodes in sorted(targets.items())
        for module in sorted(graph.required(nodes) & planned)
        if home[module] not in after[name]
    ]
