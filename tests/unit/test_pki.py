"""The PKI modules of svpn.access and `svpn pki ...`: the CA, certificates, revocation, CRL, listing."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import OLD_PASSPHRASE, clear_keys_under, make_older_pki, one_line_error
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from svpn_testing.pki import PASS

from svpn.access.pki import clock, keystore
from svpn.access.pki.ca import CA, load_ca, open_user_keys
from svpn.access.pki.ca_setup import init_ca
from svpn.access.pki.cert_index import Index, bulk, list_certs
from svpn.access.pki.expiry import ExpiryWarning, expiry_warnings
from svpn.access.pki.issuing import issue_server, issue_user
from svpn.access.pki.revocation import mark_revoked, revoke
from svpn.access.pki.user_keys import read_user_key
from svpn.core.errors import SvpnError

IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")
Run = Callable[..., tuple[int, str, str]]


# --------------------------------------------------------------------------- helpers and fixtures


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, cli: Run) -> Run:
    """Run ``svpn.cli.main(argv)`` with the CA passphrase in the environment: (exit code, out, err)."""
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", PASS)
    return cli


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under *root* with its mode and (for files) bytes."""
    if not root.exists():
        return {}
    result = {}
    for path in sorted(root.rglob("*")):
        data = path.read_bytes() if path.is_file() else b""
        result[str(path.relative_to(root))] = (path.stat().st_mode, data)
    return result


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def index(d: Path) -> dict:
    return json.loads((d / "index.json").read_text())


def ext(c: x509.Certificate, cls: type) -> x509.Extension:
    return c.extensions.get_extension_for_class(cls)


# --------------------------------------------------------------------------- init


def test_init_creates_encrypted_ca_with_ca_extensions(tmp_path: Path, run: Run) -> None:
    d = tmp_path / "pki"
    code, out, err = run("pki", "init", "--name", "City VPN CA", "--dir", d)
    assert (code, err) == (0, "")
    assert "issued: ca City VPN CA" in out
    for sub in ("", "ca", "servers", "users"):
        assert stat.S_IMODE((d / sub).stat().st_mode) == 0o700, sub
    assert stat.S_IMODE((d / "ca/ca.key").stat().st_mode) == 0o600
    key_pem = (d / "ca/ca.key").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key_pem
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(key_pem, password=None)
    key = serialization.load_pem_private_key(key_pem, password=PASS.encode())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp384r1"

    c = cert(d / "ca/ca.crt")
    assert c.subject == c.issuer
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "City VPN CA"
    bc = ext(c, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ext(c, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    assert ext(c, x509.SubjectKeyIdentifier).value.digest
    c.verify_directly_issued_by(c)
    days = (c.not_valid_after_utc - c.not_valid_before_utc).days
    assert 3649 <= days <= 3651
    assert [r["kind"] for r in index(d)["certs"]] == ["ca"]


def test_init_refuses_to_overwrite_and_leaves_ca_untouched(d: Path, run: Run) -> None:
    before = snapshot(d)
    code, out, err = run("pki", "init", "--name", "Other CA", "--dir", d)
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert "already exists" in line and str(d / "ca" / "ca.crt") in line
    assert snapshot(d) == before


def test_init_refuses_when_only_the_key_exists(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    (d / "ca").mkdir(parents=True)
    (d / "ca/ca.key").write_bytes(b"precious")
    with pytest.raises(SvpnError, match="already exists"):
        init_ca(d, "CA", PASS)
    assert (d / "ca/ca.key").read_bytes() == b"precious"
    assert not (d / "ca/ca.crt").exists()


def test_init_needs_a_long_enough_passphrase(tmp_path: Path, run: Run, monkeypatch) -> None:
    d = tmp_path / "pki"
    monkeypatch.delenv("SVPN_CA_PASSPHRASE")
    code, _, err = run("pki", "init", "--name", "CA", "--dir", d)
    assert code == 2 and "passphrase is missing" in one_line_error(err)
    for short in ("pw-1234", "eleven char"):
        monkeypatch.setenv("SVPN_CA_PASSPHRASE", short)
        code, out, err = run("pki", "init", "--name", "CA", "--dir", d)
        assert (code, out) == (2, "")
        assert one_line_error(err) == (
            f"svpn: error: CA passphrase is too short ({len(short)} characters): a new passphrase needs "
            "at least 12 characters"
        )
        assert short not in err  # the passphrase itself is never echoed
    assert not d.exists()
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", "twelve chars")
    code, _, err = run("pki", "init", "--name", "CA", "--dir", d)
    assert (code, err) == (0, "")


def test_init_key_type_and_days(tmp_path: Path) -> None:
    init_ca(tmp_path, "CA", PASS, key_type="ecdsa256", days=10)
    ca = load_ca(tmp_path, PASS)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey) and ca.key.curve.name == "secp256r1"
    assert (ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc).days == 10


def test_passphrase_file_wins_and_one_newline_is_stripped(
    tmp_path: Path, d: Path, run: Run, monkeypatch
) -> None:
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", "not the passphrase")
    secret = tmp_path / "secret"
    secret.write_text(PASS + "\n")
    code, _, err = run("pki", "user", "alice", "--dir", d, "--passphrase-file", secret)
    assert (code, err) == (0, ""), err
    secret.write_text(PASS + "\n\n")  # only one newline is dropped: this is a different passphrase
    code, _, err = run("pki", "user", "bob", "--dir", d, "--passphrase-file", secret)
    assert code == 2 and "passphrase is wrong" in one_line_error(err)


# --------------------------------------------------------------------------- CA loading errors


def test_wrong_passphrase_is_one_line_and_writes_nothing(d: Path, run: Run, monkeypatch) -> None:
    issue_user(d, load_ca(d, PASS), "alice")
    before = snapshot(d)
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", "wrong passphrase")
    for argv in (
        ("pki", "user", "bob"),
        ("pki", "server", "gw1", "--san", "gw1.example.org"),
        ("pki", "revoke", "alice"),
        ("pki", "crl"),
    ):
        code, out, err = run(*argv, "--dir", d)
        assert code == 2 and out == ""
        assert one_line_error(err) == f"svpn: error: CA passphrase is wrong for {d / 'ca' / 'ca.key'}"
    assert snapshot(d) == before


def test_missing_ca(tmp_path: Path, run: Run) -> None:
    code, _, err = run("pki", "user", "alice", "--dir", tmp_path / "none")
    assert code == 2
    assert one_line_error(err) == f"svpn: error: no CA in {tmp_path / 'none'}: run `svpn pki init` first"
    assert not (tmp_path / "none").exists()


# --------------------------------------------------------------------------- keys at rest


SCRYPT_OID = bytes.fromhex("06092b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11, RFC 7914 section 7


def test_the_ca_key_is_pkcs8_under_scrypt_with_the_real_parameters(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keystore, "CA_KDF", keystore.DEFAULT_KDF)  # not the unit tests' quick one
    d = tmp_path / "pki"
    code, _out, err = run("pki", "init", "--name", "CA", "--key-type", "ecdsa256", "--dir", d)
    assert (code, err) == (0, "")
    pem = (d / "ca/ca.key").read_bytes()
    info = keystore.kdf_info(pem)
    assert (info.scheme, info.kdf, info.n, info.r, info.p) == ("pbes2", "scrypt", 2**17, 8, 1)
    assert (info.cipher, info.salt_bytes) == ("aes-256-cbc", 16)
    assert str(info) == "scrypt N=2^17 r=8 p=1, aes-256-cbc"
    # The same without svpn's parser: after the scrypt OID, SEQUENCE { salt (16 bytes), N, r, p, key length }.
    der = base64.b64decode("".join(pem.decode().splitlines()[1:-1]))
    params = der[der.index(SCRYPT_OID) + len(SCRYPT_OID) :]
    assert params[:4] == bytes.fromhex("30200410")
    assert params[20:34] == bytes.fromhex("0203020000020108020101020120")  # 2^17, 8, 1, 32
    kek = json.loads((d / "ca/kek.json").read_text())
    assert (kek["version"], kek["kdf"], kek["n"], kek["r"], kek["p"]) == (1, "scrypt", 2**17, 8, 1)
    assert len(base64.b64decode(kek["salt"])) == 16
    assert stat.S_IMODE((d / "ca/kek.json").stat().st_mode) == 0o600
    ca = load_ca(d, PASS)  # opens with cryptography's own loader
    assert ca.cert.public_key() == ca.key.public_key()


def test_an_older_ca_opens_with_its_short_passphrase_and_moves_on_the_next_write(
    d: Path, ca: CA, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue_user(d, ca, "alice", email="alice@example.org")
    issue_server(d, ca, "gw1", ["gw1.example.org"])
    make_older_pki(d, PASS)
    info = keystore.kdf_info((d / "ca/ca.key").read_bytes())
    assert (info.kdf, info.prf, info.iterations) == ("pbkdf2", "hmac-sha256", 2048)
    alice_clear = (d / "users/alice.key").read_bytes()
    before = snapshot(d)
    older = load_ca(d, OLD_PASSPHRASE)  # 8 characters: too short for a new CA, fine for this one
    assert snapshot(d) == before  # loading writes nothing

    monkeypatch.setenv("SVPN_CA_PASSPHRASE", "not the passphrase")
    code, out, err = run("pki", "crl", "--dir", d)
    assert (code, out) == (2, "")
    assert one_line_error(err) == f"svpn: error: CA passphrase is wrong for {d / 'ca' / 'ca.key'}"
    assert snapshot(d) == before

    monkeypatch.setenv("SVPN_CA_PASSPHRASE", OLD_PASSPHRASE)
    code, out, err = run("pki", "crl", "--dir", d)  # the next write: signing a CRL
    assert (code, out) == (0, f"written: {d / 'crl.pem'}\n"), err
    info = keystore.kdf_info((d / "ca/ca.key").read_bytes())
    assert info.current() and info.scrypt == keystore.CA_KDF
    assert stat.S_IMODE((d / "ca/ca.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in (d / "ca").iterdir()) == ["ca.crt", "ca.key", "kek.json"]  # no temp file
    moved = load_ca(d, OLD_PASSPHRASE)  # the same key, the same passphrase
    assert moved.key.private_numbers() == older.key.private_numbers()
    assert not (d / "users/alice.key").exists()
    assert stat.S_IMODE((d / "users/alice.key.enc").stat().st_mode) == 0o600
    alice = read_user_key(d, moved.user_kek(), "alice")
    assert (
        alice.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        == alice_clear
    )
    # A concentrator's key is copied to its node by Ansible: it stays PEM on the controller (0600).
    assert clear_keys_under(d) == [d / "servers/gw1.key"]
    before = snapshot(d)
    code, out, _err = run("pki", "user", "alice", "--email", "alice@example.org", "--dir", d)
    assert (code, out) == (0, "unchanged: user alice\n")
    assert snapshot(d) == before


def test_a_failed_move_of_an_older_ca_key_leaves_it_whole(
    d: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_older_pki(d, PASS)
    before = snapshot(d)
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        if Path(dst).name == "ca.key":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", OLD_PASSPHRASE)
    code, out, err = run("pki", "crl", "--dir", d)
    assert (code, out) == (2, "")
    assert one_line_error(err) == (
        f"svpn: error: CA key {d / 'ca' / 'ca.key'} could not be re-encrypted under "
        f"{keystore.CA_KDF} (No space left on device); it was left as it was, nothing else was written"
    )
    assert snapshot(d) == before  # the old key file, and no temporary file beside it
    monkeypatch.setattr(os, "replace", real_replace)
    code, _out, err = run("pki", "crl", "--dir", d)
    assert code == 0, err
    assert keystore.kdf_info((d / "ca/ca.key").read_bytes()).current()


def test_an_older_users_key_is_sealed_when_its_certificate_is_renewed(
    d: Path, ca: CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue_user(d, ca, "alice", days=1)
    make_older_pki(d, PASS)
    key_before = (d / "users/alice.key").read_bytes()
    later = clock.now() + dt.timedelta(days=3)
    monkeypatch.setattr(clock, "now", lambda: later)
    older = load_ca(d, OLD_PASSPHRASE)
    assert issue_user(d, older, "alice").action == "issued"
    assert clear_keys_under(d) == []
    key = read_user_key(d, older.user_kek(), "alice")
    assert (
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        == key_before
    )
    assert cert(d / "users/alice.crt").public_key() == key.public_key()


def test_users_keys_are_sealed_and_open_only_for_their_id(d: Path, ca: CA, run: Run) -> None:
    issue_user(d, ca, "alice", email="alice@example.org")
    code, _out, err = run("pki", "user", "bob", "--dir", d)
    assert code == 0, err
    issue_server(d, ca, "gw1", ["gw1.example.org"])
    assert clear_keys_under(d) == [d / "servers/gw1.key"]
    assert sorted(p.name for p in (d / "users").iterdir()) == [
        "alice.crt",
        "alice.key.enc",
        "bob.crt",
        "bob.key.enc",
    ]
    sealed = d / "users/alice.key.enc"
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    assert sealed.read_bytes().startswith(b"-----BEGIN SVPN SEALED USER KEY-----\n")
    key = read_user_key(d, ca.user_kek(), "alice")
    assert key.public_key() == cert(d / "users/alice.crt").public_key()
    (d / "users/bob.key.enc").write_bytes(sealed.read_bytes())  # alice's sealed key under bob's name
    with pytest.raises(SvpnError) as err:
        read_user_key(d, ca.user_kek(), "bob")
    assert str(err.value) == (
        f"key {d / 'users/bob.key.enc'} does not open: it was altered, or sealed for another ID than 'bob'; "
        "it is never replaced: move it away to issue a new key"
    )


def test_the_users_keys_open_only_with_the_ca_passphrase(d: Path, ca: CA) -> None:
    issue_user(d, ca, "alice")
    before = snapshot(d)
    with pytest.raises(SvpnError) as err:
        open_user_keys(d, "not the passphrase")
    assert str(err.value) == f"CA passphrase is wrong for {d / 'ca' / 'kek.json'}"
    assert snapshot(d) == before
    assert open_user_keys(d, PASS).kek() == ca.user_kek()


# --------------------------------------------------------------------------- server certificates


def test_server_certificate_contents(d: Path, run: Run) -> None:
    code, out, err = run(
        "pki", "server", "gw1", "--san", "vpn.example.org", "--san", "GW1.example.org", "--dir", d
    )
    assert (code, out, err) == (0, "issued: server gw1\n", "")
    c = cert(d / "servers/gw1.crt")
    assert c.subject.rfc4514_string() == "CN=gw1"
    sans = ext(c, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == ["gw1.example.org", "vpn.example.org"]  # NAME itself is not added
    eku = ext(c, x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and IKE_INTERMEDIATE in eku
    assert ExtendedKeyUsageOID.CLIENT_AUTH not in eku
    ku = ext(c, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    assert not ext(c, x509.BasicConstraints).value.ca
    ca_ski = ext(cert(d / "ca/ca.crt"), x509.SubjectKeyIdentifier).value.digest
    assert ext(c, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    c.verify_directly_issued_by(cert(d / "ca/ca.crt"))

    key_pem = (d / "servers/gw1.key").read_bytes()
    assert stat.S_IMODE((d / "servers/gw1.key").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_pem, password=None)  # unencrypted: deployed to the node
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key() == c.public_key()
    assert ext(c, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        key.public_key()
    )


def test_server_second_issue_is_unchanged(d: Path, run: Run) -> None:
    run("pki", "server", "gw1", "--san", "gw1.example.org", "--dir", d)
    before = snapshot(d)
    code, out, err = run("pki", "server", "gw1", "--san", "gw1.example.org", "--dir", d)
    assert (code, out, err) == (0, "unchanged: server gw1\n", "")
    assert snapshot(d) == before  # same key bytes, same cert, no new serial in the index


def test_server_san_change_reissues_with_the_same_key(d: Path, ca: CA) -> None:
    first = issue_server(d, ca, "gw1", ["gw1.example.org"])
    key_before = (d / "servers/gw1.key").read_bytes()
    second = issue_server(d, ca, "gw1", ["gw1.example.org", "vpn.example.org"])
    assert (first.action, second.action) == ("issued", "issued")
    assert second.serial != first.serial
    assert (d / "servers/gw1.key").read_bytes() == key_before
    c = cert(d / "servers/gw1.crt")
    assert format(c.serial_number, "x") == second.serial
    key = serialization.load_pem_private_key(key_before, password=None)
    assert c.public_key() == key.public_key()
    statuses = [(r["serial"], r["status"]) for r in index(d)["certs"] if r["kind"] == "server"]
    assert statuses == [(first.serial, "superseded"), (second.serial, "valid")]
    # and now that SAN set is stable again
    assert issue_server(d, ca, "gw1", ["vpn.example.org", "gw1.example.org"]).action == "unchanged"


def test_an_unreadable_existing_key_is_never_replaced(d: Path, ca: CA) -> None:
    (d / "servers/gw1.key").write_bytes(b"not a key")
    with pytest.raises(SvpnError, match="never replaced"):
        issue_server(d, ca, "gw1", ["gw1.example.org"])
    assert (d / "servers/gw1.key").read_bytes() == b"not a key"
    assert not (d / "servers/gw1.crt").exists()


# --------------------------------------------------------------------------- user certificates


def test_user_certificate_contents(d: Path, run: Run) -> None:
    code, out, err = run(
        "pki", "user", "alice", "--email", "alice@example.org", "--name", "Alice A", "--dir", d
    )
    assert (code, out, err) == (0, "issued: user alice\n", "")
    c = cert(d / "users/alice.crt")
    assert c.subject.rfc4514_string() == "CN=alice"
    san = ext(c, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.org"]
    assert san.get_values_for_type(x509.DNSName) == []
    assert list(ext(c, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ku = ext(c, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_encipherment
    assert 729 <= (c.not_valid_after_utc - c.not_valid_before_utc).days <= 730
    rec = index(d)["certs"][-1]
    assert rec["full_name"] == "Alice A" and rec["email"] == "alice@example.org"
    assert rec["serial"] == format(c.serial_number, "x") and rec["revoked_at"] is None

    run("pki", "user", "bob", "--dir", d)
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert(d / "users/bob.crt"), x509.SubjectAlternativeName)


def test_user_second_issue_is_unchanged(d: Path, run: Run) -> None:
    run("pki", "user", "alice", "--email", "alice@example.org", "--dir", d)
    before = snapshot(d)
    code, out, _ = run("pki", "user", "alice", "--email", "alice@example.org", "--dir", d)
    assert (code, out) == (0, "unchanged: user alice\n")
    assert snapshot(d) == before


def test_expired_user_certificate_is_reissued_with_the_same_key(d: Path, ca: CA, monkeypatch) -> None:
    first = issue_user(d, ca, "alice", days=1)
    key_before = (d / "users/alice.key.enc").read_bytes()
    later = clock.now() + dt.timedelta(days=3)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert [r["status"] for r in list_certs(d) if r["kind"] == "user"] == ["expired"]
    second = issue_user(d, ca, "alice")
    assert second.action == "issued" and second.serial != first.serial
    assert (d / "users/alice.key.enc").read_bytes() == key_before


def test_bulk_issue_saves_the_index_once(d: Path, ca: CA, monkeypatch) -> None:
    saves: list[int] = []
    real_save = Index.save
    monkeypatch.setattr(Index, "save", lambda self, p: (saves.append(1), real_save(self, p)))
    with bulk(d) as idx:
        results = [issue_user(d, ca, f"user{i}", index=idx) for i in range(5)]
    assert len(saves) == 1
    assert [r["name"] for r in index(d)["certs"] if r["kind"] == "user"] == [f"user{i}" for i in range(5)]
    assert [r.action for r in results] == ["issued"] * 5


def test_a_request_reads_the_index_once_and_opens_the_sealed_key_once(
    d: Path, ca: CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue_user(d, ca, "alice", email="alice@example.org")
    loads: list[int] = []
    opened: list[str] = []
    real_load, real_open = Index.load.__func__, keystore.Kek.open
    monkeypatch.setattr(Index, "load", classmethod(lambda cls, p: (loads.append(1), real_load(cls, p))[1]))
    monkeypatch.setattr(
        keystore.Kek, "open", lambda self, uid, data: (opened.append(uid), real_open(self, uid, data))[1]
    )
    assert issue_user(d, ca, "alice", email="alice@example.org").action == "unchanged"
    assert (len(loads), opened) == (1, ["alice"])  # the e-mail check and the issue share one index
    loads.clear()
    opened.clear()
    assert issue_user(d, ca, "alice", email="alice.kim@example.org").action == "issued"  # a new e-mail
    assert (len(loads), opened) == (1, ["alice"])  # judged and re-signed with the key opened once


def test_marking_revoked_keeps_the_first_revocation_time() -> None:
    first = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    records = [
        {"status": "valid", "revoked_at": None},
        {"status": "superseded", "revoked_at": None},
        {"status": "revoked", "revoked_at": "2029-06-01T00:00:00Z"},
    ]
    mark_revoked(records, first)
    assert [(r["status"], r["revoked_at"]) for r in records] == [
        ("revoked", "2030-01-01T00:00:00Z"),
        ("revoked", "2030-01-01T00:00:00Z"),
        ("revoked", "2029-06-01T00:00:00Z"),
    ]
    assert clock.parse_iso(clock.iso(first)) == first


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (("user", "Alice"), "ID", "Alice"),
        (("user", "--", "-x"), "ID", "-x"),
        (("user", "a" * 65), "ID", "a" * 65),
        (("user", "../etc"), "ID", "../etc"),
        (("user", "alice", "--email", "alice@"), "email", "alice@"),
        (("user", "alice", "--email", "alice@localhost"), "email", "alice@localhost"),
        (("user", "alice", "--email", "a b@example.org"), "email", "a b@example.org"),
        (("server", "GW1", "--san", "gw1.example.org"), "NAME", "GW1"),
        (("server", "gw1", "--san", "bad_name.example.org"), "SAN", "bad_name.example.org"),
        (("server", "gw1", "--san", "-gw.example.org"), "SAN", "-gw.example.org"),
        (("server", "gw1", "--san", "10.0.0.1"), "SAN", "10.0.0.1"),
        (("server", "gw1", "--san", "ok.example.org", "--san", "x..org"), "SAN", "x..org"),
        (("revoke", "Nope!"), "ID", "Nope!"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    d: Path, run: Run, argv: tuple[str, ...], field: str, value: str
) -> None:
    before = snapshot(d)
    code, out, err = run("pki", argv[0], "--dir", d, *argv[1:])
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert f"{field} {value!r}" in line
    assert "valid" in line  # says what would be valid
    assert snapshot(d) == before


def test_library_validates_before_writing(d: Path, ca: CA) -> None:
    before = snapshot(d)
    with pytest.raises(SvpnError, match="SAN 'a_b' is not a valid DNS name"):
        issue_server(d, ca, "gw1", ["gw1.example.org", "a_b"])
    with pytest.raises(SvpnError, match="email"):
        issue_user(d, ca, "alice", email="nope")
    assert snapshot(d) == before


# --------------------------------------------------------------------------- revocation, CRL


def test_revoke_writes_a_crl_with_the_serial(d: Path, ca: CA, run: Run) -> None:
    alice = issue_user(d, ca, "alice")
    bob = issue_user(d, ca, "bob")
    code, out, err = run("pki", "revoke", "alice", "--dir", d)
    assert code == 0 and out.startswith("revoked: user alice") and err == ""
    crl = x509.load_pem_x509_crl((d / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.cert.public_key())
    assert crl.get_revoked_certificate_by_serial_number(int(alice.serial, 16)) is not None
    assert crl.get_revoked_certificate_by_serial_number(int(bob.serial, 16)) is None
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    rec = next(r for r in index(d)["certs"] if r["serial"] == alice.serial)
    assert rec["status"] == "revoked" and rec["revoked_at"]

    code, out, _ = run("pki", "crl", "--days", "3", "--dir", d)
    assert code == 0
    crl2 = x509.load_pem_x509_crl((d / "crl.pem").read_bytes())
    assert crl2.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number
    assert crl2.get_revoked_certificate_by_serial_number(int(alice.serial, 16)) is not None
    ahead = crl2.next_update_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=3) - dt.timedelta(minutes=1) < ahead <= dt.timedelta(days=3)


def test_revoke_twice_is_unchanged(d: Path, ca: CA, run: Run) -> None:
    issue_user(d, ca, "alice")
    run("pki", "revoke", "alice", "--dir", d)
    before = snapshot(d)
    code, out, err = run("pki", "revoke", "alice", "--dir", d)
    assert (code, err) == (0, "")
    assert out.startswith("unchanged: already revoked")
    assert snapshot(d) == before


def test_revoke_unknown_id(d: Path, run: Run) -> None:
    before = snapshot(d)
    code, _, err = run("pki", "revoke", "nobody", "--dir", d)
    assert code == 2 and "'nobody'" in one_line_error(err)
    code, _, err = run("pki", "revoke", "nobody", "--server", "--dir", d)
    assert code == 2 and "NAME 'nobody'" in one_line_error(err)
    assert snapshot(d) == before


def test_revoked_user_is_not_reissued(d: Path, ca: CA, run: Run) -> None:
    issue_user(d, ca, "alice")
    revoke(d, ca, "alice")
    before = snapshot(d)
    code, _, err = run("pki", "user", "alice", "--dir", d)
    assert code == 2 and "revoked" in one_line_error(err)
    assert snapshot(d) == before


def test_revoking_a_server_also_revokes_its_superseded_certificates(d: Path, ca: CA, run: Run) -> None:
    old = issue_server(d, ca, "gw1", ["a.example.org"])
    new = issue_server(d, ca, "gw1", ["b.example.org"])  # same key as `old`
    code, out, _ = run("pki", "revoke", "gw1", "--server", "--dir", d)
    assert code == 0 and out.startswith("revoked: server gw1")
    crl = x509.load_pem_x509_crl((d / "crl.pem").read_bytes())
    for serial in (old.serial, new.serial):
        assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None


# --------------------------------------------------------------------------- list


def test_list_json_and_table(d: Path, ca: CA, run: Run) -> None:
    srv = issue_server(d, ca, "gw1", ["gw1.example.org"])
    alice = issue_user(d, ca, "alice")
    issue_user(d, ca, "bob")
    revoke(d, ca, "bob")
    code, out, err = run("pki", "list", "--json", "--dir", d)
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [(r["kind"], r["cn"], r["status"]) for r in rows] == [
        ("ca", "Test VPN CA", "valid"),
        ("server", "gw1", "valid"),
        ("user", "alice", "valid"),
        ("user", "bob", "revoked"),
    ]
    assert all(set(r) == {"serial", "kind", "cn", "not_after", "status"} for r in rows)
    assert rows[1]["serial"] == srv.serial and rows[2]["serial"] == alice.serial
    not_after = cert(d / "users/alice.crt").not_valid_after_utc
    assert dt.datetime.fromisoformat(rows[2]["not_after"]) == not_after

    code, out, _ = run("pki", "list", "--dir", d)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["SERIAL", "KIND", "CN", "NOT", "AFTER", "STATUS"]
    assert lines[3].split() == [alice.serial, "user", "alice", not_after.date().isoformat(), "valid"]


def test_the_passphrase_is_never_printed_nor_written(tmp_path: Path, run: Run) -> None:
    d = tmp_path / "pki"
    outputs = []
    for argv in (
        ("pki", "init", "--name", "CA"),
        ("pki", "server", "gw1", "--san", "gw1.example.org"),
        ("pki", "user", "alice"),
        ("pki", "revoke", "alice"),
        ("pki", "crl"),
        ("pki", "list", "--json"),
    ):
        code, out, err = run(*argv, "--dir", d)
        assert code == 0, err
        outputs.append(out + err)
    assert PASS not in "".join(outputs)
    for _, data in snapshot(d).values():
        assert PASS.encode() not in data


# --------------------------------------------------------------------------- strongSwan accepts them


def test_strongswan_pki_verifies_our_certificates(d: Path, ca: CA, tmp_path: Path) -> None:
    tool = Path("/usr/bin/pki")
    if not tool.exists():
        pytest.skip("/usr/bin/pki (Debian package strongswan-pki) is not installed")
    issue_server(d, ca, "gw1", ["gw1.example.org"])
    issue_user(d, ca, "alice", email="alice@example.org")
    issue_user(d, ca, "mallory")
    revoke(d, ca, "mallory")
    env = {**os.environ, "LANG": "C"}

    def verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
        argv = [str(tool), "--verify", *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)

    for leaf in (d / "users/alice.crt", d / "servers/gw1.crt"):
        res = verify("--in", leaf, "--cacert", d / "ca/ca.crt")
        assert res.returncode == 0, res.stdout + res.stderr
        assert "certificate trusted" in res.stdout
        res = verify("--in", leaf, "--cacert", d / "ca/ca.crt", "--crl", d / "crl.pem")
        assert res.returncode == 0, res.stdout + res.stderr
    res = verify("--in", d / "users/mallory.crt", "--cacert", d / "ca/ca.crt", "--crl", d / "crl.pem")
    assert res.returncode != 0, res.stdout
    assert "certificate was revoked" in res.stdout + res.stderr
    # and an unrelated CA does not vouch for them
    other = tmp_path / "other"
    init_ca(other, "Other CA", PASS, key_type="ecdsa256")
    res = verify("--in", d / "users/alice.crt", "--cacert", other / "ca/ca.crt")
    assert res.returncode != 0


def test_parallel_issuing_keeps_every_certificate_in_the_index(tmp_path: Path) -> None:
    """Playbooks issue many hosts' certificates at once: every one must land in index.json."""
    pki_dir = tmp_path / "pki"
    init_ca(pki_dir, "Parallel CA", "parallel-passphrase")
    env = {
        **os.environ,
        "SVPN_CA_PASSPHRASE": "parallel-passphrase",
        "PYTHONPATH": str(Path(clock.__file__).parents[2]),  # scripts/
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "svpn", "pki", "user", f"user{i}", "--dir", str(pki_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    assert all(proc.wait(timeout=60) == 0 for proc in procs)
    names = {row["cn"] for row in list_certs(pki_dir) if row["kind"] == "user"}
    assert names == {f"user{i}" for i in range(8)}


# --------------------------------------------------------------------------- one e-mail, one ID


def test_an_email_another_valid_user_holds_is_refused_ignoring_case(d: Path, ca: CA, run: Run) -> None:
    alice = issue_user(d, ca, "alice", email="Alice@Example.org")
    before = snapshot(d)
    code, out, err = run("pki", "user", "alice2", "--email", "ALICE@example.ORG", "--dir", d)
    assert code == 2 and out == ""
    assert one_line_error(err) == (
        "svpn: error: email 'ALICE@example.org' already belongs to user 'alice' (certificate "
        f"{alice.serial}, valid until {index(d)['certs'][-1]['not_after'][:10]}): two IDs with one e-mail "
        "share an IKE identity and evict each other; revoke 'alice' first or give another e-mail"
    )
    assert snapshot(d) == before
    with pytest.raises(SvpnError, match="already belongs to user 'alice'"):
        issue_user(d, ca, "alice2", email="alice@example.org", index=Index.load(d))
    # the holder itself keeps its address; another address is fine; a revoked holder frees it
    assert issue_user(d, ca, "alice", email="Alice@example.org").action == "unchanged"
    assert issue_user(d, ca, "bob", email="bob@example.org").action == "issued"
    revoke(d, ca, "alice")
    assert issue_user(d, ca, "alice2", email="alice@example.org").action == "issued"


# --------------------------------------------------------------------------- expiry warnings


def crl_next_update(d: Path) -> dt.datetime:
    return x509.load_pem_x509_crl((d / "crl.pem").read_bytes()).next_update_utc


def warned(d: Path, now: dt.datetime, days: int = 14, crl_days: int = 3) -> dict[str, ExpiryWarning]:
    return {f"{w.kind}:{w.name}": w for w in expiry_warnings(d, now, days, crl_days)}


def test_expiry_warnings_for_the_ca_and_servers_at_n_plus_and_minus_one_day(d: Path, ca: CA) -> None:
    issue_server(d, ca, "gw1", ["gw1.example.org"], days=100)
    issue_server(d, ca, "gw2", ["gw2.example.org"], days=100)
    revoke(d, ca, "gw2", kind="server")  # a revoked server is nobody's concern
    issue_user(d, ca, "alice", days=1)  # users are not checked here (`users sync` renews them)
    gw1 = cert(d / "servers/gw1.crt").not_valid_after_utc
    ca_end = ca.cert.not_valid_after_utc

    assert set(warned(d, gw1 - dt.timedelta(days=15))) == {"crl:crl"}  # the CRL has long expired by then
    near = warned(d, gw1 - dt.timedelta(days=13))
    assert set(near) == {"server:gw1", "crl:crl"}
    assert not near["server:gw1"].expired and near["server:gw1"].left == dt.timedelta(days=13)
    assert str(near["server:gw1"]) == (
        f"server certificate 'gw1' expires on {gw1:%Y-%m-%d %H:%M} UTC (in 13 days): clients refuse that "
        f"concentrator after that ({d / 'servers' / 'gw1.crt'})"
    )
    assert "server:gw1" in warned(d, gw1 - dt.timedelta(days=14))  # the window's last day is in it
    assert "server:gw1" not in warned(d, gw1 - dt.timedelta(days=14, seconds=1))
    late = warned(d, gw1 + dt.timedelta(days=1))["server:gw1"]
    assert late.expired and str(late).startswith(
        f"server certificate 'gw1' expired on {gw1:%Y-%m-%d %H:%M} UTC"
    )

    assert "ca:Test VPN CA" not in warned(d, ca_end - dt.timedelta(days=15))
    ca_near = warned(d, ca_end - dt.timedelta(days=13))["ca:Test VPN CA"]
    assert ca_near.path == d / "ca" / "ca.crt" and not ca_near.expired
    assert "in 13 days" in str(ca_near)
    assert warned(d, ca_end + dt.timedelta(seconds=1))["ca:Test VPN CA"].expired
    # --warn-days: the same moment is outside a shorter window
    assert "server:gw1" not in warned(d, gw1 - dt.timedelta(days=13), days=12)


def test_expiry_warnings_for_the_crl_use_their_own_window(d: Path, ca: CA) -> None:
    end = crl_next_update(d)  # init wrote a 7-day CRL
    assert warned(d, end - dt.timedelta(days=4)) == {}  # 14 days for certificates, 3 for the CRL
    near = warned(d, end - dt.timedelta(days=2))["crl:crl"]
    assert not near.expired and near.not_after == end
    assert str(near).startswith(f"CRL expires on {end:%Y-%m-%d %H:%M} UTC (nextUpdate, in 2 days)")
    assert "(nextUpdate, in 47 hours)" in str(warned(d, end - dt.timedelta(hours=47, minutes=30))["crl:crl"])
    assert warned(d, end - dt.timedelta(days=4), crl_days=5)["crl:crl"].left == dt.timedelta(days=4)
    gone = warned(d, end + dt.timedelta(hours=1))["crl:crl"]
    assert gone.expired and str(gone).startswith(f"CRL expired on {end:%Y-%m-%d %H:%M} UTC")
    (d / "crl.pem").unlink()
    missing = warned(d, end - dt.timedelta(days=6))["crl:crl"]
    assert missing.not_after is None and "is missing or unreadable" in str(missing)


def test_expiry_warnings_need_a_ca(tmp_path: Path) -> None:
    with pytest.raises(SvpnError, match="no CA in"):
        expiry_warnings(tmp_path, dt.datetime.now(dt.UTC))


def test_pki_check_exit_codes_lines_and_json(d: Path, run: Run) -> None:
    code, out, err = run("pki", "check", "--dir", d)
    assert (code, err) == (0, "")
    assert out == f"ok: nothing in {d} expires within 14 days (the CRL within 3 days)\n"

    code, out, err = run("pki", "check", "--warn-days", "4000", "--dir", d)
    assert code == 1
    assert out.splitlines()[0].startswith("CA certificate 'Test VPN CA' expires on ")
    assert len(out.splitlines()) == 1
    assert one_line_error(err) == (
        f"svpn: error: 1 item(s) in {d} expire within 4000 days (the CRL within 3 days), 0 already expired "
        "or missing"
    )

    code, out, err = run("pki", "check", "--crl-warn-days", "8", "--json", "--dir", d)
    assert code == 1 and "Traceback" not in err
    items = json.loads(out)
    assert [(i["kind"], i["name"], i["expired"], i["days_left"]) for i in items] == [("crl", "crl", False, 6)]
    assert items[0]["path"] == str(d / "crl.pem") and items[0]["message"].startswith("CRL expires on")

    code, out, err = run("pki", "check", "--json", "--dir", d)
    assert (code, json.loads(out), err) == (0, [], "")


def test_the_other_pki_commands_warn_on_stderr_after_they_work(d: Path, ca: CA, run: Run) -> None:
    code, out, err = run("pki", "crl", "--days", "1", "--dir", d)
    assert code == 0 and out == f"written: {d / 'crl.pem'}\n"
    assert err.startswith("svpn: warning: CRL expires on ") and len(err.splitlines()) == 1
    code, out, err = run("pki", "list", "--json", "--dir", d)
    assert code == 0 and json.loads(out)  # stdout stays plain JSON
    assert err.startswith("svpn: warning: CRL expires on ")
    code, _out, err = run("pki", "user", "carol", "--dir", d)
    assert code == 0 and err.startswith("svpn: warning: CRL expires on ")
    code, _out, err = run("pki", "crl", "--dir", d)  # a fresh 7-day CRL: nothing to say
    assert (code, err) == (0, "")
    run("pki", "crl", "--days", "1", "--dir", d)
    code, _out, err = run("pki", "revoke", "nobody", "--dir", d)  # a failing command: the error only
    assert code == 2 and "warning" not in err
