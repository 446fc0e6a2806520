"""Per-user VPN bundles: PKCS#12, the client profiles of every OS, and the install guides.

Everything in a bundle derives from the farm settings in the inventory (``group_vars/all.yml``: VPN name,
public address, tunnel mode, internal networks, DNS, proposals) — the same file the concentrator roles read,
through :func:`svpn.access.bundles.bundle.load_farm_settings` — and the proposals go through the one mapping
table in :mod:`svpn.farm.proposals`. Imports svpn.access (bundle, guides, certs).

A bundle directory ``BUNDLES/ID/`` (0700, files 0600) holds::

    README.txt          what is where (Korean and English)
    ID.p12              PKCS#12: the user's key, certificate and the CA (password kept apart, see below)
    ID.crt, ID.key      certificate (PEM) and key (encrypted PEM, same password), for Linux
    ca.crt              the farm CA (PEM)
    ID.mobileconfig     Apple iOS/iPadOS/macOS: IKEv2, certificate auth, PKCS#12 and CA embedded
    ID.sswan            strongSwan app for Android: JSON profile, PKCS#12 and CA embedded
    ID-windows.ps1      Windows: certificate import, Add-VpnConnection, Set-VpnConnectionIPsecConfiguration
    ID.nmconnection     Linux NetworkManager (strongswan plugin) keyfile
    swanctl.conf        plain strongSwan (swanctl) client configuration
    guides/OS.html|md   install guide per OS (ios, macos, android, windows, linux), Korean then English

The password is never in the bundle: :func:`generate_password` makes it, the caller keeps it apart
(:mod:`svpn.access.users` writes the helpdesk's passwords file outside the bundle directory).

PKCS#12 settings. The password is random with ~99 bits of entropy (20 characters from a 31-symbol
alphabet), so an attacker who copies a bundle faces 2^98 guesses on average: the KDF iteration count adds
only log2(rounds) bits (11 bits for 2,048 rounds) and cannot make a strong password stronger in any way
that matters, while each round costs CPU on every one of 10,000 bundles. So: PBES2, AES-256-CBC,
PBKDF2-HMAC-SHA256 with :data:`P12_KDF_ROUNDS` = 2,048 rounds and a SHA-256 MAC (the same 2,048 rounds
that OpenSSL and ``cryptography`` use for encrypted PKCS#8 keys). ``legacy=True`` writes what older Apple
and Android versions import: 3DES (pbeWithSHA1And3-KeyTripleDES-CBC) with a SHA-1 MAC and 2,048 rounds.
"""

from __future__ import annotations

import base64
import html
import json
import os
import plistlib
import re
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from svpn.access.bundles import guides
from svpn.access.bundles.bundle import NM_DIR, TEMPLATES, BundleContext, UserInfo
from svpn.access.pki.certs import PrivateKey

P12_KDF_ROUNDS = 2048
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed on phones
PASSWORD_GROUPS = 4
PASSWORD_GROUP_LEN = 5  # 20 symbols: 20 * log2(31) = 99 bits


# --------------------------------------------------------------------------- secrets and PKCS#12


def generate_password() -> str:
    """A random password for one bundle: 4 groups of 5 from a 31-symbol alphabet (~99 bits)."""
    groups = (
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_GROUP_LEN))
        for _ in range(PASSWORD_GROUPS)
    )
    return "-".join(groups)


def p12_encryption(password: str, legacy: bool) -> serialization.KeySerializationEncryption:
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(P12_KDF_ROUNDS)
    if legacy:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(
            hashes.SHA1()
        )
    else:
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
    return builder.build(password.encode())


def build_p12(
    user_id: str,
    key: PrivateKey,
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    password: str,
    legacy: bool = False,
) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        user_id.encode(), key, cert, [ca_cert], p12_encryption(password, legacy)
    )


def encrypted_key_pem(key: PrivateKey, password: str) -> bytes:
    """The key as encrypted PEM for NetworkManager-strongswan and swanctl (strongSwan's pem plugin).

    Traditional OpenSSL PEM (``Proc-Type: 4,ENCRYPTED``, ``DEK-Info: AES-256-CBC``): its key derivation
    is a single MD5 round, which against a random ~99-bit password costs an attacker as much as the
    password itself (2^98 guesses on average), and it is ~30 times cheaper to write than encrypted
    PKCS#8 — 10,000 times per run.
    """
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(password.encode()),
    )


# --------------------------------------------------------------------------- client profiles


@cache
def jinja_env(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _namespace(vpn_name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_DNS, vpn_name)


def _uuid(ctx: BundleContext, user_id: str, what: str) -> str:
    # Stable per VPN and user: re-importing a newer profile replaces the old one instead of adding a copy.
    return str(uuid.uuid5(_namespace(ctx.settings.vpn_name), f"{user_id}/{what}")).upper()


def _reverse_dns(name: str) -> str:
    return ".".join(reversed(name.split(".")))


# Per-user values stand in the skeletons as these markers (private-use characters: no template holds
# them and validated names cannot), so that every other "$" can be escaped before they become ${...}.
def _mark(name: str) -> str:
    return f"\ue000{name}\ue001"


def _as_skeleton(text: str) -> guides.Skeleton:
    return guides.Skeleton(re.sub("\ue000([a-z_0-9]+)\ue001", r"${\1}", text.replace("$", "$$")))


_SKELETONS: dict[tuple[str, str], guides.Skeleton] = {}


def _skeleton(ctx: BundleContext, what: str) -> guides.Skeleton:
    """The skeleton of one profile for this run, built once per process: plistlib or Jinja run once and
    a user's profile is a string join (10,000 renders were a third of a bundle's CPU time)."""
    key = (ctx.fingerprint, what)
    skeleton = _SKELETONS.get(key)
    if skeleton is None:
        build = _build_mobileconfig if what == "mobileconfig" else _build_text
        skeleton = _SKELETONS[key] = build(ctx, what)
    return skeleton


def _build_text(ctx: BundleContext, template: str) -> guides.Skeleton:
    context = {
        "user": UserInfo(_mark("id"), _mark("name"), _mark("email"), _mark("department")),
        "s": ctx.settings,
        "client": ctx.client,
        "ca_name": ctx.ca_name,
        "nm_dir": NM_DIR,
        "nm_uuid": _mark("nm_uuid"),
    }
    return _as_skeleton(jinja_env(False).get_template(template).render(context))


def _build_mobileconfig(ctx: BundleContext, _what: str) -> guides.Skeleton:
    """The profile with markers for the user's values, serialised by plistlib (the authority on the
    format); the PKCS#12 marker is a string there and becomes a <data> element."""
    s, base = ctx.settings, _reverse_dns(ctx.settings.vpn_name)
    ikev2: dict[str, Any] = {
        "RemoteAddress": s.public_address,
        "RemoteIdentifier": s.vpn_name,
        "LocalIdentifier": _mark("email"),
        "AuthenticationMethod": "Certificate",
        "CertificateType": "ECDSA256",
        "PayloadCertificateUUID": _mark("uuid_p12"),
        "ServerCertificateIssuerCommonName": ctx.ca_name,
        "ExtendedAuthEnabled": 0,
        # The farm's load balancer pins users by source address, so MOBIKE address updates cannot work:
        # the client re-establishes instead (see DESIGN.md).
        "DisableMOBIKE": 1,
        "DisableRedirect": 1,
        "EnablePFS": 1 if ctx.client.apple_pfs else 0,
        "DeadPeerDetectionRate": "Medium",
        "UseConfigurationAttributeInternalIPSubnet": 0,
        "IKESecurityAssociationParameters": dict(ctx.client.apple_ike),
        "ChildSecurityAssociationParameters": dict(ctx.client.apple_child),
    }
    vpn: dict[str, Any] = {
        "PayloadType": "com.apple.vpn.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{base}.{_mark('id')}.vpn",
        "PayloadUUID": _mark("uuid_vpn"),
        "PayloadDisplayName": f"VPN {s.vpn_name}",
        "UserDefinedName": s.vpn_name,
        "VPNType": "IKEv2",
        "IKEv2": ikev2,
    }
    if s.dns_servers:
        vpn["DNS"] = {"DNSProtocol": "Cleartext", "ServerAddresses": list(s.dns_servers)}
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{base}.{_mark('id')}",
        "PayloadUUID": _mark("uuid_profile"),
        "PayloadDisplayName": f"VPN {s.vpn_name} ({_mark('id')})",
        "PayloadDescription": f"IKEv2 VPN {s.vpn_name} for {_mark('name')} <{_mark('email')}>",
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [
            {
                "PayloadType": "com.apple.security.root",
                "PayloadVersion": 1,
                "PayloadIdentifier": f"{base}.{_mark('id')}.ca",
                "PayloadUUID": _mark("uuid_ca"),
                "PayloadDisplayName": ctx.ca_name,
                "PayloadCertificateFileName": "ca.crt",
                "PayloadContent": ctx.ca_cert.public_bytes(serialization.Encoding.DER),
            },
            {
                "PayloadType": "com.apple.security.pkcs12",
                "PayloadVersion": 1,
                "PayloadIdentifier": f"{base}.{_mark('id')}.certificate",
                "PayloadUUID": _mark("uuid_p12"),
                "PayloadDisplayName": f"{_mark('id')} ({s.vpn_name})",
                "PayloadCertificateFileName": f"{_mark('id')}.p12",
                "PayloadContent": _mark("p12_data"),
            },
            vpn,
        ],
    }
    text = plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True).decode()
    marker = f"<string>{_mark('p12_data')}</string>"
    if text.count(marker) != 1:  # pragma: no cover - the skeleton is built from constants above
        raise AssertionError("PKCS#12 placeholder not found in the mobileconfig skeleton")
    return _as_skeleton(text.replace(marker, f"<data>{_mark('p12_data')}</data>"))


def _xml(text: str) -> str:
    return html.escape(text, quote=False)


def mobileconfig(ctx: BundleContext, user: UserInfo, p12: bytes) -> bytes:
    """Apple configuration profile: CA, PKCS#12 (iOS asks for its password) and an IKEv2 VPN payload."""
    b64 = base64.b64encode(p12).decode()
    values = {
        "id": _xml(user.id),
        "name": _xml(user.name),
        "email": _xml(user.email),
        "uuid_profile": _uuid(ctx, user.id, "apple-profile"),
        "uuid_ca": _uuid(ctx, user.id, "apple-ca"),
        "uuid_p12": _uuid(ctx, user.id, "apple-p12"),
        "uuid_vpn": _uuid(ctx, user.id, "apple-vpn"),
        "p12_data": "\n".join(b64[i : i + 68] for i in range(0, len(b64), 68)),
    }
    return _skeleton(ctx, "mobileconfig").substitute(values).encode()


def sswan(ctx: BundleContext, user: UserInfo, p12: bytes) -> bytes:
    """strongSwan Android app profile (JSON); the app asks for the PKCS#12 password on import."""
    s = ctx.settings
    profile: dict[str, Any] = {
        "uuid": _uuid(ctx, user.id, "android").lower(),
        "name": s.vpn_name,
        "type": "ikev2-cert",
        "remote": {
            "addr": s.public_address,
            "id": s.vpn_name,
            "cert": base64.b64encode(ctx.ca_cert.public_bytes(serialization.Encoding.DER)).decode(),
        },
        "local": {"id": user.email, "p12": base64.b64encode(p12).decode()},
        "ike-proposal": ctx.client.android_ike,
        "esp-proposal": ctx.client.android_esp,
    }
    if s.tunnel_mode == "split":
        profile["split-tunneling"] = {"subnets": list(s.internal_networks)}
    return (json.dumps(profile, indent=2, ensure_ascii=False) + "\n").encode()


def _text_values(ctx: BundleContext, user: UserInfo) -> dict[str, str]:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "department": user.department,
        "nm_uuid": _uuid(ctx, user.id, "networkmanager").lower(),
    }


def windows_ps1(ctx: BundleContext, user: UserInfo) -> bytes:
    text = _skeleton(ctx, "windows.ps1.j2").substitute(_text_values(ctx, user))
    # Windows PowerShell 5.1 reads a script without a byte-order mark as ANSI: the BOM keeps UTF-8 intact.
    return "\ufeff".encode() + text.replace("\n", "\r\n").encode()


def nmconnection(ctx: BundleContext, user: UserInfo) -> bytes:
    return _skeleton(ctx, "nmconnection.j2").substitute(_text_values(ctx, user)).encode()


def swanctl_conf(ctx: BundleContext, user: UserInfo) -> bytes:
    return _skeleton(ctx, "swanctl.conf.j2").substitute(_text_values(ctx, user)).encode()


# --------------------------------------------------------------------------- bundles


@dataclass(frozen=True)
class Credentials:
    """What a bundle carries of the user's key: the PKCS#12 and the encrypted key (never the password)."""

    p12: bytes
    key_pem: bytes


def new_credentials(
    ctx: BundleContext, user_id: str, key: PrivateKey, cert: x509.Certificate, password: str
) -> Credentials:
    return Credentials(
        build_p12(user_id, key, cert, ctx.ca_cert, password, ctx.legacy_p12), encrypted_key_pem(key, password)
    )


def bundle_files(
    ctx: BundleContext, user: UserInfo, cert: x509.Certificate, creds: Credentials
) -> dict[str, bytes]:
    """Every file of one bundle, by relative path (pure: nothing is written)."""
    files = {
        f"{user.id}.p12": creds.p12,
        f"{user.id}.key": creds.key_pem,
        f"{user.id}.crt": cert.public_bytes(serialization.Encoding.PEM),
        "ca.crt": ctx.ca_pem,
        f"{user.id}.mobileconfig": mobileconfig(ctx, user, creds.p12),
        f"{user.id}.sswan": sswan(ctx, user, creds.p12),
        f"{user.id}-windows.ps1": windows_ps1(ctx, user),
        f"{user.id}.nmconnection": nmconnection(ctx, user),
        "swanctl.conf": swanctl_conf(ctx, user),
    }
    files.update(guides.render_all(ctx, user, cert))
    return files


def write_bundle(bundles_dir: Path, user_id: str, files: Mapping[str, bytes]) -> Path:
    """Write a bundle into a staging directory beside it, then swap it into place.

    The user's directory is therefore either the old bundle or the complete new one, never a mix; files
    are 0600 and directories 0700. Durability comes from one sync by the caller at the end of a run
    (per-file fsync would dominate the time of 10,000 bundles). Plain ``os`` calls on string paths: with
    30 files per user, pathlib and buffered file objects cost more than the writes.
    """
    root = str(bundles_dir)
    os.makedirs(root, mode=0o700, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{user_id}.new-", dir=root)  # created 0700
    try:
        made = {""}
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for rel, data in files.items():
            folder = rel.rpartition("/")[0]
            if folder not in made:
                os.makedirs(f"{staging}/{folder}", mode=0o700, exist_ok=True)
                made.add(folder)
            fd = os.open(f"{staging}/{rel}", flags, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        target = f"{root}/{user_id}"
        old = None
        if os.path.lexists(target):
            old = tempfile.mkdtemp(prefix=f".{user_id}.old-", dir=root)
            os.replace(target, f"{old}/bundle")
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old)
        return Path(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_bundle(bundles_dir: Path, user_id: str) -> bool:
    target = bundles_dir / user_id
    if not target.exists():
        return False
    shutil.rmtree(target)
    return True


def clean_staging(bundles_dir: Path) -> None:
    """Remove staging leftovers of an interrupted run (``.ID.new-*`` / ``.ID.old-*``)."""
    if not bundles_dir.is_dir():
        return
    for path in bundles_dir.iterdir():
        if path.name.startswith(".") and (".new-" in path.name or ".old-" in path.name) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
