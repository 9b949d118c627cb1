"""The JSON Schemas shipped with factory (the `.json` files beside this module; `schemas/` at
the top of the repository links here), read from the package and given to the core.

`pipeline.core.definitions` validates definitions (and `pipeline.core.policies` policies and
waivers) against them but reads no file itself: importing this module gives it `shipped`,
called once, the first time a schema is needed.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from pipeline.core import definitions


@cache
def shipped() -> dict[str, str]:
    """File name -> text of every JSON Schema shipped with factory."""
    found = (s for s in files(__name__).iterdir() if s.name.endswith(".json"))
    return {s.name: s.read_text(encoding="utf-8") for s in sorted(found, key=lambda s: s.name)}


def pungi_dtd() -> Path:
    """factory's copy of Pungi's variants.dtd (used when Pungi's own is not installed)."""
    return Path(str(files(__name__) / "pungi-variants.dtd"))


definitions.use_schemas(shipped)
