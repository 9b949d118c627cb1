"""The `factory` command: argument parsing and output only.

Only `main` turns exceptions into exit codes: 0 ok, 1 operation failed, 2 invalid input,
3 bug (with the traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TypeAlias

from pipeline import __version__
from pipeline.core.errors import FactoryError, InvalidDefinitions
from pipeline.core.states import MergeRequestState

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
WORKTREE = "worktree"  # the same name as pipeline.workspace.WORKTREE, without importing it

# A handler is named "module:function" in pipeline.commands and imported only when it runs, so
# `factory --help` and the quick queries do not pay for the imports of the others.
Handler = str


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    module, function = name.split(":")
    found: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"pipeline.commands.{module}"), function
    )
    return found


# -- parser ----------------------------------------------------------------------------------

Sub: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Command: TypeAlias = Callable[[str, Handler, str], argparse.ArgumentParser]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="factory",
        description="A Git-native release pipeline for a modular RPM-based distribution.",
        epilog="Exit status: 0 ok, 1 operation failed, 2 invalid input, 3 bug, 130 interrupted.",
    )
    top.add_argument("--version", action="version", version=f"factory {__version__}")
    top.add_argument(
        "--debug", action="store_true", help="log every external command factory runs (to stderr)"
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (
        _definitions_commands,
        _compose_commands,
        _lineage_commands,
        _ci_commands,
        _release_commands,
        _example_commands,
        _bot_commands,
        _interop_commands,
        _overview_commands,
        _lifecycle_commands,
        _publish_commands,
        _gc_commands,
        _check_commands,
    ):
        group(sub)
    return top


# -- the options every group shares --------------------------------------------------------------


def _add_repo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", default=".", help="the definitions repository (default: .)")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_rev(p: argparse.ArgumentParser, help_text: str, default: str | None = None) -> None:
    p.add_argument("--rev", default=default, help=help_text)


def _add_worktree_rev(p: argparse.ArgumentParser) -> None:
    _add_rev(p, "the revision of the definitions (default: the working tree)", WORKTREE)


def _add_policies_rev(p: argparse.ArgumentParser) -> None:
    _add_rev(p, "the policies and waivers of this revision (default: HEAD)")


def _add_forge(p: argparse.ArgumentParser, target_help: str) -> None:
    p.add_argument("--forge", choices=("local", "gitlab"), help="default: factory.yaml's forge.kind")
    p.add_argument("--target", help=target_help)


def _add_key(p: argparse.ArgumentParser, home_help: str, key_help: str) -> None:
    p.add_argument("--gnupghome", help=home_help)
    p.add_argument("--key", help=key_help)


def _command(
    sub: Sub, name: str, handler: Handler, help_text: str, *, json_flag: bool = True
) -> argparse.ArgumentParser:
    """`factory NAME` running `handler`, with --repo (and --json unless `json_flag` is False)."""
    p = sub.add_parser(name, help=help_text, description=help_text)
    _add_repo(p)
    if json_flag:
        _add_json(p)
    p.set_defaults(handler=handler)
    return p


def _group(sub: Sub, name: str, help_text: str) -> Command:
    """A command with subcommands (`factory NAME SUBCOMMAND`), each made by `_command`."""
    group = sub.add_parser(name, help=help_text, description=help_text)
    inner = group.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")

    def command(sub_name: str, handler: Handler, sub_help: str) -> argparse.ArgumentParser:
        return _command(inner, sub_name, handler, sub_help)

    return command


# -- the groups, in the order `factory --help` lists them ----------------------------------------


def _definitions_commands(sub: Sub) -> None:
    """`validate`, `plan`, `impact`, `deps`, `graph`: the definitions and what they make."""
    p = _command(
        sub,
        "validate",
        "definitions:cmd_validate",
        "Check the definitions against the schemas and each other, the pins against dist-git and the "
        "binary pins against their sources (factory.yaml's sources:) and the artifact store.",
    )
    _add_rev(p, "validate this commit straight from Git objects (default: the working tree)")

    p = _command(
        sub,
        "plan",
        "definitions:cmd_plan",
        "List the nodes a change affects, in tiers, with the reason for each.",
    )
    p.add_argument("--base", required=True, help="the revision before the change ('none': an empty tree)")
    p.add_argument("--head", default=WORKTREE, help="the revision after it (default: the working tree)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (for merge requests)")

    p = _command(
        sub, "impact", "definitions:cmd_impact", "What a move of a component's branch would rebuild."
    )
    p.add_argument("component", help="the component (dist-git repository name)")
    p.add_argument("--branch", help="only pins following this branch")
    _add_worktree_rev(p)

    p = _command(
        sub,
        "deps",
        "definitions:cmd_deps",
        "What a module depends on, or with --reverse what depends on it; what a variant ships; with EOLs.",
    )
    p.add_argument("module", help="NAME, NAME:STREAM, module:NAME:STREAM or variant:UID")
    p.add_argument("--reverse", action="store_true", help="list the modules and variants that depend on it")
    _add_worktree_rev(p)

    p = _command(sub, "graph", "definitions:cmd_graph", "Draw the artifact graph.", json_flag=False)
    p.add_argument("--format", choices=("text", "dot", "json", "svg"), default="text")
    _add_worktree_rev(p)


def _compose_commands(sub: Sub) -> None:
    """`compose`."""
    p = _command(
        sub, "compose", "compose:run", "Compose what is out of date, tier by tier, recording lineage in Git."
    )
    p.add_argument("nodes", nargs="*", metavar="NODE", help="compose these nodes (and what they need)")
    p.add_argument("--all", action="store_true", help="every node (the default when no NODE is given)")
    p.add_argument("--since", metavar="REV", help="only what changed since REV, and what that needs")
    p.add_argument(
        "--type",
        default="nightly",
        help="productmd's compose type, its letter in compose IDs: nightly (the default, .n.N), test (.t.N), "
        "ci (.ci.N: what CI pipelines compose) or production (no letter: FL-42-Server-20261207.0); a "
        "production run reuses only production composes (builds excepted), so it composes the rest again",
    )
    p.add_argument("--workers", type=int, default=2, help="nodes composed at once (default: 2)")
    p.description = (
        "Compose what is out of date at the committed HEAD, tier by tier, recording lineage in Git "
        "(a tag and a note per compose). When HEAD is on one of the release's branches "
        "(factory.yaml's release.branches; default: the repository's default branch and "
        "release/<version>; in GitLab CI a push pipeline of one of them, never a merge request "
        "pipeline) each good compose becomes latest good. Any other commit composes all the same, "
        "its dependants consuming what it composed, but its composes are marked off-branch and "
        "move no latest good: `factory latest --rev HEAD` lists them. A later compose of a "
        "release's branch with the same compose key reuses such a compose and makes it latest good. "
        "Every compose a run makes records the run's ID, productmd's compose ID of the release "
        "(FL-42-20261207.n.0, production FL-42-20261207.0): FACTORY_RUN's (`factory ci generate` sets "
        "it for every job of a pipeline), else a GitLab pipeline's (the date of CI_PIPELINE_CREATED_AT, "
        "respin CI_PIPELINE_IID), else the next respin of the day and type, reserved here; "
        "`factory lineage RUN_ID` lists the composes it made."
    )


def _lineage_commands(sub: Sub) -> None:
    """`lineage`, `why`, `latest`: what was composed, from what."""
    p = _command(
        sub,
        "lineage",
        "lineage:show",
        "Show a compose's record, or the composes a run made (a run ID); or `push`/`pull` the lineage "
        "refs to/from a Git remote.",
    )
    p.add_argument("compose_id", metavar="COMPOSE_ID|RUN_ID|push|pull")
    p.add_argument("--remote", default="origin", help="push/pull: the Git remote (default: origin)")
    p.add_argument("--tree", action="store_true", help="every input, transitively, down to dist-git commits")

    p = _command(
        sub,
        "why",
        "lineage:why",
        "Every compose made with a component commit (or a build made elsewhere), directly or through inputs.",
    )
    p.add_argument(
        "pin",
        metavar="COMPONENT@COMMIT|NVR",
        help="openssl@9d0324eb, or a binary pin's build: glibc-2.41-9.fc42",
    )

    p = _command(sub, "latest", "lineage:latest", "The latest good compose of every node (or of one).")
    p.description = (
        "The latest good compose of every node (or of one) in a release. Only a compose of a commit "
        "on one of the release's branches (factory.yaml's release.branches; default: the "
        "repository's default branch and release/<version>) becomes latest good: `status`, the "
        "site, `release` and the mirror job read it. A compose of any other commit (a scratch "
        "branch, a merge request) is in lineage, marked off-branch; --rev REV lists what was "
        "composed from a commit."
    )
    p.add_argument("node", nargs="?", metavar="NODE")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--release", help="of this release (default: the one HEAD's factory.yaml composes)")
    which.add_argument(
        "--rev",
        metavar="REV",
        help="instead: the newest good compose of each node made from this commit (its compose tag "
        "points at it), latest good or not; marked off-branch when made off the release's branches",
    )


def _ci_commands(sub: Sub) -> None:
    """`ci generate`, `ci check`, `ci post-plan`: factory inside GitLab CI (issue 5)."""
    ci = sub.add_parser("ci", help="Factory inside GitLab CI.", description="Factory inside GitLab CI.")
    ci_sub = ci.add_subparsers(dest="ci_command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, text: str, base_required: bool) -> argparse.ArgumentParser:
        p = ci_sub.add_parser(name, help=text, description=text)
        _add_repo(p)
        p.add_argument(
            "--base", required=base_required, help="the revision before ('none' or 000...0: everything)"
        )
        p.add_argument("--head", default="HEAD", help="the revision after (default: HEAD)")
        p.set_defaults(handler=handler, json=False)
        return p

    p = command(
        "generate",
        "ci:cmd_generate",
        "Write the child pipelines composing what changed (batched jobs).",
        True,
    )
    p.add_argument(
        "--out", metavar="DIR", help="write every pipeline file into DIR (child.yml is the one to trigger)"
    )
    p.add_argument(
        "--max-jobs",
        type=int,
        help="jobs in one pipeline at most (default: ci.max_jobs of factory.yaml, 500)",
    )
    p = command(
        "check", "ci:cmd_check", "Exit 1 unless every node planned between base and head is composed.", False
    )
    _add_json(p)
    p.add_argument("--remote", default="origin", help="pull lineage from this remote first (default: origin)")
    p.add_argument("--no-pull", action="store_true", help="check the local lineage as it is")
    p.add_argument(
        "--inputs-of",
        nargs="+",
        metavar="NODE",
        help="instead of a plan: the inputs of these nodes that are not among them (a CI job's guard)",
    )
    p = ci_sub.add_parser(
        "post-plan",
        help="Post a plan as one note on a merge request (updated, never duplicated).",
        description="Post a plan as one note on a merge request (updated, never duplicated); "
        "a no-op outside GitLab CI (no CI_SERVER_URL).",
    )
    _add_repo(p)
    p.add_argument("--mr", required=True, help="the merge request IID")
    p.add_argument("--file", required=True, help="the Markdown to post (`factory plan --markdown`)")
    p.set_defaults(handler="ci:cmd_post_plan")


def _release_commands(sub: Sub) -> None:
    """`gate`, `sign`, `release`: decide, sign a copy, publish (issue 6)."""
    p = _command(
        sub, "gate", "release:cmd_gate", "Does a compose pass its gate? pass, fail or pending, with reasons."
    )
    p.add_argument("compose_id", metavar="COMPOSE_ID")
    _add_policies_rev(p)
    p.add_argument(
        "--promote",
        action="store_true",
        help="decide a PENDING compose's gate again: when it passes, record it FINISHED and make it "
        "latest good (exit 0); when it fails or checks are still missing, say so and change "
        "nothing (exit 1)",
    )

    def signing(name: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        p = _command(sub, name, handler, text)
        p.add_argument("compose_id", metavar="COMPOSE_ID")
        _add_key(
            p,
            "the GnuPG home of the key (default: factory.yaml signing.gnupghome)",
            "the key's fingerprint (default: factory.yaml signing.key)",
        )
        return p

    p = signing(
        "sign",
        "release:cmd_sign",
        "Sign a copy of a compose: RPMs, repomd.xml.asc, OSTree commits, image CHECKSUM files.",
    )
    p.add_argument("--out", metavar="DIR", help="where the signed copy goes (default: OUTPUT/signed/<id>)")

    p = signing(
        "release", "release:cmd_release", "Publish a compose atomically (or quarantine it if its gate fails)."
    )
    p.add_argument("--to", required=True, metavar="DIR", help="the release directory (DIR/<id>, DIR/latest)")
    p.add_argument("--keep", type=int, default=3, help="releases kept in DIR (default: 3)")
    p.add_argument(
        "--quarantine", metavar="QDIR", help="where a failing compose goes (default: DIR/../quarantine)"
    )
    p.add_argument(
        "--unsigned",
        action="store_true",
        help="publish without signing (RELEASE.json says so; nothing goes to a registry)",
    )
    _add_policies_rev(p)
    p.add_argument(
        "--registry",
        metavar="HOST[:PORT][/NAMESPACE]",
        help="where container images are pushed, signed (default: factory.yaml release.registry)",
    )


def _example_commands(sub: Sub) -> None:
    """`example distgit`, `example upstream`: the example distribution's components and source."""
    ex = sub.add_parser("example", help="The example distribution.", description="The example distribution.")
    ex_sub = ex.add_subparsers(dest="example_command", required=True, metavar="COMMAND")
    p = ex_sub.add_parser(
        "distgit",
        help="Materialize the example components into bare dist-git repositories.",
        description="Write one bare Git repository per example component, with deterministic commit "
        "hashes, so the pins in modules/ are real commits. Rerunning resets them.",
    )
    p.add_argument("dest", help="the directory to write DEST/<component>.git into")
    p.add_argument("--source", help="the example sources (default: examples/distgit of this checkout)")
    p.add_argument("--json", action="store_true", help="print the branch heads as JSON")
    p.set_defaults(handler="example:cmd_example_distgit")
    p = ex_sub.add_parser(
        "upstream",
        help="Build the example's upstream source: a yum repository of builds made elsewhere.",
        description="Build the packages of the example's upstream source with rpmbuild (the same RPMs "
        "on every machine) and write DEST/x86_64/ and DEST/src/ yum repositories with an updateinfo.xml, "
        "as published by the end of a day of examples/upstream/upstream.yaml. Rerunning rebuilds DEST.",
    )
    p.add_argument("dest", help="the directory to write the repositories into")
    p.add_argument("--day", help="publish what the upstream had by the end of this day (default: the first)")
    p.add_argument(
        "--source", help="the description (default: examples/upstream/upstream.yaml of this checkout)"
    )
    p.add_argument("--json", action="store_true", help="print the builds and advisories as JSON")
    p.set_defaults(handler="example:cmd_example_upstream")


def _bot_commands(sub: Sub) -> None:
    """`history`, `bot` and `mr`: branch history, the bump bot and the local forge."""
    history = _group(
        sub,
        "history",
        "Branch and source history: which commit each tracked branch pointed to, which build of each "
        "package each source held, when.",
    )
    p = history(
        "record",
        "history:record",
        "Record the current head of every branch a pin follows, and what every source holds "
        "(the newest build of each package, with the advisories naming it).",
    )
    p.add_argument(
        "--component", help="only this component's branches (and the sources its binary pins read)"
    )
    _add_rev(p, "the revision whose pins say what is tracked", WORKTREE)
    p = history(
        "show",
        "history:show",
        "What a component's branch pointed to at a time (default: now); with --source, which build "
        "of a package the source held.",
    )
    p.add_argument("component", metavar="COMPONENT|PACKAGE")
    p.add_argument("branch", nargs="?", metavar="BRANCH", help="the branch (not with --source)")
    p.add_argument("--source", metavar="SOURCE", help="a binary package source of factory.yaml")
    p.add_argument("--at", metavar="TIME", help="ISO 8601 (UTC unless it says otherwise) or @SECONDS")
    p.add_argument("--all", action="store_true", help="every recorded head (or build), newest first")

    bot = _group(
        sub,
        "bot",
        "The bump bot: merge requests that move pins to their branch heads or their sources' newest builds.",
    )
    reconcile = bot(
        "reconcile",
        "bot:cmd_reconcile",
        "Record branch heads and sources; open or update one bump MR per moved branch and per "
        "(component, source) with a newer build (security first; automerge as the source says).",
    )
    reconcile.add_argument("--component", help="only this component's branches (and binary pins)")
    reconcile.add_argument("--dry-run", action="store_true", help="decide and report; change nothing")
    reconcile.add_argument(
        "--trigger",
        action="store_true",
        help="for branches followed without a ref that moved: compose what was built from the old head",
    )
    serve = bot("serve", "bot:cmd_serve", "Reconcile on GitLab push webhooks and on a timer.")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8808, help="the port (default: 8808; 0: any free one)")
    serve.add_argument(
        "--interval", type=float, default=300.0, help="seconds between timed passes (default: 300)"
    )
    for p in (reconcile, serve):
        _add_forge(p, "the branch bump MRs target (default: the checked-out branch)")

    mr = _group(sub, "mr", "Merge requests of the local forge (refs/factory/merge-requests/).")
    p = mr("list", "mr:cmd_list", "List merge requests, newest first.")
    p.add_argument("--state", choices=(*MergeRequestState, "all"), default="all")
    for name, handler, text in (
        ("show", "mr:cmd_show", "Show a merge request and its description."),
        (
            "merge",
            "mr:cmd_merge",
            "Merge into the target branch (fast-forward or merge commit); refuses conflicts and, when the target is checked out, uncommitted changes.",
        ),
        ("close", "mr:cmd_close", "Close a merge request without merging it."),
    ):
        mr(name, handler, text).add_argument("id", metavar="ID", help="the merge request number (!N or N)")


def _interop_commands(sub: Sub) -> None:
    """factory import modulemd|pungi, factory export pungi (issue 14)."""
    imports = _group(sub, "import", "Bring definitions kept in other formats into factory.")
    modulemd = imports(
        "modulemd",
        "interop:cmd_import_modulemd",
        "Import modulemd v2 and modulemd-packager v2/v3 documents (several per file) as factory modules.",
    )
    modulemd.add_argument(
        "files", nargs="+", metavar="FILE", help="modulemd YAML files (e.g. repodata's modules.yaml)"
    )
    modulemd.add_argument("--name", help="the module name of packager documents that leave it out")
    modulemd.add_argument("--stream", help="the stream of packager documents that leave it out")
    pungi = imports(
        "pungi",
        "interop:cmd_import_pungi",
        "Import Pungi variants (variants.xml) and the comps groups they use as factory variants and modules.",
    )
    pungi.add_argument(
        "variants", metavar="VARIANTS.XML", help="Pungi's variants.xml (checked against Pungi's DTD)"
    )
    pungi.add_argument("--comps", required=True, metavar="COMPS.XML", help="the comps.xml holding the groups")
    pungi.add_argument(
        "--stream", help="the stream of modules made from comps groups (default: the release version)"
    )
    pungi.add_argument("--branch", help="the dist-git branch their pins follow (pinned at its head)")
    pungi.add_argument(
        "--dtd", help="Pungi's variants.dtd (default: Pungi's installed one, else factory's copy)"
    )
    modulemd.add_argument(
        "--source",
        metavar="NAME",
        help="pin each component to the build its `artifacts` are RPMs of, in this source of factory.yaml",
    )
    pungi.add_argument(
        "--source",
        metavar="NAME",
        help="pin the comps groups' packages to the builds this source of factory.yaml holds (not dist-git)",
    )
    repo = imports(
        "repo",
        "interop:cmd_import_repo",
        "Write a module pinning the newest build of each named package in a source of factory.yaml.",
    )
    repo.add_argument(
        "packages", nargs="+", metavar="PACKAGE", help="source or binary package names the source holds"
    )
    repo.add_argument("--source", required=True, metavar="NAME", help="the source (with what it inherits)")
    repo.add_argument("--module", required=True, metavar="NAME:STREAM", help="the module stream to write")
    repo.add_argument("--summary", help="the module's summary (default: NAME STREAM, built elsewhere)")
    for p in (modulemd, pungi, repo):
        p.add_argument(
            "--out", help="the directory to write modules/ and variants/ into (default: the repository)"
        )
        p.add_argument(
            "--eol",
            metavar="YYYY-MM-DD",
            help="the EOL of what the documents give none (import repo: default the live variants' latest)",
        )
        p.add_argument("--force", action="store_true", help="overwrite definition files that differ")
        p.add_argument(
            "--arch",
            action="append",
            metavar="ARCH",
            help="with --source: read it for this arch (repeatable; default: every arch of the live variants)",
        )
    export = _group(sub, "export", "Write factory's definitions in other formats.")
    p = export(
        "pungi", "interop:cmd_export_pungi", "Write variants.xml, comps.xml and modules.yaml for Pungi."
    )
    p.add_argument(
        "--out", default=".factory/pungi", help="the directory to write to (default: .factory/pungi)"
    )
    _add_rev(p, "export this commit (default: the working tree)")
    p.add_argument("--force", action="store_true", help="overwrite files that differ")


def _overview_commands(sub: Sub) -> None:
    """`status` and `site`: the build pipeline overview (issue 13)."""
    p = _command(
        sub,
        "status",
        "overview:cmd_status",
        "Where nodes stand: latest good, current or out of date and why, running, failed or blocked, gate, releases, EOL.",
    )
    p.add_argument(
        "query",
        nargs="?",
        metavar="NODE|MODULE|COMPONENT|RUN_ID",
        help="a node id, a module (NAME[:STREAM]), a component, or a run ID (the nodes it composed)",
    )
    p = _command(
        sub,
        "site",
        "overview:cmd_site",
        "Build the overview as a static web site (HTML, no JavaScript; a JSON twin for every page).",
    )
    p.add_argument(
        "dir", metavar="DIR", help="where to write it (a new or empty directory, or a site made before)"
    )


def _lifecycle_commands(sub: Sub) -> None:
    """`eol`, `retire` and `branch-release`: End Of Life and new releases (issue 12)."""
    eol = _command(
        sub,
        "eol",
        "lifecycle:cmd_eol",
        "Open one merge request that retires a module stream or variant (or schedules its End Of Life).",
    )
    eol.add_argument("what", nargs="?", metavar="module:NAME:STREAM|variant:UID")
    eol.add_argument(
        "--date", metavar="YYYY-MM-DD", help="its End Of Life (default: today); a later date schedules it"
    )
    eol.add_argument(
        "--due", action="store_true", help="retire everything whose EOL has come (the scheduled job)"
    )
    eol.add_argument(
        "--dry-run", action="store_true", help="show the merge request and its diff; open nothing"
    )
    branching = _command(
        sub,
        "branch-release",
        "lifecycle:cmd_branch_release",
        "Prepare release NEW from OLD: dist-git branches, new module streams, a release/OLD branch, one MR.",
    )
    branching.add_argument("new", metavar="NEW", help="the new release's version, e.g. 43")
    branching.add_argument(
        "--from",
        dest="old",
        metavar="OLD",
        help="the release branched (default: the one the target composes)",
    )
    branching.add_argument("--dry-run", action="store_true", help="show what it would do; change nothing")
    for p in (eol, branching):
        _add_forge(p, "the branch the merge request targets (default: the checked-out one)")

    p = _command(
        sub,
        "retire",
        "lifecycle:cmd_retire",
        "Carve retired modules and variants out: latest good to refs/composes/retired/, releases to the archive.",
    )
    p.add_argument(
        "--archive",
        metavar="DIR",
        help="where releases go (default: beside each release directory, in archive/)",
    )
    _add_key(
        p,
        "the GnuPG home of the key re-signing OSTree summaries",
        "that key's fingerprint (default: factory.yaml signing.key)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what it would carve out; change nothing")


def _publish_commands(sub: Sub) -> None:
    """`publish`: a release to a mirror (issue 12)."""
    p = _command(
        sub,
        "publish",
        "publish:cmd_publish",
        "Push a release to a mirror: content first, metadata, then refs and summaries, checksums last.",
    )
    p.add_argument("what", metavar="NODE|COMPOSE_ID", help="a released compose, or a node (its live release)")
    p.add_argument(
        "--to", required=True, metavar="DEST", help="the mirror: a directory or an rsync destination"
    )
    p.add_argument(
        "--from", dest="source", metavar="DIR", help="the release directory, when there are several"
    )
    p.add_argument(
        "--grace",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="keep files a superseded publication needed this long (default: 3600)",
    )
    p.add_argument(
        "--base-url",
        metavar="URL",
        help="the URL DEST is served at: a container release's registries.d on the mirror names its "
        "signatures there (without it, the mirror gets none)",
    )


def _gc_commands(sub: Sub) -> None:
    """`gc`: garbage collection of compose outputs and artifact stores (issue 12)."""
    p = _command(
        sub,
        "gc",
        "gc:cmd_gc",
        "Remove compose outputs no latest good, live release or retention keeps; lineage stays.",
    )
    p.add_argument(
        "--keep",
        type=int,
        default=2,
        metavar="N",
        help="keep each node's N newest finished composes (default: 2)",
    )
    p.add_argument(
        "--older-than",
        type=float,
        default=0,
        metavar="DAYS",
        help="collect only composes that finished more than DAYS ago (default: 0)",
    )
    p.add_argument(
        "--store",
        action="append",
        default=[],
        metavar="URL",
        help="the artifact store to collect (file:///PATH, file:REL/PATH or oci://HOST/NAMESPACE; repeatable);"
        " default: the one compose writes to (FACTORY_STORE, else factory.yaml's store:)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be freed; remove nothing")


def _check_commands(sub: Sub) -> None:
    """`check record`: a check result from a test system outside factory (issue 11)."""
    check = _group(sub, "check", "Check results recorded in refs/notes/tests.")
    p = check(
        "record",
        "checks:cmd_record",
        "Record the result of a check run outside factory (openQA, a manual sign-off) on a compose, "
        "in refs/notes/tests (`lineage push` carries it); `factory gate ID --promote` then re-decides.",
    )
    p.add_argument("compose_id", metavar="COMPOSE_ID")
    p.add_argument("check", metavar="CHECK", help="the check's name, as policies require it")
    p.add_argument("--outcome", required=True, choices=("PASSED", "FAILED", "ERROR", "NOT_APPLICABLE"))
    p.add_argument("--url", help="where the run can be seen (an openQA job page)")
    p.add_argument("--note", default="", metavar="TEXT", help="what people should read about it")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="factory: %(name)s: %(message)s")
    # A command is a short-lived process holding large acyclic data (graphs, parsed files): the
    # cyclic collector only rescans it, at a third of the run time. Long runs (compose) turn it on.
    gc.disable()
    try:
        code: int = _handler(args.handler)(args)
        return code
    except InvalidDefinitions as exc:
        sys.stderr.write("\n".join(d.render() for d in exc.diagnostics) + "\n")
        sys.stderr.write(f"factory: {exc.message}\n")
        return EXIT_INVALID
    except FactoryError as exc:
        sys.stderr.write(f"factory: error[{exc.code}]: {exc.message}\n")
        if exc.hint:
            sys.stderr.write(f"  hint: {exc.hint}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("factory: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception:
        sys.stderr.write("factory: internal error (a bug); please report it with this traceback:\n")
        traceback.print_exc()
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
