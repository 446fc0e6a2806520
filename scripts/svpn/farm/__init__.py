"""Facts of a running farm shared by the CLI, the roles' filter plugins and the LB's health checker:
bucket ownership, the LB hash, crypto proposals, swanctl's SA listings, backends. Imports only svpn.core.
"""
