"""A user is their certificate: every IKE identity a certificate lets its holder claim, as strongSwan
prints it.

A client may authenticate with any identity its certificate carries: the subject DN (Windows) or a
subjectAltName (the e-mail for the Apple, Android, NetworkManager and swanctl profiles). strongSwan shows
it as the IKE SA's ``remote-id`` (``swanctl --list-sas``); :func:`cert_identities` gives every such string
for a certificate, :func:`identity_key` the form to compare them by.

DNs are written as strongSwan writes them (``dntoa`` in libstrongswan's identification.c): the attributes
in certificate order, joined by ``", "``, each ``NAME=value`` with strongSwan's attribute names (its
asn1/oid.txt; ``C``, ``ST``, ``L``, ``O``, ``OU``, ``CN``, ``E`` for emailAddress, ``UID``, ``DC``, ``SN``
for the surname, ``serialNumber``, ...) or, for an attribute it has no name for, the OID's DER bytes in
hex (``55:04:2c=jr``); a byte that is not printable ASCII is written ``?``. The names are those of strongSwan
5.9.8 (Debian bookworm, the farm's), checked against its ``pki --print`` by the unit tests.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from cryptography import x509

from svpn.core import der

# strongSwan's names of DN attributes (asn1/oid.txt of 5.9.8), by OID.
DN_NAMES = {
    "0.2.262.1.10.7.20": "ND",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "T",
    "2.5.4.13": "D",
    "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "N",
    "2.5.4.42": "G",
    "2.5.4.43": "I",
    "2.5.4.45": "ID",
    "2.5.4.46": "dnQualifier",
    "2.5.4.54": "dmdName",
    "2.5.4.65": "pseudonym",
    "2.5.4.72": "role",
    "1.2.840.113549.1.9.1": "E",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "1.2.840.113549.1.9.8": "unstructuredAddress",
}
_OID_OF_NAME = {name.lower(): oid for oid, name in DN_NAMES.items()}
_OID_OF_NAME.update({"email": "1.2.840.113549.1.9.1", "emailaddress": "1.2.840.113549.1.9.1"})
_DN_KEY = re.compile(r"(?:^|,)\s*(?P<key>[A-Za-z][A-Za-z0-9]*|[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})*)\s*=")

IdentityKey = tuple[str, object]


def _printable(raw: bytes) -> str:
    """strongSwan's chunk_printable: every byte that is not printable ASCII becomes '?'."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in raw)


def strongswan_dn(name: x509.Name) -> str:
    """*name* as strongSwan prints it (``swanctl --list-sas`` remote-id, its logs): ``C=KR, O=City, CN=a``."""
    ((_tag, rdns),) = der.elements(name.public_bytes())
    parts = []
    for _set_tag, rdn in der.elements(rdns):
        for _seq_tag, attribute in der.elements(rdn):
            (_oid_tag, oid), (_value_tag, value) = der.elements(attribute)[:2]
            key = DN_NAMES.get(der.oid_text(oid)) or ":".join(f"{b:02x}" for b in oid)
            parts.append(f"{key}={_printable(value)}")
    return ", ".join(parts)


def strongswan_oid_text(oid: x509.ObjectIdentifier | str) -> str:
    """*oid* as strongSwan writes it (asn1_oid_to_string), e.g. the certificate policies it checks a
    swanctl ``cert_policy`` against: it keeps each arc in 32 bits, so a larger arc (the UUID of a 2.25 OID)
    wraps modulo 2**32. Equal to the dotted OID when every arc fits."""
    dotted = oid.dotted_string if isinstance(oid, x509.ObjectIdentifier) else oid
    arcs = [int(a) for a in dotted.split(".")]
    return ".".join(str(a) for a in arcs[:2]) + "".join(f".{a % 2**32}" for a in arcs[2:])


# --------------------------------------------------------------------------- identities of a certificate


def cert_identities(cert: x509.Certificate) -> list[str]:
    """Every identity *cert* lets a peer authenticate as, as strongSwan prints it: the subject DN, then each
    rfc822Name, dNSName, URI and IP address SAN (duplicates, e-mail in any case, once)."""
    found = []
    if len(cert.subject):
        found.append(strongswan_dn(cert.subject))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        found += san.get_values_for_type(x509.RFC822Name)
        found += san.get_values_for_type(x509.DNSName)
        found += san.get_values_for_type(x509.UniformResourceIdentifier)
        found += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return unique(found)


def unique(identities: Iterable[str]) -> list[str]:
    """*identities* without repeats by :func:`identity_key` (the first spelling stays), in order."""
    seen: set[IdentityKey] = set()
    kept = []
    for identity in identities:
        key = identity_key(identity)
        if key not in seen:
            seen.add(key)
            kept.append(identity)
    return kept


# --------------------------------------------------------------------------- comparing identities


def _key_oid(key: str) -> str | None:
    """The OID of an attribute name strongSwan prints (any case), or of its hex form (``55:04:2c``)."""
    oid = _OID_OF_NAME.get(key.lower())
    if oid is None and re.fullmatch(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})+", key):
        oid = der.oid_text(bytes.fromhex(key.replace(":", "")))
    return oid


def parse_dn(text: str) -> list[tuple[str, str]] | None:
    """The attributes (OID, value) of a DN in strongSwan's form, or None if *text* is no DN.

    Spacing around ``,`` and ``=`` does not matter. strongSwan does not escape values: a comma followed
    by a known attribute name and ``=`` always starts the next attribute.
    """
    text = text.strip()
    starts = [(m, oid) for m in _DN_KEY.finditer(text) if (oid := _key_oid(m.group("key")))]
    if not starts or starts[0][0].start() != 0:
        return None
    attributes = []
    for i, (match, oid) in enumerate(starts):
        end = starts[i + 1][0].start() if i + 1 < len(starts) else len(text)
        attributes.append((oid, text[match.end() : end].strip()))
    return attributes


def identity_key(identity: str) -> IdentityKey:
    """What two identities are compared by: a DN by its attributes (OIDs and values, ignoring case and
    spacing), an IP address by its value, anything else (e-mail, DNS name, URI) ignoring case."""
    attributes = parse_dn(identity)
    if attributes is not None:
        return ("dn", tuple((oid, value.casefold()) for oid, value in attributes))
    text = identity.strip()
    try:
        return ("ip", ipaddress.ip_address(text))
    except ValueError:
        return ("id", text.casefold())
