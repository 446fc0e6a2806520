"""Find a user the way a caller names themselves: by ID, e-mail, name (Korean names included, in part, with
or without the space), certificate serial or an IKE identity from a log line. Pure: works on the PKI index's
records (`index.json`, read by the caller).

Names compare after Unicode NFC normalisation and case folding, so a name typed on a phone (decomposed
Hangul jamo) finds the one the roster holds, and spaces are ignored ("김 지우" finds "김지우").
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from svpn.access.pki import clock
from svpn.farm.identities import identity_key, unique
from svpn.helpdesk.answers import User

MAX_MATCHES = 20


def fold(text: str) -> str:
    """*text* as names compare: NFC, case-folded, without whitespace."""
    return "".join(unicodedata.normalize("NFC", text).casefold().split())


def users_of(records: Iterable[Mapping[str, Any]], now: dt.datetime) -> list[User]:
    """One :class:`User` per user ID in the index: its newest certificate's serial, expiry and status
    (``expired`` for a valid one past its end), with every identity any of its certificates carried (a
    device may still hold an older one)."""
    newest: dict[str, Mapping[str, Any]] = {}
    identities: dict[str, list[str]] = {}
    for record in records:
        if record.get("kind") != "user":
            continue
        user_id = str(record["name"])
        if record.get("status") != "superseded" or user_id not in newest:
            newest[user_id] = record
        email = [record["email"]] if record.get("email") else []
        held = record.get("identities") or [f"CN={user_id}", *email]
        identities.setdefault(user_id, []).extend(str(i) for i in held)
    users = []
    for user_id, record in newest.items():
        status = str(record.get("status", "valid"))
        if status == "valid" and clock.parse_iso(str(record["not_after"])) <= now:
            status = "expired"
        users.append(
            User(
                id=user_id,
                name=str(record.get("full_name") or ""),
                email=str(record.get("email") or ""),
                department=str(record.get("department") or ""),
                serial=str(record["serial"]),
                not_after=str(record["not_after"]),
                status=status,
                identities=tuple(unique(identities[user_id])),
            )
        )
    return users


def _rank(user: User, folded: str, key: object) -> int | None:
    """0 exact (ID, e-mail, serial, identity), 1 exact name, 2 a field starts with it, 3 contains it."""
    serial = user.serial.lstrip("0")
    if folded in (user.id.casefold(), user.email.casefold()) or (
        folded.replace(":", "").lstrip("0") == serial and len(folded) >= 6
    ):
        return 0
    if key is not None and any(identity_key(i) == key for i in user.identities):
        return 0
    fields = [fold(user.name), user.id.casefold(), user.email.casefold()]
    if folded == fields[0]:
        return 1
    if any(f.startswith(folded) for f in fields if f):
        return 2
    if any(folded in f for f in fields if f):
        return 3
    return None


def search(users: Iterable[User], query: str, limit: int = MAX_MATCHES) -> list[User]:
    """The users *query* names, best first (exact before partial), at most *limit*; [] for none."""
    folded = fold(query)
    if not folded:
        return []
    key = identity_key(query.strip()) if "=" in query or "@" in query else None
    ranked = []
    for user in users:
        rank = _rank(user, folded, key)
        if rank is not None:
            ranked.append((rank, user.id, user))
    ranked.sort(key=lambda item: (item[0], item[1]))
    best = [user for _, _, user in ranked]
    exact = [user for rank, _, user in ranked if rank == 0]
    return exact if exact else best[:limit]
