"""Validators of single plan inputs: each takes the input's key and a raw value, returns the value checked
and normalised, or raises an SvpnError naming the input (plan-file key and flag) and what would fit.

`svpn.inventory`'s farm checks reuse them on inventories. Imports svpn.core.errors and svpn.planning's
numbers and defaults.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence
from typing import Any

from svpn.core.errors import SvpnError
from svpn.planning.defaults import field_name
from svpn.planning.numbers import Number

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address


def invalid(key: str, value: Any, valid: str) -> SvpnError:
    """The error for a *value* of the input *key* that does not fit; *valid* says what would."""
    return SvpnError(f"{field_name(key)}: {value!r} is not valid; {valid}")


def as_number(key: str, value: Any, *, whole: bool, low: Number, high: Number, what: str) -> Number:
    kind = "a whole number" if whole else "a number"
    valid = f"give {kind} from {low:,} to {high:,} ({what})"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(key, value, valid)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise invalid(key, value, valid)
        if value.is_integer():
            value = int(value)
        elif whole:
            raise invalid(key, value, valid)
    if not low <= value <= high:
        raise SvpnError(f"{field_name(key)}: {value!r} is outside {low:,}-{high:,} ({what})")
    return value


# key -> (whole number?, lowest, highest, what it is): the bounds of every numeric input
NUMBER_FIELDS: dict[str, tuple[bool, Number, Number, str]] = {
    "users": (True, 1, 10_000_000, "users the farm serves"),
    "concurrency_percent": (False, 1, 100, "percent of the users connected at the peak"),
    "cores": (True, 1, 1024, "CPU cores per node"),
    "nic_gbps": (False, 0.1, 1000, "NIC Gbps per node"),
    "memory_gib": (False, 0.5, 65536, "GiB RAM per node"),
    "ike_sas_per_node": (True, 1, 10_000_000, "IKE SAs one node holds"),
    "setup_rate_per_core": (False, 0.1, 1_000_000, "IKE setups per second per core"),
    "esp_gbps_per_core": (False, 0.01, 1000, "ESP Gbps per core"),
    "rss_kib_per_user": (False, 0.1, 1_000_000, "charon KiB of memory per user"),
    "storm_seconds": (True, 1, 3600, "seconds in which a reconnect storm must be absorbed"),
    "headroom_percent": (False, 0, 400, "percent of spare capacity above the peak"),
}


def as_field_number(key: str, value: Any) -> Number:
    whole, low, high, what = NUMBER_FIELDS[key]
    return as_number(key, value, whole=whole, low=low, high=high, what=what)


def as_choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise invalid(key, value, "valid: " + ", ".join(choices))
    return str(value)


def as_network(key: str, value: Any) -> IPv4Network:
    valid = "give an IPv4 network in CIDR notation with no host bits set, e.g. 198.18.70.0/24"
    if not isinstance(value, str) or "/" not in value:
        raise invalid(key, value, valid)
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise invalid(key, value, f"{valid} ({err})") from None


def as_address(key: str, value: Any) -> IPv4Address:
    try:
        if not isinstance(value, str):
            raise ValueError
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise invalid(key, value, "give an IPv4 address, e.g. 198.18.70.100") from None


def as_list(key: str, value: Any) -> list[Any]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple):
        raise invalid(key, value, "give a list (or a comma-separated string)")
    return list(value)


_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PROPOSAL = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def as_dns_name(key: str, value: Any) -> str:
    valid = "give a DNS name such as vpn.example.org (letters, digits, hyphens, dots; at least two labels)"
    if not isinstance(value, str) or len(value) > 253:
        raise invalid(key, value, valid)
    labels = value.split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.match(label) for label in labels):
        raise invalid(key, value, valid)
    return value


def as_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(key, value, "give true or false")
    return value


def as_proposals(key: str, value: Any) -> tuple[str, ...]:
    items = as_list(key, value)
    if not items:
        raise invalid(
            key, value, "give at least one strongSwan proposal keyword, e.g. aes256gcm16-prfsha384-ecp384"
        )
    for item in items:
        if not isinstance(item, str) or not _PROPOSAL.match(item):
            raise invalid(
                key, item, "a proposal is strongSwan keywords joined by '-', e.g. aes256gcm16-ecp384"
            )
    return tuple(items)
