"""RPM identities as values: what a package header says about itself. Pure: no I/O.

A NEVRA is `name-epoch:version-release.arch`, the form modulemd artifacts and productmd's
rpms.json use; a source RPM's arch is `src`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rpm:
    """One RPM file as its header describes it.

    `sourcerpm` is the file name of the source RPM a binary RPM was built from, and empty for
    a source RPM (whose `arch` is the arch of the machine that built it, not `src`).
    """

    name: str
    epoch: int
    version: str
    release: str
    arch: str
    license: str
    sourcerpm: str = ""
    buildtime: int = 0  # seconds since the epoch; a reproducible build's SOURCE_DATE_EPOCH

    @property
    def is_source(self) -> bool:
        return not self.sourcerpm

    @property
    def nevra(self) -> str:
        """`name-epoch:version-release.arch`, with arch `src` for a source RPM."""
        arch = "src" if self.is_source else self.arch
        return f"{self.name}-{self.epoch}:{self.version}-{self.release}.{arch}"

    @property
    def source_nevra(self) -> str:
        """The NEVRA of the source RPM this RPM comes from (itself for a source RPM)."""
        if self.is_source:
            return self.nevra
        nvr = self.sourcerpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
        name, version, release = nvr.rsplit("-", 2)
        return f"{name}-{self.epoch}:{version}-{release}.src"

    @property
    def filename(self) -> str:
        """The file name rpmbuild gives this package."""
        arch = "src" if self.is_source else self.arch
        return f"{self.name}-{self.version}-{self.release}.{arch}.rpm"
