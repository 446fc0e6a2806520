"""A real tunnel: the client gets a virtual IP from the node's pool and reaches the app through it."""

from __future__ import annotations

import ipaddress
import os

import testinfra
from svpn_testing.scenario import wait_for_tunnel

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
POOL = ipaddress.ip_network("198.19.11.0/24")
APP_URL = "http://198.18.12.20/"
UP_TIMEOUT = 60

testinfra_hosts = ["ansible://mol-default-client1"]


def _host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def _wait_for_tunnel(client) -> str:
    return wait_for_tunnel(client, UP_TIMEOUT)


def test_client_gets_virtual_ip_from_the_nodes_pool(host):
    vip = ipaddress.ip_address(_wait_for_tunnel(host))
    assert vip in POOL


def test_client_has_no_path_to_the_app_but_the_tunnel(host):
    _wait_for_tunnel(host)
    # The client sits on the public network only: its one route to the internal network is the
    # tunnel's (charon's table 220, through the TUN device of kernel-libipsec).
    route = host.check_output("ip -4 route get 198.18.12.20")
    assert "dev ipsec0" in route, route


def test_client_reaches_the_app_through_the_tunnel(host):
    vip = _wait_for_tunnel(host)
    reply = host.check_output(f"curl --silent --show-error --max-time 5 {APP_URL}")
    # The app names the address the request came from: the client's virtual IP, i.e. through the tunnel.
    assert reply.strip() == f"svpn-lab-app mol-default-app1 client={vip}"


def test_concentrator_lists_the_users_ike_sa(host):
    vip = _wait_for_tunnel(host)
    conc = _host("mol-default-conc1")
    out = conc.check_output("swanctl --list-sas --ike svpn")
    assert "ESTABLISHED" in out
    assert "'alice@svpn.test'" in out  # the bundle's identity: the e-mail
    assert f"[{vip}]" in out


def test_concentrator_services_and_firewall(host):
    conc = _host("mol-default-conc1")
    assert conc.service("strongswan").is_running
    assert conc.service("strongswan").is_enabled
    ruleset = conc.check_output("nft list table inet svpn_concentrator")
    assert "policy drop" in ruleset
    assert "udp dport { 500, 4500 }" in ruleset
    # Only modern proposals are configured.
    conf = conc.file("/etc/swanctl/conf.d/svpn.conf").content_string
    for weak in ("3des", "sha1", "md5", "modp1024"):
        assert weak not in conf.lower()
