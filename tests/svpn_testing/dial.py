"""Dial the farm from a lab client with credentials other than its bundle's (a foreign CA's certificate, a
server's, an expired one, weak proposals): a second swanctl connection `probe` beside the client's own,
removed after. The security and helpdesk tests use it to make the attempts an attacker or a misconfigured
device would make."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Farm:
    """What a probe connection needs to know of the farm."""

    vip: str
    vpn_name: str
    remote_ts: str
    ike_proposals: str  # comma-separated, as swanctl.conf writes them
    esp_proposals: str


def probe_conf(farm: Farm, identity: str, secret: str = "", ike: str = "", esp: str = "") -> str:
    conf = f"""connections {{
    probe {{
        version = 2
        remote_addrs = {farm.vip}
        vips = 0.0.0.0
        proposals = {ike or farm.ike_proposals}
        encap = yes
        local {{
            auth = pubkey
            certs = probe.crt
            id = "{identity}"
        }}
        remote {{
            auth = pubkey
            id = {farm.vpn_name}
        }}
        children {{
            probe {{
                remote_ts = {farm.remote_ts}
                esp_proposals = {esp or farm.esp_proposals}
            }}
        }}
    }}
}}
"""
    if secret:
        conf += "secrets {\n    private-probe {\n        file = probe.key\n"
        conf += f'        secret = "{secret}"\n    }}\n}}\n'
    return conf


def _exec(container: str, command: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["docker", "exec", "-i", container, "sh", "-c", command], input=data, capture_output=True, check=False
    )


def dial_with(
    container: str,
    farm: Farm,
    cert_pem: bytes,
    key_pem: bytes,
    identity: str,
    secret: str = "",
    *,
    ike: str = "",
    esp: str = "",
    timeout: int = 15,
) -> str:
    """Add the connection `probe` on the lab client *container*, presenting *cert_pem* as *identity* (with
    the farm's proposals unless *ike*/*esp* are given), dial the farm once and return what swanctl said."""
    files = {
        "x509/probe.crt": cert_pem,
        "private/probe.key": key_pem,
        "conf.d/zz-probe.conf": probe_conf(farm, identity, secret, ike, esp).encode(),
    }
    for rel, data in files.items():
        done = _exec(container, f"umask 077; cat > /etc/swanctl/{rel}", data)
        if done.returncode:
            raise RuntimeError(f"{container}: cannot write /etc/swanctl/{rel}: {done.stderr.decode()}")
    try:
        loaded = _exec(container, "swanctl --load-all --noprompt")
        if loaded.returncode:
            raise RuntimeError(f"{container}: swanctl --load-all: {loaded.stdout.decode()[-800:]}")
        return _exec(container, f"swanctl --initiate --child probe --timeout {timeout}").stdout.decode()
    finally:
        _exec(container, "swanctl --terminate --ike probe --force --timeout 5")
        _exec(container, "rm -f " + " ".join(f"/etc/swanctl/{rel}" for rel in files))
        _exec(container, "swanctl --load-all --noprompt")
