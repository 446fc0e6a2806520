"""The certificates part of `svpn status`: the CA, the concentrators' certificates and the CRL with their
ends, which of them end within the window (`svpn pki check`'s words for each), and the users whose
certificates end soon. Pure: works on :func:`svpn.access.pki.expiry.expiry_warnings` (asked for every item,
with no window) and the users of the index (:func:`svpn.helpdesk.directory.users_of`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from svpn.access.pki import clock
from svpn.access.pki.expiry import ExpiryWarning
from svpn.helpdesk.answers import User

FIRST_USERS = 5  # how many of the users whose certificates end soon are named
EVERYTHING = 365 * 200  # days: a window that makes expiry_warnings list every item with its end


@dataclass(frozen=True)
class Expiry:
    """The CA, a concentrator's certificate or the CRL (its nextUpdate), and when it ends."""

    kind: str  # ca, server or crl
    name: str
    not_after: str  # ISO 8601, UTC; "" for a missing or unreadable CRL
    days_left: int | None  # whole days (negative once past); None for a missing CRL
    soon: bool  # ends within the window (--days; the CRL: svpn.access.pki.expiry.CRL_WARN_DAYS) or has
    message: str  # what to do, as `svpn pki check` says it ("" when not soon)


@dataclass(frozen=True)
class UserExpiry:
    id: str
    name: str
    not_after: str


@dataclass(frozen=True)
class PkiStatus:
    directory: str
    days: int  # the window for certificates
    crl_days: int  # the window for the CRL's nextUpdate
    certificates: tuple[Expiry, ...]  # the CA, the servers by name, the CRL
    users_expiring: int  # current, unrevoked user certificates that end within the window
    first_expiring: tuple[UserExpiry, ...]  # the first of them to end
    users_expired: int  # users whose newest certificate has ended (they cannot connect)

    @property
    def crl(self) -> Expiry | None:
        return next((c for c in self.certificates if c.kind == "crl"), None)


def pki_status(
    directory: str,
    items: Sequence[ExpiryWarning],
    users: Sequence[User],
    now: dt.datetime,
    days: int,
    crl_days: int,
) -> PkiStatus:
    """The certificates' part of the status from *items* (every CA, server and CRL item with its end) and
    the index's *users*, at *now*."""
    certificates = []
    for item in items:
        window = dt.timedelta(days=crl_days if item.kind == "crl" else days)
        soon = item.left is None or item.left <= window
        certificates.append(
            Expiry(
                kind=item.kind,
                name=item.name,
                not_after=clock.iso(item.not_after) if item.not_after is not None else "",
                days_left=item.left.days if item.left is not None else None,
                soon=soon,
                message=str(item) if soon else "",
            )
        )
    horizon = now + dt.timedelta(days=days)
    expiring = sorted(
        (u for u in users if u.status == "valid" and clock.parse_iso(u.not_after) <= horizon),
        key=lambda u: (clock.parse_iso(u.not_after), u.id),
    )
    return PkiStatus(
        directory=directory,
        days=days,
        crl_days=crl_days,
        certificates=tuple(certificates),
        users_expiring=len(expiring),
        first_expiring=tuple(UserExpiry(u.id, u.name, u.not_after) for u in expiring[:FIRST_USERS]),
        users_expired=sum(1 for u in users if u.status == "expired"),
    )
