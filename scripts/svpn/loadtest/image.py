"""The load generator's image: strongSwan's load-tester, patched (loadgen/*.patch), built once and cached.

Debian ships no load-tester plugin, so charon is built from the upstream source Debian itself uses (the
orig tarball of the lab's strongSwan version, fetched with `apt-get source` through a private sources
list, so the host's apt configuration is left alone) with the project's patch, on the host, into
``/opt/svpn-loadgen``; then baked into a local image ``FROM svpn-lab:bookworm`` (no registry needed).

Both steps are cached: the build by a hash of (version, configure flags, patch, recipe), in
``.lab/loadgen/``; the image by that hash plus the base image's id, as its tag. A second run is instant.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.lab.image import ImageSpec, ensure_image

Log = Callable[[str], None]

STRONGSWAN_VERSION = "5.9.8"  # the lab's charon (Debian 12); the patch is written against it
ORIG_TARBALL = f"strongswan_{STRONGSWAN_VERSION}.orig.tar.bz2"
ORIG_SHA256 = "d3303a43c0bd7b75a12b64855e8edcb53696f06190364f26d1533bde1f2e453c"
PREFIX = "/opt/svpn-loadgen"
CHARON = f"{PREFIX}/libexec/ipsec/charon"
CONFIGURE_FLAGS: tuple[str, ...] = (
    f"--prefix={PREFIX}",
    f"--sysconfdir={PREFIX}/etc",
    "--with-piddir=/run",
    "--with-systemdsystemunitdir=no",
    "--enable-load-tester",
    "--enable-swanctl",
    "--enable-vici",
    "--enable-openssl",
    "--disable-stroke",
    "--disable-ikev1",
    "--disable-gmp",
    "--disable-scepclient",
)
BUILD_PACKAGES = ("build-essential", "pkg-config", "libssl-dev", "libgmp-dev", "bzip2", "patch")
DEB_SRC = (
    "deb-src http://deb.debian.org/debian bookworm main\n"
    "deb-src http://deb.debian.org/debian-security bookworm-security main\n"
)
IMAGE_REPO = "svpn-loadgen"
RECIPE_VERSION = "1"
DOCKERFILE = f"FROM {ImageSpec('bookworm').stable_tag}\nCOPY opt/svpn-loadgen {PREFIX}\n"


def patch_file() -> Path:
    return repo_root() / "loadgen" / f"strongswan-{STRONGSWAN_VERSION}-loadgen.patch"


def cache_dir() -> Path:
    return repo_root() / ".lab" / "loadgen"


def build_hash() -> str:
    """What the built charon depends on: version, flags, the patch and this recipe."""
    recipe = hashlib.sha256()
    for part in (RECIPE_VERSION, STRONGSWAN_VERSION, *CONFIGURE_FLAGS):
        recipe.update(part.encode() + b"\0")
    recipe.update(patch_file().read_bytes())
    return recipe.hexdigest()[:12]


def _run(cmd: list[str], log_file: Path, cwd: Path | None = None, env: dict | None = None) -> None:
    with open(log_file, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
        raise SvpnError(f"{cmd[0]} failed (exit {done.returncode}); the end of {log_file}:\n{tail}")


def _missing_packages(packages: tuple[str, ...]) -> list[str]:
    missing = []
    for package in packages:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        if "install ok installed" not in done.stdout:
            missing.append(package)
    return missing


def _ensure_build_packages(log: Log, log_file: Path) -> None:
    missing = _missing_packages(BUILD_PACKAGES)
    if missing:
        log(f"installing build dependencies: {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(["apt-get", "install", "-y", "--no-install-recommends", *missing], log_file, env=env)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_source(log: Log, log_file: Path) -> Path:
    """The orig tarball, from Debian's source archive (cached; checked against its known sha256)."""
    src = cache_dir() / "src"
    tarball = src / ORIG_TARBALL
    if tarball.exists() and _sha256(tarball) == ORIG_SHA256:
        return tarball
    src.mkdir(parents=True, exist_ok=True)
    log(f"fetching {ORIG_TARBALL} with apt-get source (a private deb-src list; the host's is untouched)")
    with tempfile.TemporaryDirectory(prefix="svpn-apt-") as tmp:
        apt_dir = Path(tmp)
        (apt_dir / "lists" / "partial").mkdir(parents=True)
        (apt_dir / "sources.list").write_text(DEB_SRC)
        options = [
            "-o", f"Dir::Etc::SourceList={apt_dir / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        ]  # fmt: skip
        _run(["apt-get", *options, "update"], log_file)
        # The Debian diff of a security update may be missing from the archive (404); the orig tarball,
        # which is all the build needs, arrives anyway, so apt-get's exit code is not the judge here.
        with open(log_file, "a") as out:
            subprocess.run(
                ["apt-get", *options, "source", "--download-only", "strongswan"],
                cwd=apt_dir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        fetched = apt_dir / ORIG_TARBALL
        if not fetched.exists():
            raise SvpnError(f"apt-get source did not deliver {ORIG_TARBALL}: see {log_file}")
        if _sha256(fetched) != ORIG_SHA256:
            raise SvpnError(f"{ORIG_TARBALL} does not have the expected sha256 {ORIG_SHA256}")
        shutil.copy(fetched, tarball)
    return tarball


def build(log: Log) -> Path:
    """The patched charon installed into a staging tree (cached by build_hash()); returns the tree."""
    stage = cache_dir() / f"build-{build_hash()}"
    if (stage / "opt" / "svpn-loadgen" / "libexec" / "ipsec" / "charon").exists():
        return stage
    cache_dir().mkdir(parents=True, exist_ok=True)
    log_file = cache_dir() / f"build-{build_hash()}.log"
    log_file.write_text("")
    _ensure_build_packages(log, log_file)
    tarball = fetch_source(log, log_file)
    log(f"building strongSwan {STRONGSWAN_VERSION} with the load-tester patch (about 4 minutes on 2 cores)")
    with tempfile.TemporaryDirectory(prefix="svpn-loadgen-", dir=cache_dir()) as tmp:
        work = Path(tmp)
        _run(["tar", "-xjf", str(tarball), "-C", str(work)], log_file)
        source = work / f"strongswan-{STRONGSWAN_VERSION}"
        _run(["patch", "-p1", "--forward", "--batch", "-i", str(patch_file())], log_file, cwd=source)
        _run([str(source / "configure"), *CONFIGURE_FLAGS], log_file, cwd=source)
        _run(["make", f"-j{os.cpu_count() or 2}"], log_file, cwd=source)
        staging = work / "stage"
        _run(["make", "install", f"DESTDIR={staging}"], log_file, cwd=source)
        if stage.exists():  # an incomplete tree from an interrupted run
            shutil.rmtree(stage)
        staging.rename(stage)
    log(f"built into {stage} (log: {log_file})")
    return stage


def _image_id(tag: str) -> str:
    done = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", tag], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def image_tag(base_id: str) -> str:
    digest = hashlib.sha256(f"{build_hash()}\n{base_id}\n{DOCKERFILE}".encode()).hexdigest()[:12]
    return f"{IMAGE_REPO}:{STRONGSWAN_VERSION}-{digest}"


def ensure_generator_image(log: Log = print) -> str:
    """The generator image's tag, building whatever is not cached yet."""
    base = ensure_image(ImageSpec("bookworm"), log=lambda _msg: None)
    tag = image_tag(_image_id(base))
    if _image_id(tag):
        log(f"generator image {tag}: cached")
        return tag
    stage = build(log)
    with tempfile.TemporaryDirectory(prefix="svpn-loadgen-ctx-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(DOCKERFILE)
        shutil.copytree(stage / "opt", context / "opt", symlinks=True)
        done = subprocess.run(
            ["docker", "build", "-q", "-t", tag, str(context)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SvpnError(f"docker build of the generator image failed: {done.stderr.strip()[-500:]}")
    log(f"generator image {tag}: built")
    return tag
