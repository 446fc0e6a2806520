"""The pure pieces of a load test's run: what the generators take from a node's connection, the ramp's and
the machine's figures, and the undo stack (no containers)."""

from __future__ import annotations

import pytest

from svpn.core.errors import SvpnError
from svpn.loadtest import figures, nodeconf
from svpn.loadtest.undo import Undo

CONF = """\
connections {
    svpn {
        proposals = aes256gcm16-prfsha384-ecp384,aes256gcm16-prfsha256-curve25519
        local {
            certs = /etc/swanctl/x509/conc1.crt
            id = vpn.svpn.test
        }
        remote {
            cacerts = svpn-ca.crt
        }
        children {
            svpn {
                esp_proposals = aes256gcm16-ecp384,aes256gcm16
            }
        }
    }
}
"""


def test_farm_offer_reads_proposals_name_and_ca():
    offer = nodeconf.farm_offer(nodeconf.parse_swanctl(CONF), "conc1")
    assert offer == nodeconf.FarmOffer(
        ike_proposals=["aes256gcm16-prfsha384-ecp384", "aes256gcm16-prfsha256-curve25519"],
        esp_proposals=["aes256gcm16-ecp384", "aes256gcm16"],
        vpn_name="vpn.svpn.test",
        farm_ca_path="/etc/swanctl/x509ca/svpn-ca.crt",
    )
    absolute = CONF.replace("cacerts = svpn-ca.crt", "cacerts = /etc/ca/farm.crt")
    assert nodeconf.farm_offer(nodeconf.parse_swanctl(absolute), "conc1").farm_ca_path == "/etc/ca/farm.crt"


def test_farm_offer_says_what_the_connection_lacks():
    no_id = nodeconf.parse_swanctl(CONF.replace("id = vpn.svpn.test", ""))
    with pytest.raises(
        SvpnError, match="conc1: connection svpn lacks proposals, esp_proposals or a local id"
    ):
        nodeconf.farm_offer(no_id, "conc1")
    no_ca = nodeconf.parse_swanctl(CONF.replace("cacerts = svpn-ca.crt", ""))
    with pytest.raises(SvpnError, match="names no remote cacerts"):
        nodeconf.farm_offer(no_ca, "conc1")
    with pytest.raises(SvpnError, match="no connection 'svpn'"):
        nodeconf.farm_offer({}, "conc1")


def test_vici_value_splits_lists_only():
    assert nodeconf.vici_value("proposals", "a, b,") == ["a", "b"]
    assert nodeconf.vici_value("dpd_delay", "30s") == "30s"
    assert nodeconf.vici_value("child", {"local_ts": "10.0.0.0/8", "mode": "tunnel"}) == {
        "local_ts": ["10.0.0.0/8"],
        "mode": "tunnel",
    }


def test_process_use_between_two_readings():
    assert figures.ProcessUse.between((1.5, 1000), (4.0, 3000)) == figures.ProcessUse(2.5, 1000, 3000)


def test_machine_figures():
    conc = {"c1": {"cpu_s": 3.0}, "c2": {"cpu_s": 3.0}}
    gens = {"gen1": {"cpu_s": 4.0}}
    assert figures.machine_figures((250.0, 1000.0), conc, gens, 4) == {
        "cores": 4,
        "busy_pct": 25.0,
        "concentrators_cpu_s": 6.0,
        "generators_cpu_s": 4.0,
        "generator_share_pct": 40.0,
    }
    idle = figures.machine_figures((0.0, 0.0), {}, {}, None)
    assert (idle["busy_pct"], idle["generator_share_pct"]) == (0.0, 0.0)


def test_ramp_figures_add_up_the_generators():
    gen1, gen2 = figures.GeneratorProgress(), figures.GeneratorProgress()
    gen1.feed("..+*+", 11.0)
    gen2.feed("..+-V", 12.0)
    samples = [(0, 0.0, 0.0), (3, 0.3, 0.1)]
    ramp = figures.ramp_figures(
        {"gen1": (2, gen1), "gen2": (2, gen2)}, 10.0, 14.0, False, samples, (0.4, 0.2)
    )
    assert ramp["up"] == 3
    assert ramp["failed"] == 1
    assert ramp["failure_codes"] == {"V": 1}
    assert ramp["failures"] == {"no virtual IP assigned": 1}
    assert ramp["retransmits"] == 1
    assert ramp["time_to_all_up_s"] is None  # 3 of 4
    assert ramp["time_to_half_up_s"] == 1.0
    assert ramp["elapsed_s"] == 4.0
    assert ramp["timed_out"] is False
    assert ramp["mean_rate_per_s"] == 1.5
    assert ramp["setup_rate"] == [[1.0, 0.0, 0], [2.0, 2.0, 2], [3.0, 1.0, 3]]
    assert ramp["cost_curve"] == [
        {"users_up": 3, "nodes_ms_per_setup": 100.0, "generators_ms_per_setup": 33.33}
    ]
    assert ramp["per_generator"] == {
        "gen1": {"users": 2, "up": 2, "failed": 0},
        "gen2": {"users": 2, "up": 1, "failed": 1},
    }
    nothing = figures.ramp_figures({"gen1": (1, figures.GeneratorProgress())}, 0.0, 1.0, True, [], (0.0, 0.0))
    assert (nothing["up"], nothing["mean_rate_per_s"], nothing["timed_out"]) == (0, 0.0, True)


def test_undo_runs_in_reverse_and_past_a_failing_step():
    done, logged = [], []
    undo = Undo(logged.append)
    undo.push("first", lambda: done.append("first"))

    def broken() -> None:
        raise RuntimeError("boom")

    undo.push("broken", broken)
    undo.push("last", lambda: done.append("last"))
    assert undo.run() == ["broken: boom"]
    assert done == ["last", "first"]
    assert logged == ["clean-up step failed: broken: boom"]
    assert undo.run() == []  # the stack is empty afterwards
