"""The one place factory starts processes.

Every external program is run through `run`: the argv is logged, output captured, and a
non-zero exit becomes `CommandFailed` carrying argv, exit status and stderr. Secrets passed in
`redact` never reach a log line or an error message.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.core.errors import OperationFailed

log = logging.getLogger("factory.run")


class CommandFailed(OperationFailed):
    """An external program exited non-zero (or could not be started)."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        super().__init__(
            f"{argv[0]} failed with exit status {returncode}" + (f":\n{tail}" if tail else ""),
            code="command-failed",
        )
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


def _redacted(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def run(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    redact: Sequence[str] = (),
    output_log: Path | None = None,
) -> str:
    """Run a program to completion and return its stdout; raise CommandFailed otherwise.

    With `output_log`, stdout and stderr are captured together, in the order the program wrote
    them, written (redacted) to that file whether the program succeeds or not, and returned;
    a CommandFailed then carries that combined output.
    """
    shown = [_redacted(a, redact) for a in argv]
    log.debug("run: %s", " ".join(shown))
    try:
        done = subprocess.run(
            list(argv),
            input=input_text,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if output_log is not None else subprocess.PIPE,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandFailed(shown, 127, f"{argv[0]}: not found") from exc
    stdout = _redacted(done.stdout, redact) if output_log is not None else done.stdout
    if output_log is not None:
        output_log.write_text(stdout, encoding="utf-8")
    if done.returncode != 0:
        stderr = stdout if output_log is not None else _redacted(done.stderr, redact)
        raise CommandFailed(shown, done.returncode, stderr)
    return stdout
