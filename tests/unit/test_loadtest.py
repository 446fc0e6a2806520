"""The load test's pure logic: svpn.loadtest.generators, .nodeconf, .figures, .summary (no containers)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.loadtest import figures, generators, names, nodeconf, summary
from svpn.planning.inputs import calibration_layer

NODE_CONF = """\
#
# Ansible managed
#
connections {
    svpn {
        version = 2
        proposals = aes256gcm16-prfsha384-ecp384,aes256gcm16-prfsha256-curve25519
        pools = pool-conc1
        mobike = no
        dpd_delay = 30s
        # A user who reconnects replaces the old IKE SA.
        unique = replace

        local {
            auth = pubkey
            certs = /etc/swanctl/x509/conc1.crt
            id = vpn.svpn.test
        }
        remote {
            auth = pubkey
            cacerts = /etc/swanctl/x509ca/svpn-ca.crt
            revocation = strict
            cert_policy = 2.25.1
        }
        children {
            svpn {
                local_ts = 198.18.2.0/24
                esp_proposals = aes256gcm16-ecp384,aes256gcm16
                rekey_time = 1h
                dpd_action = clear
            }
        }
    }
}

pools {
    pool-conc1 {
        addrs = 198.19.0.0/20
        dns = 198.18.2.53
    }
}
"""

PUBLIC = ipaddress.ip_network("198.18.1.0/24")


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("value", [None, "unlimited", "MAX", ""])
def test_rate_unlimited(value):
    assert generators.parse_rate(value) is None


def test_rate_number_and_errors():
    assert generators.parse_rate("250") == 250.0
    for bad in ("fast", "0", "-3", "nan"):
        with pytest.raises(SvpnError, match="--rate"):
            generators.parse_rate(bad)


def test_initiation_delay_spreads_the_rate_over_generators():
    assert generators.initiation_delay_ms(None, 2) == 0
    assert generators.initiation_delay_ms(100, 2) == 20  # each generator: one user every 20 ms = 50/s
    with pytest.raises(SvpnError, match="unlimited"):
        generators.initiation_delay_ms(5000, 2)


# --------------------------------------------------------------------------- generators


def test_users_are_split_evenly():
    assert generators.split_users(10, 3) == [4, 3, 3]
    assert sum(generators.split_users(10001, 2)) == 10001


def test_generators_get_aligned_source_blocks_and_free_public_addresses():
    taken = {ipaddress.ip_address("198.18.1.254")}
    specs = generators.plan_generators(10000, 2, PUBLIC, taken)
    assert [s.users for s in specs] == [5000, 5000]
    assert [str(s.source_block) for s in specs] == ["198.18.64.0/19", "198.18.96.0/19"]
    assert [str(s.public_address) for s in specs] == ["198.18.1.253", "198.18.1.252"]
    assert all(s.source_block.subnet_of(names.SOURCE_RANGE) for s in specs)
    first = specs[0]
    assert str(first.first_source) == "198.18.64.1"
    assert str(first.last_source) == "198.18.83.136"
    assert len(set(first.sources())) == 5000
    assert specs[0].container == "svpn-lt-gen1"
    assert specs[1].id_format == "CN=g2-u%d, OU=svpn-loadtest, O=SVPN lab"


def test_more_generators_than_users_is_capped():
    specs = generators.plan_generators(1, 4, PUBLIC, set())
    assert len(specs) == 1


def test_too_many_users_for_the_source_range_is_refused():
    with pytest.raises(SvpnError, match="more --generators"):
        generators.plan_generators(20000, 1, PUBLIC, set())
    with pytest.raises(SvpnError, match="--users"):
        generators.plan_generators(0, 1, PUBLIC, set())


def test_address_batch_lists_every_source():
    spec = generators.plan_generators(3, 1, PUBLIC, set())[0]
    assert generators.address_batch(spec).splitlines() == [
        "address add 198.18.64.1/32 dev eth0",
        "address add 198.18.64.2/32 dev eth0",
        "address add 198.18.64.3/32 dev eth0",
    ]


def test_generator_conf_renders_from_the_repo_template():
    spec = generators.plan_generators(500, 2, PUBLIC, set())[1]
    settings = generators.GeneratorSettings(
        vip="198.18.1.10",
        vpn_name="vpn.svpn.test",
        ike_proposal="aes256gcm16-prfsha384-ecp384",
        esp_proposal="aes256gcm16",
    )
    template = (repo_root() / "loadgen" / "strongswan.conf.j2").read_text()
    text = generators.render_generator_conf(template, spec, settings)
    conf = nodeconf.parse_swanctl(text)
    tester = conf["charon"]["plugins"]["load-tester"]
    assert tester["responder"] == "198.18.1.10"
    assert tester["initiator_id"] == "CN=g2-u%d, OU=svpn-loadtest, O=SVPN lab"
    assert tester["addrs"]["eth0"] == f"{spec.first_source}-{spec.last_source}"
    assert tester["proposal"] == "aes256gcm16-prfsha384-ecp384"
    assert tester["fake_kernel"] == "yes"
    assert conf["charon"]["install_virtual_ip"] == "no"
    assert conf["charon"]["reuse_ikesa"] == "no"
    assert conf["charon"]["plugins"]["openssl"]["loadgen_reuse_ecdh_key"] == "yes"


# --------------------------------------------------------------------------- the nodes


def test_swanctl_parser_reads_sections_and_values():
    conf = nodeconf.parse_swanctl(NODE_CONF)
    assert conf["connections"]["svpn"]["remote"]["revocation"] == "strict"
    assert conf["pools"]["pool-conc1"]["addrs"] == "198.19.0.0/20"
    with pytest.raises(SvpnError, match="not closed"):
        nodeconf.parse_swanctl("a {\n b = 1\n")
    with pytest.raises(SvpnError, match="without a section"):
        nodeconf.parse_swanctl("}\n")


def test_node_pool():
    pool = nodeconf.node_pool(nodeconf.parse_swanctl(NODE_CONF))
    assert pool.name == "pool-conc1"
    assert pool.usable == 4094


def test_loadtest_conn_copies_the_node_connection_for_loadtest_users_only():
    conf = nodeconf.parse_swanctl(NODE_CONF)
    message = nodeconf.loadtest_conn(
        conf, "CN=SVPN load-test CA x, OU=svpn-loadtest, O=SVPN lab", ["pool-conc1"]
    )
    conn = message[names.CONN_NAME]
    # what the node runs, kept
    assert conn["proposals"] == ["aes256gcm16-prfsha384-ecp384", "aes256gcm16-prfsha256-curve25519"]
    assert conn["dpd_delay"] == "30s"
    assert conn["unique"] == "replace"
    assert conn["local"] == {"auth": "pubkey", "id": "vpn.svpn.test"}  # no file paths
    child = conn["children"][names.CONN_NAME]
    assert child["local_ts"] == ["198.18.2.0/24"]
    assert child["esp_proposals"] == ["aes256gcm16-ecp384", "aes256gcm16"]
    # only load-test names from the load-test CA
    assert conn["remote"] == {
        "auth": "pubkey",
        "id": names.ID_PATTERN,
        "ca_id": "CN=SVPN load-test CA x, OU=svpn-loadtest, O=SVPN lab",
        "revocation": "relaxed",
    }
    assert conn["pools"] == ["pool-conc1"]
    with pytest.raises(SvpnError, match="no connection"):
        nodeconf.loadtest_conn({"connections": {}}, "CN=x", [])


def test_overflow_pools_only_where_the_node_pool_is_too_small():
    pools = {
        f"conc{i}": nodeconf.NodePool(f"pool-conc{i}", ipaddress.ip_network(f"198.19.{16 * i}.0/20"))
        for i in range(3)
    }
    assert nodeconf.overflow_pools(pools, 500) == {}
    extra = nodeconf.overflow_pools(pools, 10000)
    # a node's share after one loss: 10,000 / 2 * 1.1 = 5,500; a /20 holds 4,094
    assert set(extra) == {"conc0", "conc1", "conc2"}
    nets = list(extra.values())
    for net in nets:
        assert net.subnet_of(names.OVERFLOW_POOL_RANGE)
        assert net.num_addresses - 2 >= 5500 - 4094
    assert not any(a.overlaps(b) for a in nets for b in nets if a is not b)
    assert not any(n.overlaps(p.cidr) for n in nets for p in pools.values())
    with pytest.raises(SvpnError, match="overflow"):
        nodeconf.overflow_pools(pools, 60000)


def test_loadtest_ca_names_match_strongswan_order_and_expire():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ca = generators.make_loadtest_ca("run1", now, dt.timedelta(hours=2))
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    # strongSwan writes RDNs in encoding order, left to right
    order = [attr.oid for attr in cert.subject]
    assert order == [NameOID.COMMON_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.ORGANIZATION_NAME]
    assert ca.dn == "CN=SVPN load-test CA run1, OU=svpn-loadtest, O=SVPN lab"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc == now + dt.timedelta(hours=2)
    assert b"PRIVATE KEY" in ca.key_pem


def test_leftovers_are_recognised():
    assert nodeconf.conn_leftovers([{"svpn": {}}, {names.CONN_NAME: {}}]) == [names.CONN_NAME]
    assert nodeconf.conn_leftovers([{"svpn": {}}]) == []
    subjects = ["CN=conc1", "CN=g1-u5,OU=svpn-loadtest,O=SVPN lab", "CN=SVPN load-test CA 1"]
    assert nodeconf.cert_leftovers(subjects) == sorted(subjects[1:])


# --------------------------------------------------------------------------- progress and figures


def test_progress_stream_with_reasons_split_across_reads():
    progress = figures.GeneratorProgress()
    progress.feed("...+*+-", 1.0)
    progress.feed("T.+-A-", 2.0)
    progress.feed("?!", 3.0)
    progress.feed("-", 3.5)
    progress.feed("Z\n", 4.0)
    assert progress.initiated == 4
    assert progress.up == 3
    assert progress.retransmits == 1
    assert dict(progress.failures) == {"T": 1, "A": 1, "?": 1, "L": 1, "Z": 1}
    assert progress.done == 8
    assert progress.up_times == [1.0, 1.0, 2.0]


def test_spread():
    result = figures.spread({"a": 3363, "b": 3337, "c": 3300})
    assert result.mean == 3333.3
    assert result.max_deviation_pct == pytest.approx(1.0, abs=0.01)
    assert result.within()
    assert not figures.spread({"a": 100, "b": 130}).within()
    assert figures.spread({}).mean == 0


def test_rate_timeline_and_time_to_count():
    times = [10.2, 10.4, 11.1, 13.9]
    assert figures.rate_timeline(times, 10.0) == [[1.0, 2.0, 2], [2.0, 1.0, 3], [3.0, 0.0, 3], [4.0, 1.0, 4]]
    assert figures.time_to_count(times, 10.0, 4) == 3.9
    assert figures.time_to_count(times, 10.0, 5) is None
    assert figures.rate_timeline([], 0) == []


def test_proc_parsers():
    stat = "1234 (charon worker) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 16 0"
    assert figures.proc_cpu_seconds(stat, 100) == 3.0
    assert figures.proc_rss_kib("Name:\tcharon\nVmRSS:\t  135168 kB\n") == 135168
    assert figures.proc_rss_kib("Name: x\n") == 0
    busy, total = figures.machine_cpu("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n")
    assert (busy, total) == (150.0, 1000.0)


def test_per_user_figures_and_calibration():
    node = figures.per_user_figures(
        figures.ProcessUse(cpu_s=9.0, rss_kib_before=10000, rss_kib_after=110000), 3000
    )
    assert node["cpu_ms_per_setup"] == 3.0
    assert node["rss_kib_per_user"] == 33.3
    assert figures.per_user_figures(figures.ProcessUse(1.0, 0, 0), 0)["cpu_ms_per_setup"] is None
    other = figures.per_user_figures(
        figures.ProcessUse(cpu_s=12.0, rss_kib_before=0, rss_kib_after=105000), 3000
    )
    calibration = figures.calibration({"conc1": node, "conc2": other})
    assert calibration == {"setup_rate_per_core": 285, "rss_kib_per_user": 35.0}
    assert figures.calibration({"conc1": node}, with_rss=False) == {"setup_rate_per_core": 333}
    assert figures.calibration({}) == {}


def _report(**changes):
    report = {
        "users": 10,
        "ramp": {"up": 10, "failed": 0, "failures": {}, "retransmits": 0, "time_to_all_up_s": 1.5},
        "spread": {"counts": {"c1": 5, "c2": 5}, "mean": 5.0, "max_deviation_pct": 0.0},
        "concentrators": {"c1": figures.per_user_figures(figures.ProcessUse(0.01, 0, 100), 5)},
        "generators": {"gen1": figures.per_user_figures(figures.ProcessUse(0.02, 0, 100), 10)},
        "machine": {"cores": 2, "busy_pct": 50.0, "generator_share_pct": 40.0},
        "cleanup": {"clean": True, "left": {}},
        "cleanup_errors": [],
    }
    report.update(changes)
    return report


def test_problems_and_summary():
    assert summary.problems(_report()) == []
    assert "nothing of the load test remains" in "\n".join(summary.summary_lines(_report()))
    bad = _report(
        ramp={
            "up": 8,
            "failed": 2,
            "failures": {"no virtual IP assigned": 2},
            "retransmits": 3,
            "time_to_all_up_s": None,
        },
        spread={"counts": {"c1": 6, "c2": 2}, "mean": 4.0, "max_deviation_pct": 50.0},
        cleanup={"clean": False, "left": {"conc1": {"conns": ["svpn-loadtest"]}}},
        storm={"node": "c1", "users_lost": 6, "users_back": 5, "recovery_s": None},
    )
    found = " | ".join(summary.problems(bad))
    for expected in (
        "8 of 10 users up",
        "2 failures",
        "deviates 50.0 %",
        "left behind",
        "5 of 6 users came back",
    ):
        assert expected in found
    assert any("not all came back" in line for line in summary.summary_lines(bad))


def test_traffic_sample_in_the_summary_and_a_client_off_its_tunnel_is_a_problem():
    # rows as svpn.loadtest.clients.sample_traffic makes them (with svpn.core.ping.ping_summary's figures)
    good = {
        "through_tunnel": True,
        "sent": 20,
        "received": 19,
        "loss_pct": 5.0,
        "rtt_avg_ms": 2.405,
        "rtt_max_ms": 11.73,
    }
    lost = {
        "through_tunnel": False,
        "sent": 20,
        "received": 0,
        "loss_pct": 100.0,
        "rtt_avg_ms": None,
        "rtt_max_ms": None,
    }
    report = _report(sample_traffic={"client1": good, "client2": good})
    line = summary.traffic_line(report["sample_traffic"], 10)
    assert line == (
        "traffic with 10 users up: 2 of 2 lab clients reached the app through their tunnel; "
        "ping 38/40 answered (5.0 % loss); rtt avg 2.4 ms, max 11.7 ms"
    )
    assert line in summary.summary_lines(report)
    assert summary.problems(report) == []
    bad = _report(sample_traffic={"client1": good, "client2": lost})
    assert "1 of 2 lab clients" in summary.traffic_line(bad["sample_traffic"], 10)
    assert any("client2" in p for p in summary.problems(bad))
    assert "skipped" in summary.traffic_line({}, 10)


def test_failure_table_in_words():
    assert figures.failure_table({"T": 2, "V": 5}) == {
        "no virtual IP assigned": 5,
        "no answer (retransmits exhausted)": 2,
    }


# --------------------------------------------------------------------------- the planner reads the report


def test_planner_reads_a_loadtest_report_as_calibration():
    report = json.loads(
        json.dumps(_report(calibration={"setup_rate_per_core": 200, "rss_kib_per_user": 33.3}))
    )
    assert calibration_layer(report, "report.json") == {
        "setup_rate_per_core": 200,
        "rss_kib_per_user": 33.3,
    }


def test_planner_still_checks_the_reports_calibration():
    with pytest.raises(SvpnError, match=r"report\.json: calibration: unknown key 'cpu'"):
        calibration_layer({"calibration": {"cpu": 1}}, "report.json")
    with pytest.raises(SvpnError, match="setup_rate_per_core is 0"):
        calibration_layer({"calibration": {"setup_rate_per_core": 0}}, "report.json")


def test_predicted_spread_follows_the_lb_hash():
    specs = generators.plan_generators(10000, 2, PUBLIC, set())
    # the lab's 10,000-user runs landed exactly so (a user or two fewer where one failed)
    assert generators.predicted_spread(specs, ["conc1", "conc2", "conc3"]) == {
        "conc1": 3486,
        "conc2": 3350,
        "conc3": 3164,
    }


def test_storm_milestones():
    timeline = [[0.0, 0], [1.0, 0], [2.0, 1], [3.0, 40], [4.0, 99], [5.0, 100]]
    assert figures.storm_milestones(timeline, 100) == {
        "first_back_s": 2.0,
        "half_back_s": 4.0,
        "all_back_s": 5.0,
    }
    assert figures.storm_milestones([[1.0, 3]], 10)["all_back_s"] is None


def test_cost_curve_and_calibration_from_its_first_step():
    samples = [(0, 0.0, 0.0), (500, 1.0, 0.5), (1000, 2.5, 1.0), (1500, 5.0, 1.5), (1600, 5.6, 1.6)]
    curve = figures.cost_curve(samples, step=1000)
    assert curve == [
        {"users_up": 1000, "nodes_ms_per_setup": 2.5, "generators_ms_per_setup": 1.0},
        {"users_up": 1600, "nodes_ms_per_setup": 5.17, "generators_ms_per_setup": 1.0},
    ]
    node = figures.per_user_figures(figures.ProcessUse(cpu_s=5.6, rss_kib_before=0, rss_kib_after=0), 1600)
    assert figures.calibration({"conc1": node}, with_rss=False, curve=curve) == {"setup_rate_per_core": 400}
    assert figures.cost_curve([], 10) == []
