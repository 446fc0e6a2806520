"""Jinja filters that call the svpn package, so Python and Ansible cannot disagree on derived facts."""

from __future__ import annotations

from svpn import farm


class FilterModule:
    def filters(self):
        return {"svpn_pool_routes": farm.pool_routes}
