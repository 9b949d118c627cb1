"""PyYAML's C classes (libyaml) when it has them, its pure-Python ones otherwise: the one choice
of YAML dumper (and loader) for every YAML factory writes or reads in bulk (modulemd documents,
GitLab CI files, exported definitions, Pungi configurations). The definitions themselves are
read with positions by `pipeline.core.yamlsource`.
"""

from __future__ import annotations

import yaml

DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
