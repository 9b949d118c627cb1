"""The one exception tree of factory.

Library code raises these; only the CLI entry point renders them and picks the exit code:
0 ok, 1 operation failed, 2 invalid input, 3 bug, 130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in one definition file, with its place."""

    path: str
    line: int
    col: int
    code: str
    message: str
    excerpt: str = ""  # the offending source line with a caret under the column, if known
    severity: str = "error"  # or "warning": reported, never refused

    def render(self) -> str:
        head = f"{self.path}:{self.line}:{self.col}: {self.severity}[{self.code}]: {self.message}"
        return f"{head}\n{self.excerpt}" if self.excerpt else head

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.col, self.code, self.message)


class FactoryError(Exception):
    """Base of every error factory reports to a user.

    `code` is required: every raise names its own kebab-case rule (`unknown-node`,
    `missing-file`), which is what a user searches for and a script tells apart; there is no
    generic code (tests/test_error_codes.py reads every raise site)."""

    exit_code = 1

    def __init__(self, message: str, *, code: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


class InvalidInput(FactoryError):
    """The user gave something that cannot be used: a bad argument, revision or file."""

    exit_code = 2


class OperationFailed(FactoryError):
    """A well-formed request that could not be carried out."""

    exit_code = 1


class InvalidDefinitions(InvalidInput):
    """Definitions failed validation; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        count = len(diagnostics)
        super().__init__(
            f"{count} error{'s' if count != 1 else ''} in the definitions",
            code="invalid-definitions",
        )
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
