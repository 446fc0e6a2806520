"""Security management, proven on real charons with the users' own bundles (tried as attacks, not read
off config lines):

- a certificate from a foreign CA, and a concentrator's own server certificate, are refused as users;
- playbooks/revoke.yml ends the live sessions of a user identified by e-mail and of one identified by
  subject DN whose device is gone, and their reconnects are refused; others keep their tunnels;
- a node whose CRL is missing or corrupt refuses the revoked user (fail closed);
- playbooks/sync-users.yml (offboarding from the roster) ends the removed person's session.

Runs after test_default.py (pytest collects files in name order: default < revoke), in this order.
Clients: client1 alice (e-mail), client2 bob (e-mail), client3 carol (subject DN, as Windows), client4 dave
(e-mail; never revoked: the witness that nobody else is touched).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from svpn_testing.dial import Farm, dial_with
from svpn_testing.scenario import ScenarioHosts

from svpn.access.pki.ca import load_ca
from svpn.access.pki.cert_policy import USER_CERT_POLICY
from svpn.access.pki.validation import read_passphrase_file
from svpn.farm.sas import client_tunnel
from svpn.lab.status import app_saw
from svpn.loadtest.nodeconf import parse_swanctl

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
REPORT = ROOT / ".lab" / "reports" / "default.json"
PKI = EPHEMERAL / "pki"
BUNDLES = EPHEMERAL / "bundles"
NODE = "mol-default-conc1"
VIP = "198.18.11.10"
APP_URL = "http://198.18.12.20/"
VPN_NAME = "vpn.svpn.test"

testinfra_hosts = [f"ansible://{NODE}"]
LAB = ScenarioHosts(INVENTORY, REPORT, "198.18.12.20")
_host, _record = LAB.host, LAB.record


def _sa(client, conn: str = "svpn") -> tuple[str, str]:
    return client_tunnel(client.run(f"swanctl --list-sas --ike {conn}").stdout)


def _wait_sa(client, timeout: float = 60) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := _sa(client))[0]:
            return found
        time.sleep(1)
    raise AssertionError(f"no tunnel within {timeout:.0f} s")


def _node_remote_ids(node) -> list[str]:
    """The identity of every IKE SA on the node, as charon lists them."""
    out = node.run("swanctl --list-sas --ike svpn").stdout
    return [line.split("'")[1] for line in out.splitlines() if line.strip().startswith("remote '")]


class _Watch:
    """Polls the node until none of *identities* holds an IKE SA; .gone is the wall-clock time it saw that."""

    def __init__(self, node, identities: set[str]) -> None:
        self.node, self.identities, self.gone = node, identities, 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if not self.identities & set(_node_remote_ids(self.node)):
                self.gone = time.time()
                return
            time.sleep(0.3)

    def join(self) -> float:
        self._thread.join(timeout=200)
        return self.gone


def _refused_for(client, seconds: float) -> None:
    """The client keeps dialling (keyingtries = 0) and never gets a tunnel; one more attempt by hand is
    refused by the node's authentication."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert _sa(client) == ("", ""), "a revoked user got a tunnel again"
        time.sleep(1)
    attempt = client.run("swanctl --initiate --child svpn --timeout 10")
    assert attempt.rc != 0
    assert "AUTHENTICATION_FAILED" in attempt.stdout, attempt.stdout[-1500:]


def _farm_proposals() -> tuple[str, str]:
    conf = parse_swanctl(_host(NODE).check_output("cat /etc/swanctl/conf.d/svpn.conf"))
    conn = conf["connections"]["svpn"]
    return conn["proposals"], conn["children"]["svpn"]["esp_proposals"]


# --------------------------------------------------------------------------- dialling with other credentials


def _dial_with(client_name: str, cert_pem: bytes, key_pem: bytes, identity: str, secret: str = "") -> str:
    """Dial the farm once from *client_name* presenting *cert_pem* as *identity*, with the farm's own
    proposals (svpn_testing.dial); what swanctl said."""
    ike, esp = _farm_proposals()
    farm = Farm(vip=VIP, vpn_name=VPN_NAME, remote_ts="198.18.12.0/24", ike_proposals=ike, esp_proposals=esp)
    return dial_with(client_name, farm, cert_pem, key_pem, identity, secret)


def _bundle_password(user: str) -> str:
    import csv

    with (BUNDLES.parent / "passwords.csv").open(newline="") as f:
        return next(row["password"] for row in csv.DictReader(f) if row["id"] == user)


def _bob_as_subject() -> str:
    """bob's own bundle (certificate and encrypted key), dialled with his subject DN: the control that
    shows the probe connection itself works, so a refusal of the other probes is the farm's doing."""
    bundle = BUNDLES / "bob"
    return _dial_with(
        "mol-default-client2", (bundle / "bob.crt").read_bytes(), (bundle / "bob.key").read_bytes(),
        "CN=bob", _bundle_password("bob"),
    )  # fmt: skip


def _foreign_credentials(email: str) -> tuple[bytes, bytes]:
    """A certificate made to look like a farm user's (same e-mail, same user policy, CN) by another CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SVPN molecule CA")])  # the same name
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, email.split("@")[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(USER_CERT_POLICY, None)]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA384())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


# --------------------------------------------------------------------------- the tests, in order


def test_the_probe_connection_works_with_a_real_users_credentials():
    out = _bob_as_subject()
    assert "initiate completed successfully" in out, out[-2000:]


def test_a_certificate_from_a_foreign_ca_is_refused():
    cert, key = _foreign_credentials("dave@svpn.test")
    out = _dial_with("mol-default-client2", cert, key, "dave@svpn.test")
    assert "AUTHENTICATION_FAILED" in out, out[-2000:]
    assert _sa(_host("mol-default-client4"))[0], "the valid user lost her tunnel"


def test_a_concentrators_server_certificate_is_refused_as_a_user():
    servers = PKI / "servers"
    cert, key = (servers / f"{NODE}.crt").read_bytes(), (servers / f"{NODE}.key").read_bytes()
    for identity in (f"CN={NODE}", VPN_NAME):
        out = _dial_with("mol-default-client2", cert, key, identity)
        assert "AUTHENTICATION_FAILED" in out, out[-2000:]
    assert not {f"CN={NODE}", VPN_NAME} & set(_node_remote_ids(_host(NODE)))


def test_revoke_ends_email_and_subject_sessions_also_of_a_device_that_is_gone(host, playbook):
    alice, carol, dave = (_host(f"mol-default-client{i}") for i in (1, 3, 4))
    _wait_sa(alice)
    _wait_sa(carol)
    dave_before = _wait_sa(dave)
    ids = set(_node_remote_ids(host))
    assert {"alice@svpn.test", "CN=carol"} <= ids, ids  # what the bundle (e-mail) and Windows (DN) send

    subprocess.run(["docker", "pause", "mol-default-client3"], check=True)  # carol's laptop is gone
    try:
        watch = _Watch(host, {"alice@svpn.test", "CN=carol"})
        started = time.monotonic()
        done = playbook("revoke.yml", "-e", "users=alice,carol")
        gone = watch.join()
        assert gone, "the revoked users' IKE SAs were never all gone"
        assert "alice: 1 session(s) ended" in done.stdout, done.stdout[-3000:]
        assert "carol: 1 session(s) ended" in done.stdout, done.stdout[-3000:]
        _record("revoke_playbook_s", round(time.monotonic() - started, 1))
        # From the revocation (the new CRL written on the controller) to the last session gone on the node.
        _record("revoke_crl_to_sessions_ended_s", round(gone - (PKI / "crl.pem").stat().st_mtime, 1))
    finally:
        subprocess.run(["docker", "unpause", "mol-default-client3"], check=True)

    _refused_for(alice, 15)
    # carol's client comes back, finds its SA gone (DPD), dials again: refused.
    _refused_for(carol, 25)
    assert "2 revoked certificates" in host.check_output("swanctl --list-certs --type x509crl")
    # dave was never touched: same IKE SA, same virtual IP, still reaching the app.
    assert _sa(dave) == dave_before
    assert app_saw(dave.check_output(f"curl --silent --max-time 5 {APP_URL}"), dave_before[0])


def _expired_crl() -> bytes:
    """The farm's current CRL (same revoked serials), signed by its CA, but past its nextUpdate."""
    ca = load_ca(PKI, read_passphrase_file(EPHEMERAL / "ca-passphrase"))
    current = x509.load_pem_x509_crl((PKI / "crl.pem").read_bytes())
    number = current.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(current.issuer)
        .last_update(now - dt.timedelta(days=8))
        .next_update(now - dt.timedelta(days=1))
        .add_extension(x509.CRLNumber(number + 1), critical=False)
    )
    for revoked in current:
        builder = builder.add_revoked_certificate(revoked)
    return builder.sign(ca.key, hashes.SHA384()).public_bytes(serialization.Encoding.PEM)


def test_a_node_without_a_valid_crl_refuses_users_fail_closed(host):
    """Missing, corrupt or expired: the node cannot confirm a certificate's status and refuses the user."""
    alice = _host("mol-default-client1")
    crl = "/etc/swanctl/x509crl/svpn.crl"
    host.check_output(f"cp {crl} /root/svpn.crl.saved")
    expired = _expired_crl()
    put_expired = f"cat > {crl}"
    try:
        for broken in (f"rm -f {crl}", f"echo 'not a CRL' > {crl}", put_expired):
            if broken == put_expired:
                subprocess.run(["docker", "exec", "-i", NODE, "sh", "-c", broken], input=expired, check=True)
            else:
                host.check_output(broken)
            host.check_output("swanctl --load-creds --clear --noprompt")
            attempt = alice.run("swanctl --initiate --child svpn --timeout 10")
            assert "AUTHENTICATION_FAILED" in attempt.stdout, attempt.stdout[-1500:]
            # Fail closed means everybody: a valid user's new session waits for the CRL too ...
            assert "AUTHENTICATION_FAILED" in _bob_as_subject()
        # ... and no valid user is refused once it is back.
        host.check_output(f"cp /root/svpn.crl.saved {crl}")
        host.check_output("swanctl --load-creds --clear --noprompt")
        assert "initiate completed successfully" in _bob_as_subject()
    finally:
        host.run(f"cp /root/svpn.crl.saved {crl} && swanctl --load-creds --clear --noprompt")
    # Connected users were never dropped by any of this.
    assert _sa(_host("mol-default-client4"))[0]


def test_offboarding_from_the_roster_ends_the_removed_persons_session(host, tmp_path, playbook):
    bob, dave = _host("mol-default-client2"), _host("mol-default-client4")
    _wait_sa(bob)
    dave_before = _wait_sa(dave)
    roster = tmp_path / "staff.csv"
    roster.write_text("id,name,email,department\ndave,Lab user dave,dave@svpn.test,Lab\n")

    watch = _Watch(host, {"bob@svpn.test"})
    started = time.monotonic()
    done = playbook("sync-users.yml", "-e", f"roster={roster}", "-e", f"bundles={BUNDLES}")
    assert watch.join(), "bob's IKE SA was never gone"
    assert "bob: 1 session(s) ended" in done.stdout, done.stdout[-3000:]
    _record("sync_users_playbook_s", round(time.monotonic() - started, 1))

    _refused_for(bob, 15)
    assert _sa(dave) == dave_before
