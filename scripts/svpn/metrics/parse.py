"""The exporters' sources read into samples: vici answers, nftables' JSON, PEM certificates and CRLs, the LB
health checker's state.json and `ip -j addr`. Pure: each function takes what the host answered and returns
samples; the exporter does the reading.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from svpn.core import der

DRAIN_TABLE = ("inet", "svpn_drain")  # roles/concentrator/tasks/drain.yml
NODE_TABLE = ("inet", "svpn_concentrator")  # roles/concentrator/templates/nftables.conf.j2
ESP_COUNTERS = {"esp_in": "in", "esp_out": "out"}  # the named counters of NODE_TABLE


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any) -> float:
    return float(_text(value))


def stats_samples(stats: Mapping[str, Any]) -> list[Sample]:
    """vici `stats`: IKE SAs and half-open ones."""
    ikesas = stats["ikesas"]
    return [
        Sample("svpn_concentrator_ike_sas", _number(ikesas["total"])),
        Sample("svpn_concentrator_ike_sas_half_open", _number(ikesas["half-open"])),
    ]


def has_counters_plugin(stats: Mapping[str, Any]) -> bool:
    return "counters" in {_text(p) for p in stats.get("plugins", [])}


def counters_samples(answer: Mapping[str, Any]) -> list[Sample]:
    """vici `get-counters` (all connections: the global set, under the empty name)."""
    counters = (answer.get("counters") or {}).get("", {}) or (answer.get("counters") or {}).get(b"", {})
    return [
        Sample("svpn_concentrator_ike_messages_total", _number(value), {"counter": _text(name)})
        for name, value in sorted(counters.items(), key=lambda item: _text(item[0]))
    ]


def pools_samples(pools: Mapping[str, Any]) -> list[Sample]:
    """vici `get-pools` without leases: size, online and offline per pool."""
    samples = []
    for name, pool in sorted(pools.items(), key=lambda item: _text(item[0])):
        for key in ("size", "online", "offline"):
            samples.append(Sample(f"svpn_concentrator_pool_{key}", _number(pool[key]), {"pool": _text(name)}))
    return samples


def nft_samples(ruleset_json: str) -> list[Sample]:
    """`nft -j list ruleset`: the node's ESP counters and whether the drain table exists."""
    items = json.loads(ruleset_json).get("nftables", [])
    tables = {(t["table"]["family"], t["table"]["name"]) for t in items if "table" in t}
    samples = [Sample("svpn_concentrator_draining", 1.0 if DRAIN_TABLE in tables else 0.0)]
    for item in items:
        counter = item.get("counter")
        if not counter or (counter["family"], counter["table"]) != NODE_TABLE:
            continue
        if direction := ESP_COUNTERS.get(counter["name"]):
            labels = {"direction": direction}
            samples.append(Sample("svpn_concentrator_esp_bytes_total", float(counter["bytes"]), labels))
            samples.append(Sample("svpn_concentrator_esp_packets_total", float(counter["packets"]), labels))
    return samples


PEM = re.compile(rb"-----BEGIN (?P<kind>[A-Z0-9 ]+)-----(?P<body>[A-Za-z0-9+/=\s]+)-----END (?P=kind)-----")


def der_blocks(data: bytes) -> list[bytes]:
    """The DER inside a PEM file (every block), or the file itself when it is DER already."""
    blocks = [base64.b64decode(b"".join(m["body"].split())) for m in PEM.finditer(data)]
    return blocks or [data]


def _time(item: tuple[int, bytes]) -> dt.datetime:
    tag, content = item
    text = content.decode("ascii")
    if tag == 0x17:  # UTCTime: YYMMDDHHMMSSZ, years 1950-2049
        when = dt.datetime.strptime(text, "%y%m%d%H%M%SZ")
    elif tag == 0x18:  # GeneralizedTime
        when = dt.datetime.strptime(text, "%Y%m%d%H%M%SZ")
    else:
        raise ValueError(f"DER tag {tag:#x} is not a time")
    return when.replace(tzinfo=dt.UTC)


def _tbs(data: bytes) -> list[tuple[int, bytes]]:
    outer = der.expect(der.elements(data)[0], 0x30)
    return der.elements(der.expect(der.elements(outer)[0], 0x30))


def certificate_not_after(data: bytes) -> dt.datetime:
    """A certificate's notAfter (tbsCertificate: [0] version, serial, signature, issuer, validity, ...)."""
    tbs = _tbs(data)
    fields = tbs[1:] if tbs[0][0] == 0xA0 else tbs
    validity = der.elements(der.expect(fields[3], 0x30))
    return _time(validity[1])


def crl_next_update(data: bytes) -> dt.datetime:
    """A CRL's nextUpdate (tbsCertList: [version], signature, issuer, thisUpdate, nextUpdate, ...)."""
    tbs = _tbs(data)
    fields = tbs[1:] if tbs[0][0] == 0x02 else tbs
    if len(fields) < 4 or fields[3][0] not in (0x17, 0x18):
        raise ValueError("the CRL has no nextUpdate")
    return _time(fields[3])


def days_left(until: dt.datetime, now: dt.datetime) -> float:
    return round((until - now).total_seconds() / 86400, 3)


def lb_state_samples(state: Mapping[str, Any], now: float) -> list[Sample]:
    """svpn-lb-health's /run/svpn-lb/state.json: health and admin state per node, buckets per node."""
    samples = [Sample("svpn_lb_state_age_seconds", round(max(0.0, now - float(state["time"])), 3))]
    owners = Counter(state.get("table") or [])
    for node in state.get("nodes", []):
        labels = {"node": node["name"]}
        samples.append(Sample("svpn_lb_node_up", 1.0 if node.get("up") else 0.0, labels))
        samples.append(Sample("svpn_lb_node_draining", 1.0 if node.get("admin") == "drain" else 0.0, labels))
        samples.append(Sample("svpn_lb_buckets", float(owners.get(node["name"], 0)), labels))
    return samples


def vip_samples(ip_addr_json: str, vips: Iterable[str]) -> list[Sample]:
    """`ip -j addr`: which of the farm's VIPs this host holds."""
    held = {
        info.get("local")
        for link in json.loads(ip_addr_json)
        for info in link.get("addr_info", [])
        if info.get("family") == "inet"
    }
    return [Sample("svpn_lb_vip_held", 1.0 if vip in held else 0.0, {"vip": vip}) for vip in vips]
