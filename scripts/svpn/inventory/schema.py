"""What a farm inventory holds: its files, its groups and the keys the planner writes (the contract with
the roles). Every other svpn.inventory module names files and keys through these.

Layout::

    hosts.yml                    loadbalancers: lb1, lb2; concentrators: conc1..concN
    group_vars/all.yml           farm-wide facts (svpn_*) and the planner's own inputs (svpn_plan)
    group_vars/loadbalancers.yml loadbalancer_buckets (owners are computed by svpn.farm.buckets at deploy
    time)
    host_vars/concN.yml          addresses, pool, charon tuning
    host_vars/lbN.yml            addresses
    CAPACITY.md, .capacity.svg   the plan in words and a chart (the chart is a dot-file: Ansible would
                                 otherwise try to read an .svg in an inventory directory as INI hosts)

Imports svpn.planning's defaults and tuning.
"""

from __future__ import annotations

from svpn.planning.defaults import LIMIT_KEYS
from svpn.planning.tuning import Tuning

HOSTS = "hosts.yml"
ALL_VARS = "group_vars/all.yml"
LB_VARS = "group_vars/loadbalancers.yml"
CAPACITY_MD = "CAPACITY.md"
CAPACITY_SVG = ".capacity.svg"
GENERATED_MARK = "# Written by `svpn plan`"

TUNING_KEYS = tuple(f"concentrator_{name}" for name in Tuning.__dataclass_fields__)
PLAN_KEYS = (
    "profile",
    "cores",
    "nic_gbps",
    "memory_gib",
    "storm_seconds",
    "redundancy",
    "headroom_percent",
    "supernet",
    "reserved_networks",
    *LIMIT_KEYS,
)
# group_vars/all.yml key -> plan input key
ALL_TO_INPUT = {
    "svpn_vpn_name": "vpn_name",
    "svpn_public_address": "vip",
    "svpn_lb_inside_address": "inside_vip",
    "svpn_tunnel_mode": "tunnel_mode",
    "svpn_internal_networks": "internal_networks",
    "svpn_dns_servers": "dns",
    "svpn_management_networks": "management_networks",
    "svpn_ike_proposals": "ike_proposals",
    "svpn_esp_proposals": "esp_proposals",
    "svpn_esp_pfs_optional": "esp_pfs_optional",
    "svpn_pki_dir": "pki_dir",
    "svpn_users": "users",
    "svpn_peak_concurrency_percent": "concurrency_percent",
}
NETWORK_ROLES = ("public", "inside", "internal")
ALL_KEYS = ("svpn_networks", "svpn_plan", *ALL_TO_INPUT)
# planner keys a planned farm may lack (the default applies): inventories planned before the key existed
OPTIONAL_PLAN_KEYS: dict[str, object] = {"svpn_esp_pfs_optional": False, "svpn_management_networks": []}


def host_vars_path(name: str) -> str:
    return f"host_vars/{name}.yml"


LB_GROUP = "loadbalancers"
NODE_GROUP = "concentrators"
