"""Writing command results to stdout."""

from __future__ import annotations

import sys
from typing import Any

from pipeline.core.canonical import pretty_json


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def out_json(value: Any) -> None:
    sys.stdout.write(pretty_json(value))
