"""`swanctl --stats` read for the node's IKE SA count (the concentrator's strongswan.conf handler restarts an
idle charon, drain.yml waits for zero): the filter svpn_ike_sa_count."""

from __future__ import annotations

from pathlib import Path

from svpn.farm.sas import ike_sa_count

STATS = (Path(__file__).parent / "data" / "swanctl-stats.txt").read_text()


def test_the_count_is_read_from_swanctl_stats() -> None:
    assert ike_sa_count(STATS) == 3
    assert ike_sa_count(STATS.replace("IKE_SAs: 3 total", "IKE_SAs: 0 total")) == 0
    assert ike_sa_count(STATS.replace("IKE_SAs: 3 total", "IKE_SAs: 10 total")) == 10
    assert (
        ike_sa_count(STATS.replace("IKE_SAs: 3 total, 0 half-open", "IKE_SAs: 1200 total, 37 half-open"))
        == 1200
    )


def test_no_count_is_not_zero() -> None:
    # swanctl could not reach charon: the handler must not take the node for idle, drain.yml keeps waiting.
    failed = "connecting to 'unix:///var/run/charon.vici' failed: No such file or directory\n"
    assert ike_sa_count(failed) is None
    assert ike_sa_count("") is None
