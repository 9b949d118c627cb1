"""xmllint (Debian's libxml2-utils): validate an XML document against a DTD.

Pungi validates variants.xml against its DTD before anything else (with lxml, the same
libxml2); factory asks libxml2's own command-line client. The command line is built by a pure
function; errors come back as libxml2 prints them, `FILE:LINE: element X: validity error : ...`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import run
from pipeline.core.errors import OperationFailed


def validate_argv(dtd: Path, document: Path) -> list[str]:
    """Check document against dtd, offline (never fetch the DTD its DOCTYPE names)."""
    return ["xmllint", "--noout", "--nonet", "--dtdvalid", str(dtd), str(document)]


def validate(dtd: Path, document: Path) -> list[str]:
    """libxml2's errors for document against dtd; [] when it is valid."""
    try:
        run.run(validate_argv(dtd, document))
    except run.CommandFailed as exc:
        if exc.returncode == 127:
            raise OperationFailed(
                "xmllint is not installed", hint="apt-get install libxml2-utils", code="xmllint-missing"
            ) from exc
        errors = [line for line in exc.stderr.splitlines() if " error" in line and ": " in line]
        return errors or [exc.stderr.strip() or f"xmllint exited with status {exc.returncode}"]
    return []
