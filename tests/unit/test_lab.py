"""Pure lab logic: topology read from an inventory, image cache keys, derived pool routes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from svpn.core.errors import SvpnError
from svpn.farm.backends import pool_routes
from svpn.lab import status as labstatus
from svpn.lab.image import DEFAULT_SUITE, LAB_PACKAGES, ImageSpec, lab_images
from svpn.lab.topo import load_lab

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def _inventory(tmp_path: Path, networks: dict, conc_addr: dict) -> Path:
    _write(
        tmp_path / "hosts.yml",
        {"all": {"children": {"concentrators": {"hosts": {"c1": {"ansible_host": "x-c1"}}}}}},
    )
    _write(tmp_path / "group_vars" / "all.yml", {"svpn_lab": True, "svpn_networks": networks})
    _write(tmp_path / "host_vars" / "c1.yml", {"svpn_addresses": conc_addr})
    return tmp_path


def test_the_shipped_lab_inventory_loads() -> None:
    lab = load_lab(ROOT / "inventories" / "lab")
    assert {h.name for h in lab.group("concentrators")} >= {"conc1"}
    assert all(h.forwards for h in lab.group("concentrators"))
    assert not any(h.forwards for h in lab.group("lab_clients"))
    for host in lab.hosts:
        for net, ip in host.addresses.items():
            assert ip in lab.networks[net].subnet
            assert ip in ipaddress.ip_network("198.18.0.0/15")


def test_lab_host_names_and_groups(tmp_path: Path) -> None:
    lab = load_lab(_inventory(tmp_path, {"public": "198.18.5.0/24"}, {"public": "198.18.5.9"}))
    (host,) = lab.hosts
    assert (host.name, host.container, host.groups) == ("c1", "x-c1", frozenset({"concentrators"}))
    assert lab.networks["public"].docker_name == "svpn-lab-public"


@pytest.mark.parametrize(
    ("networks", "addr", "message"),
    [
        (
            {"public": "10.0.0.0/24"},
            {"public": "10.0.0.5"},
            "svpn_networks.public: 10.0.0.0/24 must lie inside",
        ),
        ({"public": "198.19.255.0/24"}, {"public": "198.19.255.5"}, "outside 198.19.255.0/24"),
        (
            {"public": "198.18.5.0/24"},
            {"public": "198.18.6.5"},
            "host c1: svpn_addresses.public: 198.18.6.5 is outside",
        ),
        ({"public": "198.18.5.0/24"}, {"inside": "198.18.5.5"}, "svpn_addresses.inside: no such network"),
        ({"public": "198.18.5.0/25x"}, {"public": "198.18.5.5"}, "is not a network in CIDR form"),
    ],
)
def test_lab_refuses_addresses_outside_the_test_range(tmp_path, networks, addr, message) -> None:
    with pytest.raises(SvpnError, match=message.replace(".", r"\.")):
        load_lab(_inventory(tmp_path, networks, addr))


def test_lab_refuses_a_production_inventory(tmp_path: Path) -> None:
    inv = _inventory(tmp_path, {"public": "198.18.5.0/24"}, {"public": "198.18.5.9"})
    _write(inv / "group_vars" / "all.yml", {"svpn_networks": {"public": "198.18.5.0/24"}})
    with pytest.raises(SvpnError, match="not a lab inventory"):
        load_lab(inv)


def test_image_tag_follows_the_package_list() -> None:
    base = ImageSpec("bookworm")
    assert base.content_hash == ImageSpec("bookworm", tuple(reversed(LAB_PACKAGES))).content_hash
    assert base.content_hash != ImageSpec("bookworm", (*LAB_PACKAGES, "tcpdump")).content_hash
    assert base.content_hash != ImageSpec("trixie").content_hash
    assert base.hashed_tag == f"svpn-lab:bookworm-{base.content_hash}"


def test_lab_prepare_builds_debian_12_and_13_default_first() -> None:
    images = lab_images()
    assert [spec.suite for spec in images] == [DEFAULT_SUITE, "trixie"] and DEFAULT_SUITE == "bookworm"
    assert len({spec.hashed_tag for spec in images}) == len(images)
    # trixie ships every lab package under its bookworm name: one list for both.
    assert all(spec.packages == LAB_PACKAGES for spec in images)


def test_every_image_a_scenario_runs_is_one_lab_prepare_builds() -> None:
    built = {spec.stable_tag for spec in lab_images()}
    used = {
        platform["image"]
        for scenario in (ROOT / "molecule").glob("*/molecule.yml")
        for platform in yaml.safe_load(scenario.read_text())["platforms"]
        if platform["image"].startswith("svpn-lab:")
    }
    assert used == built  # a scenario's image is built by `svpn lab prepare`, and nothing more is built


def test_pool_routes_come_from_each_nodes_pool_and_internal_address() -> None:
    hostvars = {
        "conc2": {"concentrator_pool": "198.19.16.0/20", "svpn_addresses": {"internal": "198.18.2.12"}},
        "conc1": {"concentrator_pool": "198.19.0.0/20", "svpn_addresses": {"internal": "198.18.2.11"}},
    }
    assert pool_routes(hostvars, ["conc2", "conc1"], "internal") == [
        {"network": "198.19.0.0/20", "via": "198.18.2.11"},
        {"network": "198.19.16.0/20", "via": "198.18.2.12"},
    ]
    with pytest.raises(ValueError):
        pool_routes(
            {"c": {"concentrator_pool": "198.19.0.1/20", "svpn_addresses": {"internal": "x"}}},
            ["c"],
            "internal",
        )


def test_app_saw_the_virtual_ip_only_when_its_reply_names_it():
    reply = "svpn-lab-app app1 client=198.19.16.2\n"
    assert labstatus.app_saw(reply, "198.19.16.2")
    assert not labstatus.app_saw(reply, "198.19.16.22")
    assert not labstatus.app_saw("svpn-lab-app app1 client=198.18.1.101", "198.19.16.2")  # not tunnelled
    assert not labstatus.app_saw("", "")


def test_an_older_lab_ca_gains_the_user_policy_on_lab_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`svpn lab up` on a lab PKI made before the user certificate policy: the concentrators require the
    policy along the chain, so the lab CA is re-signed with it (same key), not every lab user refused."""
    from cryptography.hazmat.primitives import serialization

    from svpn.access.pki.ca import load_ca
    from svpn.access.pki.ca_setup import ca_allows_user_policy, init_ca
    from svpn.access.pki.certs import ca_certificate
    from svpn.lab import lifecycle as lab

    passphrase = "a-long-lab-passphrase"
    (tmp_path / "ca-passphrase").write_text(passphrase + "\n")
    init_ca(tmp_path / "pki", "Lab CA", passphrase, key_type="ecdsa256")
    ca = load_ca(tmp_path / "pki", passphrase)
    old = ca_certificate(ca.key, ca.cert.subject, ca.cert.not_valid_before_utc, ca.cert.not_valid_after_utc)
    (tmp_path / "pki" / "ca" / "ca.crt").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    assert not ca_allows_user_policy(tmp_path / "pki")
    monkeypatch.setattr(lab, "lab_state_dir", lambda: tmp_path)
    said: list[str] = []
    lab.ensure_lab_pki(said.append)
    assert ca_allows_user_policy(tmp_path / "pki")
    assert any("user certificate policy" in line for line in said)
    lab.ensure_lab_pki(said.append)  # once done, nothing more to do
    assert len(said) == 1
