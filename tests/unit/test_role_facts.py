"""The package facts the roles read through the filter svpn_fact, and the roles not typing them again."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

from svpn.core.errors import SvpnError
from svpn.farm.buckets import DEFAULT_BUCKETS
from svpn.farm.lbhash import LB_HASH_SEED
from svpn.farm.role_facts import FACTS, fact

ROLE = Path(__file__).resolve().parents[2] / "roles" / "loadbalancer"


def test_facts_come_from_their_homes() -> None:
    assert fact("lb_hash_seed") == LB_HASH_SEED
    assert fact("default_buckets") == DEFAULT_BUCKETS
    assert fact("node_states") == ["active", "drain"]
    # The nftables template's expression renders the seed as the template typed it before.
    env = jinja2.Environment()
    env.filters["svpn_fact"] = fact
    expression = "{{ '0x%08x' | format('lb_hash_seed' | svpn_fact) }}"
    assert expression in (ROLE / "templates" / "nftables.conf.j2").read_text()
    assert env.from_string(expression).render() == "0x5356504e"


def test_an_unknown_fact_names_the_known_ones() -> None:
    with pytest.raises(SvpnError, match="'lb_seed' is not a fact of the package; known: default_buckets, "):
        fact("lb_seed")
    assert sorted(FACTS) == sorted(set(FACTS))


def test_the_loadbalancer_role_reads_the_seed_and_the_bucket_count_from_the_package() -> None:
    nftables = (ROLE / "templates" / "nftables.conf.j2").read_text().lower()
    assert f"{LB_HASH_SEED:x}" not in nftables
    assert "'lb_hash_seed' | svpn_fact" in nftables
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["loadbalancer_buckets"] == "{{ 'default_buckets' | svpn_fact }}"
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    assert "default" not in spec["argument_specs"]["main"]["options"]["loadbalancer_buckets"]
