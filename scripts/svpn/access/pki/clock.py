"""The PKI's clock and the text form of its times (``index.json``, the bundle records): one ``now`` that
every PKI module reads as ``clock.now()``, so a test moves time for all of them at once. Pure; imports
nothing of svpn."""

from __future__ import annotations

import datetime as dt

BACKDATE = dt.timedelta(minutes=5)  # a new certificate or CRL is valid from a little before now (clock skew)


def now() -> dt.datetime:
    """Now, in UTC, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(when: dt.datetime) -> str:
    """*when* as the index writes it: ``2030-01-31T12:00:00Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """A time as :func:`iso` writes it (or any ISO 8601 text with an offset)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
