"""Revocation, proven on real charons: playbooks/revoke.yml disconnects a revoked user and refuses her
reconnects; a certificate from a foreign CA is refused; a valid user's tunnel is not touched.

Runs after test_default.py (pytest collects files in name order: default < revoke).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import testinfra

from svpn import pki
from svpn.labstatus import app_saw
from svpn.sas import client_tunnel

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
APP_URL = "http://198.18.12.20/"

testinfra_hosts = ["ansible://mol-default-conc1"]


def _host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def _sa(client) -> tuple[str, str]:
    return client_tunnel(client.run("swanctl --list-sas --ike svpn").stdout)


def _wait_sa(client, timeout: float = 60) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := _sa(client))[0]:
            return found
        time.sleep(1)
    raise AssertionError(f"no tunnel within {timeout:.0f} s")


def _revoke(*users: str) -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg")}
    done = subprocess.run(
        ["ansible-playbook", "-i", str(EPHEMERAL / "inventory"), str(ROOT / "playbooks" / "revoke.yml"),
         "-e", f"users={','.join(users)}"],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_a_revoked_user_is_disconnected_and_refused_while_others_stay(host):
    alice, bob = _host("mol-default-client1"), _host("mol-default-client2")
    _wait_sa(alice)
    bob_before = _wait_sa(bob)

    _revoke("alice")

    assert "alice" not in host.check_output("swanctl --list-sas --ike svpn")
    # alice keeps trying (keyingtries = 0), and keeps being refused.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert _sa(alice) == ("", ""), "the revoked user got a tunnel again"
        time.sleep(1)
    attempt = alice.run("swanctl --initiate --child svpn --timeout 10")
    assert attempt.rc != 0
    assert "AUTHENTICATION_FAILED" in attempt.stdout, attempt.stdout[-1500:]
    # The concentrator loaded a CRL that lists her certificate.
    assert "1 revoked certificate" in host.check_output("swanctl --list-certs --type x509crl")

    # bob's tunnel was never touched: same IKE SA, same virtual IP, still reaching the app.
    assert _sa(bob) == bob_before
    reply = bob.check_output(f"curl --silent --max-time 5 {APP_URL}")
    assert app_saw(reply, bob_before[0]), reply


def test_a_certificate_from_a_foreign_ca_is_refused(tmp_path):
    foreign = tmp_path / "foreign-pki"
    pki.init_ca(foreign, "Somebody Else CA", "foreign-passphrase")
    ca = pki.load_ca(foreign, "foreign-passphrase")
    pki.issue_user(foreign, ca, "mallory")
    client = _host("mol-default-client1")
    for src, dest, mode in (
        (foreign / "users" / "mallory.crt", "/etc/swanctl/x509/user.crt", "0644"),
        (foreign / "users" / "mallory.key", "/etc/swanctl/private/user.key", "0600"),
    ):
        subprocess.run(["docker", "cp", str(src), f"mol-default-client1:{dest}"], check=True)
        client.check_output(f"chmod {mode} {dest}")
    client.check_output("swanctl --load-all --noprompt")
    attempt = client.run("swanctl --initiate --child svpn --timeout 10")
    assert attempt.rc != 0
    assert "AUTHENTICATION_FAILED" in attempt.stdout, attempt.stdout[-1500:]
    assert _sa(client) == ("", "")
    assert _sa(_host("mol-default-client2"))[0], "the valid user lost her tunnel"
