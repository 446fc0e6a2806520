"""`svpn lab ...`: local container hosts for a lab inventory, the same playbooks as production."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import click

from svpn.cli.options import path_option
from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.lab import host as labhost
from svpn.lab import lifecycle as labops
from svpn.lab.status import client_statuses
from svpn.lab.topo import Lab, load_lab

_inventory_option = path_option(
    "--inventory", "-i", kind="dir", help="Lab inventory (default: inventories/lab)."
)


def _lab(inventory: Path | None) -> Lab:
    return load_lab(inventory if inventory is not None else repo_root() / "inventories" / "lab")


def _log(message: str) -> None:
    click.echo(f"svpn lab: {message}", err=True)


@click.group()
def lab() -> None:
    """Local container hosts (docker, systemd as PID 1) for a lab inventory."""


@lab.command("prepare")
def prepare_cmd() -> None:
    """Start dockerd if needed, build or reuse the base images (Debian 12 and 13), add the test-range
    forwarding rule."""
    for image in labops.prepare_machine(_log):
        click.echo(image)


@lab.command("up")
@_inventory_option
@click.option("--hosts-only", is_flag=True, help="Create the hosts but run no playbook.")
def up_cmd(inventory: Path | None, hosts_only: bool) -> None:
    """Create the lab's hosts, deploy the farm (playbooks/site.yml) and the lab around it, show status."""
    started = time.monotonic()
    topo = _lab(inventory)
    labops.up(topo, _log)
    if hosts_only:
        return
    labops.run_playbook(topo.inventory, "site.yml", _log)
    labops.run_playbook(topo.inventory, "lab.yml", _log)
    rows = _wait_for_clients(topo, timeout=60)
    _print_status(rows)
    _log(f"lab up in {time.monotonic() - started:.0f} s")
    if not all(row.app_reachable for row in rows):
        raise SvpnError("not every lab client reaches the app through the tunnel (see the table above)")


def _app_url(topo: Lab) -> str:
    apps = topo.group("lab_apps")
    if not apps:
        raise SvpnError(f"{topo.inventory}: no host in group lab_apps to probe")
    return f"http://{apps[0].addresses['internal']}/"


def _wait_for_clients(topo: Lab, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        rows = client_statuses(topo, _app_url(topo))
        if all(row.app_reachable for row in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(2)


def _print_status(rows) -> None:
    header = f"{'client':<10} {'user':<10} {'state':<12} {'virtual IP':<16} {'node':<8} app"
    click.echo(header)
    for row in rows:
        click.echo(
            f"{row.host:<10} {row.user:<10} {row.state:<12} {row.virtual_ip:<16} {row.node:<8} "
            f"{'yes' if row.app_reachable else 'no'}"
        )


@lab.command("status")
@_inventory_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(inventory: Path | None, as_json: bool) -> None:
    """Who is connected: each client's SA, virtual IP, node, and whether the app answers through it."""
    topo = _lab(inventory)
    if not labhost.docker_running():
        raise SvpnError("docker is not running: the lab is down (`make lab` brings it up)")
    rows = client_statuses(topo, _app_url(topo))
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        _print_status(rows)


@lab.command("bench-scale")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def bench_scale_cmd(as_json: bool) -> None:
    """Time playbooks/scale.yml adding one concentrator to the running lab, then remove it again."""
    from svpn.lab import bench_scale

    result = bench_scale.run(_log)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"scale.yml added {result['node_added']} in {result['scale_seconds']} s")
    click.echo(f"existing concentrators changed: {len(result['existing_concentrators_changed'])}")
    click.echo(f"existing hosts changed: {', '.join(result['existing_hosts_changed']) or 'none'}")


@lab.command("down")
def down_cmd() -> None:
    """Remove every lab container and network and the forwarding rule."""
    labops.down(_log)


@lab.command("host-cleanup")
def host_cleanup_cmd() -> None:
    """Remove only the forwarding rule (after molecule scenarios, which remove their own hosts)."""
    if labhost.remove_forward_rule(_log):
        _log(f"removed the DOCKER-USER rule for {labhost.TEST_RANGE}")


@lab.group("vm")
def vm_group() -> None:
    """Lab VMs with Debian's stock kernel (QEMU, TCG) on the lab's docker networks, managed over SSH."""


@vm_group.command("up")
@click.option("--name", required=True, help="The VM's name and hostname (1-8 lowercase letters, digits).")
@click.option(
    "--nic",
    "nics",
    multiple=True,
    required=True,
    metavar="NETWORK=ADDRESS/PREFIX",
    help="A NIC on that docker network with that static address; repeat, in order (eth0, eth1…). "
    "SSH logs in on the first.",
)
@click.option("--memory", type=click.IntRange(256, 4096), default=768, show_default=True, help="MiB.")
@click.option("--ssh-timeout", type=click.FloatRange(10), default=600, show_default=True, help="Seconds.")
def vm_up_cmd(name: str, nics: tuple[str, ...], memory: int, ssh_timeout: float) -> None:
    """Build or reuse the VM's image (.lab/vm/images), boot it, wait until its admin logs in over SSH."""
    from svpn.lab import vm, vmhost

    spec = vm.VmSpec(
        name=name,
        nics=tuple(vm.parse_nic(text) for text in nics),
        memory_mib=memory,
        packages=vm.with_role_packages(repo_root()),
    )
    run = vmhost.up(spec, ssh_timeout=ssh_timeout, log=_log)
    click.echo(f"ssh {' '.join(vm.ssh_options(run.key, run.known_hosts))} {vm.ADMIN_USER}@{spec.ssh_address}")


@vm_group.command("down")
@click.option("--name", help="The VM to stop.")
@click.option("--all", "every", is_flag=True, help="Stop every lab VM.")
def vm_down_cmd(name: str | None, every: bool) -> None:
    """Stop a lab VM (by its pid file) and remove its tap devices."""
    from svpn.lab import vmhost

    if (name is None) == (not every):
        raise SvpnError("svpn lab vm down: give either --name NAME or --all")
    if every:
        stopped = vmhost.down_all(_log)
        _log(f"{len(stopped)} VM run directories cleaned: {', '.join(stopped) or 'none'}")
    elif not vmhost.down(name or "", _log):
        _log(f"VM {name}: not running")
