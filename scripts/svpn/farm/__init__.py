"""Facts of a running farm shared by the CLI, the roles' filter plugins and the LB's health checker: node
states and tunnel modes (facts), bucket ownership, the LB hash, crypto proposals, certificate identities,
swanctl's SA listings, backends, the health checker itself (lbhealth) and the code a host needs to run it
(host_code). Imports only svpn.core.
"""
