"""Factory definitions as the YAML files `factory validate` reads. Pure.

The field order follows the example distribution's files (`modules/`, `variants/`); a comment
at the top says where the definition came from. Strings that YAML would read as something else
(a stream `3.12`, a date) are quoted by the dumper, so the file reads back to the same values.
"""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.core.model import Module, Variant
from pipeline.formats.libyaml import DUMPER

_Dumper = DUMPER


def module_path(module: Module) -> str:
    """Where a module stream's file lives in a definitions tree."""
    return f"modules/{module.name}/{module.stream}.yaml"


def variant_path(variant: Variant) -> str:
    return f"variants/{variant.uid}.yaml"


def module_data(module: Module) -> dict[str, Any]:
    """The loose data of a module file (what the module JSON Schema describes)."""
    data: dict[str, Any] = {
        "document": "factory-module",
        "version": 1,
        "name": module.name,
        "stream": module.stream,
        "summary": module.summary,
        "description": module.description,
        "license": module.license,
        "eol": module.eol.isoformat(),
    }
    if module.servicelevels:
        data["servicelevels"] = {name: {"eol": eol.isoformat()} for name, eol in module.servicelevels}
    if module.maintainers:
        data["maintainers"] = list(module.maintainers)
    dependencies = {
        key: dict(pairs)
        for key, pairs in (("buildrequires", module.buildrequires), ("requires", module.requires))
        if pairs
    }
    if dependencies:
        data["dependencies"] = dependencies
    rpms: dict[str, Any] = {}
    for pin in module.components:
        entry: dict[str, Any] = {}
        if pin.ref:
            entry["ref"] = pin.ref
        entry["branch"] = pin.branch
        if pin.repository:
            entry["repository"] = pin.repository
        if pin.rationale:
            entry["rationale"] = pin.rationale
        if pin.buildorder:
            entry["buildorder"] = pin.buildorder
        if pin.arches:
            entry["arches"] = list(pin.arches)
        rpms[pin.component] = entry
    for binary in module.binaries:
        made: dict[str, Any] = {"source": binary.source, "build": binary.build}
        if binary.rationale:
            made["rationale"] = binary.rationale
        if binary.buildorder:
            made["buildorder"] = binary.buildorder
        if binary.arches:
            made["arches"] = list(binary.arches)
        rpms[binary.component] = made
    data["components"] = {"rpms": rpms}
    if module.profiles:
        data["profiles"] = {
            p.name: {**({"description": p.description} if p.description else {}), "rpms": list(p.rpms)}
            for p in module.profiles
        }
    if module.api:
        data["api"] = {"rpms": list(module.api)}
    return data


def variant_data(variant: Variant) -> dict[str, Any]:
    """The loose data of a variant file (what the variant JSON Schema describes)."""
    outputs = []
    for output in variant.outputs:
        entry: dict[str, Any] = {"kind": output.kind, "name": output.name}
        if output.layered_on:
            entry["from"] = output.layered_on[0] if len(output.layered_on) == 1 else list(output.layered_on)
        if output.options:
            entry["options"] = dict(output.options)
        outputs.append(entry)
    return {
        "document": "factory-variant",
        "version": 1,
        "uid": variant.uid,
        "name": variant.name,
        "release": variant.release,
        "eol": variant.eol.isoformat(),
        "arches": list(variant.arches),
        "modules": [
            {"module": s.module, **({"profiles": list(s.profiles)} if s.profiles else {})}
            for s in variant.modules
        ],
        "outputs": outputs,
    }


def module_yaml(module: Module, origin: str) -> str:
    """The text of a module file; origin says where it was imported from."""
    return _text(module_data(module), origin)


def variant_yaml(variant: Variant, origin: str) -> str:
    return _text(variant_data(variant), origin)


def _text(data: dict[str, Any], origin: str) -> str:
    body = yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
    comment = "".join(f"# {line}\n" for line in origin.splitlines()) if origin else ""
    return comment + body
