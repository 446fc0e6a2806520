"""Who may connect: the CA and certificates, keys at rest, the roster, users' bundles (profiles and install
guides). Imports svpn.farm and svpn.core.

Lowest first: :mod:`svpn.access.pki` (clock, pkidir, validation, cert_policy, keystore, certs, cert_index,
user_keys, ca, revocation, issuing, ca_setup, expiry), :mod:`svpn.access.bundles` (bundle: what a bundle is
made from; guides; profiles; templates/), then the roster, bundle_records (the passwords file, the bundle
state), sync_workers, users (``svpn users sync``) and bench (``svpn users bench``).
"""
