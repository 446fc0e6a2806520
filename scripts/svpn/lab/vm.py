"""A lab VM with Debian's stock kernel (pure: specs, files and command lines; no I/O here).

This machine's kernel has no ESP, so container concentrators run strongSwan's userspace ESP. A QEMU guest
(TCG: KVM does not work on these machines) boots Debian's own kernel, which has it, so a concentrator VM
proves `concentrator_data_plane: kernel` as production runs it. The guest sits on the lab's `internal`
docker networks through tap devices in their bridges, and Ansible manages it over SSH like a real host:
an unprivileged admin with sudo, a key made for the image, host keys recorded in a known_hosts file.
The I/O (building the image, booting, stopping) is in :mod:`svpn.lab.vmhost`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from svpn.core.errors import SvpnError
from svpn.lab.topo import DOCKER_BRIDGE_NET, TEST_RANGE

# Bump when the image recipe changes in a way the package list and the files below do not show.
VM_RECIPE_VERSION = "1"
VM_SUITE = "bookworm"
ADMIN_USER = "admin"
# What a bare Debian host with SSH management needs, plus Debian's kernel (it brings /lib/modules: esp4,
# xfrm) and what the lab's checks use. The roles' own package lists are added (role_packages): the guest
# has no route to a mirror, so every package a role installs must already be there.
VM_BASE_PACKAGES: tuple[str, ...] = (
    "linux-image-amd64",
    "systemd-sysv",
    "udev",
    "kmod",
    "ifupdown",
    "iproute2",
    "iputils-ping",
    "procps",
    # /etc/protocols and /etc/services, as on every Debian host (nft prints "esp", not "50")
    "netbase",
    "openssh-server",
    "sudo",
    "python3",
    "python3-apt",
)
# Where the roles list the packages they install (a YAML vars file and its list variable).
ROLE_PACKAGE_LISTS: tuple[tuple[str, str], ...] = (
    ("roles/concentrator/vars/main.yml", "concentrator_packages"),
    ("roles/exporter/vars/main.yml", "exporter_packages"),  # the concentrator role includes the exporter
)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,7}$")
MEMORY_RANGE_MIB = (256, 4096)
DISK_SIZE = "3G"


@dataclass(frozen=True)
class Nic:
    """One guest interface: the docker network whose bridge its tap joins, and its static address."""

    network: str
    address: ipaddress.IPv4Interface


def parse_nic(text: str) -> Nic:
    """``NETWORK=ADDRESS/PREFIX`` (the docker network's name, the guest's address on it)."""
    network, sep, address = text.partition("=")
    if not sep or not network or not address:
        raise SvpnError(
            f"--nic {text!r}: expected NETWORK=ADDRESS/PREFIX, e.g. mol-kernel-public=198.18.61.10/24"
        )
    try:
        iface = ipaddress.IPv4Interface(address)
    except ValueError as err:
        raise SvpnError(f"--nic {text!r}: {address!r} is not an IPv4 address with a prefix ({err})") from None
    if "/" not in address:
        raise SvpnError(f"--nic {text!r}: give the prefix length too, e.g. {address}/24")
    if iface.ip not in TEST_RANGE or iface.ip in DOCKER_BRIDGE_NET:
        raise SvpnError(
            f"--nic {text!r}: {iface.ip} is outside the lab's test range {TEST_RANGE} "
            f"(or in docker's own {DOCKER_BRIDGE_NET}); lab hosts use only test addresses"
        )
    return Nic(network, iface)


@dataclass(frozen=True)
class VmSpec:
    """One lab VM: its name (also its hostname), its interfaces in order (eth0, eth1…) and its memory."""

    name: str
    nics: tuple[Nic, ...]
    memory_mib: int = 768
    packages: tuple[str, ...] = field(default=VM_BASE_PACKAGES)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise SvpnError(
                f"VM name {self.name!r}: use 1-8 lowercase letters and digits, starting with a letter "
                "(it names the tap devices, which Linux limits to 15 characters)"
            )
        if not self.nics:
            raise SvpnError(f"VM {self.name}: give at least one --nic NETWORK=ADDRESS/PREFIX")
        if len(self.nics) > 9:
            raise SvpnError(f"VM {self.name}: {len(self.nics)} NICs; at most 9 are supported")
        low, high = MEMORY_RANGE_MIB
        if not low <= self.memory_mib <= high:
            raise SvpnError(f"VM {self.name}: memory {self.memory_mib} MiB; valid: {low}-{high} MiB")
        ips = [nic.address.ip for nic in self.nics]
        if len(set(ips)) != len(ips):
            raise SvpnError(f"VM {self.name}: an address is given twice in {[str(ip) for ip in ips]}")

    @property
    def ssh_address(self) -> ipaddress.IPv4Address:
        """Where the controller logs in: the first NIC's address."""
        return self.nics[0].address.ip

    def tap(self, index: int) -> str:
        return f"vm-{self.name}-{index}"

    @property
    def taps(self) -> list[str]:
        return [self.tap(i) for i in range(len(self.nics))]

    def mac(self, index: int) -> str:
        """A stable locally administered MAC per VM and NIC (QEMU's default would repeat across VMs)."""
        digest = hashlib.sha256(self.name.encode()).digest()
        return f"52:54:{digest[0]:02x}:{digest[1]:02x}:{digest[2]:02x}:{index:02x}"

    @property
    def image_key(self) -> str:
        """The image's cache key: everything baked into the disk (packages, hostname, addresses)."""
        recipe = "\n".join(
            [VM_RECIPE_VERSION, VM_SUITE, ADMIN_USER, *sorted(set(self.packages)), hostname_file(self),
             interfaces_file(self)]
        )  # fmt: skip
        return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def role_packages(vars_text: str, variable: str, where: str) -> tuple[str, ...]:
    """The package list *variable* of a role's vars file (its text); a clear error if it is not one."""
    try:
        data: Any = yaml.safe_load(vars_text) or {}
    except yaml.YAMLError as err:
        raise SvpnError(f"{where}: not valid YAML ({err})") from None
    value = data.get(variable) if isinstance(data, dict) else None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SvpnError(f"{where}: {variable} must be a list of package names, got {value!r}")
    return tuple(value)


def with_role_packages(root: Path, base: tuple[str, ...] = VM_BASE_PACKAGES) -> tuple[str, ...]:
    """*base* plus every package the roles install (ROLE_PACKAGE_LISTS), sorted, without repeats."""
    found = set(base)
    for rel, variable in ROLE_PACKAGE_LISTS:
        path = root / rel
        found.update(role_packages(path.read_text(), variable, str(path)))
    return tuple(sorted(found))


def hostname_file(spec: VmSpec) -> str:
    return f"{spec.name}\n"


def hosts_file(spec: VmSpec) -> str:
    return f"127.0.0.1\tlocalhost\n127.0.1.1\t{spec.name}\n"


def interfaces_file(spec: VmSpec) -> str:
    """/etc/network/interfaces: a static address per NIC, no gateway (the roles install the routes)."""
    lines = ["# Written by svpn lab vm: one static address per NIC.", "auto lo", "iface lo inet loopback"]
    for index, nic in enumerate(spec.nics):
        lines += ["", f"# {nic.network}", f"auto eth{index}", f"iface eth{index} inet static"]
        lines.append(f"    address {nic.address.with_prefixlen}")
    return "\n".join(lines) + "\n"


FSTAB = "/dev/vda / ext4 errors=remount-ro 0 1\n"


def sudoers_file(user: str = ADMIN_USER) -> str:
    return f"# svpn lab vm: the admin Ansible logs in as.\n{user} ALL=(ALL) NOPASSWD: ALL\n"


def known_hosts(spec: VmSpec, host_public_keys: list[str]) -> str:
    """known_hosts lines for every address of the VM: the controller checks the host key it connects to."""
    names = ",".join(str(nic.address.ip) for nic in spec.nics)
    lines = []
    for key in host_public_keys:
        kind, blob = key.split()[:2]
        lines.append(f"{names} {kind} {blob}")
    return "\n".join(lines) + "\n"


def ssh_options(key_file: Path, known_hosts_file: Path) -> list[str]:
    """ssh options that log in with the image's key and accept only the recorded host key."""
    return [
        "-i", str(key_file), "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known_hosts_file}",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
    ]  # fmt: skip


@dataclass(frozen=True)
class BootFiles:
    kernel: Path
    initrd: Path
    disk: Path
    console_log: Path
    pid_file: Path


def qemu_command(spec: VmSpec, files: BootFiles) -> list[str]:
    """The guest's QEMU command line: TCG, one vCPU, Debian's kernel booted directly, the cached disk with
    a throwaway overlay (-snapshot: every boot starts from the pristine image), one virtio NIC per tap,
    console to a file, no monitor, daemonized with a pid file."""
    cmd = [
        "qemu-system-x86_64", "-name", f"svpn-vm-{spec.name}", "-accel", "tcg", "-m", str(spec.memory_mib),
        "-smp", "1", "-kernel", str(files.kernel), "-initrd", str(files.initrd),
        "-append", "console=ttyS0 root=/dev/vda rw net.ifnames=0 quiet",
        "-drive", f"file={files.disk},format=raw,if=virtio", "-snapshot",
    ]  # fmt: skip
    for index, tap in enumerate(spec.taps):
        cmd += [
            "-netdev", f"tap,id=n{index},ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n{index},mac={spec.mac(index)},romfile=",
        ]  # fmt: skip
    cmd += [
        "-display", "none", "-serial", f"file:{files.console_log}", "-monitor", "none", "-no-reboot",
        "-daemonize", "-pidfile", str(files.pid_file),
    ]  # fmt: skip
    return cmd


def bridge_of(network_id: str) -> str:
    """The Linux bridge docker made for a bridge network: br- and the first 12 characters of its id."""
    if not re.fullmatch(r"[0-9a-f]{12,64}", network_id):
        raise SvpnError(f"docker network id {network_id!r} is not a hex id")
    return f"br-{network_id[:12]}"
