"""A user is their certificate: identities as strongSwan prints them, every certificate of an ID, finding
their IKE SAs in swanctl's listing, and the certificate policy that only user certificates carry."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import jinja2
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier
from svpn_testing.pki import PASS
from svpn_testing.plugins import farm_filters

from svpn.access import roster
from svpn.access.pki.ca import CA, load_ca
from svpn.access.pki.ca_setup import add_ca_policy, ca_allows_user_policy
from svpn.access.pki.cert_index import Index, identities_of_users
from svpn.access.pki.cert_policy import USER_CERT_POLICY, cert_policies, swanctl_cert_policy
from svpn.access.pki.certs import ca_certificate, with_policies
from svpn.access.pki.issuing import issue_server, issue_user, still_good
from svpn.access.pki.pkidir import Kind, PkiDir
from svpn.access.pki.revocation import revoke
from svpn.access.pki.user_keys import existing_key, read_user_key
from svpn.core.errors import SvpnError
from svpn.farm.identities import cert_identities, identity_key, parse_dn, strongswan_dn, strongswan_oid_text
from svpn.farm.sas import ike_sas, sas_of_identities, sessions_ended_by_user

ROOT = Path(__file__).resolve().parents[2]
PKI_TOOL = Path("/usr/bin/pki")
Run = Callable[..., tuple[int, str, str]]


def self_signed(name: x509.Name, sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


def pki_print(cert: x509.Certificate, tmp_path: Path) -> str:
    path = tmp_path / f"{cert.serial_number:x}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    env = {**os.environ, "LANG": "C"}
    done = subprocess.run([str(PKI_TOOL), "--print", "--in", str(path)], capture_output=True, text=True,
                          env=env, timeout=30, check=True)  # fmt: skip
    return done.stdout


CITY_DN = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "City Hall"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IT"),
        x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "Alice@Svpn.test"),
        x509.NameAttribute(NameOID.USER_ID, "a1"),
        x509.NameAttribute(NameOID.SURNAME, "Kim"),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "7"),
        x509.NameAttribute(ObjectIdentifier("2.5.4.44"), "jr"),  # no name in strongSwan: hex
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Jung-gu Ü"),  # not ASCII: "?" per byte
    ]
)


# --------------------------------------------------------------------------- identities of a certificate


def test_identities_of_a_certificate_are_its_dn_and_every_san() -> None:
    cert = self_signed(
        CITY_DN,
        [
            x509.RFC822Name("alice@svpn.test"),
            x509.RFC822Name("ALICE@svpn.test"),  # the same e-mail: once
            x509.DNSName("alice.svpn.test"),
            x509.UniformResourceIdentifier("https://svpn.test/u/alice"),
            x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
        ],
    )
    assert cert_identities(cert) == [
        "C=KR, O=City Hall, OU=IT, CN=alice, E=Alice@Svpn.test, UID=a1, SN=Kim, serialNumber=7, "
        "55:04:2c=jr, L=Jung-gu ??",
        "alice@svpn.test",
        "alice.svpn.test",
        "https://svpn.test/u/alice",
        "2001:db8::1",
    ]
    plain = self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bob")]))
    assert cert_identities(plain) == ["CN=bob"]


def test_dns_are_written_as_strongswan_writes_them(tmp_path: Path) -> None:
    if not PKI_TOOL.exists():
        pytest.skip("/usr/bin/pki (Debian package strongswan-pki) is not installed")
    multi = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "a"),
                    x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "d"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Seoul")]),
        ]
    )
    for name in (CITY_DN, multi, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])):
        printed = pki_print(self_signed(name), tmp_path)
        subject = next(line for line in printed.splitlines() if line.strip().startswith("subject:"))
        assert subject.split('"', 1)[1].rsplit('"', 1)[0] == strongswan_dn(name)


def test_identities_compare_as_strongswan_would() -> None:
    same = ["C=KR, O=City Hall, CN=dave", "C=KR,O=City Hall,CN=dave", " c = KR ,  o=city hall, cn=Dave "]
    assert len({identity_key(i) for i in same}) == 1
    assert identity_key("C=KR, O=City Hall, CN=dave") != identity_key("C=KR, O=City, CN=dave")
    assert identity_key("CN=alice") != identity_key("CN=alice2")
    assert identity_key("CN=alice") != identity_key("O=alice")
    assert identity_key("Alice@SVPN.test") == identity_key("alice@svpn.test")
    assert identity_key("alice@svpn.test") != identity_key("CN=alice@svpn.test")
    assert identity_key("2001:db8:0::1") == identity_key("2001:db8::1")
    assert identity_key("E=a@x.test, 55:04:2c=jr") == identity_key("emailAddress=A@X.test,55:04:2C=jr")
    # strongSwan does not escape: a comma stays in the value unless an attribute name follows it.
    assert parse_dn("O=City, Hall, CN=x") == [("2.5.4.10", "City, Hall"), ("2.5.4.3", "x")]
    assert parse_dn("alice@svpn.test") is None
    assert parse_dn("x=1, CN=a") is None


# --------------------------------------------------------------------------- every certificate of an ID


def test_identities_of_a_user_are_the_union_over_every_certificate(d: Path, ca: CA) -> None:
    issue_user(d, ca, "alice", email="alice@svpn.test")
    issue_user(d, ca, "alice", email="ALICE@svpn.test")  # re-issued: the same address in another case
    issue_user(d, ca, "alice", email="alice.kim@svpn.test")  # re-issued: the old certificate is gone
    issue_user(d, ca, "bob", email="bob@svpn.test")
    revoke(d, ca, "alice")
    expected = ["CN=alice", "alice@svpn.test", "alice.kim@svpn.test"]
    assert identities_of_users(d, ["alice"])["alice"] == expected
    records = [r for r in Index.load(d).certs if r["name"] == "alice"]
    assert len(records) == 3 and all(r["status"] == "revoked" for r in records)
    assert identities_of_users(d, ["bob", "alice"]) == {
        "bob": ["CN=bob", "bob@svpn.test"],
        "alice": expected,
    }

    # What a record keeps counts, also once its certificate file is overwritten (say, it had another DN).
    index = Index.load(d)
    first = next(r for r in index.certs if r["name"] == "alice")
    first["identities"] = ["C=KR, CN=alice", "alice@svpn.test"]
    index.save(d)
    assert identities_of_users(d, ["alice"])["alice"] == [
        "C=KR, CN=alice",
        "alice@svpn.test",
        "CN=alice",
        "alice.kim@svpn.test",
    ]

    # Records written before they kept identities stand for CN=ID and their e-mail; the file adds its own.
    index = Index.load(d)
    for record in index.certs:
        record.pop("identities", None)
    index.save(d)
    assert identities_of_users(d, ["alice"])["alice"] == expected
    (d / "users/alice.crt").unlink()
    assert identities_of_users(d, ["alice"])["alice"] == expected


def test_unknown_ids_are_named(d: Path, ca: CA) -> None:
    issue_server(d, ca, "conc1", ["conc1.svpn.test"])
    issue_user(d, ca, "alice")
    with pytest.raises(SvpnError, match=r"^ID 'conc1' is unknown: no user certificate was ever issued to it"):
        identities_of_users(d, ["alice", "conc1"])  # a server is no user
    with pytest.raises(SvpnError, match=r"^IDs 'nobody', 'ghost' are unknown"):
        identities_of_users(d, ["nobody", "alice", "ghost"])
    with pytest.raises(SvpnError, match="is not valid"):
        identities_of_users(d, ["Not An ID"])


def test_cli_identities_json_and_unknown_id(d: Path, ca: CA, cli: Run) -> None:
    issue_user(d, ca, "alice", email="alice@svpn.test")
    issue_user(d, ca, "bob")
    code, out, err = cli("pki", "identities", "--json", "--dir", d, "alice", "bob")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"alice": ["CN=alice", "alice@svpn.test"], "bob": ["CN=bob"]}
    code, out, _err = cli("pki", "identities", "alice", "--dir", d)
    assert (code, out) == (0, "alice\n  CN=alice\n  alice@svpn.test\n")
    code, out, err = cli("pki", "identities", "alice", "mallory", "--dir", d, "--json")
    assert code != 0 and out == ""
    assert err.strip().splitlines() == [
        "svpn: error: ID 'mallory' is unknown: no user certificate was ever issued to it in "
        f"{d / 'index.json'}"
    ]
    code, _out, err = cli("pki", "identities", "--dir", d)
    assert code != 0 and "Missing argument 'ID...'" in err


# --------------------------------------------------------------------------- their IKE SAs on a node


def raw_sa(uniqueid: int, remote_id: str, remote_host: str) -> str:
    return (
        f"list-sa event {{svpn {{uniqueid={uniqueid} version=2 state=ESTABLISHED local-host=198.18.43.11 "
        f"local-port=4500 local-id=vpn.svpn.test remote-host={remote_host} remote-port=4500 "
        f"remote-id={remote_id} initiator-spi=5e20142624b77b62 responder-spi=c14f6b8488c9ec14 "
        f"encr-alg=AES_GCM_16 encr-keysize=256 established=36 remote-vips=[198.19.41.{uniqueid} 10.0.0.1] "
        f"child-sas {{svpn-{uniqueid} {{name=svpn uniqueid={uniqueid} state=INSTALLED "
        f"local-ts=[198.18.42.0/24] remote-ts=[198.19.41.{uniqueid}/32]}}}}}}}}\n"
    )


PEERS = [
    (11, "C=KR, O=City Hall, CN=dave", "198.18.41.11"),  # Windows: the subject DN, with spaces
    (12, "Alice@SVPN.test", "198.18.41.12"),  # the e-mail, in another case
    (13, "CN=alice", "198.18.41.13"),
    (14, "CN=bob", "198.18.41.14"),  # unrelated users are untouched
    (15, "carol@svpn.test", "198.18.41.15"),
    (16, "CN=alice2", "198.18.41.16"),
    (17, "C=KR, O=City Hall, OU=IT, CN=dave", "198.18.41.17"),
    (18, "C=KR, serialNumber=7, pseudonym=e r, CN=erin", "198.18.41.18"),  # attribute names in lower case
]
IDENTITIES = {
    "alice": ["CN=alice", "alice@svpn.test"],
    "dave": ["C=KR,O=City Hall,CN=dave"],
    "erin": ["C=KR, serialNumber=7, pseudonym=e r, CN=erin"],
}


def test_sas_of_users_are_found_by_any_identity() -> None:
    listing = "".join(raw_sa(*peer) for peer in PEERS) + "list-sas reply {\n}\n"
    sas = ike_sas(listing)
    assert [(sa["uniqueid"], sa["remote-id"], sa["remote-host"]) for sa in sas] == [
        (str(u), rid, host) for u, rid, host in PEERS
    ]
    assert sas[0]["remote-vips"] == "[198.19.41.11 10.0.0.1]"
    found = sas_of_identities(listing, IDENTITIES)
    assert [(sa["user"], sa["uniqueid"], sa["remote_id"], sa["remote_host"]) for sa in found] == [
        ("dave", "11", "C=KR, O=City Hall, CN=dave", "198.18.41.11"),
        ("alice", "12", "Alice@SVPN.test", "198.18.41.12"),
        ("alice", "13", "CN=alice", "198.18.41.13"),
        ("erin", "18", "C=KR, serialNumber=7, pseudonym=e r, CN=erin", "198.18.41.18"),
    ]
    assert [sa["uniqueid"] for sa in sas_of_identities(listing, ["carol@SVPN.TEST"])] == ["15"]
    assert sas_of_identities(listing, {}) == []
    assert [sa["uniqueid"] for sa in sas_of_identities(listing, ["CN=bob", "CN=nobody"])] == ["14"]


def test_the_nodes_report_what_they_ended_per_user() -> None:
    listing = "".join(raw_sa(*peer) for peer in PEERS)
    nodes = [
        {
            "inventory_hostname": "conc1",
            "concentrator_sessions_ended": sas_of_identities(listing, IDENTITIES),
        },
        {"inventory_hostname": "conc2"},  # skipped: ended nothing
    ]
    assert [s["text"] for s in sessions_ended_by_user(iter(nodes), "dave")] == [
        "conc1 IKE SA #11 from 198.18.41.11 as C=KR, O=City Hall, CN=dave"
    ]
    assert len(sessions_ended_by_user(nodes, "alice")) == 2
    assert sessions_ended_by_user(nodes, "bob") == []


# --------------------------------------------------------------------------- only user certificates are users


def policies(c: x509.Certificate) -> list[str]:
    return [p.dotted_string for p in cert_policies(c)]


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_policy_is_on_user_certificates_and_the_ca_only(d: Path, ca: CA) -> None:
    assert USER_CERT_POLICY.dotted_string.startswith("2.25.")
    issue_user(d, ca, "alice", email="alice@svpn.test")
    issue_server(d, ca, "conc1", ["conc1.svpn.test"])
    assert policies(load(d / "users/alice.crt")) == [USER_CERT_POLICY.dotted_string]
    assert policies(load(d / "servers/conc1.crt")) == []
    with pytest.raises(x509.ExtensionNotFound):
        load(d / "servers/conc1.crt").extensions.get_extension_for_class(x509.CertificatePolicies)
    # strongSwan accepts a policy only if every CA certificate up to the anchor lists it
    assert policies(load(d / "ca/ca.crt")) == [USER_CERT_POLICY.dotted_string]
    assert ca_allows_user_policy(d)
    records = {r["name"]: r for r in Index.load(d).certs}
    assert records["alice"]["policies"] == [USER_CERT_POLICY.dotted_string]
    assert records["conc1"]["policies"] == []


def test_swanctl_gets_the_policy_as_strongswan_writes_it(d: Path, ca: CA, tmp_path: Path) -> None:
    # charon compares swanctl's cert_policy with the certificate's policy as text, which keeps each arc in
    # 32 bits: the UUID arc wraps.
    uuid_arc = int(USER_CERT_POLICY.dotted_string.split(".")[2])
    assert swanctl_cert_policy("user") == f"2.25.{uuid_arc % 2**32}"
    assert strongswan_oid_text("1.3.6.1.4.1.4294967295.1") == "1.3.6.1.4.1.4294967295.1"
    with pytest.raises(ValueError, match="only 'user'"):
        swanctl_cert_policy("server")
    if not PKI_TOOL.exists():
        pytest.skip("/usr/bin/pki (Debian package strongswan-pki) is not installed")
    issue_user(d, ca, "alice")
    printed = pki_print(load(d / "users/alice.crt"), tmp_path).splitlines()
    at = next(i for i, line in enumerate(printed) if line.strip() == "certificatePolicies:")
    assert printed[at + 1].strip() == swanctl_cert_policy("user")


def test_the_filter_and_the_role_default_are_the_python_constant() -> None:
    filters = farm_filters()
    assert filters["svpn_cert_policy"]("user") == swanctl_cert_policy("user")
    defaults = yaml.safe_load((ROOT / "roles/concentrator/defaults/main.yml").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters.update(filters)
    rendered = env.from_string(defaults["concentrator_user_cert_policy"]).render()
    assert rendered == swanctl_cert_policy("user")


def strip_policy(d: Path, ca: CA, kind: Kind, name: str, policy: list[ObjectIdentifier]) -> None:
    """Replace the current certificate of *name* with one like it (same key) but with *policy*, as if
    issued so."""
    path = PkiDir(d).cert_path(kind, name)
    new = with_policies(load(path), policy, ca.key)
    path.write_bytes(new.public_bytes(serialization.Encoding.PEM))
    index = Index.load(d)
    record = index.current(kind, name)
    assert record is not None
    record["serial"] = f"{new.serial_number:x}"
    record.pop("policies", None)
    index.save(d)


def test_a_user_certificate_without_the_policy_is_reissued_with_its_key(d: Path, ca: CA) -> None:
    issue_user(d, ca, "alice", email="alice@svpn.test")
    assert issue_user(d, ca, "alice", email="alice@svpn.test").action == "unchanged"
    strip_policy(d, ca, "user", "alice", [])
    old = load(d / "users/alice.crt")
    record = Index.load(d).current("user", "alice")
    pkid = PkiDir(d)
    key = read_user_key(d, ca.user_kek(), "alice")
    assert not still_good(pkid, ca, record, "user", "alice", key, [], ["alice@svpn.test"])
    result = issue_user(d, ca, "alice", email="alice@svpn.test")
    new = load(d / "users/alice.crt")
    assert result.action == "issued" and new.serial_number != old.serial_number
    assert policies(new) == [USER_CERT_POLICY.dotted_string]
    assert new.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == old.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # and a server certificate that carried it would be no server certificate of ours
    issue_server(d, ca, "conc1", ["conc1.svpn.test"])
    strip_policy(d, ca, "server", "conc1", [USER_CERT_POLICY])
    record = Index.load(d).current("server", "conc1")
    key = existing_key(pkid.key_path("server", "conc1"))
    assert not still_good(pkid, ca, record, "server", "conc1", key, ["conc1.svpn.test"], [])
    assert issue_server(d, ca, "conc1", ["conc1.svpn.test"]).action == "issued"
    assert policies(load(d / "servers/conc1.crt")) == []


def test_users_sync_renews_certificates_issued_before_the_policy(tmp_path: Path) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text("id,name,email,department\nalice,Alice,alice@svpn.test,IT\n")
    people = roster.load(staff)
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    record = {"serial": "1", "kind": "user", "name": "alice", "not_after": "2031-01-01T00:00:00Z",
              "status": "valid", "revoked_at": None, "email": "alice@svpn.test", "full_name": "Alice",
              "department": "IT"}  # fmt: skip
    renew = dt.timedelta(days=30)
    (change,) = roster.diff(people, {"alice": record}, now=now, renew_within=renew)
    assert (change.action, change.reason) == ("renew", "certificate lacks the user policy")
    record["policies"] = [USER_CERT_POLICY.dotted_string]
    (change,) = roster.diff(people, {"alice": record}, now=now, renew_within=renew)
    assert change.action == "unchanged"


def test_a_ca_made_before_the_policy_is_re_signed_to_allow_it(
    d: Path, ca: CA, cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CA as svpn made it before: no certificatePolicies. Users issued under it stay valid.
    old = ca_certificate(ca.key, ca.cert.subject, ca.cert.not_valid_before_utc, ca.cert.not_valid_after_utc)
    (d / "ca/ca.crt").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    old_ca = load_ca(d, PASS)
    issue_user(d, old_ca, "alice")
    assert not ca_allows_user_policy(d)

    code, out, err = cli("pki", "ca-policy", "--dir", d)  # the passphrase is needed to change it
    assert code != 0 and "passphrase is missing" in err
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", PASS)
    code, out, err = cli("pki", "ca-policy", "--dir", d)
    monkeypatch.delenv("SVPN_CA_PASSPHRASE")
    assert (code, err) == (0, "") and out.startswith("updated: CA certificate")
    new = load(d / "ca/ca.crt")
    assert policies(new) == [USER_CERT_POLICY.dotted_string]
    assert (new.subject, new.not_valid_before_utc, new.not_valid_after_utc) == (
        old.subject,
        old.not_valid_before_utc,
        old.not_valid_after_utc,
    )
    assert new.serial_number != old.serial_number
    assert new.extensions.get_extension_for_class(x509.SubjectKeyIdentifier) == (
        old.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    )
    load(d / "users/alice.crt").verify_directly_issued_by(new)  # what it issued stays valid
    cas = [r for r in Index.load(d).certs if r["kind"] == "ca"]
    assert [r["status"] for r in cas] == ["superseded", "valid"]
    assert cas[-1]["serial"] == f"{new.serial_number:x}"
    # Once it allows the policy: unchanged, without a passphrase.
    code, out, _err = cli("pki", "ca-policy", "--dir", d)
    assert code == 0 and out.startswith("unchanged: CA certificate")
    assert add_ca_policy(d, load_ca(d, PASS)) == "unchanged"
