"""``index.json``, the record of every certificate the CA issued: :class:`Index` (load once, change, save
once), a new record for a certificate, which e-mail a record still holds, and the readers that need no
passphrase (``svpn pki list``, ``svpn pki identities``). Imports svpn.access (pkidir, certs, cert_policy,
validation, clock), svpn.farm and svpn.core.

``index.json`` is ``{"version": 1, "crl_number": N, "certs": [...]}``; each record has ``serial``
(lower-case hex), ``kind`` (``ca``/``server``/``user``), ``name`` (the CA name, the server NAME or the
user ID, which is also the subject CN), ``not_after`` (ISO 8601, UTC), ``status`` (``valid``,
``revoked``, or ``superseded`` once a newer certificate was issued for the same name with the same
key) and ``revoked_at`` (ISO 8601 or null); user records also keep ``email`` and ``full_name``. Records
keep ``identities`` (every IKE identity the certificate carries, as strongSwan prints it: the certificate
file is overwritten by the next one) and ``policies`` (its certificate policy OIDs; user certificates, and
the CA, carry :data:`svpn.access.pki.cert_policy.USER_CERT_POLICY`); older records have neither.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from svpn.access.pki import audit, clock
from svpn.access.pki.cert_policy import cert_policies
from svpn.access.pki.certs import load_cert, serial_hex
from svpn.access.pki.pkidir import Kind, PkiDir, as_dir, require_ca
from svpn.access.pki.validation import validate_id
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write
from svpn.farm.identities import cert_identities, unique

INDEX_VERSION = 1


@dataclass
class Index:
    """``index.json`` in memory: load once, change, :meth:`save` once."""

    certs: list[dict[str, Any]] = field(default_factory=list)
    crl_number: int = 0
    dirty: bool = False
    # The audit trail's newest entry as of the last save ({"seq", "hash"}): a log cut short is found.
    audit_head: dict[str, Any] = field(default_factory=dict)
    # Changes that are not in the records (a bundle built), chained after the records' own at save.
    notes: list[audit.Event] = field(default_factory=list)
    _seen: dict[str, str] = field(default_factory=dict, repr=False)  # serial -> status as loaded/saved
    _seen_crl: int = field(default=0, repr=False)

    @classmethod
    def load(cls, pki_dir: PkiDir | Path) -> Index:
        path = as_dir(pki_dir).index
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            certs = data["certs"]
            crl_number = int(data.get("crl_number", 0))
            if not isinstance(certs, list) or not all(isinstance(c, dict) for c in certs):
                raise TypeError("certs")
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise SvpnError(
                f"index {str(path)!r} is unreadable or malformed ({err.__class__.__name__})"
            ) from None
        head = data.get("audit") if isinstance(data.get("audit"), dict) else {}
        index = cls(certs=certs, crl_number=crl_number, audit_head=head)
        index.mark_seen()
        return index

    def mark_seen(self) -> None:
        """The records as they are now are the audit trail's last word: :meth:`changes` counts from here."""
        self._seen = {str(r["serial"]): str(r["status"]) for r in self.certs}
        self._seen_crl = self.crl_number

    def changes(self) -> list[audit.Event]:
        """What changed since load or the last save, as audit events (then :attr:`notes`)."""
        return [*record_events(self.certs, self._seen, self._seen_crl, self.crl_number), *self.notes]

    def to_json(self) -> str:
        data: dict[str, Any] = {"version": INDEX_VERSION, "crl_number": self.crl_number, "certs": self.certs}
        if self.audit_head:
            data["audit"] = self.audit_head
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def save(self, pki_dir: PkiDir | Path) -> None:
        """Chain the changes onto the audit trail first (an entry may outlive a failed save, never the
        reverse), then write index.json."""
        entry = audit.append(pki_dir, self.changes())
        if entry is not None:
            self.audit_head = {"seq": entry.seq, "hash": entry.hash}
        atomic_write(as_dir(pki_dir).index, self.to_json(), 0o600)
        self.notes.clear()
        self.mark_seen()
        self.dirty = False

    def current(self, kind: Kind, name: str) -> dict[str, Any] | None:
        """The newest record for *kind*/*name* that is not superseded."""
        for record in reversed(self.certs):
            if record["kind"] == kind and record["name"] == name and record["status"] != "superseded":
                return record
        return None

    def email_holder(self, email: str, other_than: str) -> dict[str, Any] | None:
        """The valid, unexpired user record of an ID other than *other_than* whose e-mail is *email*
        (ignoring case), or None: two IDs with one e-mail would share an IKE identity."""
        wanted, now = email.lower(), clock.now()
        for record in self.certs:
            held = record["kind"] == "user" and record["name"] != other_than and held_email(record, now)
            if held == wanted:
                return record
        return None

    def add(self, record: dict[str, Any]) -> None:
        for old in self.certs:
            if old["kind"] == record["kind"] and old["name"] == record["name"] and old["status"] == "valid":
                old["status"] = "superseded"
        self.certs.append(record)
        self.dirty = True


def record_events(
    certs: list[dict[str, Any]], seen: Mapping[str, str], seen_crl: int, crl_number: int
) -> list[audit.Event]:
    """The audit events of the records' changes: certificates issued (``renew`` when the name had one),
    revoked or otherwise changed in status (a superseded one is implied by its renewal), a new CRL."""
    names_seen = {(r["kind"], r["name"]) for r in certs if str(r["serial"]) in seen}
    events: list[audit.Event] = []
    for record in certs:
        serial, status = str(record["serial"]), str(record["status"])
        subject = f"{record['kind']} {record['name']}"
        if serial not in seen:
            action = "renew" if (record["kind"], record["name"]) in names_seen else "issue"
            details = {"serial": serial, "not_after": record["not_after"]}
            details.update({k: record[k] for k in ("email", "full_name") if record.get(k)})
            events.append(audit.Event(action, subject, details))
            if status == "revoked":
                events.append(audit.Event("revoke", subject, {"serial": serial, "revoked_at": record["revoked_at"]}))
        elif status != seen[serial] and status != "superseded":
            if status == "revoked":
                events.append(audit.Event("revoke", subject, {"serial": serial, "revoked_at": record["revoked_at"]}))
            else:
                events.append(audit.Event("status", subject, {"serial": serial, "from": seen[serial], "to": status}))
    if crl_number != seen_crl:
        events.append(audit.Event("crl", "crl", {"number": crl_number}))
    return events


def held_email(record: Mapping[str, Any], now: dt.datetime) -> str | None:
    """The e-mail (lower case) that a user record's certificate still holds as an IKE identity: valid and
    not expired; else None. One ID per such e-mail (:meth:`Index.email_holder`, the roster's diff)."""
    email = record.get("email")
    if not email or record["status"] != "valid" or clock.parse_iso(str(record["not_after"])) <= now:
        return None
    return str(email).lower()


def index_record(kind: Kind, name: str, cert: x509.Certificate, **extra: Any) -> dict[str, Any]:
    """The record of a new certificate (valid), with *extra* fields (a user's e-mail, full name...)."""
    return {
        "serial": serial_hex(cert.serial_number),
        "kind": kind,
        "name": name,
        "issued_at": clock.iso(clock.now()),
        "not_after": clock.iso(cert.not_valid_after_utc),
        "status": "valid",
        "revoked_at": None,
        # What this certificate lets its holder authenticate as, and its policies: the certificate file is
        # overwritten by the next one, the index keeps them (svpn pki identities, users sync).
        "identities": cert_identities(cert),
        "policies": [p.dotted_string for p in cert_policies(cert)],
        **extra,
    }


@contextmanager
def bulk(pki_dir: PkiDir | Path) -> Iterator[Index]:
    """Load the index once; save it once at the end (also after an error, to record what was issued)."""
    index = Index.load(pki_dir)
    try:
        yield index
    finally:
        if index.dirty or index.notes:
            index.save(pki_dir)


def identities_of_users(pki_dir: PkiDir | Path, user_ids: list[str]) -> dict[str, list[str]]:
    """Per user ID, every identity that any certificate ever issued to it lets its holder authenticate as
    (the current one, superseded and revoked ones alike), as strongSwan prints it: the subject DN
    (``CN=alice``) and each SAN (the e-mail, ...); see :func:`svpn.farm.identities.cert_identities`.

    Read from the index (each record keeps its certificate's identities; a record written before they were
    kept stands for ``CN=ID`` and its e-mail, all svpn put in user certificates then) and the current
    certificate file. No passphrase needed. Raises :class:`SvpnError` naming every unknown ID.
    """
    pki = as_dir(pki_dir)
    for user_id in user_ids:
        validate_id(user_id, "ID")
    require_ca(pki)
    found: dict[str, list[str]] = {user_id: [] for user_id in user_ids}
    seen: set[str] = set()
    for record in Index.load(pki).certs:
        user_id = record["name"]
        if record["kind"] != "user" or user_id not in found:
            continue
        seen.add(user_id)
        if "identities" in record:
            found[user_id] += record["identities"]
        else:
            found[user_id] += [f"CN={user_id}"] + ([record["email"]] if record.get("email") else [])
    unknown = [user_id for user_id in found if user_id not in seen]
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        raise SvpnError(
            f"{'ID' if len(unknown) == 1 else 'IDs'} {names} {'is' if len(unknown) == 1 else 'are'} "
            f"unknown: no user certificate was ever issued to {'it' if len(unknown) == 1 else 'them'} "
            f"in {pki.index}"
        )
    for user_id in found:
        cert = load_cert(pki.cert_path("user", user_id))
        if cert is not None:
            found[user_id] += cert_identities(cert)
    return {user_id: unique(identities) for user_id, identities in found.items()}


def list_certs(pki_dir: PkiDir | Path) -> list[dict[str, str]]:
    """Every certificate in the index: ``serial``, ``kind``, ``cn``, ``not_after``, ``status``.

    ``status`` is ``valid``, ``revoked``, ``superseded`` or ``expired`` (computed from not_after).
    """
    pki = as_dir(pki_dir)
    require_ca(pki)
    now = clock.now()
    rows = []
    for record in Index.load(pki).certs:
        status = record["status"]
        if status == "valid" and clock.parse_iso(record["not_after"]) <= now:
            status = "expired"
        rows.append(
            {
                "serial": record["serial"],
                "kind": record["kind"],
                "cn": record["name"],
                "not_after": record["not_after"],
                "status": status,
            }
        )
    return rows
