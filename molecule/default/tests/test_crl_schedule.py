"""The CRL timer (playbooks/crl-schedule.yml): the units it installs are valid systemd units, and the job
they run re-signs the CRL on the controller and loads it on the node, so a valid user is never refused
because a CRL expired. The controller here (the CI machine) runs no systemd, so the playbook writes the
units into a scratch directory and this test runs the service's own command lines, as systemd would.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from cryptography import x509

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
NODE_CRL = "/etc/swanctl/x509crl/svpn.crl"

testinfra_hosts = ["ansible://mol-default-conc1"]


def _env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg")}


def _node_crl(host) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(host.file(NODE_CRL).content)


def _unit_lines(unit: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith(f"{key}=")]


def test_the_crl_timer_re_signs_and_pushes_the_crl(host, tmp_path, playbook):
    playbook("crl-schedule.yml", "-e", f"crl_schedule_unit_dir={tmp_path}")
    service, timer = tmp_path / "svpn-crl-inventory.service", tmp_path / "svpn-crl-inventory.timer"
    assert "Persistent=true" in timer.read_text()
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(service), str(timer)], capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stderr

    before, listed_before = _node_crl(host), host.check_output("swanctl --list-certs --type x509crl")
    for command in _unit_lines(service, "ExecStart") + _unit_lines(service, "ExecStartPost"):
        ran = subprocess.run(shlex.split(command), env=_env(), capture_output=True, text=True, cwd=ROOT)
        assert ran.returncode == 0, command + "\n" + ran.stdout[-3000:] + ran.stderr[-2000:]
    after = _node_crl(host)
    number = x509.CRLNumber
    assert after.extensions.get_extension_for_class(number).value.crl_number > (
        before.extensions.get_extension_for_class(number).value.crl_number
    )
    assert after.next_update_utc > before.next_update_utc
    # charon loaded it (its listing shows the new number and dates), not just the file on disk.
    assert host.check_output("swanctl --list-certs --type x509crl") != listed_before
