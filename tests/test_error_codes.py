"""Every error a user meets has its own code: no raise site in pipeline/ leaves a generic one.

`FactoryError` takes `code` without a default, so mypy refuses a raise that names none; these
tests read every raise site with `ast` as well, so that a code cannot be generic (`error`), in
another case than kebab-case, or left out by a subclass that fixes its own.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from pipeline.core.errors import FactoryError

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"
KEBAB = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
GENERIC = {"error", "failed", "invalid", "unknown", "bug"}


def _trees() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))}


def _error_classes(trees: dict[Path, ast.Module]) -> dict[str, bool]:
    """Name -> whether callers must pass `code=` (False: its __init__ passes a fixed one)."""
    family = {"FactoryError": True, "InvalidInput": True, "OperationFailed": True}
    grown = True
    while grown:  # subclasses of subclasses, in any order of the files
        grown = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef) or node.name in family:
                    continue
                bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
                if bases & set(family):
                    family[node.name] = _callers_pass_code(node, family, bases)
                    grown = True
    return family


def _callers_pass_code(cls: ast.ClassDef, family: dict[str, bool], bases: set[str]) -> bool:
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        return any(family.get(b, False) for b in bases)
    return any(a.arg == "code" for a in init.args.kwonlyargs + init.args.args)


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_the_base_error_has_no_default_code() -> None:
    code = inspect.signature(FactoryError.__init__).parameters["code"]
    assert code.default is inspect.Parameter.empty


def test_every_raise_site_names_its_own_code() -> None:
    trees = _trees()
    family = _error_classes(trees)
    assert {"ForgeError", "CommandFailed", "BuildFailed", "InvalidDefinitions", "Contention"} <= set(family)
    missing, bad = [], []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _called(node)
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            code = next((k.value for k in node.keywords if k.arg == "code"), None)
            if name not in family and name != "__init__":  # __init__: a subclass's super() call
                continue
            if name in family and code is None and family[name]:
                missing.append(where)
            elif isinstance(code, ast.Constant):
                value = str(code.value)
                if not KEBAB.fullmatch(value) or value in GENERIC:
                    bad.append(f"{where}: {value!r}")
    assert missing == [], "raised without a code"
    assert bad == [], "codes that are not kebab-case or say nothing"


def test_codes_given_by_subclasses_are_their_own() -> None:
    """A subclass that fixes its code passes a literal, specific one to FactoryError."""
    fixed = []
    for tree in _trees().values():
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for call in (n for n in ast.walk(cls) if isinstance(n, ast.Call) and _called(n) == "__init__"):
                for keyword in call.keywords:
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                        fixed.append(str(keyword.value.value))
    assert {"command-failed", "build-failed", "invalid-definitions"} <= set(fixed)
    assert not set(fixed) & GENERIC
