"""The package's facts the roles and templates read, by name, through the ``svpn_fact`` filter
(``{{ 'lb_hash_seed' | svpn_fact }}``): a table of values imported from their one home each, so a role never
types a number or a name the package already holds. Pure; imports only svpn.farm and svpn.core.
"""

from __future__ import annotations

from collections.abc import Mapping

from svpn.core.errors import SvpnError
from svpn.farm.buckets import DEFAULT_BUCKETS
from svpn.farm.facts import DEFAULT_NODE_STATE, NODE_STATES, POOL_RESERVED_ADDRESSES, TUNNEL_MODES
from svpn.farm.lbhash import LB_HASH_SEED
from svpn.farm.scrape import DEFAULT_EXPORTER_PORT

FACTS: Mapping[str, object] = {
    "default_buckets": DEFAULT_BUCKETS,
    "lb_hash_seed": LB_HASH_SEED,
    "node_states": list(NODE_STATES),
    "default_node_state": DEFAULT_NODE_STATE,
    "tunnel_modes": list(TUNNEL_MODES),
    "pool_reserved_addresses": POOL_RESERVED_ADDRESSES,
    "exporter_port": DEFAULT_EXPORTER_PORT,
}


def fact(name: str) -> object:
    """The value of the fact *name* (one of :data:`FACTS`)."""
    if name not in FACTS:
        raise SvpnError(
            f"svpn_fact: {name!r} is not a fact of the package; known: {', '.join(sorted(FACTS))}"
        )
    return FACTS[name]
