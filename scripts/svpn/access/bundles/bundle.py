"""What every file of a user's bundle is made from: the farm settings (the inventory's group all's variables,
read by ansible-core through svpn.core.ansible_inventory, and checked), the run's :class:`BundleContext`
(settings, the clients' proposals, the CA, and a fingerprint of all that and of the templates) and the
user's :class:`UserInfo`. The profiles
(:mod:`svpn.access.bundles.profiles`) and the install guides (:mod:`svpn.access.bundles.guides`) both take
these. Imports svpn.access.pki.validation, svpn.farm and svpn.core.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from svpn.access.pki.validation import validate_dns_name
from svpn.core.ansible_inventory import ANSIBLE_WAY, VaultOptions, read_inventory
from svpn.core.errors import SvpnError
from svpn.farm import proposals
from svpn.farm.facts import TUNNEL_MODES, TunnelMode

TEMPLATES = Path(__file__).with_name("templates")  # the profiles' and guides' templates
BUNDLE_FORMAT = 1  # bump when the bundle layout changes, so every bundle is rebuilt
# Where the Linux guide installs the certificate files (NetworkManager needs absolute paths).
NM_DIR = "/etc/svpn"


@dataclass(frozen=True)
class FarmSettings:
    """The farm-wide settings a client needs (one source: the inventory's group all, group_vars/all.yml)."""

    vpn_name: str
    public_address: str
    tunnel_mode: TunnelMode
    internal_networks: tuple[str, ...]
    dns_servers: tuple[str, ...]
    ike_proposals: tuple[str, ...]
    esp_proposals: tuple[str, ...]
    helpdesk: str = ""
    esp_pfs_optional: bool = False  # svpn_esp_pfs_optional: ESP proposals without PFS pass the policy

    def __post_init__(self) -> None:
        # the crypto policy (svpn.farm.proposals) and every client able to connect, for any way settings are
        # made
        proposals.for_clients(self.ike_proposals, self.esp_proposals, self.esp_pfs_optional)

    @property
    def remote_ts(self) -> tuple[str, ...]:
        """What the client routes into the tunnel: the internal networks (split) or everything (full)."""
        if self.tunnel_mode == "split":
            return self.internal_networks
        has_v6 = any(ipaddress.ip_network(n).version == 6 for n in self.internal_networks)
        return ("0.0.0.0/0", "::/0") if has_v6 else ("0.0.0.0/0",)

    @property
    def server_name_for_windows(self) -> str:
        """Windows checks the server certificate against the address it dials: dial the VPN name when the
        public address is an IP (the certificate carries the name, not the address)."""
        try:
            ipaddress.ip_address(self.public_address)
        except ValueError:
            return self.public_address
        return self.vpn_name

    def fingerprint(self) -> str:
        data = asdict(self)
        del data["esp_pfs_optional"]  # it only relaxes the policy check: no profile changes with it
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def load_farm_settings(inventory: Path | str, vault: VaultOptions = ANSIBLE_WAY) -> FarmSettings:
    """Read and validate the farm settings: the variables of the inventory's group all, as Ansible reads them
    (group_vars/all.yml or group_vars/all/*.yml, hosts.yml's all.vars; vault values decrypted with *vault*).

    Keys this module does not need may hold Jinja expressions; the ones it needs must be literal values.
    """
    inventory = Path(inventory)
    data = read_inventory(inventory, vault).all_vars if inventory.is_dir() else {}
    if not data:
        raise SvpnError(f"inventory {str(inventory)!r} has no group_vars/all.yml (the farm-wide settings)")
    path = f"{inventory}: group all"

    def need(key: str) -> Any:
        if key not in data or data[key] in (None, "", []):
            raise SvpnError(f"{path}: {key} is missing (client profiles are built from it)")
        value = data[key]
        if "{{" in json.dumps(value):
            raise SvpnError(
                f"{path}: {key} must be a literal value for client profiles, not a Jinja template"
            )
        return value

    def str_list(key: str) -> tuple[str, ...]:
        value = need(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SvpnError(f"{path}: {key} must be a list of strings, got {value!r}")
        return tuple(v.strip() for v in value)

    vpn_name = validate_dns_name(str(need("svpn_vpn_name")), "svpn_vpn_name")
    public_address = str(need("svpn_public_address")).strip()
    try:
        public_address = str(ipaddress.ip_address(public_address))
    except ValueError:
        public_address = validate_dns_name(public_address, "svpn_public_address")
    tunnel_mode = str(need("svpn_tunnel_mode"))
    if tunnel_mode not in TUNNEL_MODES:
        raise SvpnError(f"{path}: svpn_tunnel_mode {tunnel_mode!r} is not valid: {' or '.join(TUNNEL_MODES)}")
    networks = []
    for net in str_list("svpn_internal_networks"):
        try:
            networks.append(str(ipaddress.ip_network(net, strict=True)))
        except ValueError:
            raise SvpnError(f"{path}: svpn_internal_networks entry {net!r} is not a network (CIDR)") from None
    dns = []
    servers = data.get("svpn_dns_servers") or []
    if not isinstance(servers, list):
        raise SvpnError(f"{path}: svpn_dns_servers must be a list of IP addresses, got {servers!r}")
    for server in servers:
        try:
            dns.append(str(ipaddress.ip_address(str(server))))
        except ValueError:
            raise SvpnError(f"{path}: svpn_dns_servers entry {server!r} is not an IP address") from None
    helpdesk = data.get("svpn_helpdesk") or ""
    if not isinstance(helpdesk, str) or "{{" in helpdesk:
        raise SvpnError(f"{path}: svpn_helpdesk must be a literal string (how users reach the helpdesk)")
    pfs_optional = data.get("svpn_esp_pfs_optional", False)
    if not isinstance(pfs_optional, bool):
        raise SvpnError(f"{path}: svpn_esp_pfs_optional must be a literal true or false: {pfs_optional!r}")
    ike, esp = str_list("svpn_ike_proposals"), str_list("svpn_esp_proposals")
    try:
        # FarmSettings checks the crypto policy and that every client can connect
        return FarmSettings(
            vpn_name=vpn_name,
            public_address=public_address,
            tunnel_mode=tunnel_mode,  # type: ignore[arg-type]
            internal_networks=tuple(networks),
            dns_servers=tuple(dns),
            ike_proposals=ike,
            esp_proposals=esp,
            helpdesk=helpdesk.strip(),
            esp_pfs_optional=pfs_optional,
        )
    except SvpnError as err:
        raise SvpnError(f"{path}: {err}") from None


@dataclass(frozen=True)
class BundleContext:
    """Everything shared by all bundles of one run (picklable: sent once to each worker process)."""

    settings: FarmSettings
    client: proposals.ClientProposals
    ca_pem: bytes
    legacy_p12: bool = False
    fingerprint: str = field(default="")

    @classmethod
    def create(cls, settings: FarmSettings, ca_pem: bytes, legacy_p12: bool = False) -> BundleContext:
        client = proposals.for_clients(
            settings.ike_proposals, settings.esp_proposals, settings.esp_pfs_optional
        )
        digest = hashlib.sha256()
        digest.update(f"format {BUNDLE_FORMAT}\n".encode())
        digest.update(settings.fingerprint().encode())
        digest.update(hashlib.sha256(ca_pem).digest())
        digest.update(templates_fingerprint().encode())
        return cls(settings, client, ca_pem, legacy_p12, digest.hexdigest())

    @property
    def ca_cert(self) -> x509.Certificate:
        return _ca_cert(self.ca_pem)

    @property
    def ca_name(self) -> str:
        attrs = self.ca_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else self.ca_cert.subject.rfc4514_string()


@cache
def _ca_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


@cache
def templates_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(TEMPLATES.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class UserInfo:
    """The roster facts a bundle shows (no secrets)."""

    id: str
    name: str
    email: str
    department: str = ""
