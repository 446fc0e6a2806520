"""The certificate policy of user certificates: "a user is their certificate". Which certificates carry
it (:func:`policies_for`), reading and writing the certificatePolicies extension, and the swanctl.conf text
that makes a concentrator require it (the Ansible filter ``svpn_cert_policy``). Pure; imports
svpn.access.pki.pkidir (the kinds) and svpn.farm.

USER_CERT_POLICY is on user certificates alone. Concentrators require it (swanctl ``remote { cert_policy }``),
so no other certificate of the CA (a concentrator's, say) is accepted as a user. Self-allocated under the
UUID arc (X.667; UUID f019e007-37da-49a2-a356-40a53d4b380a, generated once): never change it, every user
certificate carries it. The CA lists it too: strongSwan accepts a policy only when every CA certificate up to
the trust anchor allows it. swanctl.conf needs the policy as strongSwan writes it
(:func:`svpn.farm.identities.strongswan_oid_text`: the UUID arc wraps to 32 bits).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from svpn.access.pki.pkidir import Kind
from svpn.farm.identities import strongswan_oid_text

USER_CERT_POLICY = ObjectIdentifier("2.25.319149070241477104863397707334227277834")


def policies_for(kind: Kind) -> list[ObjectIdentifier]:
    """The policies a certificate of *kind* carries: USER_CERT_POLICY on user certificates (and the CA,
    which must allow it), none on servers."""
    return [] if kind == "server" else [USER_CERT_POLICY]


def cert_policies(cert: x509.Certificate) -> list[ObjectIdentifier]:
    """The certificate policy OIDs of *cert* (none without the extension)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return []
    return [info.policy_identifier for info in ext]


def policies_extension(policies: list[ObjectIdentifier]) -> x509.CertificatePolicies:
    """The certificatePolicies extension listing *policies* (no qualifiers)."""
    return x509.CertificatePolicies([x509.PolicyInformation(oid, None) for oid in policies])


def swanctl_cert_policy(kind: str = "user") -> str:
    """The swanctl.conf ``cert_policy`` value that admits certificates of *kind* (``user``) alone:
    USER_CERT_POLICY as strongSwan writes it, since charon compares the text (the UUID arc wraps to 32
    bits there, see :func:`svpn.farm.identities.strongswan_oid_text`). The Ansible filter
    svpn_cert_policy."""
    if kind != "user":
        raise ValueError(f"cert policy kind {kind!r}: only 'user' certificates carry one")
    return strongswan_oid_text(USER_CERT_POLICY)
