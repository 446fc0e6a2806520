"""From input layers to one validated `PlanInput`: defaults, a grown inventory's stored plan, a plan file,
a calibration file and flags merge (later layers win); `resolve_input` checks every field, fills the
addresses that default to hosts of the networks, and checks the fields against each other and the crypto
policy.

Imports svpn.core.errors, svpn.farm (facts, proposals) and svpn.planning's defaults, validators, model and
layout.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from svpn.core.errors import SvpnError
from svpn.farm import proposals
from svpn.farm.facts import TUNNEL_MODES
from svpn.planning.defaults import (
    DEFAULT_INPUT,
    DEFAULT_LIMIT_SOURCES,
    FLAGS,
    INPUT_KEYS,
    LIMIT_KEYS,
    PROFILES,
    REDUNDANCY_SPARES,
    field_name,
)
from svpn.planning.layout import INSIDE_VIP_HOST_OFFSET, LB_HOST_OFFSETS, VIP_HOST_OFFSET, host_at
from svpn.planning.model import PlanInput
from svpn.planning.validators import (
    NUMBER_FIELDS,
    as_address,
    as_bool,
    as_choice,
    as_dns_name,
    as_field_number,
    as_list,
    as_network,
    as_proposals,
    invalid,
)

IPv4Network = ipaddress.IPv4Network

# --------------------------------------------------------------------------- layers -> PlanInput


def merge_layers(layers: Sequence[tuple[Mapping[str, Any], str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Later layers win. Returns the raw values and, for the limits, the label of the layer that set each."""
    raw: dict[str, Any] = dict(DEFAULT_INPUT)
    sources = dict(DEFAULT_LIMIT_SOURCES)
    for values, label in layers:
        for key, value in values.items():
            if key == "limit_sources":
                continue
            if key not in DEFAULT_INPUT:
                raise SvpnError(f"unknown input {key!r} ({label}); valid: {', '.join(INPUT_KEYS)}")
            raw[key] = value
            if key in LIMIT_KEYS:
                sources[key] = label
        # a grown inventory brings the sources its limits had when it was planned
        sources.update(
            {key: str(text) for key, text in values.get("limit_sources", {}).items() if key in LIMIT_KEYS}
        )
    return raw, sources


def resolve_input(layers: Sequence[tuple[Mapping[str, Any], str]]) -> PlanInput:
    """Validate the merged layers into a PlanInput; the first bad field raises, naming it and what fits."""
    raw, sources = merge_layers(layers)
    if raw["users"] is None:
        raise SvpnError(f"{field_name('users')}: missing; give the number of users the farm serves, e.g. 500")
    public = as_network("public_network", raw["public_network"])
    internal = as_network("internal_network", raw["internal_network"])
    vip = raw["vip"] if raw["vip"] is not None else str(host_at(public, VIP_HOST_OFFSET, "vip"))
    lbs = raw["lb_addresses"]
    if lbs is None:
        lbs = [str(host_at(public, offset, "lb_addresses")) for offset in LB_HOST_OFFSETS]
    inside = as_network("inside_network", raw["inside_network"])
    inside_vip = raw["inside_vip"]
    if inside_vip is None:
        inside_vip = str(host_at(inside, INSIDE_VIP_HOST_OFFSET, "inside_vip"))
    internal_networks = raw["internal_networks"]
    if internal_networks is None:
        internal_networks = [str(internal)]
    numbers = {key: as_field_number(key, raw[key]) for key in NUMBER_FIELDS}
    inp = PlanInput(
        **numbers,  # type: ignore[arg-type]
        profile=as_choice("profile", raw["profile"], tuple(PROFILES)),
        redundancy=as_choice("redundancy", raw["redundancy"], tuple(REDUNDANCY_SPARES)),
        supernet=str(as_network("supernet", raw["supernet"])),
        reserved_networks=tuple(
            str(as_network("reserved_networks", n))
            for n in as_list("reserved_networks", raw["reserved_networks"])
        ),
        vpn_name=as_dns_name("vpn_name", raw["vpn_name"]),
        public_network=str(public),
        inside_network=str(inside),
        internal_network=str(internal),
        vip=str(as_address("vip", vip)),
        lb_addresses=_lb_addresses(lbs),
        inside_vip=str(as_address("inside_vip", inside_vip)),
        internal_networks=tuple(
            str(as_network("internal_networks", n)) for n in as_list("internal_networks", internal_networks)
        ),
        dns=tuple(str(as_address("dns", a)) for a in as_list("dns", raw["dns"])),
        management_networks=tuple(
            str(as_network("management_networks", n))
            for n in as_list("management_networks", raw["management_networks"])
        ),
        tunnel_mode=as_choice("tunnel_mode", raw["tunnel_mode"], TUNNEL_MODES),
        ike_proposals=as_proposals("ike_proposals", raw["ike_proposals"]),
        esp_proposals=as_proposals("esp_proposals", raw["esp_proposals"]),
        esp_pfs_optional=as_bool("esp_pfs_optional", raw["esp_pfs_optional"]),
        pki_dir=_pki_dir(raw["pki_dir"]),
        limit_sources=tuple((key, sources[key]) for key in LIMIT_KEYS),
    )
    _check_consistency(inp)
    _check_crypto_policy(inp)
    return inp


def _check_crypto_policy(inp: PlanInput) -> None:
    """The proposals keep the crypto policy (svpn.farm.proposals.policy_problems); else one error naming
    all."""
    names = {
        "ike": f"{field_name('ike_proposals')} -> svpn_ike_proposals",
        "esp": f"{field_name('esp_proposals')} -> svpn_esp_proposals",
        "pfs_optional": f"{FLAGS['esp_pfs_optional']} (esp_pfs_optional: true in a plan file)",
    }
    problems = proposals.policy_problems(
        inp.ike_proposals, inp.esp_proposals, inp.esp_pfs_optional, names=names
    )
    if problems:
        raise SvpnError("crypto policy: " + "; ".join(problems))


def _pki_dir(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("pki_dir", value, "give the controller's PKI directory as a path")
    return value


def _lb_addresses(value: Any) -> tuple[str, str]:
    items = as_list("lb_addresses", value)
    if len(items) != 2:
        raise invalid(
            "lb_addresses", value, "give the LB pair's two public addresses, e.g. 198.18.70.11,198.18.70.12"
        )
    first, second = (str(as_address("lb_addresses", item)) for item in items)
    return first, second


def _check_host_in(key: str, address: str, network: IPv4Network, network_key: str) -> None:
    ip = ipaddress.IPv4Address(address)
    if ip not in network or ip in (network.network_address, network.broadcast_address):
        raise SvpnError(
            f"{field_name(key)}: {address} is not a host address of {field_name(network_key)} {network}"
        )


def _check_consistency(inp: PlanInput) -> None:
    public = ipaddress.IPv4Network(inp.public_network)
    _check_host_in("vip", inp.vip, public, "public_network")
    for address in inp.lb_addresses:
        _check_host_in("lb_addresses", address, public, "public_network")
    _check_host_in("inside_vip", inp.inside_vip, ipaddress.IPv4Network(inp.inside_network), "inside_network")
    if len({inp.vip, *inp.lb_addresses}) != 3:
        raise SvpnError(
            f"{field_name('lb_addresses')}: {','.join(inp.lb_addresses)} and {field_name('vip')} {inp.vip} "
            "must be three different addresses"
        )
    named = [
        ("public_network", inp.public_network),
        ("inside_network", inp.inside_network),
        ("internal_network", inp.internal_network),
        ("supernet", inp.supernet),
    ]
    for i, (key_a, net_a) in enumerate(named):
        for key_b, net_b in named[i + 1 :]:
            _no_overlap(key_a, net_a, key_b, net_b)
    for net in inp.internal_networks:
        for key, other in named:
            if key != "internal_network":
                _no_overlap("internal_networks", net, key, other)
    for net in inp.reserved_networks:
        for key, other in named[:3]:
            _no_overlap("reserved_networks", net, key, other)
    if inp.tunnel_mode == "split" and not inp.internal_networks:
        raise SvpnError(
            f"{field_name('internal_networks')}: empty; a split tunnel needs at least one network users reach"
        )
    if inp.profile == "video-split" and inp.tunnel_mode == "full":
        raise SvpnError(
            f"{field_name('profile')}: 'video-split' sends video around the tunnel, which a full tunnel "
            f"({field_name('tunnel_mode')} full) cannot do; valid: office, video-tunnel, or tunnel_mode split"
        )


def _no_overlap(key_a: str, net_a: str, key_b: str, net_b: str) -> None:
    if ipaddress.IPv4Network(net_a).overlaps(ipaddress.IPv4Network(net_b)):
        raise SvpnError(
            f"networks overlap: {field_name(key_a)} {net_a} and {field_name(key_b)} {net_b}; "
            "give each its own address range"
        )


# --------------------------------------------------------------------------- plan and calibration files


def _refuse_unknown_keys(data: Mapping[Any, Any], valid: Iterable[str], label: str) -> None:
    valid = list(valid)
    unknown = sorted(str(key) for key in data if key not in valid)
    if unknown:
        raise SvpnError(
            f"{label}: unknown key {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}"
        )


def plan_file_layer(data: Any, label: str) -> dict[str, Any]:
    """The keys of a YAML plan file (already loaded), checked against the inputs."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SvpnError(f"{label}: expected a mapping of plan inputs (key: value), got {type(data).__name__}")
    _refuse_unknown_keys(data, INPUT_KEYS, label)
    return dict(data)


CALIBRATION_TYPES: dict[str, tuple[type, ...]] = {
    "ike_sas_per_node": (int,),
    "setup_rate_per_core": (int, float),
    "esp_gbps_per_core": (int, float),
    "rss_kib_per_user": (int, float),
}


def calibration_layer(data: Any, label: str) -> dict[str, Any]:
    """Measured per-node limits from a calibration JSON document (already loaded); all keys optional.

    A load-test report (`svpn loadtest --json`) is accepted too: its limits are under "calibration".
    """
    if isinstance(data, Mapping) and "calibration" in data:
        data, label = data["calibration"], f"{label}: calibration"
    if not isinstance(data, Mapping):
        raise SvpnError(f"{label}: expected a JSON object with measured limits, got {type(data).__name__}")
    _refuse_unknown_keys(data, CALIBRATION_TYPES, label)
    for key, value in data.items():
        types = CALIBRATION_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, types) or value <= 0:
            kind = "a whole number" if types == (int,) else "a number"
            raise SvpnError(f"{label}: {key} is {value!r}; give {kind} greater than 0")
    return dict(data)
