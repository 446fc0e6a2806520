"""A test CA: one passphrase and one quick key type for every unit test that needs a PKI."""

from __future__ import annotations

from pathlib import Path

from svpn.access.pki.ca_setup import init_ca

PASS = "correct horse battery"


def make_ca(path: Path, name: str = "Test VPN CA") -> Path:
    """A PKI directory at *path* with a CA (ECDSA P-256 to stay quick)."""
    init_ca(path, name, PASS, key_type="ecdsa256")
    return path
