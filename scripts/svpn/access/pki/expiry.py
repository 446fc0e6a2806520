"""Expiry checks (``svpn pki check``, and the warning every other ``svpn pki`` command prints): what of the
CA, the concentrator certificates and the CRL expires within a window, or already has, and how to say it.
Reads the certificate files, the CRL and the index only: no passphrase, nothing written. Imports svpn.access
(cert_index, certs, pkidir, clock) and svpn.core."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from svpn.access.pki import clock
from svpn.access.pki.cert_index import Index
from svpn.access.pki.certs import common_name, load_cert
from svpn.access.pki.pkidir import PkiDir, as_dir, require_ca
from svpn.core.errors import SvpnError

WARN_DAYS = 14  # the CA and the concentrator certificates
CRL_WARN_DAYS = 3  # the CRL lives 7 days (`svpn pki crl --days`) and is re-signed daily: a shorter window


@dataclass(frozen=True)
class ExpiryWarning:
    """The CA, a concentrator certificate or the CRL expires within the window, or already has.

    ``not_after`` is the certificate's notAfter or the CRL's nextUpdate; None for a missing or unreadable
    CRL. ``left`` is ``not_after - now`` (negative once expired).
    """

    kind: Literal["ca", "server", "crl"]
    name: str
    path: Path
    not_after: dt.datetime | None
    left: dt.timedelta | None

    @property
    def expired(self) -> bool:
        return self.left is None or self.left <= dt.timedelta(0)

    def __str__(self) -> str:
        if self.not_after is None or self.left is None:
            return f"CRL {self.path} is missing or unreadable: write one (`svpn pki crl`) and publish it"
        when = f"{self.not_after:%Y-%m-%d %H:%M} UTC"
        hours = int(self.left.total_seconds() // 3600)
        soon = f"in {self.left.days} days" if hours >= 48 else f"in {hours} hours"
        if hours < 2:
            soon = "within 2 hours"
        if self.kind == "ca":
            if self.expired:
                return (
                    f"CA certificate {self.name!r} expired on {when}: nothing it issued is accepted "
                    f"({self.path})"
                )
            return (
                f"CA certificate {self.name!r} expires on {when} ({soon}): nothing it issued is accepted "
                f"after that; roll out a new CA before then ({self.path})"
            )
        if self.kind == "server":
            if self.expired:
                return (
                    f"server certificate {self.name!r} expired on {when}: clients refuse that concentrator; "
                    f"re-issue it (`svpn pki server {self.name} --san ...`, or site.yml) ({self.path})"
                )
            return (
                f"server certificate {self.name!r} expires on {when} ({soon}): clients refuse that "
                f"concentrator after that ({self.path})"
            )
        if self.expired:
            return (
                f"CRL expired on {when} (nextUpdate): publish a fresh one now (playbooks/crl.yml, or "
                f"`svpn pki crl`) ({self.path})"
            )
        return (
            f"CRL expires on {when} (nextUpdate, {soon}): publish a fresh one before then "
            f"(playbooks/crl.yml, or `svpn pki crl`) ({self.path})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "path": str(self.path),
            "not_after": clock.iso(self.not_after) if self.not_after is not None else None,
            "expired": self.expired,
            "days_left": self.left.days if self.left is not None else None,
            "message": str(self),
        }


def expiry_warnings(
    pki_dir: PkiDir | Path,
    now: dt.datetime,
    days: int = WARN_DAYS,
    crl_days: int = CRL_WARN_DAYS,
) -> list[ExpiryWarning]:
    """What expires within *days* (the CA and the current concentrator certificates) or *crl_days* (the
    CRL's nextUpdate) of *now*, or already has: the CA first, then servers by name, then the CRL.

    Reads the certificate files and the CRL only (no passphrase, nothing written). A server certificate
    that cannot be read is judged by its index record; a missing or unreadable CRL is a warning.
    """
    pki = as_dir(pki_dir)
    require_ca(pki)
    ca_cert = load_cert(pki.ca_cert)
    if ca_cert is None:
        raise SvpnError(f"CA certificate {pki.ca_cert} is not a readable PEM certificate")
    window, crl_window = dt.timedelta(days=days), dt.timedelta(days=crl_days)
    found: list[ExpiryWarning] = []

    def check(
        kind: Literal["ca", "server", "crl"], name: str, path: Path, when: dt.datetime, within: dt.timedelta
    ) -> None:
        if when - now <= within:
            found.append(ExpiryWarning(kind, name, path, when, when - now))

    check("ca", common_name(ca_cert.subject), pki.ca_cert, ca_cert.not_valid_after_utc, window)
    servers = [r for r in Index.load(pki).certs if r["kind"] == "server" and r["status"] == "valid"]
    for record in sorted(servers, key=lambda r: str(r["name"])):
        path = pki.cert_path("server", record["name"])
        cert = load_cert(path)
        when = cert.not_valid_after_utc if cert is not None else clock.parse_iso(record["not_after"])
        check("server", record["name"], path, when, window)
    try:
        crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
        next_update = crl.next_update_utc
    except (OSError, ValueError):
        next_update = None
    if next_update is None:
        found.append(ExpiryWarning("crl", "crl", pki.crl, None, None))
    else:
        check("crl", "crl", pki.crl, next_update, crl_window)
    return found
