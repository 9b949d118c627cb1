"""`factory import modulemd|pungi` and `factory export pungi`: arguments, files and output.

An import writes factory definition files into --out (default: the repository, so
`modules/NAME/STREAM.yaml` and `variants/UID.yaml`), after checking that the definitions there
and the new ones validate together; it never overwrites a file that differs unless --force,
and writes nothing at all when it refuses. What could not be carried over is printed, one line
per construct with its file and line; the rest is imported (exit 0). An import that imports
nothing (every document refused or left out) is bad input: exit 2, nothing written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.commands import files as named_files
from pipeline.commands.output import out as _out
from pipeline.commands.output import out_json as _json
from pipeline.core import definitions
from pipeline.core.config import Config
from pipeline.core.definitions import SourceFile
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.model import Module, Pin
from pipeline.formats import pungi
from pipeline.interop import from_modulemd, from_pungi, to_pungi
from pipeline.interop.report import Loss
from pipeline.interop.yamlout import module_path, module_yaml, variant_path, variant_yaml
from pipeline.tools import libmodulemd, xmllint
from pipeline.workspace import WORKTREE, Workspace

if TYPE_CHECKING:
    from pipeline.core.packages import Repository

EXIT_OK = 0
INSTALLED_DTD = Path("/usr/share/pungi/variants.dtd")  # where Pungi's package puts its DTD


def cmd_import_modulemd(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    config = ws.config(WORKTREE)
    dest = Path(args.out) if args.out else ws.root
    existing = _modules_at(ws.root, dest)
    documents = []
    for name in args.files:
        text = named_files.read_bytes(name, "modulemd file").decode("utf-8", errors="replace")
        documents.extend(libmodulemd.read(name, text, name=args.name, stream=args.stream))
    known: dict[str, frozenset[str]] = {}
    for module in existing.values():
        known[module.name] = known.get(module.name, frozenset()) | {module.stream}
    source, artifact_builds = "", dict[str, str]()
    if args.source:
        chain = _source_chain(ws, config, args.source, args.arch)
        source = args.source
        for _, repositories in chain:
            for repository in repositories:
                for package in repository.packages:
                    if not package.is_source:
                        artifact_builds.setdefault(package.nevra, package.build)
    context = from_modulemd.Context(
        eol=_eol(args.eol),
        known=known,
        distgit_url=config.distgit.url,
        source=source,
        artifact_builds=artifact_builds,
    )
    result = from_modulemd.convert(documents, context)
    origin = ", ".join(args.files)
    if not result.modules:
        _nothing_imported(args, result.losses, origin, "no module stream")
    files = {
        module_path(m): module_yaml(m, f"Imported by `factory import modulemd` from {origin}")
        for m in result.modules
    }
    written = _write(ws.root, dest, files, force=args.force)
    _report(args, result.losses, written, f"{len(result.modules)} module streams imported")
    return EXIT_OK


def cmd_import_pungi(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    config = ws.config(WORKTREE)
    dest = Path(args.out) if args.out else ws.root
    variants_file = named_files.existing_file(args.variants, "variants file")
    comps_file = named_files.existing_file(args.comps, "comps file")
    errors = xmllint.validate(_dtd(args.dtd), variants_file)
    if errors:
        raise InvalidInput(
            f"{variants_file} does not follow Pungi's DTD:\n" + "\n".join(errors), code="invalid-variants-xml"
        )
    variants = pungi.read_variants(str(variants_file), named_files.read_bytes(variants_file, "variants file"))
    comps = pungi.read_comps(str(comps_file), named_files.read_bytes(comps_file, "comps file"))
    context = from_pungi.Context(
        release=config.release.version,
        stream=args.stream or config.release.version,
        branch=args.branch or "",
        eol=_eol(args.eol),
        modules=_modules_at(ws.root, dest),
        source=args.source or "",
    )
    builds = None
    if args.source:  # read for the arches of the variants imported, unless told
        arches = args.arch or sorted(
            {a for v in _all_variants(variants) for a in v.arches} & set(from_pungi.VARIANT_ARCHES)
        )
        builds = _SourceBuilds(_source_chain(ws, config, args.source, arches))
    result = from_pungi.convert(
        str(variants_file), variants, str(comps_file), comps, context, _DistGitLookup(ws.root, config), builds
    )
    if not result.modules and not result.variants:
        _nothing_imported(args, result.losses, str(variants_file), "no variant and no module")
    origin = f"Imported by `factory import pungi` from {variants_file} and {comps_file}"
    files = {module_path(m): module_yaml(m, origin) for m in result.modules}
    files.update({variant_path(v): variant_yaml(v, origin) for v in result.variants})
    written = _write(ws.root, dest, files, force=args.force)
    summary = f"{len(result.variants)} variants and {len(result.modules)} modules imported"
    _report(args, result.losses, written, summary)
    return EXIT_OK


def cmd_import_repo(args: argparse.Namespace) -> int:
    """A module pinning the newest build of each named package in a source."""
    from pipeline.core.model import BinaryPin, Profile
    from pipeline.interop import from_source

    ws = Workspace.open(args.repo)
    config = ws.config(WORKTREE)
    name, stream = _module_name(args.module)
    chain = _source_chain(ws, config, args.source, args.arch)
    from pipeline.tools.rpmlib import label_compare

    found, missing = [], []
    for package in args.packages:
        item = from_source.find(package, chain, label_compare)
        if item is None:
            missing.append(package)
        else:
            found.append(item)
    if missing:
        from pipeline.core.names import unknown

        held = {p.name for _, repositories in chain for r in repositories for p in r.packages}
        raise unknown("package", missing[0], held, where=f" in source {args.source} (nor what it inherits)")
    pins = from_source.pins(found, label_compare)
    rpms = tuple(dict.fromkeys(b for item in found for b in pins[item.component].binaries))
    eol = _eol(args.eol) or _release_eol(ws)
    module = Module(
        name=name,
        stream=stream,
        summary=args.summary or f"{name} {stream}, built elsewhere",
        description=f"Builds of {', '.join(sorted(pins))} made elsewhere, taken from source {args.source}.",
        license="NOASSERTION",
        eol=eol,
        components=(),
        binaries=tuple(BinaryPin(c, args.source, pins[c].build.nvr) for c in sorted(pins)),
        profiles=(Profile("default", "", rpms),),
        api=rpms,
    )
    origin = f"Imported by `factory import repo` from source {args.source}"
    written = _write(
        ws.root,
        Path(args.out) if args.out else ws.root,
        {module_path(module): module_yaml(module, origin)},
        force=args.force,
    )
    if args.json:
        _json(
            {
                "written": written,
                "pins": [
                    {"component": c, "build": f.build.nvr, "found_in": f.holder, "rpms": list(f.binaries)}
                    for c, f in sorted(pins.items())
                ],
            }
        )
        return EXIT_OK
    for component, item in sorted(pins.items()):
        where = "" if item.holder == args.source else f" (from {item.holder}, which it inherits)"
        _out(f"pinned {component} at {item.build.nvr}{where}: {', '.join(item.binaries)}")
    _out("\n".join(f"wrote {path}" for path in written) or "nothing to write: the module file is already so")
    return EXIT_OK


def _module_name(value: str) -> tuple[str, str]:
    name, _, stream = value.partition(":")
    if (
        not name
        or not stream
        or not from_modulemd.NAME.match(name)
        or not from_modulemd.STREAM_NAME.match(stream)
    ):
        raise InvalidInput(f"--module {value!r} is not NAME:STREAM", code="invalid-module-name")
    return name, stream


def _source_chain(
    ws: Workspace, config: Config, source: str, arches: list[str] | None = None
) -> list[tuple[str, list[Repository]]]:
    """The source and what it inherits, each read for the arches given, else every arch of the
    release (the destination's live variants')."""
    from pipeline.compose.sources import SourceReader
    from pipeline.core.names import unknown
    from pipeline.core.sources import release_arches

    if config.source(source) is None:
        raise unknown("source", source, [s.name for s in config.sources])
    reader = SourceReader(config, ws.root, os.environ)
    if not arches:
        defs = ws.load(WORKTREE, check_distgit=False)
        arches = list(release_arches(v.arches for v in defs.live_variants().values()))
    if not arches:
        raise InvalidInput(
            "no live variant says which arches to read the source for",
            hint="pass --arch ARCH",
            code="no-arches",
        )
    return [(name, [reader.repository(name, arch) for arch in arches]) for name in reader.chain([source])]


def _release_eol(ws: Workspace) -> dt.date:
    """The EOL of a module given none: the latest of the live variants' (the release's)."""
    defs = ws.load(WORKTREE, check_distgit=False)
    eols = [v.eol for v in defs.live_variants().values()]
    if not eols:
        raise InvalidInput("no live variant gives an EOL: pass --eol DATE", code="no-eol")
    return max(eols)


def cmd_export_pungi(args: argparse.Namespace) -> int:
    ws = Workspace.open(args.repo)
    defs = ws.load(args.rev or WORKTREE, check_distgit=False)
    ws.save()
    dest = Path(args.out)
    files = {
        "variants.xml": to_pungi.export_variants(defs),
        "comps.xml": to_pungi.export_comps(defs),
        "modules.yaml": to_pungi.export_modules(defs),
    }
    conflicts = _conflicts(dest, files) if not args.force else []
    if conflicts:
        raise InvalidInput(
            "would overwrite files that differ: " + ", ".join(str(dest / p) for p in conflicts),
            hint="pass --force to overwrite them",
            code="would-overwrite",
        )
    dest.mkdir(parents=True, exist_ok=True)
    staged = {name: dest / f".{name}.tmp" for name in files}
    for name, text in files.items():
        staged[name].write_text(text, encoding="utf-8")
    errors = xmllint.validate(_dtd(None), staged["variants.xml"])
    if errors:
        for path in staged.values():
            path.unlink()
        raise OperationFailed(
            "the exported variants.xml does not follow Pungi's DTD (a bug):\n" + "\n".join(errors),
            code="bug-variants-xml",
        )
    for name, path in staged.items():
        os.replace(path, dest / name)
    written = [str(dest / name) for name in files]
    if args.json:
        _json({"written": written, "variants": len(defs.variants), "modules": len(defs.modules)})
    else:
        _out("\n".join(f"wrote {path}" for path in written))
    return EXIT_OK


# -- the destination --------------------------------------------------------------------------


def _destination_files(root: Path, dest: Path, new: Mapping[str, str]) -> list[SourceFile]:
    """The definitions the destination would hold: its files, the new ones, root's factory.yaml."""
    from pipeline.git import repo as gitrepo

    files = {f.path: f for f in gitrepo.worktree_files(dest) if f.path != definitions.CONFIG_PATH}
    config = named_files.read_bytes(root / definitions.CONFIG_PATH, "configuration")
    files[definitions.CONFIG_PATH] = _source(definitions.CONFIG_PATH, config)
    for path, text in new.items():
        files[path] = _source(path, text.encode("utf-8"))
    return sorted(files.values(), key=lambda f: f.path)


def _source(path: str, raw: bytes) -> SourceFile:
    def read() -> bytes:
        return raw

    return SourceFile(path, hashlib.sha256(raw).hexdigest(), read)


def _modules_at(root: Path, dest: Path) -> dict[str, Module]:
    """The module streams the destination defines (files that do not parse are left out)."""
    found = {}
    for source in _destination_files(root, dest, {}):
        parsed, _ = definitions.parse_file(source.path, source.read())
        if isinstance(parsed, Module):
            found[parsed.nsid] = parsed
    return found


def _write(root: Path, dest: Path, files: Mapping[str, str], *, force: bool) -> list[str]:
    """Write the new definition files, after checking they validate with what dest holds."""
    conflicts = _conflicts(dest, files) if not force else []
    if conflicts:
        raise InvalidInput(
            "would overwrite definition files that differ: " + ", ".join(str(dest / p) for p in conflicts),
            hint="pass --force to overwrite them (or --out DIR to write elsewhere)",
            code="would-overwrite",
        )
    definitions.load(_destination_files(root, dest, files))  # raises InvalidDefinitions: nothing written
    written = []
    for path, text in sorted(files.items()):
        target = dest / path
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_file(target, text)
        written.append(str(target))
    return written


def _conflicts(dest: Path, files: Mapping[str, str]) -> list[str]:
    return sorted(
        path
        for path, text in files.items()
        if (dest / path).exists()
        and (not (dest / path).is_file() or (dest / path).read_text(encoding="utf-8") != text)
    )


def _write_file(target: Path, text: str) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)


def _eol(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"--eol {value!r} is not a date (YYYY-MM-DD)", code="invalid-date") from exc


def _dtd(given: str | None) -> Path:
    """Pungi's DTD: the one given, Pungi's installed one, or the copy shipped with factory."""
    if given:
        return named_files.existing_file(given, "DTD")
    if INSTALLED_DTD.is_file():
        return INSTALLED_DTD
    from pipeline import schemas

    return schemas.pungi_dtd()


def _all_variants(variants: tuple[pungi.PungiVariant, ...]) -> list[pungi.PungiVariant]:
    """Every variant of variants.xml, nested ones too."""
    found = []
    stack = list(variants)
    while stack:
        variant = stack.pop()
        found.append(variant)
        stack.extend(variant.children)
    return found


class _SourceBuilds:
    """from_pungi.BuildLookup over a source's repositories (and what it inherits)."""

    def __init__(self, chain: list[tuple[str, list[Repository]]]) -> None:
        self.chain = chain

    def build_of(self, package: str) -> tuple[str, str] | None:
        from pipeline.interop import from_source
        from pipeline.tools.rpmlib import label_compare

        found = from_source.find(package, self.chain, label_compare)
        return None if found is None else (found.component, found.build.nvr)


class _DistGitLookup:
    """from_pungi.DistGitLookup over the dist-git repositories reachable from here."""

    def __init__(self, root: Path, config: Config) -> None:
        from pipeline.git.distgit import DistGit

        self.distgit = DistGit(root)
        self.root = root
        self.config = config

    def provides(self, package: str, branch: str) -> tuple[from_pungi.Provided, str]:
        url = self.config.distgit_for(Pin(package, "", branch))
        branches = self.distgit.branches(url)
        if branches is None:
            # A local dist-git directory without this repository does not provide the package;
            # anything else (a URL, a directory that is not there) cannot be asked from here.
            local = url.removeprefix("file://")
            if "://" not in local and (self.root / local).parent.is_dir():
                return from_pungi.Provided.NO, ""
            return from_pungi.Provided.UNKNOWN, ""
        head = self.distgit.head(url, branch) if branch in branches else None
        return (from_pungi.Provided.YES, head) if head else (from_pungi.Provided.NO, "")


def _nothing_imported(args: argparse.Namespace, losses: tuple[Loss, ...], origin: str, what: str) -> None:
    """Say what was refused, then refuse the import as a whole: it would write nothing."""
    _report(args, losses, [], f"{what} imported")
    raise InvalidInput(
        f"nothing imported from {origin}: {what} could be carried over ({len(losses)} constructs not carried over)",
        hint="the lines above name each document or construct that was refused, and why",
        code="nothing-imported",
    )


def _report(args: argparse.Namespace, losses: tuple[Loss, ...], written: list[str], summary: str) -> None:
    if args.json:
        document: dict[str, Any] = {"written": written, "not_carried_over": [x.to_json() for x in losses]}
        _json(document)
        return
    lines = [x.render() for x in losses]
    lines += [f"wrote {path}" for path in written]
    lines.append(f"{summary}; {len(written)} files written, {len(losses)} constructs not carried over")
    _out("\n".join(lines))
