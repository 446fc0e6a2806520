"""Who may connect: the CA and certificates, keys at rest, identities, the roster, users' bundles
(profiles and install guides). Imports svpn.farm and svpn.core.
"""
