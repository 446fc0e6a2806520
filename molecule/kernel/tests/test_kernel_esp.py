"""The kernel's ESP carries a user's tunnel: a concentrator VM with Debian's stock kernel, deployed over SSH
with concentrator_data_plane: kernel, gives the client a virtual IP, the client reaches the app through
it, and the ESP SA lives in the VM's kernel (XFRM), which counted the tunnel's bytes."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import testinfra
from svpn_testing.scenario import wait_for_tunnel

# The whole inventory directory: molecule's generated file holds only the containers; hosts.yml and
# host_vars (linked beside it) add the VM and how to reach it.
INVENTORY = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
POOL = ipaddress.ip_network("198.19.61.0/24")
VM_PUBLIC = "198.18.61.10"
CLIENT_PUBLIC = "198.18.61.101"
APP = "198.18.62.20"
UP_TIMEOUT = 120

testinfra_hosts = ["ansible://mol-kernel-client1"]


def _vm():
    # through Ansible itself (the SSH key, known_hosts and become come from the inventory's host_vars)
    return testinfra.get_host(f"ansible://kconc1?ansible_inventory={INVENTORY}&force_ansible=true")


def _wait_for_tunnel(client) -> str:
    return wait_for_tunnel(client, UP_TIMEOUT, pause=2)


def _esp_states(vm) -> list[str]:
    """The VM kernel's ESP SAs (`ip -s xfrm state`), one text block each."""
    out = vm.check_output("ip -s xfrm state")
    return [block for block in re.split(r"\n(?=src )", out) if "proto esp" in block]


def _bytes(block: str) -> int:
    match = re.search(r"lifetime current:\s*\n\s*(\d+)\(bytes\)", block)
    assert match, block
    return int(match.group(1))


def test_client_gets_a_virtual_ip_and_reaches_the_app_through_the_tunnel(host):
    vip = _wait_for_tunnel(host)
    assert ipaddress.ip_address(vip) in POOL
    # The client is on the public network only: its route to the app is the tunnel's.
    assert "dev ipsec0" in host.check_output(f"ip -4 route get {APP}")
    reply = host.check_output(f"curl --silent --show-error --max-time 10 http://{APP}/")
    # The app names the address the request came from: the virtual IP, i.e. through the tunnel.
    assert reply.strip() == f"svpn-lab-app mol-kernel-app1 client={vip}"
    ping = host.run(f"ping -c 3 -W 5 -I {vip} {APP}")
    assert ping.rc == 0 and " 0% packet loss" in ping.stdout, ping.stdout + ping.stderr
    print(f"\nclient {vip}: curl http://{APP}/ -> {reply.strip()}\n{ping.stdout.strip()}")


def test_a_full_size_packet_crosses_the_tunnel(host):
    """1500-byte packets (the app's MTU) still cross: ESP-in-UDP makes them bigger than the wire's MTU."""
    vip = _wait_for_tunnel(host)
    ping = host.run(f"ping -c 2 -W 5 -s 1472 -I {vip} {APP}")
    assert ping.rc == 0 and " 0% packet loss" in ping.stdout, ping.stdout + ping.stderr
    print("\n" + ping.stdout.strip())


def test_the_vms_kernel_holds_the_esp_sas_and_carried_the_traffic(host):
    vip = _wait_for_tunnel(host)
    vm = _vm()
    before = _esp_states(vm)
    # one SA each way between the VM and the client, ESP-in-UDP (the client sits behind libipsec), AES-GCM
    inbound = [b for b in before if b.startswith(f"src {CLIENT_PUBLIC} dst {VM_PUBLIC}")]
    outbound = [b for b in before if b.startswith(f"src {VM_PUBLIC} dst {CLIENT_PUBLIC}")]
    assert inbound and outbound, "\n".join(before)
    for block in inbound + outbound:
        assert "encap type espinudp" in block, block
        assert "rfc4106(gcm(aes))" in block, block
    # the evidence for the log, without the keys
    print(
        "\nVM ip -s xfrm state (ESP, keys hidden):\n"
        + re.sub(r"0x[0-9a-f]{32,}", "0x<key>", "\n".join(before))
    )
    assert f"dst {vip}/32" in vm.check_output("ip xfrm policy")
    # The kernel SA counts the bytes of a request through the tunnel: the kernel did the ESP.
    out_before = max(_bytes(b) for b in outbound)
    host.check_output(f"curl --silent --max-time 10 http://{APP}/")
    after = [b for b in _esp_states(vm) if b.startswith(f"src {VM_PUBLIC} dst {CLIENT_PUBLIC}")]
    assert max(_bytes(b) for b in after) > out_before, "\n".join(after)


def test_the_vm_runs_no_userspace_esp_and_keeps_ssh_to_the_controller_only(host):
    _wait_for_tunnel(host)
    vm = _vm()
    plugins = vm.check_output("swanctl --stats")
    assert "kernel-netlink" in plugins and "kernel-libipsec" not in plugins, plugins
    assert vm.run("ip link show ipsec0").rc != 0
    ruleset = vm.check_output("nft list table inet svpn_concentrator")
    print("\nVM nft list table inet svpn_concentrator:\n" + ruleset)
    # the kernel data plane's own rule: ESP (IP protocol 50, not only ESP-in-UDP) from where IKE may come
    esp_rule = re.compile(r"^\s*ip protocol (esp|50) ip saddr @ike_sources accept$", re.M)
    assert esp_rule.search(ruleset), ruleset
    assert "tcp dport 22 ip saddr @management accept" in ruleset
    assert re.search(r"set management \{[^}]*elements = \{ 198\.18\.61\.1 \}", ruleset), ruleset
    assert "'alice@svpn.test'" in vm.check_output("swanctl --list-sas --ike svpn")
