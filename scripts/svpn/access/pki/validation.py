"""Checks of what an operator or a roster gives the PKI: IDs, DNS names, e-mail addresses, full names,
validity days and the CA passphrase (and reading it from a file). Each returns the value as the PKI keeps
it or raises a one-line :class:`SvpnError` naming the field and the rule. Pure; imports only svpn.core."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from svpn.core.errors import SvpnError

ID_RULE = "1-64 characters: a-z 0-9 . _ - (lower case), starting with a letter or digit"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSPHRASE = 12  # for a new passphrase (init); an older CA's shorter one still opens it
_DNS_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


def validate_id(value: str, field_name: str = "ID") -> str:
    if not ID_RE.match(value):
        raise SvpnError(f"{field_name} {value!r} is not valid: {ID_RULE}")
    return value


def validate_dns_name(value: str, field_name: str = "SAN") -> str:
    """A DNS name (lower-cased); an optional leading ``*.`` wildcard label is allowed."""
    name = value.strip().lower()
    why = ""
    try:
        ipaddress.ip_address(name)
        why = " (an IP address is not a DNS name)"
    except ValueError:
        pass
    labels = name[2:].split(".") if name.startswith("*.") else name.split(".")
    if why or not name or len(name) > 253 or not all(_DNS_LABEL_RE.match(label) for label in labels):
        raise SvpnError(
            f"{field_name} {value!r} is not a valid DNS name{why}: labels of 1-63 characters "
            "a-z 0-9 -, not starting or ending with '-', separated by '.', 253 characters at most"
        )
    return name


def validate_email(value: str, field_name: str = "email") -> str:
    rule = "expected local@domain.tld (ASCII, domain a valid DNS name with a dot)"
    local, sep, domain = value.partition("@")
    if not sep or len(local) > 64 or not _EMAIL_LOCAL_RE.match(local) or "." not in domain:
        raise SvpnError(f"{field_name} {value!r} is not a valid e-mail address: {rule}")
    try:
        domain = validate_dns_name(domain, field_name)
    except SvpnError:
        raise SvpnError(f"{field_name} {value!r} is not a valid e-mail address: {rule}") from None
    if domain.startswith("*."):
        raise SvpnError(f"{field_name} {value!r} is not a valid e-mail address: {rule}")
    return f"{local}@{domain}"


def validate_full_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > 128 or not name.isprintable():
        raise SvpnError(f"name {value!r} is not valid: 1-128 printable characters")
    return name


def validate_days(value: int, field_name: str = "days") -> int:
    if value < 1 or value > 36500:
        raise SvpnError(f"{field_name} {value!r} is not valid: a whole number of days from 1 to 36500")
    return value


def validate_passphrase(passphrase: str | None, *, new: bool = False) -> bytes:
    if not passphrase:
        raise SvpnError("CA passphrase is missing: set SVPN_CA_PASSPHRASE or pass --passphrase-file FILE")
    if new and len(passphrase) < MIN_PASSPHRASE:
        raise SvpnError(
            f"CA passphrase is too short ({len(passphrase)} characters): a new passphrase needs at least "
            f"{MIN_PASSPHRASE} characters"
        )
    return passphrase.encode()


def read_passphrase_file(path: Path) -> str:
    """The passphrase in *path*, without one trailing newline."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SvpnError(f"passphrase file {str(path)!r} cannot be read: {err.__class__.__name__}") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text
