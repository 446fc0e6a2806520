"""Lab VMs (I/O): build the cached disk image, boot it on the lab's docker networks, wait for SSH, stop it.

Layout under .lab/vm/: ``images/KEY/`` holds one built image (disk.img, the kernel and initrd taken from
the image's own /boot, the admin's SSH key, known_hosts), KEY being :attr:`VmSpec.image_key`; ``NAME/``
holds a running VM's pid file, serial console log, and copies of the key and known_hosts at a stable path
for inventories. The pure parts (command line, files, cache key) are in :mod:`svpn.lab.vm`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.lab import vm

Log = Callable[[str], None]
KEY_NAME = "id_ed25519"


def vm_root() -> Path:
    return repo_root() / ".lab" / "vm"


@dataclass(frozen=True)
class VmImage:
    directory: Path

    disk = property(lambda self: self.directory / "disk.img")
    kernel = property(lambda self: self.directory / "vmlinuz")
    initrd = property(lambda self: self.directory / "initrd.img")
    key = property(lambda self: self.directory / KEY_NAME)
    known_hosts = property(lambda self: self.directory / "known_hosts")


@dataclass(frozen=True)
class VmRun:
    directory: Path

    pid_file = property(lambda self: self.directory / "qemu.pid")
    console_log = property(lambda self: self.directory / "console.log")
    key = property(lambda self: self.directory / KEY_NAME)
    known_hosts = property(lambda self: self.directory / "known_hosts")
    taps_file = property(lambda self: self.directory / "taps")


def _run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise SvpnError(
            f"{what}: {cmd[0]} is not installed (make test-kernel installs the VM packages)"
        ) from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise SvpnError(f"{what} failed (exit {done.returncode}): {tail}")
    return done


def _customise_rootfs(spec: vm.VmSpec, rootfs: Path, out: Path) -> None:
    """Hostname, addresses, fstab, the admin with sudo and a fresh key, fresh host keys (recorded)."""
    (rootfs / "etc" / "hostname").write_text(vm.hostname_file(spec))
    (rootfs / "etc" / "hosts").write_text(vm.hosts_file(spec))
    (rootfs / "etc" / "network" / "interfaces").write_text(vm.interfaces_file(spec))
    (rootfs / "etc" / "fstab").write_text(vm.FSTAB)
    sudoers = rootfs / "etc" / "sudoers.d" / vm.ADMIN_USER
    sudoers.write_text(vm.sudoers_file())
    sudoers.chmod(0o440)
    _run(
        ["chroot", str(rootfs), "useradd", "--create-home", "--shell", "/bin/bash", vm.ADMIN_USER], "useradd"
    )
    admin_key = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"svpn-lab-vm-{spec.name}"]
    _run([*admin_key, "-f", str(out / KEY_NAME)], "ssh-keygen (admin key)")
    ssh_dir = rootfs / "home" / vm.ADMIN_USER / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "authorized_keys").write_text((out / f"{KEY_NAME}.pub").read_text())
    (ssh_dir / "authorized_keys").chmod(0o600)
    owner = f"{vm.ADMIN_USER}:{vm.ADMIN_USER}"
    _run(["chroot", str(rootfs), "chown", "-R", owner, f"/home/{vm.ADMIN_USER}"], "chown")
    # The host keys mmdebstrap's install made are replaced by one made now and recorded for the controller.
    for old in (rootfs / "etc" / "ssh").glob("ssh_host_*"):
        old.unlink()
    host_key = rootfs / "etc" / "ssh" / "ssh_host_ed25519_key"
    host_keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{spec.name}"]
    _run([*host_keygen, "-f", str(host_key)], "ssh-keygen (host key)")
    (out / "known_hosts").write_text(vm.known_hosts(spec, [Path(f"{host_key}.pub").read_text()]))


def _build_image(spec: vm.VmSpec, target: Path, log: Log) -> None:
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="svpn-vm-", dir=target.parent) as tmp:
        work = Path(tmp)
        out = work / "image"
        out.mkdir()
        rootfs = work / "rootfs"
        rootfs.mkdir()
        log(f"VM image {target.name}: mmdebstrap {vm.VM_SUITE} with {len(spec.packages)} packages")
        include = "--include=" + ",".join(spec.packages)
        tarball = str(work / "rootfs.tar")
        _run(
            ["mmdebstrap", "--variant=apt", include, vm.VM_SUITE, tarball], "mmdebstrap (VM root filesystem)"
        )
        _run(["tar", "-xpf", tarball, "--numeric-owner", "-C", str(rootfs)], "tar -x (rootfs)")
        (work / "rootfs.tar").unlink()
        _customise_rootfs(spec, rootfs, out)
        kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
        initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise SvpnError(f"VM image {target.name}: no kernel or initrd in the image's /boot")
        shutil.copyfile(kernels[-1], out / "vmlinuz")
        shutil.copyfile(initrds[-1], out / "initrd.img")
        mkfs = ["mkfs.ext4", "-q", "-F", "-L", "svpn-root", "-d", str(rootfs)]
        _run([*mkfs, str(out / "disk.img"), vm.DISK_SIZE], "mkfs.ext4 -d (VM disk)")
        out.rename(target)
    log(f"VM image {target.name}: built in {time.monotonic() - started:.0f} s")


def ensure_image(spec: vm.VmSpec, log: Log = print) -> VmImage:
    """The VM's disk image, built unless one with the same cache key exists (.lab/vm/images/KEY)."""
    image = VmImage(vm_root() / "images" / spec.image_key)
    if image.disk.exists():
        log(f"VM image {spec.image_key}: cached")
    else:
        _build_image(spec, image.directory, log)
    return image


def _docker_bridge(network: str) -> str:
    done = _run(
        ["docker", "network", "inspect", "--format", "{{.Id}}", network], f"docker network {network!r}"
    )
    return vm.bridge_of(done.stdout.strip())


def _add_taps(spec: vm.VmSpec, run: VmRun) -> None:
    bridges = [_docker_bridge(nic.network) for nic in spec.nics]  # every network exists before any tap
    run.taps_file.write_text("\n".join(spec.taps) + "\n")
    for tap, bridge in zip(spec.taps, bridges, strict=True):
        _remove_tap(tap)
        _run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"], f"ip tuntap add {tap}")
        _run(["ip", "link", "set", tap, "master", bridge], f"ip link set {tap} master {bridge}")
        _run(["ip", "link", "set", tap, "up"], f"ip link set {tap} up")


def _remove_tap(tap: str) -> bool:
    if subprocess.run(["ip", "link", "show", tap], capture_output=True).returncode != 0:
        return False
    subprocess.run(["ip", "link", "delete", tap], capture_output=True)
    return True


def _qemu_pid(run: VmRun) -> int | None:
    """The pid in the run's pid file if that process is still this VM's QEMU (not a reused pid)."""
    try:
        pid = int(run.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"qemu-system" in cmdline and str(run.pid_file).encode() in cmdline else None


def wait_for_ssh(spec: vm.VmSpec, run: VmRun, timeout: float, log: Log = print) -> float:
    """Seconds until the admin logs in over SSH with the recorded host key (an error after *timeout*)."""
    started = time.monotonic()
    login = f"{vm.ADMIN_USER}@{spec.ssh_address}"
    cmd = [
        "ssh",
        *vm.ssh_options(run.key, run.known_hosts),
        "-o",
        "ConnectTimeout=5",
        login,
        "sudo",
        "-n",
        "true",
    ]
    last = ""
    while time.monotonic() - started < timeout:
        if _qemu_pid(run) is None:
            raise SvpnError(f"VM {spec.name}: QEMU exited during boot; see {run.console_log}")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return time.monotonic() - started
        lines = done.stderr.strip().splitlines()
        last = lines[-1] if lines else last
        time.sleep(2)
    raise SvpnError(
        f"VM {spec.name}: no SSH login as {vm.ADMIN_USER}@{spec.ssh_address} within {timeout:.0f} s "
        f"(last: {last!r}); see {run.console_log}"
    )


def up(spec: vm.VmSpec, ssh_timeout: float = 300.0, log: Log = print) -> VmRun:
    """Boot the VM (stopping an earlier one of the same name first) and wait until SSH logs in."""
    if shutil.which("qemu-system-x86_64") is None:
        raise SvpnError(
            "qemu-system-x86_64 is not installed: run `scripts/bootstrap.sh vm` (make test-kernel does)"
        )
    image = ensure_image(spec, log)
    run = VmRun(vm_root() / spec.name)
    if run.directory.exists():
        down(spec.name, log)
    run.directory.mkdir(parents=True)
    for source, dest in ((image.key, run.key), (image.known_hosts, run.known_hosts)):
        shutil.copyfile(source, dest)
        dest.chmod(0o600)
    try:
        _add_taps(spec, run)
        files = vm.BootFiles(image.kernel, image.initrd, image.disk, run.console_log, run.pid_file)
        started = time.monotonic()
        _run(vm.qemu_command(spec, files), f"VM {spec.name}: qemu-system-x86_64")
        log(f"VM {spec.name}: booting (pid {run.pid_file.read_text().strip()}, console {run.console_log})")
        waited = wait_for_ssh(spec, run, ssh_timeout, log)
    except BaseException:
        down(spec.name, log)
        raise
    log(f"VM {spec.name}: SSH up {time.monotonic() - started:.0f} s after start ({waited:.0f} s waited)")
    return run


def down(name: str, log: Log = print) -> bool:
    """Stop the VM NAME (by its pid file) and remove its tap devices and run directory. True if it ran."""
    run = VmRun(vm_root() / name)
    if not run.directory.exists():
        return False
    pid = _qemu_pid(run)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _qemu_pid(run) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if _qemu_pid(run) is not None:
            os.kill(pid, signal.SIGKILL)
    taps = run.taps_file.read_text().split() if run.taps_file.exists() else []
    removed = [tap for tap in taps if _remove_tap(tap)]
    shutil.rmtree(run.directory)
    log(f"VM {name}: " + (f"stopped pid {pid}" if pid else "was not running") + f", removed taps {removed}")
    return pid is not None


def down_all(log: Log = print) -> list[str]:
    """Stop every lab VM that has a run directory; their names."""
    root = vm_root()
    names = (
        sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "images") if root.exists() else []
    )
    for name in names:
        down(name, log)
    return names
