"""The runner image in tests: built by `make runner-image`, unpacked by umoci, run by chroot.

`build(layout)` runs `make runner-image RUNNER_LAYOUT=...` from this checkout (the .debs come
from /var/cache/factory-runner-image once downloaded); `unpack(image, root)` is `umoci raw
unpack`; `in_root(root, script, ...)` runs a bash script in that root, as a job's shell runs in
the image: `chroot` with an empty environment but the variables given (PATH the image's), in a
private mount namespace (`unshare --mount`) holding /dev, /proc and /sys and the host directories
`binds` at the same paths (a job's clone, the shared remote), all gone when the script ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # this checkout (tests.conftest imports this module)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # the image's (its config's Env)


@dataclass(frozen=True)
class RunnerImage:
    layout: Path  # the OCI layout
    tag: str  # factory's version
    output: str  # what `make runner-image` printed

    @property
    def reference(self) -> str:
        """The image as skopeo and umoci name it: `LAYOUT:TAG` (skopeo: `oci:` before it)."""
        return f"{self.layout}:{self.tag}"


def why_not() -> str:
    """Why the image cannot be built here ('' when it can): mmdebstrap's root mode needs root."""
    if os.geteuid() != 0:
        return "make runner-image runs mmdebstrap --mode=root and chroot: root only"
    missing = [t for t in ("mmdebstrap", "umoci", "skopeo", "unshare") if shutil.which(t) is None]
    return f"not installed: {', '.join(missing)} (`make deps`)" if missing else ""


def make_variable(name: str) -> list[str]:
    """A list the Makefile holds (`make -s print-NAME`), e.g. COMPOSE_PACKAGES."""
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", f"print-{name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def build(layout: Path) -> RunnerImage:
    done = subprocess.run(
        ["make", "--no-print-directory", "runner-image", f"RUNNER_LAYOUT={layout}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"make runner-image failed:\n{output[-6000:]}"
    (version,) = make_variable("VERSION")
    return RunnerImage(layout, version, output)


def unpack(image: RunnerImage, root: Path) -> Path:
    """The image's root file system at `root` (a directory that does not exist yet)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["umoci", "raw", "unpack", "--image", image.reference, str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"umoci raw unpack failed: {done.stderr}"
    return root


def in_root(
    root: Path,
    script: str,
    *,
    cwd: str = "/",
    env: Mapping[str, str] | None = None,
    binds: Sequence[Path] = (),
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run `script` with bash inside `root` (see the module doc); its output, never raising."""
    mounts = [f"mount --rbind /{d} {root}/{d}" for d in ("dev", "proc", "sys")]
    for path in binds:
        (root / path.relative_to("/")).mkdir(parents=True, exist_ok=True)
        mounts.append(f"mount --bind {path} {root}{path}")
    variables = [f"{k}={v}" for k, v in {"PATH": PATH, "LANG": "C.UTF-8", **(env or {})}.items()]
    argv = ["chroot", str(root), "/usr/bin/env", "-i", *variables, "/bin/bash", "-c", 'cd "$0" && eval "$1"']
    setup = " && ".join([*mounts, 'exec "$@"'])
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", setup, "sh", *argv, cwd, script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
