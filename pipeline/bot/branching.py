"""`factory branch-release NEW [--from OLD]`: prepare release NEW from OLD, the way Fedora branches.

1. dist-git: every component a pin follows on a branch of release OLD (`f42`) gets the branch
   of release NEW (`f43`) at the old branch's head, unless it has one already (then it is left
   as it is). Local dist-git through `pipeline.git.distgit`; dist-git on the GitLab of
   `forge.gitlab.url` through its API (`pipeline.bot.forge_gitlab.GitLabDistGit`).
2. The definitions repository gets a `release/OLD` branch at the target's head: it keeps
   composing OLD, and its latest good stays under `refs/composes/latest/OLD/`.
3. One merge request moves the target to NEW, changing only the lines it must: factory.yaml's
   `release.version` (and `dist`, `.fl42` -> `.fl43`); a module stream named for the old branch
   becomes a new stream (`modules/base-runtime/f42.yaml` -> `f43.yaml`, its `stream:`, and every
   dependency and variant selection naming it); every pin following `f42` follows `f43`, its
   `ref:` at that branch's head; each variant's `release:` and the output options that name the
   release (`volume_id: FL-42-AtomicHost`). EOLs stay as they are: the merge request says so.

Release-branch names are recognized by their end (`lifecycle.release_branch`): `f42`, `epel42`
and `42` belong to release 42; `rawhide`, `3.12` or `f142` do not and are left alone. Rerun, it
makes nothing twice: branches that exist stay, an open merge request is updated or left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from pipeline.bot import sources, yamledit
from pipeline.bot.forge import OPENED, BranchingForge, MergeRequest, MergeRequestSpec, head_marker
from pipeline.core import lifecycle
from pipeline.core.canonical import digest
from pipeline.core.definitions import CONFIG_PATH, SourceFile
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.model import Definitions, Module, Variant
from pipeline.git import repo as gitrepo
from pipeline.workspace import Workspace

LABEL = "release"
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._]*")  # factory.json's release.version


class Branches(Protocol):
    """Reads and makes dist-git branches (local dist-git, or the projects of a GitLab)."""

    def head(self, url: str, branch: str) -> str | None: ...

    def create_branch(self, url: str, branch: str, start: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class DistGitBranch:
    """One component's new branch: where it starts, and whether this run made it."""

    component: str
    url: str
    old: str  # the branch of release OLD
    new: str  # the branch of release NEW
    head: str  # where the new branch points (the old branch's head when made)
    created: bool = False


@dataclass(frozen=True, slots=True)
class Rename:
    """A module stream that becomes the new release's stream."""

    module: str  # old name:stream
    stream: str  # the new stream
    old_path: str
    new_path: str


@dataclass(frozen=True, slots=True)
class Branching:
    """What `branch-release` did or would do."""

    old: str
    new: str
    branches: tuple[DistGitBranch, ...]
    renames: tuple[Rename, ...]
    release_branch: str  # `release/OLD`
    release_branch_created: bool
    spec: MergeRequestSpec
    before: Mapping[str, str]  # path -> text on the target, of every file the MR changes
    action: str  # opened, updated, unchanged, dry-run
    merge_request: MergeRequest | None = None
    notes: tuple[str, ...] = ()


def branch_release(
    ws: Workspace,
    forge: BranchingForge | None,
    branches: Branches,
    *,
    target_branch: str,
    new: str,
    old: str | None = None,
) -> Branching | None:
    """Branch release `new` from `old` (default: the release the target composes); forge None
    is a dry run (reads dist-git heads, makes nothing). None: the target composes `new` already."""
    defs = ws.load(target_branch, check_distgit=False)
    current = defs.config.release.version
    if new == current and old in (None, current):
        return None
    old = old or current
    if not _VERSION.fullmatch(new):
        raise InvalidInput(f"not a release version: {new!r}", hint="like 43 or 9.4", code="bad-release")
    if old != current:
        raise InvalidInput(
            f"{target_branch} composes release {current}, not {old}",
            hint=f"branch from what {target_branch} composes: --from {current}, or --target release/{old}",
            code="wrong-release",
        )
    if new == old:
        raise InvalidInput(f"release {new} cannot be branched from itself", code="bad-release")
    made = _distgit_branches(defs, branches, old, new, dry_run=forge is None)
    heads = {(b.component, b.new): b.head for b in made}
    renames = _renames(defs, old, new)
    before, after, notes = _edits(ws, target_branch, defs, old, new, heads, renames)
    removed = tuple(sorted(r.old_path for r in renames))
    files = [f for f in ws.files(target_branch) if f.path not in removed and f.path not in after]
    files += [SourceFile(p, gitrepo.blob_id(t.encode()), sources.reader(t)) for p, t in after.items()]
    ws.load_files(files)  # what validation says once merged (InvalidDefinitions: exit 2)
    release_branch = f"release/{old}"
    spec = _spec(defs, old, new, made, renames, after, removed, target_branch, release_branch, notes)
    if forge is None:
        return Branching(old, new, made, renames, release_branch, False, spec, before, "dry-run", None, notes)
    created = forge.create_branch(release_branch, target_branch)
    existing = forge.find(spec.source_branch)
    opened = next((mr for mr in existing if mr.state == OPENED), None)
    if opened is not None and opened.head == spec.head:
        action, mr = "unchanged", opened
    elif opened is not None:
        action, mr = "updated", forge.update(opened, spec)
    else:
        action, mr = "opened", forge.open(spec)
    return Branching(old, new, made, renames, release_branch, created, spec, before, action, mr, notes)


# -- dist-git ---------------------------------------------------------------------------------------------


def _distgit_branches(
    defs: Definitions, branches: Branches, old: str, new: str, *, dry_run: bool
) -> tuple[DistGitBranch, ...]:
    """Every (component, release branch) a pin follows, its new branch made (unless dry_run)."""
    wanted: dict[tuple[str, str], str] = {}
    for module in defs.modules.values():
        for pin in module.components:
            if lifecycle.release_branch(pin.branch, old, new) is not None:
                wanted[(pin.component, pin.branch)] = defs.config.distgit_for(pin)
    if not wanted:
        raise InvalidInput(
            f"no pin follows a dist-git branch of release {old} (such as f{old})",
            hint="branch-release follows branches named for the release, e.g. f42 -> f43",
            code="no-release-branch",
        )
    found = []
    missing = []
    for (component, branch), url in sorted(wanted.items()):
        target = lifecycle.release_branch(branch, old, new)
        assert target is not None
        there = branches.head(url, target)
        start = branches.head(url, branch)
        if there is None and start is None:
            missing.append(f"{component} ({url}) has no branch {branch}")
            continue
        found.append(DistGitBranch(component, url, branch, target, there or start or ""))
    if missing:
        raise OperationFailed("cannot branch dist-git: " + "; ".join(missing), code="unreachable-distgit")
    if dry_run:
        return tuple(found)
    return tuple(
        DistGitBranch(b.component, b.url, b.old, b.new, b.head, branches.create_branch(b.url, b.new, b.head))
        for b in found
    )


# -- the definitions ------------------------------------------------------------------------------------


def _renames(defs: Definitions, old: str, new: str) -> tuple[Rename, ...]:
    found = []
    for module in sorted(defs.modules.values(), key=lambda m: m.nsid):
        stream = lifecycle.release_branch(module.stream, old, new)
        if stream is None:
            continue
        path = PurePosixPath(module.path)
        if len(path.parts) == 3:
            new_path = str(path.parent / f"{stream}.yaml")
        else:
            new_path = str(path.parent / f"{module.name}-{stream}.yaml")
        if f"{module.name}:{stream}" in defs.modules:
            raise InvalidInput(
                f"{module.name}:{stream} exists already: {module.nsid} cannot become it", code="stream-exists"
            )
        found.append(Rename(module.nsid, stream, module.path, new_path))
    return tuple(found)


def _edits(
    ws: Workspace,
    rev: str,
    defs: Definitions,
    old: str,
    new: str,
    heads: Mapping[tuple[str, str], str],
    renames: Sequence[Rename],
) -> tuple[dict[str, str], dict[str, str], tuple[str, ...]]:
    """(text before, text after) of every file the merge request changes, keyed by the path it
    has after (a renamed module stream by its new path), and notes for the description."""
    streams = {r.module: r for r in renames}
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    notes: list[str] = []
    config_text = sources.text_at(ws, rev, CONFIG_PATH)
    edited = yamledit.set_scalar(CONFIG_PATH, config_text, ("release", "version"), new)
    dist = lifecycle.release_branch(defs.config.dist, old, new)
    if dist is not None:
        edited = yamledit.set_scalar(CONFIG_PATH, edited, ("dist",), dist)
    else:
        notes.append(f"`dist` ({defs.config.dist}) does not name release {old}: left as it is")
    before[CONFIG_PATH], after[CONFIG_PATH] = config_text, edited
    for module in sorted(defs.modules.values(), key=lambda m: m.nsid):
        text = sources.text_at(ws, rev, module.path)
        changed = _module_text(module, text, old, new, heads, streams)
        if changed != text:
            rename = streams.get(module.nsid)
            path = rename.new_path if rename else module.path
            before[module.path], after[path] = text, changed
    for variant in sorted(defs.variants.values(), key=lambda v: v.uid):
        text = sources.text_at(ws, rev, variant.path)
        changed = _variant_text(variant, text, old, new, streams)
        if changed != text:
            before[variant.path], after[variant.path] = text, changed
    return before, after, tuple(notes)


def _module_text(
    module: Module,
    text: str,
    old: str,
    new: str,
    heads: Mapping[tuple[str, str], str],
    streams: Mapping[str, Rename],
) -> str:
    path = module.path
    if module.nsid in streams:
        text = yamledit.set_scalar(path, text, ("stream",), streams[module.nsid].stream)
    for relation, deps in (("requires", module.requires), ("buildrequires", module.buildrequires)):
        for name, stream in deps:
            rename = streams.get(f"{name}:{stream}")
            if rename is not None:
                text = yamledit.set_scalar(path, text, ("dependencies", relation, name), rename.stream)
    for pin in module.components:
        branch = lifecycle.release_branch(pin.branch, old, new)
        if branch is None:
            continue
        where = ("components", "rpms", pin.component)
        text = yamledit.set_scalar(path, text, (*where, "branch"), branch)
        if pin.ref:
            text = yamledit.set_scalar(path, text, (*where, "ref"), heads[(pin.component, branch)])
    return text


def _variant_text(variant: Variant, text: str, old: str, new: str, streams: Mapping[str, Rename]) -> str:
    path = variant.path
    if variant.release == old:
        text = yamledit.set_scalar(path, text, ("release",), new)
    for i, selection in enumerate(variant.modules):
        rename = streams.get(selection.module)
        if rename is not None:
            name = selection.module.split(":", 1)[0]
            text = yamledit.set_scalar(path, text, ("modules", i, "module"), f"{name}:{rename.stream}")
    for i, output in enumerate(variant.outputs):
        for key, value in output.options:
            if isinstance(value, str) and lifecycle.release_token(value, old, new) != value:
                changed = lifecycle.release_token(value, old, new)
                text = yamledit.set_scalar(path, text, ("outputs", i, "options", key), changed)
    return text


# -- the merge request ------------------------------------------------------------------------------------


def source_branch(new: str) -> str:
    return f"factory/branch/{new}"


def _spec(
    defs: Definitions,
    old: str,
    new: str,
    made: Sequence[DistGitBranch],
    renames: Sequence[Rename],
    files: Mapping[str, str],
    removed: tuple[str, ...],
    target: str,
    release_branch: str,
    notes: Sequence[str],
) -> MergeRequestSpec:
    name = defs.config.release.name
    title = f"Branch {name} {new} from {old}"
    head = digest({"files": dict(sorted(files.items())), "removed": list(removed)})
    parts = [
        f"Prepares **{name} {new}** from {old}, the way Fedora branches. Once merged, `{target}` composes "
        f"{new} (compose IDs `{defs.config.release.short}-{new}-…`) while `{release_branch}` keeps "
        f"composing {old}; each release keeps its own latest good (`refs/composes/latest/{new}/`, "
        f"`refs/composes/latest/{old}/`), so neither replaces the other's.",
        "",
        f"### dist-git branches ({len(made)})",
        "",
        "| component | from | new branch | at |",
        "| --- | --- | --- | --- |",
        *(f"| `{b.component}` | `{b.old}` | `{b.new}` | `{b.head[:12]}` |" for b in made),
        "",
        "### Module streams",
        "",
        *(
            [
                f"- `{r.module}` becomes `{r.module.split(':', 1)[0]}:{r.stream}` (`{r.new_path}`)"
                for r in renames
            ]
            or ["- no stream is named for the release: every module keeps its stream"]
        ),
        "",
        "### Also",
        "",
        f"- `factory.yaml`: release {old} -> {new}",
        "- every pin following a branch of release " + f"{old} follows the one of {new}, at its head",
        f'- variants: `release: "{new}"`, and output options naming {old}',
        "- EOLs are unchanged: set the End Of Life of the new streams and variants in this merge request",
        *(f"- {note}" for note in notes),
        "",
        head_marker(head),
    ]
    return MergeRequestSpec(
        source_branch=source_branch(new),
        target_branch=target,
        title=title,
        description="\n".join(parts) + "\n",
        labels=(LABEL,),
        files=dict(files),
        head=head,
        commit_message=f"{title}\n\n" + "".join(f"{r.old_path} -> {r.new_path}\n" for r in renames),
        removed=removed,
    )
