"""The farm's PKI on the controller: the CA and its key, issued certificates and their index, users'
keys at rest, revocation and the CRL, expiry warnings, the certificate policy. Imports svpn.farm and
svpn.core; nothing else of svpn.access.
"""
