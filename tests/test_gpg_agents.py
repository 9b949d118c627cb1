"""The check that no test leaves a gpg-agent running (`tests/gpg_agents.py`) sees what it must:
an agent this session started, by its home, and not one another session started."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests import gpg_agents


def start_agent(home: Path, env: dict[str, str]) -> None:
    home.mkdir(mode=0o700)
    subprocess.run(
        ["gpg-connect-agent", "--homedir", str(home), "/bye"], env=env, check=True, capture_output=True
    )


def test_an_agent_of_this_session_is_found_by_its_home_and_ended(
    gpg_agents_session: str, tmp_path: Path
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    start_agent(ours, dict(os.environ))
    other = {k: v for k, v in os.environ.items() if k != gpg_agents.MARK}
    start_agent(theirs, {**other, gpg_agents.MARK: "another-session"})
    try:
        found = [a for a in gpg_agents.agents(gpg_agents_session) if a.home.is_relative_to(tmp_path)]
        assert [a.home for a in found] == [ours]  # not the other session's
        (agent,) = found
        gpg_agents.end(agent)
        assert gpg_agents._still_running([agent]) == []
        assert "gpg-agent left running by this test: " in gpg_agents._report([agent], "by this test")
    finally:
        for home in (ours, theirs):
            subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
