"""Composer of `repo` nodes: a variant's flat yum repository, in productmd's tree layout.

Layout of the compose's work directory (`compose/` is what a release publishes):

    compose/<Variant>/<arch>/os/Packages/*.rpm   RPMs of all shipped modules for arch (noarch
                                                 RPMs under every arch), hard links
    compose/<Variant>/<arch>/os/repodata/        createrepo_c, modules.yaml, comps.xml, and
                                                 updateinfo.xml when an advisory names an RPM
                                                 of that arch's tree
    compose/<Variant>/source/tree/Packages/      the source RPMs, with their own repodata
    compose/<Variant>/source/tree/MISSING-SOURCES  the source RPMs it lacks (builds taken from a
                                                 source without `source_baseurl`), when any
    compose/metadata/composeinfo.json            productmd: compose, release, variant paths
    compose/metadata/rpms.json                   productmd: every RPM by variant, arch, SRPM
    modules.yaml, comps.xml                      the metadata added to each arch's repodata

modules.yaml merges the modulemd of every shipped module compose, plus a modulemd-defaults
document per module stream the variant selects (its profiles become the default profiles),
so dnf offers those streams without `dnf module enable`. comps.xml has one group per
selected (module, profile); the repo output's `comps: false` option leaves it out. Each arch's
updateinfo.xml holds the advisories of the module composes (brought by binary pins) naming an
RPM of that tree, their package lists cut to its NEVRAs.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version as distribution_version
from pathlib import Path

import productmd.composeinfo  # type: ignore[import-untyped]
import productmd.rpms  # type: ignore[import-untyped]

from pipeline.compose.base import Job, describe_tree
from pipeline.compose.links import InputRpm, built_at, input_rpms, link
from pipeline.compose.module import UPDATEINFO, input_advisories
from pipeline.core import advisories
from pipeline.core.config import Release
from pipeline.core.errors import InvalidInput
from pipeline.core.model import Variant
from pipeline.core.records import OutputFile
from pipeline.formats import comps, modulemd
from pipeline.tools import createrepo, rpm, updateinfo

COMPOSE = "compose"
MODULES_YAML = "modules.yaml"
COMPS_XML = "comps.xml"
MISSING_SOURCES = "MISSING-SOURCES"


class VariantRepoComposer:
    """Makes the flat repo of one variant from its module composes."""

    kind = "repo"
    format = 1  # bump when what this composer makes from the same inputs changes

    def tools(self) -> Mapping[str, str]:
        """createrepo_c, modifyrepo_c, rpm and productmd, with their versions."""
        return {
            "createrepo_c": createrepo.version(),
            "modifyrepo_c": createrepo.modifyrepo_version(),
            "rpm": rpm.version(),
            "productmd": _productmd_version(),
        }

    def compose(self, job: Job) -> list[OutputFile]:
        """Link the modules' RPMs per arch, write repodata and productmd metadata."""
        variant = job.defs.variants[job.node.id.removeprefix("repo:")]
        outputs = [o for i in sorted(job.inputs) for o in job.inputs[i].outputs]
        rpms = input_rpms(job, outputs)
        root = job.workdir / COMPOSE
        modules_yaml = job.workdir / MODULES_YAML
        modules_yaml.write_text(_modules_yaml(job, variant, outputs), encoding="utf-8")
        extra = [createrepo.Metadata(modules_yaml, "modules")]
        if wants_comps(job):
            comps_xml = job.workdir / COMPS_XML
            comps_xml.write_text(_comps_xml(job, variant), encoding="utf-8")
            extra.append(createrepo.Metadata(comps_xml, "group"))
        source_tree = root / source_path(variant.uid)
        sources = [r for r in rpms if r.header.is_source]
        _link_all(sources, source_tree / "Packages")
        missing = sorted(
            {r.header.sourcerpm for r in rpms if not r.header.is_source} - {s.path.name for s in sources}
        )
        if missing:
            (source_tree / MISSING_SOURCES).write_text(missing_sources(missing), encoding="utf-8")
        createrepo.make_repo(source_tree, built_at(sources))
        notes = input_advisories(job)
        for arch in variant.arches:
            tree = root / os_path(variant.uid, arch)
            binaries = _for_arch(rpms, arch)
            _link_all(binaries, tree / "Packages")
            shipped = advisories.shipped_in(notes, {r.header.nevra for r in binaries})
            mine = [*extra]
            if shipped:
                path = job.workdir / "updateinfo" / arch / UPDATEINFO
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(updateinfo.dump(shipped), encoding="utf-8")
                mine.append(createrepo.Metadata(path, "updateinfo"))
            # The newest build time, not the compose's: the same packages and metadata give the
            # same os/ tree, which is all an image made from it consumes.
            createrepo.make_repo(tree, built_at(binaries), mine)
        metadata = root / "metadata"
        metadata.mkdir(parents=True, exist_ok=True)
        info = composeinfo(job.compose_id, job.defs.config.release, variant)
        info.dump(str(metadata / "composeinfo.json"))
        rpms_json(info, variant, rpms).dump(str(metadata / "rpms.json"))
        return describe_tree(job.output_dir, job.workdir)


def missing_sources(srpms: list[str]) -> str:
    """What a source tree says of the source RPMs it lacks."""
    lines = "".join(f"  {name}\n" for name in srpms)
    return (
        "These source RPMs are not in this tree: their builds were taken from binary package sources\n"
        "(factory.yaml's `sources:`) that have no source_baseurl.\n" + lines
    )


def wants_comps(job: Job) -> bool:
    """Whether the repo gets comps.xml groups: the repo output's `comps` option (default true)."""
    options = job.node.definition["output"].get("options") or {}
    return bool(options.get("comps", True))


def os_path(variant_uid: str, arch: str) -> str:
    """A variant's binary tree for an arch, relative to the compose root (productmd's layout)."""
    return f"{variant_uid}/{arch}/os"


def source_path(variant_uid: str) -> str:
    """A variant's source tree (the same for every arch), relative to the compose root."""
    return f"{variant_uid}/source/tree"


def composeinfo(compose_id: str, release: Release, variant: Variant) -> productmd.composeinfo.ComposeInfo:
    """productmd's composeinfo of a one-variant compose: compose, release and variant paths."""
    try:
        date, compose_type, respin = productmd.composeinfo.get_date_type_respin(compose_id)
    except ValueError as exc:  # an unknown type suffix
        raise InvalidInput(f"{compose_id!r}: {exc}", code="bad-compose-id") from exc
    if date is None:
        raise InvalidInput(f"{compose_id!r} is not a compose ID with a date", code="bad-compose-id")
    info = productmd.composeinfo.ComposeInfo()
    info.release.name = release.name
    info.release.short = release.short
    info.release.version = release.version
    info.release.type = "ga"
    info.release.is_layered = False
    info.compose.id = compose_id
    info.compose.date = date
    info.compose.type = compose_type
    info.compose.respin = respin
    entry = productmd.composeinfo.Variant(info)
    entry.id = entry.uid = variant.uid
    entry.name = variant.name
    entry.type = "variant"
    entry.arches = set(variant.arches)
    for arch in variant.arches:
        tree = os_path(variant.uid, arch)
        source = source_path(variant.uid)
        entry.paths.os_tree[arch] = entry.paths.repository[arch] = tree
        entry.paths.packages[arch] = f"{tree}/Packages"
        entry.paths.source_tree[arch] = entry.paths.source_repository[arch] = source
        entry.paths.source_packages[arch] = f"{source}/Packages"
    info.variants.add(entry)
    return info


def rpms_json(
    info: productmd.composeinfo.ComposeInfo, variant: Variant, rpms: list[InputRpm]
) -> productmd.rpms.Rpms:
    """productmd's rpms.json: every RPM of each arch under its source RPM, paths as composed."""
    manifest = productmd.rpms.Rpms()
    manifest.compose.id = info.compose.id
    manifest.compose.date = info.compose.date
    manifest.compose.type = info.compose.type
    manifest.compose.respin = info.compose.respin
    for arch in variant.arches:
        for found in _for_arch(rpms, arch):
            path = f"{os_path(variant.uid, arch)}/Packages/{found.path.name}"
            header = found.header
            manifest.add(variant.uid, arch, header.nevra, path, None, "binary", header.source_nevra)
        for found in (r for r in rpms if r.header.is_source):
            path = f"{source_path(variant.uid)}/Packages/{found.path.name}"
            manifest.add(variant.uid, arch, found.header.nevra, path, None, "source")
    return manifest


def _link_all(rpms: list[InputRpm], packages: Path) -> None:
    packages.mkdir(parents=True, exist_ok=True)
    for found in rpms:
        link(found.path, packages / found.path.name)


def _for_arch(rpms: list[InputRpm], arch: str) -> list[InputRpm]:
    return [r for r in rpms if not r.header.is_source and r.header.arch in (arch, "noarch")]


def _modules_yaml(job: Job, variant: Variant, outputs: list[OutputFile]) -> str:
    documents = [
        job.input_path(o).read_text(encoding="utf-8") for o in outputs if Path(o.path).name == MODULES_YAML
    ]
    for selection in variant.modules:
        module = job.defs.module(selection.module)
        documents.append(modulemd.defaults_document(module.name, module.stream, selection.profiles))
    return modulemd.merge(documents)


def _comps_xml(job: Job, variant: Variant) -> str:
    groups = [
        comps.profile_group(job.defs.module(selection.module), profile)
        for selection in variant.modules
        for profile in selection.profiles
    ]
    return comps.comps_xml(groups)


def _productmd_version() -> str:
    return distribution_version("productmd")
