"""GitLab's own checks of generated CI files, run as tools: its JSON schema and its size measure.

- `schema_errors(paths)`: check-jsonschema (PyPI, in the dev extras) with its built-in
  `vendor.gitlab-ci` schema, GitLab's own `ci.json`, and the `gitlab-ci` data transform
  (`!reference` tags); an empty string when every file is valid.
- `ruby_parsed_bytes(paths)`: what GitLab compares with `max_yaml_size_bytes`: the YAML loaded by
  Ruby's Psych and every object's `ObjectSpace.memsize_of` summed, as Gitlab::Utils::DeepSize
  does. Needs `ruby` (Debian's, installed by `make deps`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

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
