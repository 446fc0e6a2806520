"""Certificates over time: `svpn pki server --renew`, and the CA rollover (`svpn pki ca-rollover`, the
previous CA kept trusted with its CRL and the servers' certificates from it, `svpn pki ca-retire`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from svpn_testing.pki import PASS

from svpn.access.pki.ca import CA, load_ca
from svpn.access.pki.cert_index import Index
from svpn.access.pki.issuing import issue_server, issue_user
from svpn.access.pki.revocation import revoke
from svpn.access.pki.rollover import other_issuer, retire_previous, start_rollover
from svpn.core.errors import SvpnError

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, cli: Run) -> Run:
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", PASS)
    return cli


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def revoked_serials(path: Path) -> set[int]:
    return {entry.serial_number for entry in x509.load_pem_x509_crl(path.read_bytes())}


def test_renew_issues_a_new_serial_with_the_same_key_and_supersedes_the_old(d: Path, ca: CA) -> None:
    first = issue_server(d, ca, "gw1", ["vpn.example.org"])
    key_before = (d / "servers" / "gw1.key").read_bytes()
    assert issue_server(d, ca, "gw1", ["vpn.example.org"]).action == "unchanged"
    renewed = issue_server(d, ca, "gw1", ["vpn.example.org"], renew=True)
    assert renewed.action == "issued" and renewed.serial != first.serial
    assert (
        d / "servers" / "gw1.key"
    ).read_bytes() == key_before  # same key: nothing to redeploy but the cert
    assert cert(d / "servers" / "gw1.crt").serial_number == int(renewed.serial, 16)
    statuses = {r["serial"]: r["status"] for r in Index.load(d).certs if r["kind"] == "server"}
    assert statuses == {first.serial: "superseded", renewed.serial: "valid"}
    # The old serial is not revoked: it stays valid until it expires (same key; revoking it would protect
    # nothing), and the CRL does not grow.
    assert revoked_serials(d / "crl.pem") == set()


def test_cli_renew(d: Path, run: Run) -> None:
    assert run("pki", "server", "gw1", "--san", "vpn.example.org", "--dir", d)[1] == "issued: server gw1\n"
    assert run("pki", "server", "gw1", "--san", "vpn.example.org", "--dir", d)[1] == "unchanged: server gw1\n"
    code, out, _err = run("pki", "server", "gw1", "--san", "vpn.example.org", "--renew", "--dir", d)
    assert (code, out) == (0, "issued: server gw1\n")


def test_rollover_keeps_the_previous_ca_trusted_and_the_new_one_issues(d: Path, ca: CA) -> None:
    issue_server(d, ca, "gw1", ["vpn.example.org"])
    issue_user(d, ca, "alice", email="alice@example.org")
    issue_user(d, ca, "gone")
    revoke(d, ca, "gone")
    old_ca, old_gw1 = cert(d / "ca" / "ca.crt"), cert(d / "servers" / "gw1.crt")

    result = start_rollover(d, ca, "Test VPN CA 2", PASS)
    assert (result.previous_name, result.servers) == ("Test VPN CA", ["gw1"])
    new_ca = cert(d / "ca" / "ca.crt")
    assert new_ca.subject != old_ca.subject and cert(d / "ca" / "previous.crt") == old_ca
    assert cert(d / "servers" / "previous" / "gw1.crt") == old_gw1
    # Both CAs sign a CRL, each listing every revoked serial.
    gone = {int(r["serial"], 16) for r in Index.load(d).certs if r["name"] == "gone"}
    for crl_file, issuer in (("crl.pem", new_ca), ("crl-previous.pem", old_ca)):
        crl = x509.load_pem_x509_crl((d / crl_file).read_bytes())
        assert crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())
        assert revoked_serials(d / crl_file) == gone

    reloaded = load_ca(d, PASS)  # the new CA opens with the same passphrase; the previous one with it
    assert reloaded.cert == new_ca and reloaded.previous is not None and reloaded.previous.cert == old_ca
    # Anything issued from now on comes from the new CA: the old server certificate is re-issued (same key).
    again = issue_server(d, reloaded, "gw1", ["vpn.example.org"])
    assert again.action == "issued"
    assert cert(d / "servers" / "gw1.crt").issuer == new_ca.subject
    assert cert(d / "servers" / "gw1.crt").public_key() == old_gw1.public_key()
    # A user revoked during the rollover goes into both CRLs.
    revoke(d, reloaded, "alice")
    alice = {int(r["serial"], 16) for r in Index.load(d).certs if r["name"] == "alice"}
    assert alice <= revoked_serials(d / "crl.pem") and alice <= revoked_serials(d / "crl-previous.pem")


def test_one_rollover_at_a_time_and_the_new_ca_needs_its_own_name(d: Path, ca: CA) -> None:
    with pytest.raises(SvpnError, match="is the current CA's name"):
        start_rollover(d, ca, "Test VPN CA", PASS)
    start_rollover(d, ca, "Test VPN CA 2", PASS)
    before = {p: p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
    with pytest.raises(SvpnError, match="a CA rollover is under way: 'Test VPN CA'"):
        start_rollover(d, load_ca(d, PASS), "Test VPN CA 3", PASS)
    assert {p: p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()} == before


def test_retire_moves_the_previous_ca_away_and_crls_are_single_again(d: Path, ca: CA) -> None:
    issue_server(d, ca, "gw1", ["vpn.example.org"])
    old_serial = f"{ca.cert.serial_number:x}"
    start_rollover(d, ca, "Test VPN CA 2", PASS)
    result = retire_previous(d)
    target = d / "ca" / "retired" / old_serial
    assert result.moved_to == target and result.name == "Test VPN CA"
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == [
        "ca.crt", "ca.key", "crl.pem", "servers/gw1.crt",
    ]  # fmt: skip
    for gone in ("ca/previous.crt", "ca/previous.key", "crl-previous.pem", "servers/previous"):
        assert not (d / gone).exists()
    assert load_ca(d, PASS).previous is None
    with pytest.raises(SvpnError, match="no previous CA"):
        retire_previous(d)
    start_rollover(d, load_ca(d, PASS), "Test VPN CA 3", PASS)  # the next rollover may start


def test_other_issuer_names_the_ca_of_a_users_certificate_from_before_the_rollover(d: Path, ca: CA) -> None:
    issue_user(d, ca, "alice")
    record = Index.load(d).current("user", "alice")
    assert record is not None
    assert other_issuer(d)("alice", record) == ""  # one CA only: nothing to read
    start_rollover(d, ca, "Test VPN CA 2", PASS)
    assert other_issuer(d)("alice", record) == "Test VPN CA"
    issue_user(d, load_ca(d, PASS), "alice")
    renewed = Index.load(d).current("user", "alice")
    assert renewed is not None and other_issuer(d)("alice", renewed) == ""


def test_cli_rollover_and_retire(d: Path, run: Run) -> None:
    run("pki", "server", "gw1", "--san", "vpn.example.org", "--dir", d)
    code, out, err = run("pki", "ca-rollover", "--name", "Test VPN CA 2", "--dir", d)
    assert code == 0, err
    assert out.startswith("issued: ca Test VPN CA 2 (serial ")
    assert f"kept: server gw1 from the previous ca ({d / 'servers' / 'previous' / 'gw1.crt'})" in out
    code, _out, err = run("pki", "ca-rollover", "--name", "Test VPN CA 3", "--dir", d)
    assert code != 0 and "a CA rollover is under way" in err
    code, out, _err = run("pki", "ca-retire", "--dir", d)
    assert code == 0 and out.startswith("retired: ca Test VPN CA (serial ")
