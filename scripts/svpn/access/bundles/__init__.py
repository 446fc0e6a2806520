"""Users' bundles: the farm settings a client needs, each OS's profile and the install guides (templates/).
Imports svpn.access.pki, svpn.farm and svpn.core.
"""
