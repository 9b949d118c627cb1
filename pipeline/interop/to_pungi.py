"""Factory definitions to Pungi's formats: variants.xml, comps.xml and the modules' modulemd. Pure.

- variants.xml: one `variant` per factory variant: its arches, the module streams it selects
  (`<modules>`, Pungi's modular variants) and the comps groups of the profiles it ships
  (`<groups>`), plus a `<?factory-variant?>` instruction with its release, EOL and artifacts,
  which Pungi's formats have no place for;
- comps.xml: one group per profile of every module, `<module>-<profile>`, exactly the groups
  factory's variant repos carry (`pipeline/formats/comps.py`);
- modules.yaml: one modulemd v2 document per module stream, shaped as MBS records a build: a
  component's `ref` is the branch it follows and `xmd.mbs.rpms.<name>.ref` the exact commit;
  the module's EOL and maintainers go in `xmd.factory`, modulemd's extensible metadata, and so
  do binary pins (`xmd.factory.binaries`: component -> source and build), which MBS would not
  build.

`factory import modulemd modules.yaml` then `factory import pungi variants.xml --comps
comps.xml` give back the same definitions.
"""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.core.model import Definitions, Module, Variant
from pipeline.formats import comps as comps_format
from pipeline.formats.libyaml import DUMPER
from pipeline.formats.pungi import GroupRef, Named, PungiVariant, variants_xml
from pipeline.interop.from_modulemd import generated_rationale
from pipeline.interop.yamlout import variant_data

_Dumper = DUMPER


def pungi_variant(variant: Variant) -> PungiVariant:
    """The Pungi variant of a factory variant."""
    data = variant_data(variant)
    extension = {"release": variant.release, "eol": variant.eol.isoformat(), "outputs": data["outputs"]}
    return PungiVariant(
        id=variant.uid,
        name=variant.name,
        type="variant",
        line=0,
        arches=variant.arches,
        groups=tuple(
            GroupRef(f"{s.module.split(':', 1)[0]}-{p}", 0) for s in variant.modules for p in s.profiles
        ),
        modules=tuple(Named(s.module, 0) for s in variant.modules),
        extension=extension,
    )


def export_variants(defs: Definitions) -> str:
    """variants.xml of every variant, by uid."""
    return variants_xml(pungi_variant(defs.variants[uid]) for uid in sorted(defs.variants))


def export_comps(defs: Definitions) -> str:
    """comps.xml: one group per profile of every module stream."""
    groups = [
        comps_format.profile_group(module, profile.name)
        for module in defs.modules.values()
        for profile in module.profiles
    ]
    return comps_format.comps_xml(groups)


def module_document(module: Module) -> dict[str, Any]:
    """The modulemd v2 document (data) of one module stream."""
    xmd: dict[str, Any] = {"factory": {"eol": module.eol.isoformat()}}
    if module.maintainers:
        xmd["factory"]["maintainers"] = list(module.maintainers)
    if module.binaries:
        xmd["factory"]["binaries"] = {
            b.component: {
                "source": b.source,
                "build": b.build,
                **({"rationale": b.rationale} if b.rationale else {}),
                **({"buildorder": b.buildorder} if b.buildorder else {}),
                **({"arches": list(b.arches)} if b.arches else {}),
            }
            for b in module.binaries
        }
    built = {p.component: {"ref": p.ref} for p in module.components if p.ref}
    if built:
        xmd["mbs"] = {"rpms": built}
    components: dict[str, Any] = {}
    for pin in module.components:
        entry: dict[str, Any] = {
            "rationale": pin.rationale or generated_rationale(module.nsid),
            "ref": pin.branch,
        }
        if pin.repository:
            entry["repository"] = pin.repository
        if pin.buildorder:
            entry["buildorder"] = pin.buildorder
        if pin.arches:
            entry["arches"] = list(pin.arches)
        components[pin.component] = entry
    data: dict[str, Any] = {
        "name": module.name,
        "stream": module.stream,
        "summary": module.summary,
        "description": module.description,
        "license": {"module": [module.license]},
        "xmd": xmd,
    }
    if module.servicelevels:
        data["servicelevels"] = {name: {"eol": eol.isoformat()} for name, eol in module.servicelevels}
    dependencies = {
        key: {name: [stream] for name, stream in pairs}
        for key, pairs in (("buildrequires", module.buildrequires), ("requires", module.requires))
        if pairs
    }
    if dependencies:
        data["dependencies"] = [dependencies]
    if module.profiles:
        data["profiles"] = {
            p.name: {**({"description": p.description} if p.description else {}), "rpms": list(p.rpms)}
            for p in module.profiles
        }
    if module.api:
        data["api"] = {"rpms": list(module.api)}
    data["components"] = {"rpms": components}
    return {"document": "modulemd", "version": 2, "data": data}


def export_modules(defs: Definitions) -> str:
    """modules.yaml: the modulemd v2 documents of every module stream, by name:stream."""
    docs = [module_document(defs.modules[nsid]) for nsid in sorted(defs.modules)]
    return yaml.dump_all(
        docs,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
        explicit_end=True,
        width=100,
    )
