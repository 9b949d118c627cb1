"""Parse the gating policies (`policies/*.yaml`) and waivers (`waivers/*.yaml`) of a revision. Pure.

The same path as the definitions: YAML -> loose data -> JSON Schema (`schemas/policy.json`,
`schemas/waiver.json`) -> frozen values, every error collected with its file and line
(`InvalidDefinitions`, exit 2). The files arrive as (path, bytes); `Workspace.policy(rev)` reads
them from Git objects, so a compose is gated by the policies of the commit it was made from,
and a waiver counts once it is merged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.core import definitions, yamlsource
from pipeline.core.errors import Diagnostic, InvalidDefinitions
from pipeline.core.gate import Policy, Rule, Waiver

POLICIES, WAIVERS = "policies/", "waivers/"


def parse(files: Iterable[tuple[str, bytes]]) -> Policy:
    """The policy made of (path, bytes) files under policies/ and waivers/."""
    rules: list[Rule] = []
    waivers: list[Waiver] = []
    problems: list[Diagnostic] = []
    for path, raw in sorted(files):
        kind = "policy" if path.startswith(POLICIES) else "waiver"
        if not path.endswith(".yaml"):
            problems.append(Diagnostic(path, 1, 1, "layout", "use the .yaml extension"))
            continue
        document = yamlsource.parse(path, raw)
        if isinstance(document, Diagnostic):
            problems.append(document)
            continue
        found = list(definitions._schema_diagnostics(document, kind))
        if found:
            problems.extend(found)
        elif kind == "policy":
            rules.extend(_rules(document))
        else:
            waivers.append(_waiver(document))
    if problems:
        raise InvalidDefinitions(problems)
    return Policy(tuple(rules), tuple(waivers))


def _rules(document: yamlsource.Document) -> list[Rule]:
    out = []
    for n, raw in enumerate(document.data["rules"]):
        line, _ = document.where(("rules", n))
        out.append(
            Rule(
                kinds=_names(raw, "kinds"),
                require=_names(raw, "require"),
                variants=_names(raw, "variants"),
                nodes=_names(raw, "nodes"),
                source=f"{document.path}:{line}",
                must_apply=raw.get("applicable", "optional") == "required",
            )
        )
    return out


def _waiver(document: yamlsource.Document) -> Waiver:
    data = document.data
    return Waiver(
        node=data["node"],
        check=data["check"],
        reason=data["reason"],
        who=data["who"],
        compose=data.get("compose", "*"),
        source=document.path,
    )


def _names(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(v) for v in raw.get(key, ()))
