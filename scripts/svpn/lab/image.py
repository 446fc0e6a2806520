"""Lab base images: built locally with mmdebstrap + `docker import` (no registry), cached by content hash."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from svpn.core.errors import SvpnError

# Everything a lab host may need, preinstalled: lab containers sit on `internal` networks with no
# route to a package mirror, so the roles' package tasks find these already present.
LAB_PACKAGES: tuple[str, ...] = (
    "python3",
    "python3-apt",
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "iputils-ping",
    "curl",
    "procps",
    "ca-certificates",
    "netbase",
    "nftables",
    "conntrack",
    "conntrackd",
    "keepalived",
    "ike-scan",
    "strongswan-swanctl",
    "charon-systemd",
    "libcharon-extra-plugins",
    "libstrongswan-standard-plugins",
    "libstrongswan-extra-plugins",
    "strongswan-pki",
    # the concentrators rotate charon's attempt log (concentrator_attempt_log_days)
    "logrotate",
    # how real hosts are managed: the ssh scenario reaches its hosts over SSH as an unprivileged admin
    "openssh-server",
    "sudo",
    # monitoring (issue 16): the exporters on concentrators and LBs use prometheus_client; the lab's app host
    # runs Debian's Prometheus, which scrapes them (promtool checks its configuration and rules)
    "python3-prometheus-client",
    "prometheus",
)

IMAGE_REPO = "svpn-lab"
IMAGE_RECIPE_VERSION = "1"

# The Debian releases the lab builds, each from the same package list (trixie ships every one of
# LAB_PACKAGES under the same name). bookworm (Debian 12) runs every lab host; trixie (Debian 13) runs the
# molecule/farm hosts that prove a mixed farm, as during an OS upgrade.
LAB_SUITES: tuple[str, ...] = ("bookworm", "trixie")
DEFAULT_SUITE = "bookworm"


@dataclass(frozen=True)
class ImageSpec:
    suite: str
    packages: tuple[str, ...] = LAB_PACKAGES

    @property
    def content_hash(self) -> str:
        recipe = "\n".join([IMAGE_RECIPE_VERSION, self.suite, *sorted(self.packages)])
        return hashlib.sha256(recipe.encode()).hexdigest()[:12]

    @property
    def hashed_tag(self) -> str:
        return f"{IMAGE_REPO}:{self.suite}-{self.content_hash}"

    @property
    def stable_tag(self) -> str:
        """The tag scenarios and the lab refer to; it always points at the current recipe's image."""
        return f"{IMAGE_REPO}:{self.suite}"


def lab_images() -> tuple[ImageSpec, ...]:
    """Every base image the lab and the molecule scenarios run, default suite first."""
    return tuple(ImageSpec(suite) for suite in LAB_SUITES)


def _image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def ensure_image(spec: ImageSpec, log=print) -> str:
    """Build the image unless one with the same content hash exists; (re)point the stable tag at it."""
    if _image_exists(spec.hashed_tag):
        log(f"image {spec.hashed_tag}: cached")
    else:
        log(
            f"image {spec.hashed_tag}: building with mmdebstrap ({spec.suite}, {len(spec.packages)} packages)"
        )
        with tempfile.TemporaryDirectory(prefix="svpn-image-") as tmp:
            tarball = Path(tmp) / "rootfs.tar"
            cmd = [
                "mmdebstrap",
                "--variant=apt",
                "--include=" + ",".join(spec.packages),
                spec.suite,
                str(tarball),
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                tail = "\n".join(done.stderr.strip().splitlines()[-5:])
                raise SvpnError(f"mmdebstrap failed for suite {spec.suite!r}:\n{tail}")
            imported = subprocess.run(
                [
                    "docker",
                    "import",
                    "--change",
                    "ENV container=docker",
                    "--change",
                    'CMD ["/lib/systemd/systemd"]',
                    str(tarball),
                    spec.hashed_tag,
                ],
                capture_output=True,
                text=True,
            )
            if imported.returncode != 0:
                raise SvpnError(f"docker import failed: {imported.stderr.strip()}")
    subprocess.run(["docker", "tag", spec.hashed_tag, spec.stable_tag], check=True, capture_output=True)
    return spec.stable_tag
