"""Pure parts of the lab VM: NIC parsing, the spec's checks, cache key, guest files, QEMU's command line."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from svpn.core.errors import SvpnError
from svpn.lab import vm

ROOT = Path(__file__).resolve().parents[2]


def _spec(**overrides) -> vm.VmSpec:
    args = {
        "name": "kconc1",
        "nics": (vm.parse_nic("net-pub=198.18.61.10/24"), vm.parse_nic("net-int=198.18.62.10/24")),
    }
    return vm.VmSpec(**{**args, **overrides})


def test_parse_nic() -> None:
    nic = vm.parse_nic("mol-kernel-public=198.18.61.10/24")
    assert nic.network == "mol-kernel-public"
    assert nic.address == ipaddress.IPv4Interface("198.18.61.10/24")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("198.18.61.10/24", "expected NETWORK=ADDRESS/PREFIX"),
        ("net=", "expected NETWORK=ADDRESS/PREFIX"),
        ("net=198.18.61.300/24", "not an IPv4 address"),
        ("net=198.18.61.10", "give the prefix length"),
        ("net=10.0.0.5/24", "outside the lab's test range"),
        ("net=198.19.255.7/24", "docker's own"),
    ],
)
def test_parse_nic_refuses(text: str, says: str) -> None:
    with pytest.raises(SvpnError, match=says):
        vm.parse_nic(text)


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"name": "Kconc1"}, "lowercase"),
        ({"name": "concentrator1"}, "1-8"),
        ({"nics": ()}, "at least one --nic"),
        ({"memory_mib": 128}, "valid: 256-4096"),
        ({"nics": (vm.parse_nic("a=198.18.61.10/24"), vm.parse_nic("b=198.18.61.10/24"))}, "given twice"),
    ],
)
def test_spec_refuses(overrides: dict, says: str) -> None:
    with pytest.raises(SvpnError, match=says):
        _spec(**overrides)


def test_taps_fit_linux_names_and_macs_differ_per_vm_and_nic() -> None:
    spec = _spec(name="abcdefgh")
    assert spec.taps == ["vm-abcdefgh-0", "vm-abcdefgh-1"]
    assert all(len(tap) <= 15 for tap in spec.taps)
    macs = {spec.mac(0), spec.mac(1), _spec(name="other").mac(0)}
    assert len(macs) == 3
    assert all(mac.startswith("52:54:") for mac in macs)


def test_image_key_follows_what_the_disk_holds() -> None:
    base = _spec()
    assert base.image_key == _spec().image_key
    assert base.image_key != _spec(name="kconc2").image_key
    assert base.image_key != _spec(packages=(*vm.VM_BASE_PACKAGES, "curl")).image_key
    moved = (vm.parse_nic("net-pub=198.18.61.11/24"), base.nics[1])
    assert base.image_key != _spec(nics=moved).image_key
    # memory is a boot option, not in the disk
    assert base.image_key == _spec(memory_mib=512).image_key


def test_interfaces_file_gives_each_nic_its_static_address_in_order() -> None:
    text = vm.interfaces_file(_spec())
    assert "auto eth0\niface eth0 inet static\n    address 198.18.61.10/24" in text
    assert "auto eth1\niface eth1 inet static\n    address 198.18.62.10/24" in text
    assert "gateway" not in text


def test_known_hosts_names_every_address() -> None:
    line = vm.known_hosts(_spec(), ["ssh-ed25519 AAAAC3Nz root@kconc1\n"])
    assert line == "198.18.61.10,198.18.62.10 ssh-ed25519 AAAAC3Nz\n"


def test_ssh_options_check_the_recorded_host_key() -> None:
    opts = vm.ssh_options(Path("/k/id"), Path("/k/known_hosts"))
    assert "StrictHostKeyChecking=yes" in opts
    assert "UserKnownHostsFile=/k/known_hosts" in opts
    assert opts[:2] == ["-i", "/k/id"]


def test_qemu_command_is_tcg_one_cpu_snapshot_and_a_tap_per_nic() -> None:
    spec = _spec(memory_mib=512)
    files = vm.BootFiles(
        Path("/i/vmlinuz"), Path("/i/initrd.img"), Path("/i/disk.img"), Path("/r/c"), Path("/r/p")
    )
    cmd = vm.qemu_command(spec, files)
    joined = " ".join(cmd)
    assert cmd[0] == "qemu-system-x86_64"
    assert "-accel tcg" in joined and "-smp 1" in joined and "-m 512" in joined
    assert "kvm" not in joined
    assert "-snapshot" in cmd
    assert "file=/i/disk.img,format=raw,if=virtio" in cmd
    assert "tap,id=n0,ifname=vm-kconc1-0,script=no,downscript=no" in cmd
    assert f"virtio-net-pci,netdev=n1,mac={spec.mac(1)},romfile=" in cmd
    assert cmd[-2:] == ["-pidfile", "/r/p"]
    assert "file:/r/c" in cmd


def test_bridge_of_a_docker_network() -> None:
    assert vm.bridge_of("0123456789abcdef0123") == "br-0123456789ab"
    with pytest.raises(SvpnError, match="not a hex id"):
        vm.bridge_of("no such network")


def test_role_packages_are_in_the_image() -> None:
    packages = vm.with_role_packages(ROOT)
    assert {"strongswan-swanctl", "charon-systemd", "nftables", "conntrack", "linux-image-amd64"} <= set(
        packages
    )
    assert packages == tuple(sorted(set(packages)))


def test_role_packages_refuse_a_bad_vars_file() -> None:
    with pytest.raises(SvpnError, match="must be a list of package names"):
        vm.role_packages("concentrator_packages: nftables\n", "concentrator_packages", "vars.yml")
    with pytest.raises(SvpnError, match="not valid YAML"):
        vm.role_packages("a: [\n", "concentrator_packages", "vars.yml")


def test_cli_vm_down_needs_a_name_or_all(cli) -> None:
    code, _out, err = cli("lab", "vm", "down")
    assert code == 2
    assert "--name NAME or --all" in err


def test_cli_vm_up_refuses_a_bad_nic_before_building_anything(cli) -> None:
    code, _out, err = cli("lab", "vm", "up", "--name", "k1", "--nic", "net=10.1.2.3/24")
    assert code == 2
    assert "outside the lab's test range" in err
