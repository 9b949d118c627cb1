"""Package sources made in the tests, as Koji and Bodhi make them: builds with rpmbuild, yum
repositories with createrepo_c, advisories in `updateinfo.xml` written with createrepo_c's API,
RPMs signed with rpmsign and throwaway GnuPG keys, Koji's `repos/<tag>/<id>/<arch>/` layout with
its `repo.json` and a `latest` link that moves.

Nothing here uses factory's own code: the sources are what factory reads, so the tests build
them with the field's tools alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import createrepo_c as cr

EPOCH = 1_790_000_000  # SOURCE_DATE_EPOCH of every build: the same bytes every run


@dataclass(frozen=True)
class Key:
    """A throwaway GnuPG home with one signing key: its fingerprint and armored public key."""

    home: Path
    fingerprint: str
    public: Path

    @property
    def short_id(self) -> str:
        return self.fingerprint[-16:].lower()


def make_key(home: Path, who: str, algorithm: str = "rsa2048") -> Key:
    """A GnuPG home with one passphrase-less key (end its agent with `kill_agent`)."""
    home.mkdir(parents=True, mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run(
        [*gpg, "--quick-generate-key", who, algorithm, "sign", "never"], check=True, capture_output=True
    )
    listed = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "--list-secret-keys"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr"))
    public = home / "public.asc"
    subprocess.run(
        ["gpg", "--homedir", str(home), "--armor", "--output", str(public), "--export", fingerprint],
        check=True,
        capture_output=True,
    )
    return Key(home, fingerprint, public)


def kill_agent(key: Key) -> None:
    subprocess.run(["gpgconf", "--homedir", str(key.home), "--kill", "all"], check=False, capture_output=True)


def sign(rpms: Iterable[Path], key: Key) -> None:
    """rpmsign the files in place (Debian's rpm looks for gpg2 unless told: TOOLCHAIN.md)."""
    subprocess.run(
        [
            "rpmsign",
            "--define", "__gpg /usr/bin/gpg",
            "--define", f"_gpg_name {key.fingerprint}",
            "--define", f"_gpg_path {key.home}",
            "--define", "_gpg_sign_cmd_extra_args --batch --pinentry-mode loopback --passphrase ''",
            "--addsign", *map(str, rpms),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": str(key.home)},
    )  # fmt: skip


def resign(rpms: Iterable[Path], key: Key) -> None:
    """Drop the files' signatures and sign them again: new bytes for the same build (rpmsign skips
    a package that already carries a signature of that key)."""
    paths = list(rpms)
    subprocess.run(["rpmsign", "--delsign", *map(str, paths)], check=True, capture_output=True)
    sign(paths, key)


@dataclass(frozen=True)
class Built:
    """The RPM files of one build: binary RPMs and the source RPM."""

    nvr: str
    rpms: tuple[Path, ...]
    srpm: Path

    def named(self, part: str) -> Path:
        return next(p for p in self.rpms if p.name.startswith(part))


def build(
    out: Path,
    name: str,
    version: str,
    release: str,
    *,
    noarch: bool = False,
    epoch: int = 0,
    subpackages: Sequence[str] = (),
    noarch_subpackages: Sequence[str] = (),
    debuginfo: bool = False,
    multilib: bool = False,
    requires: Sequence[str] = (),
    named_subpackages: Sequence[str] = (),
) -> Built:
    """Build a small package with rpmbuild: a main package (x86_64 unless noarch), subpackages,
    a `-debuginfo` subpackage, and with multilib its i686 build too (as Koji puts into x86_64)."""
    top = out / f"top-{name}-{version}-{release}"
    spec = top / f"{name}.spec"
    spec.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"Name: {name}",
        *([f"Epoch: {epoch}"] if epoch else []),
        f"Version: {version}",
        f"Release: {release}",
        f"Summary: {name}, built elsewhere",
        "License: MIT",
        "AutoReqProv: no",
        *(["BuildArch: noarch"] if noarch else []),
        *(f"Requires: {r}" for r in requires),
        "%description",
        f"{name} as a Koji of somewhere else built it.",
    ]
    parts = [*subpackages, *noarch_subpackages, *(["debuginfo"] if debuginfo else [])]
    for part in parts:
        lines += [f"%package {part}", f"Summary: {name}-{part}"]
        if part in noarch_subpackages:
            lines.append("BuildArch: noarch")
        lines += [f"%description {part}", f"{name}-{part}"]
    for other in named_subpackages:  # a subpackage with a name of its own (`%package -n`)
        lines += [f"%package -n {other}", f"Summary: {other}", f"%description -n {other}", other]
    lines += [
        "%install",
        f"mkdir -p %{{buildroot}}/usr/share/{name}",
        f"echo {version}-{release} > %{{buildroot}}/usr/share/{name}/{name}",
    ]
    for part in (*parts, *named_subpackages):
        lines.append(f"echo {part} > %{{buildroot}}/usr/share/{name}/{part}")
    lines += ["%files", f"/usr/share/{name}/{name}"]
    for part in parts:
        lines += [f"%files {part}", f"/usr/share/{name}/{part}"]
    for other in named_subpackages:
        lines += [f"%files -n {other}", f"/usr/share/{name}/{other}"]
    spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    targets = ["x86_64"] if noarch else ["x86_64", *(["i686"] if multilib else [])]
    for target in targets:
        subprocess.run(
            [
                "rpmbuild", "-ba", "--target", target, "--define", f"_topdir {top}",
                "--define", "use_source_date_epoch_as_buildtime 1", "--define", "clamp_mtime_to_source_date_epoch 1",
                "--define", "_buildhost reproducible", str(spec),
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)},
        )  # fmt: skip
    rpms = tuple(sorted((top / "RPMS").rglob("*.rpm")))
    (srpm,) = (top / "SRPMS").glob("*.src.rpm")
    return Built(f"{name}-{version}-{release}", rpms, srpm)


@dataclass(frozen=True)
class Advisory:
    """An advisory to write: id, type, severity, CVEs, and the RPM files it names."""

    id: str
    type: str
    severity: str
    cves: tuple[str, ...]
    rpms: tuple[Path, ...]
    title: str = "An update"
    bugs: tuple[str, ...] = ()  # Bugzilla bug numbers


def write_updateinfo(advisories: Sequence[Advisory], out: Path) -> Path:
    """updateinfo.xml for the advisories, written with createrepo_c's API (as Bodhi's tools do)."""
    info = cr.UpdateInfo()
    for advisory in advisories:
        record = cr.UpdateRecord()
        record.id, record.type, record.severity, record.title = (
            advisory.id,
            advisory.type,
            advisory.severity,
            advisory.title,
        )
        record.status, record.version, record.release = "stable", "2", "Fedora 42"
        record.fromstr = "updates@fedoraproject.org"
        record.issued_date = record.updated_date = dt.datetime(2026, 11, 20, 10, 0, 0)
        record.summary = record.description = f"{advisory.title}: {', '.join(advisory.cves) or 'no CVE'}"
        for cve in advisory.cves:
            reference = cr.UpdateReference()
            reference.id, reference.type, reference.title = cve, "cve", cve
            reference.href = f"https://www.cve.org/CVERecord?id={cve}"
            record.append_reference(reference)
        for bug in advisory.bugs:
            reference = cr.UpdateReference()
            reference.id, reference.type, reference.title = bug, "bugzilla", f"Bug {bug}"
            reference.href = f"https://bugzilla.redhat.com/show_bug.cgi?id={bug}"
            record.append_reference(reference)
        collection = cr.UpdateCollection()
        collection.shortname, collection.name = "F42", "Fedora 42"
        for path in advisory.rpms:
            header = _header(path)
            package = cr.UpdateCollectionPackage()
            package.name, package.version, package.release = (
                header["name"],
                header["version"],
                header["release"],
            )
            package.epoch, package.arch, package.src = header["epoch"], header["arch"], header["sourcerpm"]
            package.filename = path.name
            package.sum, package.sum_type = _sha256(path), cr.SHA256
            collection.append(package)
        record.append_collection(collection)
        info.append(record)
    out.write_text(info.xml_dump(), encoding="utf-8")
    return out


def make_repo(directory: Path, rpms: Iterable[Path], advisories: Sequence[Advisory] = ()) -> Path:
    """A yum repository of copies of the RPMs, with updateinfo.xml when advisories are given."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in rpms:
        shutil.copy2(path, directory / path.name)
    subprocess.run(["createrepo_c", "--quiet", str(directory)], check=True, capture_output=True)
    if advisories:
        scratch = directory.parent / f".{directory.name}-notes"
        scratch.mkdir(exist_ok=True)
        notes = write_updateinfo(advisories, scratch / "updateinfo.xml")
        subprocess.run(
            ["modifyrepo_c", "--mdtype=updateinfo", str(notes), str(directory / "repodata")],
            check=True,
            capture_output=True,
        )
        shutil.rmtree(scratch)
    return directory


@dataclass
class KojiTag:
    """A Koji tag's repositories: `<top>/repos/<tag>/<id>/<arch>/`, `repo.json` beside the arch
    directories, and `latest` pointing at the newest (as kojira keeps it)."""

    top: Path
    tag: str
    arches: tuple[str, ...] = ("x86_64",)
    ids: list[int] = field(default_factory=list)

    def regen(
        self,
        builds: Sequence[Built],
        advisories: Sequence[Advisory] = (),
        *,
        with_src: bool = True,
        event: int = 0,
    ) -> int:
        """A new repository of the tag holding these builds; `latest` moves to it. Its repo id."""
        repo_id = 1000 + len(self.ids) if not self.ids else self.ids[-1] + 1
        base = self.top / "repos" / self.tag / str(repo_id)
        for arch in self.arches:
            wanted = [
                p
                for b in builds
                for p in b.rpms
                if _arch_of(p) in (arch, "noarch") or (arch == "x86_64" and _arch_of(p) == "i686")
            ]
            make_repo(base / arch, wanted, [a for a in advisories if set(a.rpms) & set(wanted)])
        if with_src:
            make_repo(base / "src", [b.srpm for b in builds])
        info = {"id": repo_id, "tag": self.tag, "tag_id": 7, "task_id": 1, "event_id": event or 40000 + repo_id,
                "opts": {"src": with_src, "debuginfo": False, "separate_src": False, "maven": False}}  # fmt: skip
        (base / "repo.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        latest = self.top / "repos" / self.tag / "latest"
        fresh = latest.with_name(".latest")
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(str(repo_id))
        os.replace(fresh, latest)
        self.ids.append(repo_id)
        return repo_id

    def baseurl(self, prefix: str) -> str:
        """The `{arch}` baseurl of the tag's latest repository under a URL prefix of `top`."""
        return f"{prefix.rstrip('/')}/repos/{self.tag}/latest/{{arch}}/"

    def latest(self, arch: str) -> Path:
        return self.top / "repos" / self.tag / "latest" / arch


def _arch_of(path: Path) -> str:
    return path.name.removesuffix(".rpm").rsplit(".", 1)[1]


def _header(path: Path) -> dict[str, str]:
    fields = ["name", "epoch", "version", "release", "arch", "sourcerpm"]
    fmt = "\\t".join(f"%{{{f.upper()}}}" for f in fields).replace("%{EPOCH}", "%|EPOCH?{%{EPOCH}}:{0}|")
    out = subprocess.run(
        ["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(zip(fields, out.split("\t"), strict=True))


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(directory: Path) -> Iterator[str]:
    """Every file name under a directory (for asserting what a repository holds)."""
    return (p.name for p in directory.rglob("*") if p.is_file())
