"""Jinja filters that call the svpn package, so Python and Ansible cannot disagree on derived facts."""

from __future__ import annotations

from svpn import farm, inventory, sas


class FilterModule:
    def filters(self):
        return {
            "svpn_pool_routes": farm.pool_routes,
            "svpn_backends": farm.backends,
            "svpn_bucket_map": farm.bucket_map,
            "svpn_interface_of": farm.interface_of,
            "svpn_farm_problems": inventory.farm_problems,
            "svpn_sa_ids_of_users": sas.sa_ids_of_users,
        }
