"""Who may connect: the CA and certificates, keys at rest, the roster, users' bundles (profiles and install
guides). Imports svpn.farm and svpn.core.

The PKI, lowest first: clock, pkidir (the directory and its lock), validation, cert_policy, keystore, certs
(keys and certificates as objects), cert_index (index.json), user_keys (the users' keys at rest), ca (the
CA once unlocked), revocation (the CRL), issuing, ca_setup (``svpn pki init``, ``ca-policy``) and expiry
(``svpn pki check``). The users: roster, bundle (what a bundle is made from), guides, profiles,
bundle_records (the passwords file, the bundle state), sync_workers, users (``svpn users sync``) and bench.
"""
