"""A small distribution whose module takes builds made elsewhere, for the binary pin tests.

Sources, as a release engineer would have them (tests/upstream_repo.py makes them):
- `f42`: a Koji tag's repositories, read as `file://` (with `repo.json` and `src/`), signed;
- `f42-updates`: a Koji tag served over HTTP on loopback, inheriting `f42`, signed, with an
  `updateinfo.xml` advisory (security, Important, a CVE); no source_baseurl;
- `extras`: a plain repository at a path, unsigned (`allow_unsigned: true`), whose baseurl in
  factory.yaml names nothing: `FACTORY_SOURCE_EXTRAS_BASEURL` points at it (an internal mirror).

Module `base:f42` pins hello (f42-updates, with -libs, a noarch -doc, a -debuginfo and an i686
multilib build beside it), tools (f42-updates, found in f42 by inheritance), extra (extras), and
`local`, a dist-git pin built with rpmbuild. Variant `Base` ships it as a flat repo.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests import upstream_repo as up
from tests.conftest import commit_tree
from tests.http_files import Served, serve

SECURITY = "FEDORA-2026-abc123"
CVE = "CVE-2026-5678"
HELLO = "hello-1.0-2.fc42"
TOOLS = "tools-2.0-1.fc42"
EXTRA = "extra-0.1-1"
EXTRAS_VARIABLE = "FACTORY_SOURCE_EXTRAS_BASEURL"


@dataclass
class Upstream:
    """The sources of the world, made once per test module."""

    top: Path
    key: up.Key
    other: up.Key
    f42: up.KojiTag
    updates: up.KojiTag
    extras: Path
    served: Served
    builds: dict[str, up.Built]

    @property
    def env(self) -> dict[str, str]:
        return {EXTRAS_VARIABLE: str(self.extras) + "/{arch}/"}


def make_upstream(top: Path) -> Iterator[Upstream]:
    """Build, sign and publish the sources (yields while the HTTP server runs)."""
    key = up.make_key(top / "gnupg-f42", "Fedora 42 (test) <f42@example.invalid>")
    other = up.make_key(top / "gnupg-other", "Someone else <other@example.invalid>")
    out = top / "builds"
    builds = {
        "hello-old": up.build(out, "hello", "1.0", "1.fc42", subpackages=["libs"], noarch_subpackages=["doc"], debuginfo=True, multilib=True),
        HELLO: up.build(out, "hello", "1.0", "2.fc42", subpackages=["libs"], noarch_subpackages=["doc"], debuginfo=True, multilib=True),
        TOOLS: up.build(out, "tools", "2.0", "1.fc42", noarch=True),
        EXTRA: up.build(out, "extra", "0.1", "1", noarch=True),
    }  # fmt: skip
    for name in ("hello-old", HELLO, TOOLS):
        up.sign([*builds[name].rpms, builds[name].srpm], key)
    f42 = up.KojiTag(top / "koji", "f42")
    f42.regen([builds["hello-old"], builds[TOOLS]])
    updates = up.KojiTag(top / "koji-http", "f42-updates")
    notes = [
        up.Advisory(SECURITY, "security", "Important", (CVE,), builds[HELLO].rpms, "hello security update")
    ]
    updates.regen([builds[HELLO]], notes, with_src=False)
    extras = top / "extras"
    up.make_repo(extras / "x86_64", builds[EXTRA].rpms)
    with serve(top / "koji-http") as served:
        try:
            yield Upstream(top, key, other, f42, updates, extras, served, builds)
        finally:
            up.kill_agent(key)
            up.kill_agent(other)


def git(cwd: Path, *argv: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    return subprocess.run(["git", *argv], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def make_distgit(top: Path) -> str:
    """A dist-git repository of the `local` component (a noarch spec) on branch main; its commit."""
    repo = top / "distgit" / "local.git"
    if repo.exists():
        return git(repo, "rev-parse", "main").strip()
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "local.spec").write_text(
        "Name: local\nVersion: 1\nRelease: 1%{?dist}\nSummary: built here\nLicense: MIT\nBuildArch: noarch\n"
        "%description\nBuilt by factory from dist-git.\n%install\nmkdir -p %{buildroot}/usr/share/local\n"
        "echo here > %{buildroot}/usr/share/local/here\n%files\n/usr/share/local/here\n",
        encoding="utf-8",
    )
    git(repo, "add", "local.spec")
    git(repo, "commit", "-q", "-m", "local 1")
    return git(repo, "rev-parse", "HEAD").strip()


def factory_yaml(upstream: Upstream, **override: str) -> str:
    sources = {
        "f42": (
            f"    baseurl: {upstream.f42.baseurl(upstream.f42.top.as_uri())}\n"
            "    gpgkey: keys/RPM-GPG-KEY-f42\n"
            f"    source_baseurl: {upstream.f42.top.as_uri()}/repos/f42/latest/src/\n"
        ),
        "f42-updates": (
            f"    baseurl: {upstream.updates.baseurl(upstream.served.url)}\n"
            "    gpgkey: keys/RPM-GPG-KEY-f42\n"
            "    inherits: [f42]\n"
        ),
        "extras": "    baseurl: /nonexistent/mirror/extras/{arch}/\n    allow_unsigned: true\n",
        **override,
    }
    return (
        "document: factory-config\nversion: 1\n"
        'release: {name: Test Linux, short: TL, version: "42"}\n'
        "dist: .tl42\n"
        f'distgit: {{url: "{upstream.top}/distgit/{{component}}.git"}}\n'
        "output: {dir: .factory/output}\n"
        "sources:\n" + "".join(f"  {name}:\n{body}" for name, body in sources.items())
    )


def module_yaml(local: str, *, hello: str = HELLO, extra_profile: str = "") -> str:
    return f"""document: factory-module
version: 1
name: base
stream: f42
summary: A base taken from elsewhere
description: Builds made in Koji next to one built here from dist-git.
license: MIT
eol: 2030-12-31
components:
  rpms:
    hello:
      source: f42-updates
      build: {hello}
    tools:
      source: f42-updates  # inherited from f42
      build: {TOOLS}
    extra:
      source: extras
      build: {EXTRA}
    local:
      ref: {local}
      branch: main
profiles:
  default:
    rpms: [hello, hello-doc, tools, extra, local]
{extra_profile}api:
  rpms: [hello, hello-libs, hello-doc, tools, extra, local]
"""


VARIANT = """document: factory-variant
version: 1
uid: Base
name: Base
release: "42"
eol: 2030-06-30
arches: [x86_64]
modules:
  - module: base:f42
    profiles: [default]
outputs:
  - kind: repo
    name: os
"""


def definitions(upstream: Upstream, local: str, **files: str) -> dict[str, bytes]:
    tree = {
        "factory.yaml": factory_yaml(upstream),
        "modules/base/f42.yaml": module_yaml(local),
        "variants/Base.yaml": VARIANT,
        "keys/RPM-GPG-KEY-f42": upstream.key.public.read_text(),
        **files,
    }
    return {path: text.encode() for path, text in tree.items()}


def make_repo(root: Path, tree: Mapping[str, bytes], remote: Path | None = None) -> Path:
    """A definitions repository with one commit of tree (and a bare remote `origin`)."""
    commit_tree(root, tree, "Definitions\n")
    if remote is not None:
        git(remote.parent, "init", "-q", "--bare", "-b", "main", str(remote))
        git(root, "remote", "add", "origin", str(remote))
        git(root, "push", "-q", "origin", "HEAD:refs/heads/main")
    return root
