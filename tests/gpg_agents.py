"""No test leaves a gpg-agent running.

Every GnuPG home starts a gpg-agent on first use (gpg, rpmsign, ostree and skopeo signing,
librepo checking a package with gpgcheck) that outlives the home (TOOLCHAIN.md): the tests, and
factory where it makes a home of its own, end each with `gpgconf --homedir HOME --kill all`.
These fixtures hold them to it. Every process of the session inherits `FACTORY_TEST_SESSION`, so
the agents the session started are told apart from any other on the machine (other sessions may
run beside this one) by their environment:

- after each test, an agent it started whose home is gone (a temporary directory thrown away
  with its agent still up) or is under the test's own `tmp_path` fails the test;
- at the end of the session, any agent of the session still running (a module or session
  fixture's home) fails it.

Either way the agents found are ended, so a failing run leaves none behind either. One kind is
ended without failing anything: containers/image (skopeo verifying a signedBy policy) imports
the key into a GnuPG home of its own, `$TMPDIR/containers-ephemeral-gpg-*`, and removes it when
done; the agent started there sees its home go and ends itself within seconds (tried here: an
agent whose home is removed is gone 5 s later), but may still be up when the test ends. (The
same is why an agent in a kept home, as pytest keeps `tmp_path`, runs on for days.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MARK = "FACTORY_TEST_SESSION"
SKOPEOS = "containers-ephemeral-gpg-"  # containers/image's own throwaway homes (see above)


@dataclass(frozen=True, slots=True)
class Agent:
    """A running gpg-agent of this session, and the GnuPG home it serves."""

    pid: int
    home: Path


def _home(cmdline: list[bytes], environ: list[bytes]) -> Path:
    for flag, value in itertools.pairwise(cmdline):
        if flag == b"--homedir":
            return Path(os.fsdecode(value))
    variables = dict(v.split(b"=", 1) for v in environ if b"=" in v)
    if b"GNUPGHOME" in variables:
        return Path(os.fsdecode(variables[b"GNUPGHOME"]))
    return Path(os.fsdecode(variables.get(b"HOME", b"/root"))) / ".gnupg"


def agents(session: str) -> list[Agent]:
    """The gpg-agents running now that this session started (their environment carries it)."""
    found = []
    marker = f"{MARK}={session}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "gpg-agent":
                continue
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in environ:
            found.append(Agent(int(proc.name), _home(cmdline, environ)))
    return sorted(found, key=lambda a: a.pid)


def end(agent: Agent) -> None:
    """Stop an agent as its home's owner would (gpgconf), or by its pid once the home is gone."""
    if agent.home.is_dir():
        subprocess.run(
            ["gpgconf", "--homedir", str(agent.home), "--kill", "all"], capture_output=True, check=False
        )
    with contextlib.suppress(ProcessLookupError):
        os.kill(agent.pid, signal.SIGTERM)


def _still_running(found: list[Agent], patience: float = 5.0) -> list[Agent]:
    """Those of found still running once each had a moment to exit: `gpgconf --kill` asks an
    agent to end and returns before it has (KILLAGENT is answered, then the agent shuts down)."""
    deadline = time.monotonic() + patience
    running = found
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = [a for a in running if Path(f"/proc/{a.pid}").exists()]
    return running


def _report(leaked: list[Agent], where: str) -> str:
    homes = ", ".join(str(a.home) for a in leaked)
    return (
        f"{len(leaked)} gpg-agent left running {where}: {homes}; end each when its home is done with "
        "`gpgconf --homedir HOME --kill all` (pipeline.tools.gpg.kill_agent)"
    )


@pytest.fixture(scope="session", autouse=True)
def gpg_agents_session() -> Iterator[str]:
    """Mark every process of the session; at its end, no agent of the session may be running."""
    session = uuid.uuid4().hex
    os.environ[MARK] = session
    yield session
    found = _still_running(agents(session))
    for agent in found:
        end(agent)
    leaked = [a for a in found if not a.home.name.startswith(SKOPEOS)]
    assert not leaked, _report(leaked, "at the end of the session")


@pytest.fixture(autouse=True)
def gpg_agents_of_the_test(gpg_agents_session: str, request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, none of the agents it started serves a home it threw away or its own."""
    before = {a.pid for a in agents(gpg_agents_session)}
    own = Path(str(request.getfixturevalue("tmp_path"))) if "tmp_path" in request.fixturenames else None
    yield
    started = [a for a in agents(gpg_agents_session) if a.pid not in before]
    for agent in started:
        if agent.home.name.startswith(SKOPEOS) and not agent.home.exists():
            end(agent)
    leaked = _still_running(
        [
            a
            for a in started
            if not a.home.name.startswith(SKOPEOS)
            and (not a.home.exists() or (own is not None and a.home.is_relative_to(own)))
        ]
    )
    for agent in leaked:
        end(agent)
    assert not leaked, _report(leaked, "by this test")
