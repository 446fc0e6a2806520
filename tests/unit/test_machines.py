"""svpn_testing.machines: the docker commands that recreate a destroyed lab machine as a blank host."""

from __future__ import annotations

import copy

import pytest
from svpn_testing.machines import recreate_commands

# The parts of `docker inspect` of a molecule/scale concentrator the commands read (docker 20.10).
INSPECT = {
    "Name": "/scale-conc1",
    "Image": "sha256:5f0c",
    "Config": {
        "Hostname": "scale-conc1",
        "Labels": {"owner": "molecule"},
        "Entrypoint": None,
        "Cmd": ["/lib/systemd/systemd"],
    },
    "HostConfig": {
        "CapAdd": ["NET_ADMIN", "NET_RAW"],
        "Devices": [
            {"PathOnHost": "/dev/net/tun", "PathInContainer": "/dev/net/tun", "CgroupPermissions": "rwm"}
        ],
        "Tmpfs": {"/run": "", "/run/lock": "size=1m"},
        "Binds": ["/sys/fs/cgroup:/sys/fs/cgroup:ro"],
        "Sysctls": {"net.ipv4.ip_forward": "1"},
        "Privileged": False,
    },
    "NetworkSettings": {
        "Networks": {
            "scale-internal": {"IPAMConfig": {"IPv4Address": "198.18.42.11"}, "IPAddress": "198.18.42.11"},
            "scale-inside": {"IPAMConfig": {"IPv4Address": "198.18.43.11"}, "IPAddress": "198.18.43.11"},
        }
    },
}


def test_the_container_is_made_again_with_its_name_image_settings_and_every_address() -> None:
    create, connect, start = recreate_commands(INSPECT)
    assert create == [
        "docker", "create", "--name", "scale-conc1", "--hostname", "scale-conc1", "--label", "owner=molecule",
        "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--device", "/dev/net/tun:/dev/net/tun:rwm",
        "--tmpfs", "/run", "--tmpfs", "/run/lock:size=1m", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "--sysctl", "net.ipv4.ip_forward=1", "--network", "scale-inside", "--ip", "198.18.43.11",
        "sha256:5f0c", "/lib/systemd/systemd",
    ]  # fmt: skip
    assert connect == [
        "docker",
        "network",
        "connect",
        "--ip",
        "198.18.42.11",
        "scale-internal",
        "scale-conc1",
    ]
    assert start == ["docker", "start", "scale-conc1"]


def test_an_entrypoint_and_privileged_mode_carry_over() -> None:
    inspect = copy.deepcopy(INSPECT)
    inspect["Config"]["Entrypoint"] = ["/usr/bin/tini", "--"]
    inspect["HostConfig"]["Privileged"] = True
    create = recreate_commands(inspect)[0]
    assert "--privileged" in create
    assert create[create.index("--entrypoint") + 1] == "/usr/bin/tini"
    assert create[-3:] == ["sha256:5f0c", "--", "/lib/systemd/systemd"]


def test_an_address_docker_chose_itself_is_kept_too() -> None:
    inspect = copy.deepcopy(INSPECT)
    inspect["NetworkSettings"]["Networks"]["scale-inside"]["IPAMConfig"] = None
    assert recreate_commands(inspect)[0][-4:-2] == ["--ip", "198.18.43.11"]


@pytest.mark.parametrize(
    ("networks", "message"),
    [
        ({}, "no networks"),
        ({"scale-inside": {"IPAMConfig": None, "IPAddress": ""}}, "no IPv4 address on network scale-inside"),
    ],
)
def test_a_container_without_addresses_cannot_be_recreated(networks: dict, message: str) -> None:
    inspect = copy.deepcopy(INSPECT)
    inspect["NetworkSettings"]["Networks"] = networks
    with pytest.raises(ValueError, match=message):
        recreate_commands(inspect)
