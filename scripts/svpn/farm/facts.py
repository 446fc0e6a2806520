"""Small facts of the farm that several places need: one home each, the others import them (or, in roles
and templates, read them through the ``svpn_fact`` filter)."""

from __future__ import annotations

from typing import Literal

# concentrator_state: "active" takes new flows; "drain" keeps its users but gets no new ones.
ACTIVE, DRAIN = "active", "drain"
NODE_STATES = (ACTIVE, DRAIN)
DEFAULT_NODE_STATE = ACTIVE

# svpn_tunnel_mode: "split" sends only the internal networks through the tunnel, "full" sends everything.
TunnelMode = Literal["split", "full"]
TUNNEL_MODES: tuple[TunnelMode, ...] = ("split", "full")

# strongSwan skips a CIDR pool's network and broadcast addresses: a /N pool leases 2**(32-N) - 2.
POOL_RESERVED_ADDRESSES = 2


def pool_leases(prefix: int) -> int:
    """Virtual IPs strongSwan leases from a /prefix pool."""
    return max(2 ** (32 - prefix) - POOL_RESERVED_ADDRESSES, 0)
