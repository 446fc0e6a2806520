"""svpn.core.ping: iputils ping output, its statistics (`ping -q`) and its stamped replies (`ping -D`)."""

from __future__ import annotations

from svpn.core.ping import longest_gap, ping_summary

PING_OK = """PING 198.18.2.20 (198.18.2.20) 56(84) bytes of data.

--- 198.18.2.20 ping statistics ---
20 packets transmitted, 19 received, 5% packet loss, time 3812ms
rtt min/avg/max/mdev = 0.912/2.405/11.730/2.410 ms
"""
PING_NONE = """--- 198.18.2.20 ping statistics ---
20 packets transmitted, 0 received, 100% packet loss, time 3840ms
"""
PING_STAMPED = (
    "PING 198.18.2.20 (198.18.2.20) 56(84) bytes of data.\n"
    "[100.0] 64 bytes from x\n[100.1] 64 bytes from x\n[103.4] 64 bytes from x\n[103.5] 64 bytes from x\n"
)


def test_ping_summary_reads_iputils_output():
    assert ping_summary(PING_OK) == {
        "sent": 20, "received": 19, "loss_pct": 5.0, "rtt_avg_ms": 2.405, "rtt_max_ms": 11.73,
    }  # fmt: skip
    assert ping_summary(PING_NONE) == {
        "sent": 20, "received": 0, "loss_pct": 100.0, "rtt_avg_ms": None, "rtt_max_ms": None,
    }  # fmt: skip
    assert ping_summary("ping: connect: Network is unreachable")["sent"] == 0


def test_longest_gap_between_stamped_replies():
    gap, replies, span = longest_gap(PING_STAMPED)
    assert (round(gap, 2), replies, round(span, 2)) == (3.3, 4, 3.5)


def test_longest_gap_without_replies():
    assert longest_gap("") == (0.0, 0, 0.0)
    assert longest_gap("[100.0] 64 bytes from x\n") == (0.0, 1, 0.0)
    # the closing statistics of the same run are no replies
    assert longest_gap(PING_OK)[1] == 0
