"""Derived farm facts the roles use through filter plugins, and the LB hash reproduction."""

from __future__ import annotations

from pathlib import Path

import pytest

from svpn.farm.backends import backends, bucket_map, interface_of
from svpn.farm.buckets import bucket_owners
from svpn.farm.lbhash import bucket_of, jhash4
from svpn.farm.sas import client_tunnel, ike_sas, remote_vips, sas_of_identities

RAW = (Path(__file__).parent / "data" / "list-sas-raw.txt").read_text()
HOSTVARS = {
    "c2": {"svpn_addresses": {"inside": "198.18.3.12"}, "concentrator_state": "drain"},
    "c1": {"svpn_addresses": {"inside": "198.18.3.11"}},
    "c3": {"svpn_addresses": {"inside": "198.18.3.13"}, "concentrator_state": "active"},
}


def test_backends_are_sorted_with_their_admin_state() -> None:
    assert backends(HOSTVARS, ["c3", "c2", "c1"], "inside") == [
        {"name": "c1", "address": "198.18.3.11", "state": "active"},
        {"name": "c2", "address": "198.18.3.12", "state": "drain"},
        {"name": "c3", "address": "198.18.3.13", "state": "active"},
    ]
    with pytest.raises(ValueError, match="concentrator_state: 'off' is not one of active, drain"):
        backends({"c1": {**HOSTVARS["c1"], "concentrator_state": "off"}}, ["c1"], "inside")


def test_bucket_map_leaves_draining_nodes_out() -> None:
    rows = bucket_map(backends(HOSTVARS, ["c1", "c2", "c3"], "inside"), 256)
    assert [r["bucket"] for r in rows] == list(range(256))
    assert {r["node"] for r in rows} == {"c1", "c3"}
    assert [r["node"] for r in rows] == bucket_owners(["c1", "c3"], 256)
    assert all(r["address"] == HOSTVARS[r["node"]]["svpn_addresses"]["inside"] for r in rows)


def test_interface_of_finds_primary_and_secondary_addresses() -> None:
    facts = {
        "interfaces": ["lo", "eth0", "eth1"],
        "lo": {"ipv4": {"address": "127.0.0.1"}},
        "eth0": {"ipv4": {"address": "198.18.1.2"}, "ipv4_secondaries": [{"address": "198.18.1.10"}]},
        "eth1": {"ipv4": {"address": "198.18.3.2"}},
    }
    assert interface_of(facts, "198.18.3.2") == "eth1"
    assert interface_of(facts, "198.18.1.10") == "eth0"
    with pytest.raises(ValueError, match=r"no interface holds 198\.18\.9\.9"):
        interface_of(facts, "198.18.9.9")


def test_jhash_matches_known_kernel_values() -> None:
    # Where the lab's LB (nft `jhash ip saddr mod 256 seed 0x5356504e`) really sent these clients:
    # placements measured on the 3-node lab farm with swanctl on each node.
    table = bucket_owners(["conc1", "conc2", "conc3"], 256)
    seen = {"198.18.1.101": "conc2", "198.18.1.102": "conc3", "198.18.1.103": "conc3",
            "198.18.1.104": "conc3", "198.18.1.105": "conc2", "198.18.1.106": "conc2"}  # fmt: skip
    assert {addr: table[bucket_of(addr, 256)] for addr in seen} == seen
    assert jhash4(bytes(4), 0) != jhash4(bytes(4), 1)
    with pytest.raises(ValueError):
        jhash4(b"abc", 0)


def test_list_sas_raw_is_read_per_ike_sa() -> None:
    sas = ike_sas(RAW)
    assert [(sa["uniqueid"], sa["remote-id"], sa["state"]) for sa in sas] == [
        ("92", "CN=carol", "ESTABLISHED"),
        ("91", "CN=bob", "ESTABLISHED"),
    ]
    assert sas[0]["remote-vips"] == "[198.19.41.2]"
    assert [sa["uniqueid"] for sa in sas_of_identities(RAW, ["CN=bob", "CN=nobody"])] == ["91"]
    assert sas_of_identities("list-sas reply {}\n", ["CN=bob"]) == []


def test_swanctl_text_is_read_for_tunnels_and_virtual_ips() -> None:
    data = Path(__file__).parent / "data"
    client = (data / "list-sas-client.txt").read_text()
    assert client_tunnel(client) == ("198.19.11.1", "4")
    assert client_tunnel(client.replace("INSTALLED", "REKEYING")) == ("", "")
    assert client_tunnel(client.replace("ESTABLISHED", "CONNECTING")) == ("", "")
    assert remote_vips((data / "list-sas-node.txt").read_text()) == ["198.19.41.2", "198.19.41.1"]
