"""Jinja filters that call the svpn package, so Python and Ansible cannot disagree on derived facts."""

from __future__ import annotations

from svpn.access.pki.cert_policy import swanctl_cert_policy
from svpn.farm import backends as farm
from svpn.farm import host_code, role_facts, sas, scrape
from svpn.inventory import checks, management


class FilterModule:
    def filters(self):
        return {
            "svpn_pool_routes": farm.pool_routes,
            "svpn_backends": farm.backends,
            "svpn_bucket_map": farm.bucket_map,
            "svpn_interface_of": farm.interface_of,
            "svpn_farm_problems": checks.farm_problems,
            "svpn_ssh_source_problem": management.ssh_source_problem,
            "svpn_is_ssh_managed": management.is_ssh_managed,
            "svpn_sas_of_users": sas.sas_of_identities,
            "svpn_sessions_ended_by_user": sas.sessions_ended_by_user,
            "svpn_ike_sa_count": sas.ike_sa_count,
            "svpn_package_files": host_code.package_files,
            "svpn_distribution_files": host_code.distribution_files,
            "svpn_host_addresses": scrape.host_addresses,
            "svpn_exporter_address": scrape.exporter_address,
            "svpn_fact": role_facts.fact,
            "svpn_cert_policy": swanctl_cert_policy,
        }
