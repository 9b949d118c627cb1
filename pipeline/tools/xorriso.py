"""xorriso: ISO 9660 images (`-as mkisofs`), reading them back (file listing, volume ID, files),
and a new image made from an old one with some directories replaced.

Reproducibility: SOURCE_DATE_EPOCH alone pins the volume times and the volume UUID, and sets
each file's atime and ctime to its mtime, but the mtimes still come from the disk: a staging
directory made a second later gives different directory records. So every file and
directory date is pinned too (`--set_all_file_dates =EPOCH`), and TZ is UTC; then two runs
over the same content give the same bytes (tests/test_ostree_iso.py).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pipeline import run


def mkisofs_argv(iso: Path, volume_id: str, directory: Path, source_date_epoch: int) -> list[str]:
    """Make iso from directory: Joliet (long names) and Rock Ridge, every date pinned."""
    return [
        "xorriso",
        "-as",
        "mkisofs",
        "-o",
        str(iso),
        "-V",
        volume_id,
        "-J",
        "-joliet-long",
        "-R",
        "--set_all_file_dates",
        f"={source_date_epoch}",
        str(directory),
    ]


def find_files_argv(iso: Path) -> list[str]:
    return ["xorriso", "-indev", str(iso), "-find", "/", "-type", "f"]


def pvd_info_argv(iso: Path) -> list[str]:
    return ["xorriso", "-indev", str(iso), "-pvd_info"]


def boot_report_argv(iso: Path) -> list[str]:
    """The image's El Torito boot records, as xorriso reports them (`-report_el_torito plain`)."""
    return ["xorriso", "-indev", str(iso), "-report_el_torito", "plain"]


def extract_argv(iso: Path, path: str, destination: Path) -> list[str]:
    """Copy one directory (or file) of the image out to destination (`-osirrox on`)."""
    return ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(destination)]


def remaster_argv(source: Path, target: Path, replace: list[tuple[Path, str]]) -> list[str]:
    """A new image at target: source's files and boot setup, with each (disk path, image path)
    of replace mapped in (a directory merges into the image's, a file replaces its namesake)."""
    argv = ["xorriso", "-indev", str(source), "-outdev", str(target), "-boot_image", "any", "keep"]
    for disk, inside in replace:
        argv += ["-map", str(disk), inside]
    return [*argv, "-commit"]


def parse_find(output: str) -> list[str]:
    """The paths `-find` printed (one quoted path a line on stdout), sorted, without quotes."""
    paths = []
    for line in output.splitlines():
        line = line.strip()
        if len(line) >= 2 and line[0] == line[-1] == "'":
            paths.append(line[1:-1].replace("'\\''", "'"))
    return sorted(paths)


def parse_volume_id(output: str) -> str | None:
    """The `Volume Id` line of `-pvd_info`, or None when there is none."""
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "Volume Id":
            return value.strip()
    return None


def parse_boot_images(output: str) -> list[str]:
    """The `El Torito boot img` lines of `-report_el_torito plain` (one per boot image: its
    number, platform, bootable flag, emulation, ...), without the label; none when the image
    has no boot catalog."""
    label = "El Torito boot img :"
    return [line.removeprefix(label).strip() for line in output.splitlines() if line.startswith(label)]


def make_iso(iso: Path, volume_id: str, directory: Path, source_date_epoch: int) -> None:
    """Write iso from directory, reproducibly (times pinned to source_date_epoch)."""
    iso.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(source_date_epoch), "TZ": "UTC"}
    run.run(mkisofs_argv(iso, volume_id, directory, source_date_epoch), env=env)


def files(iso: Path) -> list[str]:
    """Every regular file in the image, as absolute paths inside it, sorted."""
    return parse_find(run.run(find_files_argv(iso)))


def volume_id(iso: Path) -> str | None:
    """The image's volume ID, from its primary volume descriptor."""
    return parse_volume_id(run.run(pvd_info_argv(iso)))


def boot_images(iso: Path) -> list[str]:
    """The image's El Torito boot images (empty: it does not boot from an optical drive)."""
    return parse_boot_images(run.run(boot_report_argv(iso)))


def extract(iso: Path, path: str, destination: Path) -> None:
    """Copy path (a directory or file of the image) to destination."""
    run.run(extract_argv(iso, path, destination))


def remaster(source: Path, target: Path, replace: list[tuple[Path, str]]) -> None:
    """Write target: the image source with the directories and files of replace mapped in."""
    run.run(remaster_argv(source, target, replace), env={**os.environ, "TZ": "UTC"})


@cache
def version() -> str:
    """The version of xorriso, e.g. `1.5.4`."""
    return run.run(["xorriso", "-version"]).split()[1]
