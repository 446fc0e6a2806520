"""A CA rollover up to "both CAs trusted, users of each connect" (docs/ops/ca-rollover.md), with the users'
own bundles: `svpn pki ca-rollover`, playbooks/rotate-certs.yml (dave, connected, is not dropped), then
`svpn users sync` renews dave under the new CA and enrols erin; erin installs her new bundle (a device that
trusts only the new CA) while dave still has his old one (only the old CA). Each connects anew and reaches
the app through the tunnel, each served the server certificate of the CA it trusts; bob, revoked under the
old CA, stays refused (the previous CA's CRL is loaded too).

Runs last (pytest collects files in name order): after test_revoke.py, alice, bob and carol are revoked and
only dave is connected; client1 (alice's, revoked) becomes erin's device.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from svpn_testing.scenario import ScenarioHosts, wait_for_tunnel

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
REPORT = ROOT / ".lab" / "reports" / "default.json"
PKI = EPHEMERAL / "pki"
PASSPHRASE = EPHEMERAL / "ca-passphrase"
BUNDLES = EPHEMERAL / "bundles"
NODE = "mol-default-conc1"
OLD_CA, NEW_CA = "CN=SVPN molecule CA", "CN=SVPN molecule CA 2"
DAVE, ERIN, BOB = "mol-default-client4", "mol-default-client1", "mol-default-client2"

testinfra_hosts = [f"ansible://{NODE}"]
LAB = ScenarioHosts(INVENTORY, REPORT, "198.18.12.20")


def _svpn(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "svpn", *args, "--dir", str(PKI), "--passphrase-file", str(PASSPHRASE)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return done.stdout


def _issuer(path: Path) -> str:
    return x509.load_pem_x509_certificate(path.read_bytes()).issuer.rfc4514_string()


def _install_bundle(client: str, user: str) -> None:
    """The user's bundle on the client through the lab_client role (what the install guide does), and the
    earlier user's credentials gone from the device and from its charon (--clear): it trusts only the CA of
    the new bundle."""
    host = LAB.host(client)
    host.check_output("rm -f /etc/swanctl/x509/*.crt /etc/swanctl/private/*.key")
    done = subprocess.run(
        ["ansible", client, "-i", str(EPHEMERAL / "inventory"), "-m", "ansible.builtin.include_role",
         "-a", "name=lab_client", "-e", f"lab_client_user={user}"],
        env={**os.environ, "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg")}, capture_output=True, text=True,
        cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    host.check_output("swanctl --load-all --clear --noprompt")


def test_both_cas_trusted_and_users_of_each_connect(host, tmp_path, playbook):
    dave_before = wait_for_tunnel(LAB.host(DAVE), 60), LAB.client_sa(DAVE)[1]
    started = time.monotonic()
    out = _svpn("pki", "ca-rollover", "--name", NEW_CA[3:])
    assert f"kept: server {NODE} from the previous ca" in out, out
    playbook("rotate-certs.yml")
    LAB.record("ca_rollover_deploy_s", round(time.monotonic() - started, 1))
    assert LAB.client_sa(DAVE) == dave_before, "the rollover's deploy dropped a connected user"
    cas = host.check_output("swanctl --list-certs --flag ca")
    assert f'subject:  "{OLD_CA}"' in cas and f'subject:  "{NEW_CA}"' in cas, cas
    crls = host.check_output("swanctl --list-certs --type x509crl")
    assert f'issuer:   "{OLD_CA}"' in crls and f'issuer:   "{NEW_CA}"' in crls, crls

    # Bundles re-issued: dave renewed under the new CA (his device still holds the old bundle), erin new.
    roster = tmp_path / "staff.csv"
    people = [f"{user},Lab user {user},{user}@svpn.test,Lab\n" for user in ("dave", "erin")]
    roster.write_text("id,name,email,department\n" + "".join(people))
    out = _svpn(
        "users",
        "sync",
        "--roster",
        str(roster),
        "--bundles",
        str(BUNDLES),
        "--inventory",
        str(EPHEMERAL / "inventory"),
    )
    assert f"renew: dave (Lab user dave <dave@svpn.test>): issued by the previous CA '{OLD_CA[3:]}'" in out, (
        out
    )
    assert "add: erin" in out, out
    for user in ("dave", "erin"):
        assert (
            _issuer(BUNDLES / user / f"{user}.crt") == NEW_CA and _issuer(BUNDLES / user / "ca.crt") == NEW_CA
        )

    # erin: the new CA's bundle; she is served the new CA's server certificate and reaches the app.
    _install_bundle(ERIN, "erin")
    served = LAB.served_on_new_connection(ERIN, NODE)
    assert [issuer for issuer, _serial in served] == [NEW_CA], served
    assert LAB.reaches_app(ERIN, LAB.client_sa(ERIN)[0])
    assert "'erin@svpn.test'" in host.check_output("swanctl --list-sas --ike svpn")

    # dave, connecting anew with his old bundle (old CA only): served the old CA's server certificate.
    served = LAB.served_on_new_connection(DAVE, NODE)
    assert [issuer for issuer, _serial in served] == [OLD_CA], served
    assert LAB.reaches_app(DAVE, LAB.client_sa(DAVE)[0])
    on_device = x509.load_pem_x509_certificate(LAB.host(DAVE).file("/etc/swanctl/x509/dave.crt").content)
    assert on_device.issuer.rfc4514_string() == OLD_CA  # his device still holds the old bundle

    # bob, revoked under the old CA before the rollover, is still refused: the old CA's CRL is loaded.
    assert LAB.client_sa(BOB) == ("", ""), "a user revoked under the previous CA got a tunnel"
