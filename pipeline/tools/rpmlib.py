"""rpm's Python bindings (Debian's python3-rpm): an RPM file's header as it says it, the key
that signed it, and rpm's own version order.

Headers are read without checking signatures or digests (`rpmkeys.checksig` does that, with a
keyring of its own), so reading touches no rpm database.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import rpm

from pipeline.core.errors import OperationFailed

# The first signature rpm finds in the header: a DSA/EdDSA one, else RSA (rpm 4.18 signs the
# header only; older packages may also carry a header+payload one).
_SIGNATURE = (
    "%|DSAHEADER?{%{DSAHEADER:pgpsig}}:{%|RSAHEADER?{%{RSAHEADER:pgpsig}}:"
    "{%|SIGGPG?{%{SIGGPG:pgpsig}}:{%|SIGPGP?{%{SIGPGP:pgpsig}}:{}|}|}|}|"
)
_KEY_ID = re.compile(r"Key ID ([0-9a-f]{16})")
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Header:
    """What an RPM file says of itself: its NEVRA parts, source RPM, build time and signing key
    id (16 hex digits; "" when it is not signed)."""

    name: str
    epoch: int
    version: str
    release: str
    arch: str
    sourcerpm: str
    buildtime: int
    key_id: str

    @property
    def nevra(self) -> str:
        arch = "src" if not self.sourcerpm else self.arch
        return f"{self.name}-{self.epoch}:{self.version}-{self.release}.{arch}"


def header(path: Path) -> Header:
    """The header of an RPM file; OperationFailed when it is no RPM."""
    fd = os.open(path, os.O_RDONLY)
    try:
        with _LOCK:  # librpm keeps process-wide state: composes read headers from worker threads
            ts = rpm.TransactionSet()
            ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
            found = ts.hdrFromFdno(fd)
    except rpm.error as exc:
        raise OperationFailed(f"{path.name} is no RPM rpm can read: {exc}", code="bad-rpm") from exc
    finally:
        os.close(fd)
    key = _KEY_ID.search(found.sprintf(_SIGNATURE))
    return Header(
        name=_text(found[rpm.RPMTAG_NAME]),
        epoch=int(found[rpm.RPMTAG_EPOCH] or 0),
        version=_text(found[rpm.RPMTAG_VERSION]),
        release=_text(found[rpm.RPMTAG_RELEASE]),
        arch=_text(found[rpm.RPMTAG_ARCH]),
        sourcerpm=_text(found[rpm.RPMTAG_SOURCERPM] or ""),
        buildtime=int(found[rpm.RPMTAG_BUILDTIME] or 0),
        key_id=key[1] if key else "",
    )


def label_compare(a: tuple[str, str, str], b: tuple[str, str, str]) -> int:
    """rpm's own order of two (epoch, version, release): -1, 0 or 1."""
    result: int = rpm.labelCompare(a, b)
    return result


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
