"""The planner's documented defaults: every input's default value (`DEFAULT_INPUT`, the one home of plan
defaults: the CLI's help texts are built from it), the per-node limits and where their figures come from,
the traffic profiles, redundancy choices and crypto proposals, and how errors name an input.

Imports only svpn.planning.numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from svpn.planning.numbers import Number

LIMIT_KEYS = ("ike_sas_per_node", "setup_rate_per_core", "esp_gbps_per_core", "rss_kib_per_user")

DEFAULT_LIMITS: dict[str, Number] = {
    "ike_sas_per_node": 5000,
    "setup_rate_per_core": 226,
    "esp_gbps_per_core": 1,
    "rss_kib_per_user": 36,
}
DEFAULT_LIMIT_SOURCES: dict[str, str] = {
    "ike_sas_per_node": (
        "default: half of the 10,000 IKE SAs one lab concentrator held (docs/benchmarks.md), "
        "leaving room for rekeying, DPD and make-before-break reauthentication"
    ),
    "setup_rate_per_core": (
        "default: ECP-384 (aes256gcm16-prfsha384-ecp384, the IKE proposal every generated profile offers "
        "first), 226 setups/s per core: the lab's calibration from `svpn loadtest --json` with 10,000 users "
        "(docs/benchmarks.md); curve25519 clients cost half; the cost per setup grows with the SAs a node "
        "already holds, which the headroom covers; replace it with your own: `svpn plan --calibration FILE`"
    ),
    "esp_gbps_per_core": (
        "default: estimate for AES-GCM with AES-NI in the kernel's ESP; not measured (the lab has "
        "no kernel ESP)"
    ),
    "rss_kib_per_user": "default: upper end of the 31-36 KiB responder RSS per user measured at "
    "10,000 users (docs/benchmarks.md)",
}


@dataclass(frozen=True)
class Profile:
    name: str
    mbps_per_user: Fraction
    description: str


PROFILES: dict[str, Profile] = {
    "office": Profile(
        "office",
        Fraction(3, 10),
        "estimate: office applications, mail and file shares, 0.3 Mbps per concurrent user at the peak",
    ),
    "video-tunnel": Profile(
        "video-tunnel",
        Fraction(5, 2),
        "estimate: office traffic plus one HD video conference per concurrent user through the "
        "tunnel, 2.5 Mbps",
    ),
    "video-split": Profile(
        "video-split",
        Fraction(3, 10),
        "estimate: video conferencing goes around the tunnel (split tunnel); office traffic "
        "remains, 0.3 Mbps",
    ),
}

REDUNDANCY_SPARES = {"N+1": 1, "N+2": 2}

DEFAULT_IKE_PROPOSALS = (
    "aes256gcm16-prfsha384-ecp384",
    "aes256gcm16-prfsha256-curve25519",
    "aes128gcm16-prfsha256-ecp256",
)
# Every ESP proposal carries a DH group: PFS on each CHILD_SA rekey (the crypto policy, svpn.farm.proposals).
DEFAULT_ESP_PROPOSALS = (
    "aes256gcm16-ecp384",
    "aes256gcm16-curve25519",
    "aes128gcm16-ecp256",
)

DEFAULT_INPUT: dict[str, Any] = {
    "users": None,
    "concurrency_percent": 100,
    "profile": "office",
    "cores": 4,
    "nic_gbps": 10,
    "memory_gib": 8,
    **DEFAULT_LIMITS,
    "storm_seconds": 60,
    "redundancy": "N+1",
    "headroom_percent": 25,
    "supernet": "198.19.0.0/16",
    # docker's default bridge in the lab (README.md, the lab's network rules); harmless elsewhere, pools
    # simply skip it
    "reserved_networks": ["198.19.255.0/24"],
    "vpn_name": "vpn.svpn.test",
    "public_network": "198.18.70.0/24",
    "inside_network": "198.18.71.0/24",
    "internal_network": "198.18.72.0/24",
    "vip": None,  # host .100 of the public network
    "lb_addresses": None,  # hosts .11 and .12 of the public network
    "inside_vip": None,  # host .10 of the inside network: the LB pair's inside VIP
    "internal_networks": None,  # the internal network
    "dns": [],
    # where SSH to the farm's hosts comes from (the controller, admins' jump hosts): the firewalls accept it
    "management_networks": [],
    "tunnel_mode": "split",
    "ike_proposals": list(DEFAULT_IKE_PROPOSALS),
    "esp_proposals": list(DEFAULT_ESP_PROPOSALS),
    "esp_pfs_optional": False,  # true lets ESP proposals without a DH group (no PFS) through: legacy clients
    "pki_dir": "{{ playbook_dir }}/../pki",
}
INPUT_KEYS = tuple(DEFAULT_INPUT)

FLAGS = {key: "--" + key.replace("_", "-") for key in INPUT_KEYS}
FLAGS.update(
    {"concurrency_percent": "--concurrency", "headroom_percent": "--headroom", "pki_dir": "(plan file only)"}
)


def field_name(key: str) -> str:
    """How an error names an input: the plan-file key and its flag."""
    return f"{key} ({FLAGS[key]})" if key in FLAGS else key
