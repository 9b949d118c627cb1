"""Composer of `module` nodes: a module stream's own yum repository with its modulemd.

Layout of the compose's work directory:

    repo/Packages/*.rpm       binary RPMs of the module's builds (hard links into the build store)
                              and of its binary pins (hard links into their composes)
    repo/repodata/            createrepo_c metadata, with modules.yaml (type `modules`) and,
                              when an advisory names one of its RPMs, updateinfo.xml
    source/Packages/*.src.rpm the source RPMs (hard links)
    modules.yaml              the module's modulemd v2 document, as added to repo/repodata
    updateinfo.xml            the advisories its binary pins brought, cut to the NEVRAs it ships

The repo holds only the module's own builds (dependencies on other modules are metadata), and
two composes of the same inputs give byte-identical files, whatever the definitions commit or
the day: the modulemd version and the repodata revision are the newest build time of its RPMs,
the context comes from the module's definition and pins. So an unchanged module stops a rebuild
from propagating (early cutoff).
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.compose.base import Job, describe_tree
from pipeline.compose.links import built_at, input_rpms, link
from pipeline.core import advisories
from pipeline.core.records import OutputFile
from pipeline.formats import modulemd
from pipeline.tools import createrepo, rpm, updateinfo

REPO = "repo"
SOURCE = "source"
MODULES_YAML = "modules.yaml"
UPDATEINFO = "updateinfo.xml"


class ModuleComposer:
    """Makes the repo of one module stream from its builds."""

    kind = "module"
    format = 1  # bump when what this composer makes from the same inputs changes

    def tools(self) -> Mapping[str, str]:
        """createrepo_c, modifyrepo_c and rpm, with their versions."""
        return {
            "createrepo_c": createrepo.version(),
            "modifyrepo_c": createrepo.modifyrepo_version(),
            "rpm": rpm.version(),
        }

    def compose(self, job: Job) -> list[OutputFile]:
        """Link the builds' RPMs, write modulemd and repodata into job.workdir."""
        module = job.defs.module(job.node.id.removeprefix("module:"))
        rpms = input_rpms(job, (o for i in sorted(job.inputs) for o in job.inputs[i].outputs))
        for found in rpms:
            directory = SOURCE if found.header.is_source else REPO
            link(found.path, job.workdir / directory / "Packages" / found.path.name)
        (job.workdir / REPO / "Packages").mkdir(parents=True, exist_ok=True)
        epoch = built_at(rpms)
        document = modulemd.module_document(
            module,
            version=modulemd.module_version(epoch),
            context=modulemd.module_context(job.node.digest),
            rpms=[r.header for r in rpms],
        )
        modules_yaml = job.workdir / MODULES_YAML
        modules_yaml.write_text(document, encoding="utf-8")
        extra = [createrepo.Metadata(modules_yaml, "modules")]
        shipped = {r.header.nevra for r in rpms if not r.header.is_source}
        notes = advisories.shipped_in(input_advisories(job), shipped)
        if notes:
            (job.workdir / UPDATEINFO).write_text(updateinfo.dump(notes), encoding="utf-8")
            extra.append(createrepo.Metadata(job.workdir / UPDATEINFO, "updateinfo"))
        createrepo.make_repo(job.workdir / REPO, epoch, extra)
        return describe_tree(job.output_dir, job.workdir)


def input_advisories(job: Job) -> list[advisories.Advisory]:
    """The advisories the job's inputs carry (their `updateinfo.xml`), inputs in order."""
    return [
        advisory
        for i in sorted(job.inputs)
        for o in job.inputs[i].outputs
        if o.path.rsplit("/", 1)[-1] == UPDATEINFO
        for advisory in updateinfo.read(job.input_path(o))
    ]
