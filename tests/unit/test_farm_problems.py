"""svpn.inventory.checks.farm_problems: the farm checks `svpn inventory check` and the playbooks' filter
share."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from svpn_testing.plugins import farm_filters

from svpn.inventory.checks import KNOWN_FARM_KEYS, farm_problems
from svpn.inventory.schema import TUNING_KEYS
from svpn.inventory.tree import load

ROOT = Path(__file__).resolve().parents[2]

FARM: dict[str, Any] = {
    "svpn_management_networks": ["198.18.73.0/24"],
    "svpn_vpn_name": "vpn.svpn.test",
    "svpn_public_address": "198.18.1.10",
    "svpn_lb_inside_address": "198.18.3.10",
    "svpn_networks": {"public": "198.18.1.0/24", "inside": "198.18.3.0/24", "internal": "198.18.2.0/24"},
    "svpn_tunnel_mode": "split",
    "svpn_internal_networks": ["198.18.2.0/24"],
    "svpn_dns_servers": ["198.18.2.53"],
    "svpn_ike_proposals": ["aes256gcm16-prfsha384-ecp384"],
    "svpn_esp_proposals": ["aes256gcm16-ecp384"],
    "svpn_pki_dir": "{{ playbook_dir }}/../pki",
}
GROUPS: dict[str, list[str]] = {
    "loadbalancers": ["lb1", "lb2"],
    "concentrators": ["conc1", "conc2"],
    "lab_clients": ["client1"],
}
HOSTS: dict[str, dict[str, Any]] = {
    "lb1": {"svpn_addresses": {"public": "198.18.1.2", "inside": "198.18.3.2"}},
    "lb2": {"svpn_addresses": {"public": "198.18.1.3", "inside": "198.18.3.3"}},
    "conc1": {
        "svpn_addresses": {"inside": "198.18.3.11", "internal": "198.18.2.11"},
        "concentrator_pool": "198.19.0.0/24",
    },
    "conc2": {
        "svpn_addresses": {"inside": "198.18.3.12", "internal": "198.18.2.12"},
        "concentrator_pool": "198.19.1.0/24",
    },
    "client1": {"svpn_addresses": {"public": "198.18.1.101"}, "lab_client_user": "alice"},
}


class Farm:
    """A small farm as dicts; check() passes it the way Ansible would (group vars merged into hostvars)."""

    def __init__(self) -> None:
        self.farm = copy.deepcopy(FARM)
        self.groups = copy.deepcopy(GROUPS)
        self.hosts = copy.deepcopy(HOSTS)

    def check(self) -> list[str]:
        everyone = list(dict.fromkeys(h for hosts in self.groups.values() for h in hosts))
        groups = {"all": everyone, "ungrouped": [], **self.groups}
        hostvars = {
            host: {
                **self.farm,
                "ansible_host": f"svpn-lab-{host}",
                "inventory_hostname": host,
                "group_names": [g for g, hosts in self.groups.items() if host in hosts],
                **self.hosts.get(host, {}),
            }
            for host in everyone
        }
        return farm_problems(self.farm, groups, hostvars)


@pytest.fixture
def farm() -> Farm:
    return Farm()


def test_a_valid_farm_has_no_problems(farm: Farm) -> None:
    assert farm.check() == []


def test_the_farm_values_may_be_a_hosts_vars(farm: Farm) -> None:
    """In a playbook the farm-wide values are easiest had from some host's vars (with its own keys)."""
    hostvars = {host: {**farm.farm, **values} for host, values in farm.hosts.items()}
    assert farm_problems(hostvars["conc1"], farm.groups, hostvars) == []


def test_lab_only_settings_are_known(farm: Farm) -> None:
    farm.farm.update(svpn_lab=True, svpn_pki_passphrase_file="/x/ca-passphrase", ansible_connection="local")
    assert farm.check() == []
    farm.farm.update(svpn_lab="yes", svpn_pki_passphrase_file=3, svpn_userz=1)
    assert farm.check() == [
        "svpn_userz: unknown farm-wide setting; valid: " + ", ".join(KNOWN_FARM_KEYS),
        "svpn_pki_passphrase_file must be a string, got int: 3",
        "svpn_lab must be true or false, got str: 'yes'",
    ]


def test_a_farm_without_a_plan_needs_no_planner_settings(farm: Farm) -> None:
    """No svpn_plan: svpn_users, the concurrency and the tuning keys (role defaults) may be absent."""
    assert not any(key in farm.farm for key in ("svpn_plan", "svpn_users", "svpn_peak_concurrency_percent"))
    assert not any(key in farm.hosts["conc1"] for key in TUNING_KEYS)
    assert farm.check() == []


def test_farm_wide_settings_every_farm_needs(farm: Farm) -> None:
    del farm.farm["svpn_vpn_name"], farm.farm["svpn_dns_servers"]
    assert farm.check() == ["svpn_vpn_name missing", "svpn_dns_servers missing"]


def test_farm_wide_values_are_validated(farm: Farm) -> None:
    farm.farm.update(
        svpn_vpn_name="not a name",
        svpn_tunnel_mode="half",
        svpn_ike_proposals="aes256gcm16",
        svpn_internal_networks=["10.0.0.1/8"],
        svpn_dns_servers=["dns.example"],
    )
    problems = farm.check()
    assert [line.split(":")[0] for line in problems] == [
        "svpn_vpn_name",
        "svpn_tunnel_mode",
        "svpn_ike_proposals must be a list of proposals, got str",
        "svpn_internal_networks",
        "svpn_dns_servers",
    ]
    assert "svpn_internal_networks: '10.0.0.1/8' is not valid; give an IPv4 network" in problems[3]


def test_public_address_outside_its_network(farm: Farm) -> None:
    farm.farm["svpn_public_address"] = "198.18.9.10"
    assert farm.check() == ["svpn_public_address 198.18.9.10 is outside svpn_networks.public 198.18.1.0/24"]


def test_lb_inside_address_outside_the_inside_network(farm: Farm) -> None:
    farm.farm["svpn_lb_inside_address"] = "198.18.2.10"
    assert farm.check() == [
        "svpn_lb_inside_address 198.18.2.10 is outside svpn_networks.inside 198.18.3.0/24"
    ]


def test_lb_inside_address_is_needed_only_with_lbs(farm: Farm) -> None:
    del farm.farm["svpn_lb_inside_address"]
    assert farm.check() == ["svpn_lb_inside_address missing"]
    del farm.groups["loadbalancers"]
    assert farm.check() == []


def test_invalid_addresses_and_networks(farm: Farm) -> None:
    farm.farm["svpn_public_address"] = "198.18.1.300"
    farm.farm["svpn_networks"]["internal"] = "198.18.2.0/33"
    farm.hosts["lb1"]["svpn_addresses"]["public"] = 17
    problems = farm.check()
    assert problems[0].startswith(
        "svpn_networks.internal: '198.18.2.0/33' is not valid; give an IPv4 network"
    )
    assert problems[1].startswith("svpn_public_address: '198.18.1.300' is not valid; give an IPv4 address")
    assert problems[2].startswith("host lb1: svpn_addresses.public: 17 is not valid; give an IPv4 address")
    assert len(problems) == 3


def test_networks_must_not_overlap_and_must_be_named(farm: Farm) -> None:
    farm.farm["svpn_networks"] = {"public": "198.18.1.0/24", "internal": "198.18.0.0/16"}
    problems = farm.check()
    assert problems[:2] == [
        "svpn_networks.inside missing",
        "svpn_networks.public 198.18.1.0/24 overlaps svpn_networks.internal 198.18.0.0/16",
    ]
    assert "host lb1: svpn_addresses.inside: no such network in svpn_networks (public, internal)" in problems
    farm.farm["svpn_networks"] = ["198.18.1.0/24"]
    assert (
        farm.check()[0]
        == "svpn_networks must be a mapping of network name to CIDR, got list: ['198.18.1.0/24']"
    )


def test_pool_missing(farm: Farm) -> None:
    del farm.hosts["conc2"]["concentrator_pool"]
    assert farm.check() == ["host conc2: concentrator_pool missing"]


def test_pools_overlapping_each_other(farm: Farm) -> None:
    farm.hosts["conc2"]["concentrator_pool"] = "198.19.0.0/23"
    assert farm.check() == ["host conc1: concentrator_pool 198.19.0.0/24 overlaps conc2's 198.19.0.0/23"]


def test_pool_overlapping_a_farm_network(farm: Farm) -> None:
    farm.hosts["conc1"]["concentrator_pool"] = "198.18.3.128/25"
    assert farm.check() == [
        "host conc1: concentrator_pool 198.18.3.128/25 overlaps svpn_networks.inside 198.18.3.0/24"
    ]


def test_pool_overlapping_an_internal_network(farm: Farm) -> None:
    farm.farm["svpn_internal_networks"] = ["198.18.2.0/24", "10.0.0.0/8"]
    farm.hosts["conc2"]["concentrator_pool"] = "10.1.0.0/24"
    assert farm.check() == [
        "host conc2: concentrator_pool 10.1.0.0/24 overlaps svpn_internal_networks 10.0.0.0/8"
    ]


def test_invalid_pools(farm: Farm) -> None:
    farm.hosts["conc1"]["concentrator_pool"] = "198.19.0.1/24"
    farm.hosts["conc2"]["concentrator_pool"] = "198.19.1.0/31"
    problems = farm.check()
    assert problems[0].startswith("host conc1: concentrator_pool: '198.19.0.1/24' is not valid; give an IPv4")
    assert problems[1] == (
        "host conc2: concentrator_pool 198.19.1.0/31 holds no client addresses (the smallest pool is a /30)"
    )
    assert len(problems) == 2


def test_no_active_concentrator(farm: Farm) -> None:
    farm.hosts["conc1"]["concentrator_state"] = "drain"
    assert farm.check() == []
    farm.hosts["conc2"]["concentrator_state"] = "drain"
    assert farm.check() == [
        "no concentrator has concentrator_state=active (the LB needs at least one backend)"
    ]


def test_concentrator_state_must_be_active_or_drain(farm: Farm) -> None:
    farm.hosts["conc1"]["concentrator_state"] = "paused"
    assert farm.check() == ["host conc1: concentrator_state: 'paused'; valid: active, drain"]


def test_an_address_used_twice(farm: Farm) -> None:
    farm.hosts["lb2"]["svpn_addresses"]["inside"] = "198.18.3.2"
    assert farm.check() == ["host lb2: svpn_addresses.inside 198.18.3.2 is also used by lb1"]


def test_a_host_address_may_not_be_a_vip(farm: Farm) -> None:
    farm.hosts["client1"]["svpn_addresses"]["public"] = "198.18.1.10"
    assert farm.check() == [
        "host client1: svpn_addresses.public 198.18.1.10 is also used by svpn_public_address"
    ]


def test_concentrator_inside_address_is_needed_with_lbs(farm: Farm) -> None:
    del farm.hosts["conc1"]["svpn_addresses"]["inside"]
    assert farm.check() == ["host conc1: svpn_addresses.inside missing (LBs DNAT to it)"]


def test_lb_addresses_are_needed(farm: Farm) -> None:
    del farm.hosts["lb2"]["svpn_addresses"]
    assert farm.check() == [
        "host lb2: svpn_addresses.public missing",
        "host lb2: svpn_addresses.inside missing",
    ]


def test_a_farm_without_lbs(farm: Farm) -> None:
    """As molecule/default: no inside network, the one concentrator holds the public address itself."""
    del (
        farm.groups["loadbalancers"],
        farm.farm["svpn_lb_inside_address"],
        farm.farm["svpn_networks"]["inside"],
    )
    farm.groups["concentrators"] = ["conc1"]
    farm.hosts["conc1"]["svpn_addresses"] = {"public": "198.18.1.10", "internal": "198.18.2.11"}
    assert farm.check() == []
    farm.hosts["client1"]["svpn_addresses"]["public"] = "198.18.1.10"
    assert farm.check() == ["host client1: svpn_addresses.public 198.18.1.10 is also used by conc1"]


def test_other_hosts_addresses_lie_in_their_networks(farm: Farm) -> None:
    farm.hosts["client1"]["svpn_addresses"]["public"] = "198.18.5.5"
    assert farm.check() == [
        "host client1: svpn_addresses.public 198.18.5.5 is outside svpn_networks.public 198.18.1.0/24"
    ]


def test_other_hosts_addresses_are_unique_and_not_network_or_broadcast(farm: Farm) -> None:
    farm.groups["lab_apps"] = ["app1", "app2"]
    farm.hosts["app1"] = {"svpn_addresses": {"internal": "198.18.2.11"}}
    farm.hosts["app2"] = {"svpn_addresses": {"internal": "198.18.2.255", "dmz": "10.9.9.9"}}
    assert farm.check() == [
        "host app1: svpn_addresses.internal 198.18.2.11 is also used by conc1",
        "host app2: svpn_addresses.internal 198.18.2.255 is the broadcast address of svpn_networks.internal "
        "198.18.2.0/24",
        "host app2: svpn_addresses.dmz: no such network in svpn_networks (public, inside, internal)",
    ]


def test_other_hosts_need_no_addresses(farm: Farm) -> None:
    farm.groups["monitoring"] = ["mon1"]
    assert farm.check() == []


def test_hosts_vars_must_be_mappings(farm: Farm) -> None:
    farm.hosts["client1"]["svpn_addresses"] = ["198.18.1.101"]
    assert farm.check() == [
        "host client1: svpn_addresses must be a mapping of network name to address, "
        "got list: ['198.18.1.101']"
    ]


def test_a_host_in_both_roles_and_no_concentrators(farm: Farm) -> None:
    farm.groups["loadbalancers"].append("conc1")
    assert "host conc1: both a load balancer and a concentrator (a host is one or the other)" in farm.check()
    farm.groups["loadbalancers"].remove("conc1")
    farm.groups["concentrators"] = []
    assert farm.check() == ["no concentrators (the group concentrators has no hosts)"]


def test_tuning_values_are_checked_where_set(farm: Farm) -> None:
    farm.hosts["conc1"].update(concentrator_ikesa_table_size=1000, concentrator_threads=0)
    farm.hosts["conc2"].update(concentrator_init_limit_half_open=100, concentrator_cookie_threshold=500)
    assert farm.check() == [
        "host conc1: concentrator_threads: 0; give a whole number >= 1",
        "host conc1: concentrator_ikesa_table_size: 1000; valid: 256, 512, 1024, 2048, 4096, 8192, 16384, "
        "32768, 65536",
        "host conc2: concentrator_cookie_threshold 500 > init_limit_half_open 100: COOKIEs never start",
    ]


def test_loadbalancer_buckets(farm: Farm) -> None:
    farm.hosts["lb1"]["loadbalancer_buckets"] = 1
    assert farm.check() == ["host lb1: loadbalancer_buckets: 1; give a whole number >= the 2 concentrators"]


def test_a_planned_farm_must_be_complete(farm: Farm) -> None:
    farm.farm["svpn_plan"] = {"redundancy": "N+1"}
    problems = farm.check()
    assert problems[:2] == ["svpn_users missing", "svpn_peak_concurrency_percent missing"]
    assert "svpn_plan.supernet missing" in problems
    assert "host conc1: concentrator_threads missing" in problems
    assert "host lb1: loadbalancer_buckets missing" in problems


def test_pool_capacity_is_checked_only_in_a_planned_farm(farm: Farm) -> None:
    farm.farm.update(svpn_users=1000, svpn_peak_concurrency_percent=100)
    assert farm.check() == []
    loaded = load(ROOT / "inventories/example-500").farm
    assert loaded is not None
    farm.farm["svpn_plan"] = loaded.farm["svpn_plan"] | {"supernet": "198.19.0.0/16"}
    for host in ("conc1", "conc2"):
        farm.hosts[host].update({key: loaded.hostvars["conc1"][key] for key in TUNING_KEYS})
    for host in ("lb1", "lb2"):
        farm.hosts[host]["loadbalancer_buckets"] = 256
    assert farm.check() == [
        "host conc1: concentrator_pool 198.19.0.0/24 holds 254 addresses; after 1 of 2 nodes fail a survivor "
        "may carry 1,000 of the 1,000 concurrent users (N+1)",
        "host conc2: concentrator_pool 198.19.1.0/24 holds 254 addresses; after 1 of 2 nodes fail a survivor "
        "may carry 1,000 of the 1,000 concurrent users (N+1)",
    ]


@pytest.mark.parametrize("name", ["lab", "example-500", "example-10000"])
def test_the_repositorys_inventories_have_no_problems(name: str) -> None:
    read = load(ROOT / "inventories" / name)
    assert read.problems == [] and read.farm is not None
    assert farm_problems(read.farm.farm, read.farm.groups, read.farm.hostvars) == []


def test_the_lab_inventory_is_read_as_ansible_reads_it() -> None:
    loaded = load(ROOT / "inventories/lab").farm
    assert loaded is not None
    assert loaded.groups["lab_clients"][0] == "client1" and "app1" in loaded.groups["all"]
    conc1 = loaded.hostvars["conc1"]
    assert conc1["concentrator_data_plane"] == "libipsec"  # group_vars/concentrators.yml
    assert conc1["ansible_host"] == "svpn-lab-conc1"  # hosts.yml
    assert conc1["svpn_vpn_name"] == loaded.farm["svpn_vpn_name"]  # group_vars/all.yml
    assert "loadbalancer_buckets" not in conc1 and loaded.hostvars["lb1"]["loadbalancer_buckets"] == 256


def test_the_crypto_policy_holds_for_every_farm(farm: Farm) -> None:
    """Weak or unknown keywords and ESP without PFS, in a hand-written farm (the filter check.yml runs)."""
    farm.farm.update(
        svpn_ike_proposals=["aes256gcm16-prfsha384-ecp384", "3des-sha1-modp1024"],
        svpn_esp_proposals=["aes256gcm16-ecp384", "null", "aes256-md5-ecp384", "aes256gcm16", "aes1-ecp384"],
    )
    problems = farm.check()
    assert [line.split(": ")[0] for line in problems] == ["svpn_ike_proposals"] + ["svpn_esp_proposals"] * 4
    assert "IKE proposal '3des-sha1-modp1024' is refused by the crypto policy: 3des: 3DES" in problems[0]
    assert "sha1: HMAC-SHA-1" in problems[0] and "modp1024: MODP group 2" in problems[0]
    assert "'null' is refused by the crypto policy: null: NULL encryption" in problems[1]
    assert "'aes256-md5-ecp384' is refused by the crypto policy: md5: HMAC-MD5" in problems[2]
    assert "'aes256gcm16' has no DH group" in problems[3] and "svpn_esp_pfs_optional: true" in problems[3]
    assert "keyword 'aes1' is unknown" in problems[4]  # unknown keywords stay errors


def test_a_farm_may_opt_out_of_pfs_and_only_of_pfs(farm: Farm) -> None:
    farm.farm["svpn_esp_proposals"] = ["aes256gcm16-ecp384", "aes128gcm16"]
    assert [p.split(" has ")[0] for p in farm.check()] == ["svpn_esp_proposals: ESP proposal 'aes128gcm16'"]
    farm.farm["svpn_esp_pfs_optional"] = True
    assert farm.check() == []
    farm.farm["svpn_esp_proposals"].append("3des-sha256")  # the opt-out does not reach the allowlist
    (problem,) = farm.check()
    assert problem.startswith(
        "svpn_esp_proposals: ESP proposal '3des-sha256' is refused by the crypto policy"
    )
    farm.farm.update(svpn_esp_pfs_optional="yes", svpn_esp_proposals=["aes128gcm16"])
    assert farm.check() == [
        "svpn_esp_pfs_optional must be true or false, got str: 'yes'",
        "svpn_esp_proposals: ESP proposal 'aes128gcm16' has no DH group, so its CHILD_SA rekeys lack perfect "
        "forward secrecy; add one (e.g. aes128gcm16-ecp384) or, only for legacy clients that cannot do PFS, "
        "opt out with svpn_esp_pfs_optional: true",
    ]


def test_malformed_proposal_lists_are_reported_once(farm: Farm) -> None:
    farm.farm.update(svpn_ike_proposals=["AES 256"], svpn_esp_proposals=[])
    problems = farm.check()
    assert len(problems) == 2 and all("crypto policy" not in p for p in problems)
    assert problems[0].startswith("svpn_ike_proposals: 'AES 256' is not valid")


def test_the_filter_plugin_offers_farm_problems() -> None:
    filters = farm_filters()
    assert filters["svpn_farm_problems"] is farm_problems
    assert "svpn_pool_routes" in filters


junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(["198.19.0.0/24", "1.2.3.4"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.sampled_from([*KNOWN_FARM_KEYS, "svpn_x", "other"]), junk, max_size=6),
    st.dictionaries(st.sampled_from(["concentrators", "loadbalancers", "x"]), junk, max_size=3),
    st.dictionaries(st.sampled_from(["conc1", "lb1", "x"]), junk, max_size=3),
    st.sampled_from(["svpn_addresses", "concentrator_pool", "concentrator_state", "loadbalancer_buckets"]),
)
def test_junk_gives_problems_never_exceptions(farm: Any, groups: Any, hostvars: Any, key: str) -> None:
    for values in hostvars.values():
        if isinstance(values, dict):
            values.setdefault(key, farm.get("svpn_networks"))
    problems = farm_problems(farm, groups, hostvars)
    assert isinstance(problems, list) and all(isinstance(line, str) and "\n" not in line for line in problems)
