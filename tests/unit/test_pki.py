"""svpn.pki and `svpn pki ...`: the private CA, certificates, revocation, CRL, listing."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from svpn import pki
from svpn.errors import SvpnError

PASS = "correct horse battery"
IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")
Run = Callable[..., tuple[int, str, str]]


# --------------------------------------------------------------------------- helpers and fixtures


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, cli: Run) -> Run:
    """Run ``svpn.cli.main(argv)`` with the CA passphrase in the environment: (exit code, out, err)."""
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", PASS)
    return cli


@pytest.fixture
def d(tmp_path: Path) -> Path:
    """A PKI directory with a CA (ECDSA P-256 to stay quick)."""
    path = tmp_path / "pki"
    pki.init_ca(path, "Test VPN CA", PASS, key_type="ecdsa256")
    return path


@pytest.fixture
def ca(d: Path) -> pki.CA:
    return pki.load_ca(d, PASS)


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


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("svpn: error: ")
    return lines[0]


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
        pki.init_ca(d, "CA", PASS)
    assert (d / "ca/ca.key").read_bytes() == b"precious"
    assert not (d / "ca/ca.crt").exists()


def test_init_needs_a_long_enough_passphrase(tmp_path: Path, run: Run, monkeypatch) -> None:
    d = tmp_path / "pki"
    monkeypatch.delenv("SVPN_CA_PASSPHRASE")
    code, _, err = run("pki", "init", "--name", "CA", "--dir", d)
    assert code == 2 and "passphrase is missing" in one_line_error(err)
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", "short")
    code, _, err = run("pki", "init", "--name", "CA", "--dir", d)
    assert code == 2 and "at least 8" in one_line_error(err)
    assert not d.exists()


def test_init_key_type_and_days(tmp_path: Path) -> None:
    pki.init_ca(tmp_path, "CA", PASS, key_type="ecdsa256", days=10)
    ca = pki.load_ca(tmp_path, PASS)
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
    pki.issue_user(d, pki.load_ca(d, PASS), "alice")
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


def test_server_san_change_reissues_with_the_same_key(d: Path, ca: pki.CA) -> None:
    first = pki.issue_server(d, ca, "gw1", ["gw1.example.org"])
    key_before = (d / "servers/gw1.key").read_bytes()
    second = pki.issue_server(d, ca, "gw1", ["gw1.example.org", "vpn.example.org"])
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
    assert pki.issue_server(d, ca, "gw1", ["vpn.example.org", "gw1.example.org"]).action == "unchanged"


def test_an_unreadable_existing_key_is_never_replaced(d: Path, ca: pki.CA) -> None:
    (d / "servers/gw1.key").write_bytes(b"not a key")
    with pytest.raises(SvpnError, match="never replaced"):
        pki.issue_server(d, ca, "gw1", ["gw1.example.org"])
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


def test_expired_user_certificate_is_reissued_with_the_same_key(d: Path, ca: pki.CA, monkeypatch) -> None:
    first = pki.issue_user(d, ca, "alice", days=1)
    key_before = (d / "users/alice.key").read_bytes()
    later = pki._now() + dt.timedelta(days=3)
    monkeypatch.setattr(pki, "_now", lambda: later)
    assert [r["status"] for r in pki.list_certs(d) if r["kind"] == "user"] == ["expired"]
    second = pki.issue_user(d, ca, "alice")
    assert second.action == "issued" and second.serial != first.serial
    assert (d / "users/alice.key").read_bytes() == key_before


def test_bulk_issue_saves_the_index_once(d: Path, ca: pki.CA, monkeypatch) -> None:
    saves: list[int] = []
    real_save = pki.Index.save
    monkeypatch.setattr(pki.Index, "save", lambda self, p: (saves.append(1), real_save(self, p)))
    with pki.bulk(d) as idx:
        results = [pki.issue_user(d, ca, f"user{i}", index=idx) for i in range(5)]
    assert len(saves) == 1
    assert [r["name"] for r in index(d)["certs"] if r["kind"] == "user"] == [f"user{i}" for i in range(5)]
    assert [r.action for r in results] == ["issued"] * 5


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


def test_library_validates_before_writing(d: Path, ca: pki.CA) -> None:
    before = snapshot(d)
    with pytest.raises(SvpnError, match="SAN 'a_b' is not a valid DNS name"):
        pki.issue_server(d, ca, "gw1", ["gw1.example.org", "a_b"])
    with pytest.raises(SvpnError, match="email"):
        pki.issue_user(d, ca, "alice", email="nope")
    assert snapshot(d) == before


# --------------------------------------------------------------------------- revocation, CRL


def test_revoke_writes_a_crl_with_the_serial(d: Path, ca: pki.CA, run: Run) -> None:
    alice = pki.issue_user(d, ca, "alice")
    bob = pki.issue_user(d, ca, "bob")
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


def test_revoke_twice_is_unchanged(d: Path, ca: pki.CA, run: Run) -> None:
    pki.issue_user(d, ca, "alice")
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


def test_revoked_user_is_not_reissued(d: Path, ca: pki.CA, run: Run) -> None:
    pki.issue_user(d, ca, "alice")
    pki.revoke(d, ca, "alice")
    before = snapshot(d)
    code, _, err = run("pki", "user", "alice", "--dir", d)
    assert code == 2 and "revoked" in one_line_error(err)
    assert snapshot(d) == before


def test_revoking_a_server_also_revokes_its_superseded_certificates(d: Path, ca: pki.CA, run: Run) -> None:
    old = pki.issue_server(d, ca, "gw1", ["a.example.org"])
    new = pki.issue_server(d, ca, "gw1", ["b.example.org"])  # same key as `old`
    code, out, _ = run("pki", "revoke", "gw1", "--server", "--dir", d)
    assert code == 0 and out.startswith("revoked: server gw1")
    crl = x509.load_pem_x509_crl((d / "crl.pem").read_bytes())
    for serial in (old.serial, new.serial):
        assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None


# --------------------------------------------------------------------------- list


def test_list_json_and_table(d: Path, ca: pki.CA, run: Run) -> None:
    srv = pki.issue_server(d, ca, "gw1", ["gw1.example.org"])
    alice = pki.issue_user(d, ca, "alice")
    pki.issue_user(d, ca, "bob")
    pki.revoke(d, ca, "bob")
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


def test_strongswan_pki_verifies_our_certificates(d: Path, ca: pki.CA, tmp_path: Path) -> None:
    tool = Path("/usr/bin/pki")
    if not tool.exists():
        pytest.skip("/usr/bin/pki (Debian package strongswan-pki) is not installed")
    pki.issue_server(d, ca, "gw1", ["gw1.example.org"])
    pki.issue_user(d, ca, "alice", email="alice@example.org")
    pki.issue_user(d, ca, "mallory")
    pki.revoke(d, ca, "mallory")
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
    pki.init_ca(other, "Other CA", PASS, key_type="ecdsa256")
    res = verify("--in", d / "users/alice.crt", "--cacert", other / "ca/ca.crt")
    assert res.returncode != 0


def test_parallel_issuing_keeps_every_certificate_in_the_index(tmp_path: Path) -> None:
    """Playbooks issue many hosts' certificates at once: every one must land in index.json."""
    pki_dir = tmp_path / "pki"
    pki.init_ca(pki_dir, "Parallel CA", "parallel-passphrase")
    env = {
        **os.environ,
        "SVPN_CA_PASSPHRASE": "parallel-passphrase",
        "PYTHONPATH": str(Path(pki.__file__).parents[1]),
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
    names = {row["cn"] for row in pki.list_certs(pki_dir) if row["kind"] == "user"}
    assert names == {f"user{i}" for i in range(8)}
