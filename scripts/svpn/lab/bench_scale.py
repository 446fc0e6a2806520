"""Benchmark: wall time of playbooks/scale.yml adding one concentrator to the running lab farm (I/O)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.lab import lifecycle as labops
from svpn.lab.recap import changed_hosts, parse_recap
from svpn.lab.topo import Lab, load_lab


def _next_node(topo: Lab) -> dict[str, Any]:
    """The node the operator would add: next name, next addresses, the next pool of the same size."""
    nodes = topo.group("concentrators")
    number = len(nodes) + 1
    last = nodes[-1]
    pool = ipaddress.ip_network(str(last.hostvars["concentrator_pool"]))
    nxt = ipaddress.ip_network((int(pool.network_address) + pool.num_addresses, pool.prefixlen))
    return {
        "name": f"conc{number}",
        "addresses": {net: str(ip + 1) for net, ip in last.addresses.items()},
        "pool": str(nxt),
    }


def grown_inventory(source: Path, target: Path, node: dict[str, Any]) -> Path:
    """A copy of *source* with *node* added, as `svpn plan --from` or an operator would."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    hosts_path = target / "hosts.yml"
    hosts = yaml.safe_load(hosts_path.read_text())
    hosts["all"]["children"]["concentrators"]["hosts"][node["name"]] = {
        "ansible_host": f"svpn-lab-{node['name']}"
    }
    hosts_path.write_text("---\n" + yaml.safe_dump(hosts, sort_keys=False))
    host_vars = {"svpn_addresses": node["addresses"], "concentrator_pool": node["pool"]}
    (target / "host_vars" / f"{node['name']}.yml").write_text("---\n" + yaml.safe_dump(host_vars))
    return target


def _playbook(inventory: Path, name: str, *extra: str) -> tuple[float, str]:
    root = repo_root()
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "PATH": f"{bindir}:{os.environ['PATH']}",
    }
    started = time.monotonic()
    done = subprocess.run(
        [str(bindir / "ansible-playbook"), "-i", str(inventory), str(root / "playbooks" / name), *extra],
        env=env, cwd=root, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SvpnError(f"playbooks/{name} failed:\n{done.stdout[-3000:]}")
    return time.monotonic() - started, done.stdout


def run(log=print) -> dict[str, Any]:
    root = repo_root()
    base = root / "inventories" / "lab"
    topo = load_lab(base)
    node = _next_node(topo)
    grown = grown_inventory(base, labops.lab_state_dir() / "bench-scale-inventory", node)
    grown_topo = load_lab(grown)
    labops.up(grown_topo, log)  # creates only the missing host (the new node)
    existing = [h.name for h in topo.hosts if "concentrators" in h.groups or "loadbalancers" in h.groups]
    log(f"scale.yml: adding {node['name']} (pool {node['pool']})")
    elapsed, output = _playbook(grown, "scale.yml")
    recap = parse_recap(output)
    result = {
        "node_added": node["name"],
        "scale_seconds": round(elapsed, 1),
        "existing_concentrators_changed": changed_hosts(recap, [h for h in existing if h.startswith("conc")]),
        "existing_hosts_changed": changed_hosts(recap, existing),
        "recap": recap,
    }
    log(f"remove-node.yml: taking {node['name']} out again")
    _playbook(grown, "remove-node.yml", "-e", f"node={node['name']}")
    subprocess.run(["docker", "rm", "--force", f"svpn-lab-{node['name']}"], capture_output=True)
    return result
