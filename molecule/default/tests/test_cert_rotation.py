"""playbooks/rotate-certs.yml with every lab client connected: nobody is dropped (same IKE SA, same virtual
IP on every client; a ping through one tunnel keeps flowing), and a new connection is served the new
certificate, as the client itself received it.

Runs first (pytest collects files in name order: cert_rotation < crl_schedule < default < revoke <
rollover), while all four lab clients are connected; it leaves them connected.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cryptography import x509
from svpn_testing.scenario import ScenarioHosts

from svpn.core.ping import longest_gap

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
REPORT = ROOT / ".lab" / "reports" / "default.json"
NODE = "mol-default-conc1"
APP = "198.18.12.20"
CLIENTS = [f"mol-default-client{i}" for i in range(1, 5)]
# Well above what a live load costs the ping (one lost 0.2 s probe at most, measured), well below what a
# dropped and re-established tunnel costs (DPD, a new IKE_SA_INIT + IKE_AUTH: seconds).
PING_GAP_LIMIT_S = 3.0

testinfra_hosts = [f"ansible://{NODE}"]
LAB = ScenarioHosts(INVENTORY, REPORT, APP)


def _pki_serial() -> int:
    cert = x509.load_pem_x509_certificate((EPHEMERAL / "pki" / "servers" / f"{NODE}.crt").read_bytes())
    return cert.serial_number


def test_rotate_certs_drops_nobody_and_new_connections_get_the_new_certificate(host, playbook):
    LAB.wait_all_up(CLIENTS, [NODE], timeout=90)
    before = {client: LAB.client_sa(client) for client in CLIENTS}
    old_serial = _pki_serial()
    probe = LAB.host(CLIENTS[3])
    log, pid = "/tmp/rotate-ping.log", "/tmp/rotate-ping.pid"
    probe.check_output(f"rm -f {log}; (ping -D -n -i 0.2 -w 120 {APP} > {log} 2>&1 & echo $! > {pid})")
    time.sleep(2)

    started = time.monotonic()
    done = playbook("rotate-certs.yml")
    LAB.record("rotate_certs_playbook_s", round(time.monotonic() - started, 1))
    time.sleep(2)
    probe.run(f"kill $(cat {pid})")
    gap, replies, span = longest_gap(probe.check_output(f"cat {log}"))
    LAB.record("rotate_certs_longest_ping_gap_s", round(gap, 2))

    new_serial = _pki_serial()
    assert new_serial != old_serial, "rotate-certs.yml issued no new certificate"
    assert f"{NODE}: serving servers/{NODE}.crt; IKE SAs 4 before, 4 after" in done.stdout, done.stdout[
        -3000:
    ]
    # Nobody was dropped: every client keeps the very IKE SA (unique id) and virtual IP it had ...
    assert {client: LAB.client_sa(client) for client in CLIENTS} == before
    # ... and traffic kept flowing through a tunnel all along.
    assert replies > 20 and span > 10, "the ping through the tunnel never ran"
    assert gap < PING_GAP_LIMIT_S, f"the ping through the tunnel stopped for {gap:.1f} s"

    # A new connection: what the client received is the new certificate, not the old one.
    served = LAB.served_on_new_connection(CLIENTS[0], NODE)
    assert [serial for _issuer, serial in served] == [new_serial], (served, old_serial, new_serial)
    assert LAB.reaches_app(CLIENTS[0], LAB.client_sa(CLIENTS[0])[0])
