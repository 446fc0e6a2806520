"""A lab machine destroyed and made again: the docker commands that recreate a container as a blank host.

A rebuilt server keeps what the data centre gives it (name, addresses, kernel settings, devices) and
nothing of its disk. :func:`recreate_commands` reads that much from the old container's `docker inspect`
and returns the commands that create a fresh container from the same image: no volume, layer or state of
the old one is carried over (the cgroup bind mount and the tmpfs mounts are the host's and empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _create_options(inspect: Mapping[str, Any]) -> list[str]:
    config, host = inspect["Config"], inspect["HostConfig"]
    argv = ["--name", inspect["Name"].lstrip("/"), "--hostname", config["Hostname"]]
    for key, value in sorted((config.get("Labels") or {}).items()):
        argv += ["--label", f"{key}={value}"]
    for capability in host.get("CapAdd") or []:
        argv += ["--cap-add", capability]
    for device in host.get("Devices") or []:
        argv += [
            "--device",
            f"{device['PathOnHost']}:{device['PathInContainer']}:{device['CgroupPermissions']}",
        ]
    for path, options in sorted((host.get("Tmpfs") or {}).items()):
        argv += ["--tmpfs", f"{path}:{options}" if options else path]
    for bind in host.get("Binds") or []:
        argv += ["--volume", bind]
    for key, value in sorted((host.get("Sysctls") or {}).items()):
        argv += ["--sysctl", f"{key}={value}"]
    if host.get("Privileged"):
        argv.append("--privileged")
    return argv


def recreate_commands(inspect: Mapping[str, Any]) -> list[list[str]]:
    """`docker create` (first network, its address), `docker network connect` for each further network
    (older engines take one network at create), `docker start`: a blank container like *inspect*'s."""
    name = inspect["Name"].lstrip("/")
    networks = inspect["NetworkSettings"]["Networks"]
    if not networks:
        raise ValueError(f"container {name}: no networks to recreate it on")
    addressed = []
    for network, settings in sorted(networks.items()):
        address = (settings.get("IPAMConfig") or {}).get("IPv4Address") or settings.get("IPAddress")
        if not address:
            raise ValueError(f"container {name}: no IPv4 address on network {network}")
        addressed.append((network, address))
    (first, first_address), *others = addressed
    config = inspect["Config"]
    entrypoint = config.get("Entrypoint") or []
    create = ["docker", "create", *_create_options(inspect), "--network", first, "--ip", first_address]
    if entrypoint:
        create += ["--entrypoint", entrypoint[0]]
    # The image by id, not by tag: the very base image the old machine was made from.
    create += [inspect["Image"], *entrypoint[1:], *(config.get("Cmd") or [])]
    connects = [["docker", "network", "connect", "--ip", address, net, name] for net, address in others]
    return [create, *connects, ["docker", "start", name]]
