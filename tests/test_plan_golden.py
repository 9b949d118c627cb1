"""Golden plans: each case edits the example definitions; its expected plan is data.

tests/data/plans/<case>/case.yaml holds the edits (and a description); expected.json holds
the plan (node ids, tiers, reasons; digests left out). Set FACTORY_UPDATE_GOLDEN=1 to rewrite
the expected files after a deliberate change, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.core import definitions, graph, plan
from tests.conftest import example_tree, sources

CASES = Path(__file__).parent / "data" / "plans"


def apply_edits(tree: dict[str, bytes], edits: list[dict[str, Any]]) -> dict[str, bytes]:
    out = dict(tree)
    for edit in edits:
        path = edit["path"]
        if "remove" in edit:
            del out[path]
        elif "content" in edit:
            out[path] = edit["content"].encode()
        else:
            old, new = edit["replace"]
            text = out[path].decode()
            assert old in text, f"{path}: {old!r} not found"
            out[path] = text.replace(old, new, 1).encode()
    return out


def summary(result: plan.Plan) -> dict[str, Any]:
    return {
        "tiers": [{n.id: list(n.reasons) for n in tier} for tier in result.tiers],
        "removed": list(result.removed),
    }


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()))
def test_plan_matches_golden(case: str) -> None:
    spec = yaml.safe_load((CASES / case / "case.yaml").read_text())
    base_tree = example_tree()
    head_tree = apply_edits(base_tree, spec["edits"])
    base = graph.build(definitions.load(sources(base_tree)))
    head = graph.build(definitions.load(sources(head_tree)))
    got = summary(plan.plan(base, head))
    expected_file = CASES / case / "expected.json"
    if os.environ.get("FACTORY_UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(expected_file.read_text())
