"""`factory ci generate|check|post-plan`: factory inside GitLab CI."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pipeline.commands import files
from pipeline.commands.output import out, out_json
from pipeline.core import graph as graphs
from pipeline.core import plan as planner
from pipeline.core import runs
from pipeline.core.batches import Limits
from pipeline.core.config import Config, ForgeConfig
from pipeline.core.errors import InvalidInput, OperationFailed
from pipeline.core.names import unknown
from pipeline.formats import gitlab_ci as ci
from pipeline.formats import gitlab_ci_limits as gitlab_limits
from pipeline.git import repo as gitrepo
from pipeline.workspace import Workspace

NULL_SHA = "0" * 40  # CI_COMMIT_BEFORE_SHA of the first push of a branch
PLAN_MARKER = "<!-- factory:plan -->"


def _base(rev: str) -> str:
    """`none` (plan everything) for an empty or all-zero base, else the revision."""
    return gitrepo.NO_REVISION if not rev.strip("0") else rev


def _plan(ws: Workspace, base: str, head: str) -> tuple[planner.Plan, graphs.Graph]:
    before = graphs.Graph({}, {}) if base == gitrepo.NO_REVISION else ws.graph(base)
    after = ws.graph(head)
    ws.save()
    return planner.plan(before, after), after


def cmd_generate(args: argparse.Namespace) -> int:
    """Write the pipelines composing what changed between base and head (print `child.yml`)."""
    ws = Workspace.open(args.repo)
    base = _base(args.base)
    base_id = base if base == gitrepo.NO_REVISION else gitrepo.resolve(ws.repo, base).id
    head_id = gitrepo.resolve(ws.repo, args.head).id
    result, head = _plan(ws, base_id, head_id)
    # --max-jobs wins; else ci.max_jobs of the factory.yaml of the revision planned (default 500).
    max_jobs = args.max_jobs if args.max_jobs is not None else ws.config(str(head_id)).ci.max_jobs
    limits = Limits(max_jobs=max_jobs)
    target = Path(args.out) if args.out else None
    directory = _artifact_directory(ws.root, target) if target else ci.DIRECTORY
    release = ws.config(str(head_id)).release
    files = ci.pipeline_files(
        result,
        head,
        base=base_id,
        head=head_id,
        limits=limits,
        directory=directory,
        title=f"plan {base} -> {args.head}",
        run=runs.from_env(os.environ, release.short, release.version, ci.COMPOSE_TYPE) or "",
    )
    texts = {name: f.text() for name, f in files.items()}
    problems = gitlab_limits.problems(texts, limits, ci.CHILD)
    if problems:  # the generator keeps these rules by construction: a bug if it does not
        raise OperationFailed(
            "the generated pipelines break GitLab's rules:\n  " + "\n  ".join(problems[:20]),
            code="bug-ci-generate",
        )
    if target is None:
        if len(texts) > 1:
            raise InvalidInput(
                f"the plan needs {len(texts)} pipeline files (more than {limits.max_jobs} jobs, "
                "or too big for one file): give --out DIR",
                code="ci-needs-out",
            )
        out(texts[ci.CHILD])
        return 0
    _write(target, texts)
    if args.json:
        out_json({"directory": str(target), "files": sorted(texts)})
    else:
        out(f"wrote {len(texts)} pipeline files to {target}: {', '.join(sorted(texts))}")
    return 0


def _artifact_directory(root: Path, target: Path) -> str:
    """DIR relative to the repository: where a job writes the files again and keeps them."""
    resolved = (Path.cwd() / target).resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise InvalidInput(
            f"--out {target} is outside the repository {root}",
            hint="CI jobs keep pipeline files as artifacts, which must be inside the checkout",
            code="out-outside-repo",
        ) from None


def _write(target: Path, texts: dict[str, str]) -> None:
    """Every file staged first, then moved into place; older pipeline files there removed."""
    target.mkdir(parents=True, exist_ok=True)
    staged = {name: target / f".{name}.tmp" for name in texts}
    for name, text in texts.items():
        staged[name].write_text(text, encoding="utf-8")
    for name, path in staged.items():
        os.replace(path, target / name)
    for old in target.glob("part-*.yml"):
        if old.name not in texts:
            old.unlink()


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 1 unless every planned node is composed at head: its latest good is up to date.

    With --inputs-of NODE...: unless every input of those nodes that is not one of them is, and
    every module their modules buildrequire or require (transitively).
    """
    from pipeline.engine import ci_check

    if (args.base is None) == (args.inputs_of is None):
        raise InvalidInput("give --base, or --inputs-of NODE...", code="ci-check-what")
    ws = Workspace.open(args.repo)
    if not args.no_pull:
        from pipeline.records.remote import Remote

        Remote(ws.root, args.remote).pull()
    if args.inputs_of is not None:
        graph = ws.graph(args.head)
        ws.save()
        missing = [n for n in args.inputs_of if n not in graph.nodes]
        if missing:
            raise unknown("node", missing[0], list(graph.nodes), where=f" at {args.head}")
        batch = set(args.inputs_of)
        # what the job would wait for in one pipeline: its inputs and its modules' requirements
        inputs = ({i for n in batch for i in graph.nodes[n].inputs} | graph.required(batch)) - batch
        config = ws.config(args.head)
        report = ci_check.check(
            ws.root, graph, inputs, config.release.version, (_output_dir(ws, config), config)
        )
        title, noun = f"inputs of {' '.join(sorted(batch))} at {args.head}", "nodes"
        base = None
    else:
        base = _base(args.base)
        result, graph = _plan(ws, base, args.head)
        planned = [n.id for n in result.nodes]
        config = ws.config(args.head)
        report = ci_check.check(
            ws.root, graph, planned, config.release.version, (_output_dir(ws, config), config)
        )
        title, noun = f"composes of {base} -> {args.head}", "planned nodes"
    if args.json:
        out_json({"base": base, "head": args.head, **report.to_json()})
    else:
        out(report.text(title, noun))
    return 0 if report.ok else 1


def cmd_post_plan(args: argparse.Namespace) -> int:
    """Post (or update) the plan as one note on a merge request; skip outside GitLab."""
    from pipeline.bot.forge_choice import gitlab_forge

    body = files.read_bytes(args.file, "plan file").decode("utf-8", errors="replace")
    url = os.environ.get("CI_SERVER_URL", "")
    if not url or os.environ.get("GITLAB_CI") != "true":  # gitlab-ci-local sets GITLAB_CI=false
        out("not in GitLab CI (no CI_SERVER_URL, or GITLAB_CI is not true): the plan is not posted")
        return 0
    # The merge request belongs to the project running the pipeline; factory.yaml's forge.gitlab
    # says it only when GitLab does not.
    project = os.environ.get("CI_PROJECT_PATH", "")
    forge = ForgeConfig() if project else Workspace.open(args.repo).config().forge
    if not project:
        url, project = forge.gitlab.url or url, forge.gitlab.project
    gitlab_forge(forge, os.environ, url=url, project=project).upsert_note(str(args.mr), PLAN_MARKER, body)
    out(f"posted the plan on !{args.mr} of {project}")
    return 0


def _output_dir(ws: Workspace, config: Config) -> Path:
    """factory.yaml's output directory, absolute (relative to the repository)."""
    found = Path(config.output.dir)
    return found if found.is_absolute() else ws.root / found
