"""Pungi's variants.xml and the comps.xml groups it uses: read (with lines) and write. Pure.

variants.xml follows Pungi's DTD (`share/variants.dtd`): top-level variants of type variant,
addon and layered-product; addons and layered products are instantiated where a variant refers
to them (`<ref id=.../>`) or nests them; an `optional` child exists where nested, or empty when
`has_optional="true"`. comps packages without a type are mandatory (libcomps, yum and dnf read
them so).

Factory writes one processing instruction inside each variant it exports,
`<?factory-variant {...}?>`, holding what neither Pungi format has a place for (the variant's
release, EOL and artifacts); XML processing instructions are for the application they name and
every other reader, Pungi included, skips them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pipeline.core.errors import InvalidInput
from pipeline.formats import xmltree

EXTENSION = "factory-variant"
PACKAGE_TYPES = ("mandatory", "default", "optional", "conditional")


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A `<group>` of a variant: a comps group id (or a glob of them)."""

    name: str
    line: int
    glob: bool = False
    default: bool | None = None
    uservisible: bool | None = None


@dataclass(frozen=True, slots=True)
class Named:
    """A named entry with its line: an environment, a module, a koji tag, a ref."""

    name: str
    line: int
    glob: bool = False


@dataclass(frozen=True, slots=True)
class PungiVariant:
    id: str
    name: str
    type: str  # variant | addon | optional | layered-product
    line: int
    arches: tuple[str, ...]
    groups: tuple[GroupRef, ...] = ()
    environments: tuple[Named, ...] = ()
    modules: tuple[Named, ...] = ()
    kojitags: tuple[Named, ...] = ()
    buildinstallpackages: tuple[str, ...] = ()
    release: tuple[tuple[str, str], ...] = ()  # the <release> attributes, sorted
    is_empty: bool = False
    has_optional: bool = False
    children: tuple[PungiVariant, ...] = ()
    refs: tuple[Named, ...] = ()
    extension: Mapping[str, Any] | None = None  # the factory-variant instruction's data
    extension_line: int = 0


@dataclass(frozen=True, slots=True)
class PackageReq:
    name: str
    type: str  # one of PACKAGE_TYPES
    line: int
    requires: str = ""  # the package a conditional one depends on


@dataclass(frozen=True, slots=True)
class CompsGroup:
    id: str
    name: str
    description: str
    line: int
    packages: tuple[PackageReq, ...]


@dataclass(frozen=True, slots=True)
class Comps:
    groups: tuple[CompsGroup, ...]
    others: tuple[Named, ...]  # environments, categories, langpacks: what factory has no word for


def _bool(value: str | None) -> bool | None:
    return None if value is None else value == "true"


def read_variants(path: str, raw: bytes) -> tuple[PungiVariant, ...]:
    """The top-level variants of a variants.xml (validate it against Pungi's DTD first)."""
    root = xmltree.parse(path, raw)
    if root.tag != "variants":
        raise InvalidInput(
            f"{path}:{root.line}: the root element is <{root.tag}>, not <variants>",
            code="invalid-variants-xml",
        )
    return tuple(_variant(path, v) for v in root.findall("variant"))


def _variant(path: str, node: xmltree.Element) -> PungiVariant:
    arches = node.find("arches")
    groups = node.find("groups")
    modules = node.find("modules")
    children = node.find("variants")
    release = node.find("release")
    extension, extension_line = None, 0
    for target, data, line in node.instructions:
        if target == EXTENSION:
            try:
                loaded = json.loads(data)
            except ValueError as exc:
                raise InvalidInput(
                    f"{path}:{line}: <?{EXTENSION}?> is not JSON: {exc}", code="invalid-variants-xml"
                ) from exc
            extension, extension_line = loaded if isinstance(loaded, dict) else None, line
    return PungiVariant(
        id=node.attrib.get("id", ""),
        name=node.attrib.get("name", ""),
        type=node.attrib.get("type", ""),
        line=node.line,
        arches=tuple(a.text.strip() for a in arches.findall("arch")) if arches is not None else (),
        groups=tuple(
            GroupRef(
                g.text.strip(),
                g.line,
                g.attrib.get("glob") == "true",
                _bool(g.attrib.get("default")),
                _bool(g.attrib.get("uservisible")),
            )
            for g in (groups.findall("group") if groups is not None else [])
        ),
        environments=tuple(
            Named(e.text.strip(), e.line)
            for envs in node.findall("environments")
            for e in envs.findall("environment")
        ),
        modules=tuple(
            Named(m.text.strip(), m.line, m.attrib.get("glob") == "true")
            for m in (modules.findall("module") if modules is not None else [])
        ),
        kojitags=tuple(
            Named(k.text.strip(), k.line) for k in (modules.findall("kojitag") if modules is not None else [])
        ),
        buildinstallpackages=tuple(
            p.text.strip() for b in node.findall("buildinstallpackages") for p in b.findall("package")
        ),
        release=tuple(sorted(release.attrib.items())) if release is not None else (),
        is_empty=node.attrib.get("is_empty") == "true",
        has_optional=node.attrib.get("has_optional") == "true",
        children=tuple(
            _variant(path, c) for c in (children.findall("variant") if children is not None else [])
        ),
        refs=tuple(
            Named(r.attrib.get("id", ""), r.line)
            for r in (children.findall("ref") if children is not None else [])
        ),
        extension=extension,
        extension_line=extension_line,
    )


def read_comps(path: str, raw: bytes) -> Comps:
    """The groups of a comps.xml, and the other entries it holds (by id)."""
    root = xmltree.parse(path, raw)
    if root.tag != "comps":
        raise InvalidInput(
            f"{path}:{root.line}: the root element is <{root.tag}>, not <comps>", code="invalid-comps-xml"
        )
    groups = []
    for node in root.findall("group"):
        packages = node.find("packagelist")
        groups.append(
            CompsGroup(
                id=node.findtext("id"),
                name=next((n.text.strip() for n in node.findall("name") if not n.attrib), ""),
                description=next((d.text.strip() for d in node.findall("description") if not d.attrib), ""),
                line=node.line,
                packages=tuple(
                    PackageReq(
                        p.text.strip(),
                        p.attrib.get("type", "mandatory"),
                        p.line,
                        p.attrib.get("requires", ""),
                    )
                    for p in (packages.findall("packagereq") if packages is not None else [])
                ),
            )
        )
    others = [
        Named(f"{n.tag} {n.findtext('id')}", n.line)
        for n in root.children
        if n.tag in ("environment", "category")
    ]
    others += [Named("langpacks", n.line) for n in root.findall("langpacks")]
    return Comps(tuple(groups), tuple(others))


def variants_xml(variants: Iterable[PungiVariant]) -> str:
    """The variants.xml text of these (top-level) variants, valid against Pungi's DTD."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE variants PUBLIC "-//Red Hat, Inc.//DTD Variants info//EN" "variants.dtd">',
        "<variants>",
    ]
    for variant in variants:
        lines += _variant_lines(variant, "  ")
    lines.append("</variants>")
    return "\n".join(lines) + "\n"


def _variant_lines(v: PungiVariant, indent: str) -> list[str]:
    inner = indent + "  "
    attrs = f"id={quoteattr(v.id)} name={quoteattr(v.name)} type={quoteattr(v.type)}"
    out = [f"{indent}<variant {attrs}>"]
    if v.extension is not None:
        # `?>` cannot occur in JSON text outside strings, and json.dumps escapes none there:
        # replace it so an instruction can never end early.
        data = json.dumps(v.extension, sort_keys=True, ensure_ascii=True).replace("?>", "?\\u003e")
        out.append(f"{inner}<?{EXTENSION} {data}?>")
    if v.release:
        out.append(f"{inner}<release {' '.join(f'{k}={quoteattr(val)}' for k, val in v.release)}/>")
    out += [
        f"{inner}<arches>",
        *(f"{inner}  <arch>{escape(a)}</arch>" for a in v.arches),
        f"{inner}</arches>",
    ]
    if v.groups:
        out.append(f"{inner}<groups>")
        out += [f"{inner}  <group>{escape(g.name)}</group>" for g in v.groups]
        out.append(f"{inner}</groups>")
    if v.children:
        out.append(f"{inner}<variants>")
        for child in v.children:
            out += _variant_lines(child, inner + "  ")
        out.append(f"{inner}</variants>")
    if v.modules:
        out.append(f"{inner}<modules>")
        out += [f"{inner}  <module>{escape(m.name)}</module>" for m in v.modules]
        out.append(f"{inner}</modules>")
    out.append(f"{indent}</variant>")
    return out
