"""explain's pure parts on real attempts: the attempt log of strongSwan 5.9.8 (Debian 12) and 6.0 (Debian 13)
nodes of the lab farm, captured while a lab client dialled with an expired certificate, a not-yet-valid one,
one from another CA, a server's certificate and weak proposals, then as a revoked user (data/helpdesk/)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from svpn.helpdesk import causes
from svpn.helpdesk.attempts import attempts_of, parse_line
from svpn.helpdesk.sessions import split_reply

DATA = Path(__file__).parent / "data" / "helpdesk"


def _attempts(name: str, node: str):
    reply = split_reply((DATA / name).read_text())
    return attempts_of(node, reply.log_lines)


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        (
            "node-6.0.txt",  # frank's device (198.18.21.109), landing on the Debian 13 node
            [
                ("143", "frank@svpn.test", "ended_by_farm"),  # connected, then revoked: the farm ended it
                ("302", "frank@svpn.test", "expired"),
                ("306", "frank@svpn.test", "not_yet_valid"),
                ("309", "frank@svpn.test", "unknown_ca"),
                ("312", "CN=farm-conc1", "server_cert_as_user"),
                ("315", "", "proposal_mismatch"),
                ("386", "frank@svpn.test", "revoked"),
            ],
        ),
        (
            "node-5.9.8.txt",  # the same attempts from 198.18.21.101, landing on a Debian 12 node
            [
                ("144", "alice@svpn.test", "connected"),  # alice's own tunnel from that address
                ("339", "frank@svpn.test", "expired"),
                ("342", "frank@svpn.test", "not_yet_valid"),
                ("345", "frank@svpn.test", "unknown_ca"),
                ("348", "CN=farm-conc1", "server_cert_as_user"),
                ("352", "", "proposal_mismatch"),
            ],
        ),
    ],
)
def test_each_real_attempt_gets_its_cause(capture: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(a.sa, a.identity, causes.cause_of(a)) for a in _attempts(capture, "n")]
    assert found == expected


def test_a_certificate_cached_from_an_earlier_attempt_does_not_hide_the_one_sent() -> None:
    """charon also tries certificates it cached for the same subject: the first check is the one sent."""
    attempt = next(a for a in _attempts("node-6.0.txt", "n") if a.sa == "306")
    texts = [t for t in attempt.texts() if t.startswith("subject certificate invalid")]
    assert len(texts) == 2 and "Dec 02" in texts[0] and "Nov 28" in texts[1]  # not yet valid, then expired
    assert causes.cause_of(attempt) == "not_yet_valid"


def test_a_proposal_mismatch_names_both_sides_in_both_languages() -> None:
    attempt = next(a for a in _attempts("node-5.9.8.txt", "conc1") if a.sa == "352")
    finding = causes.finding(attempt)
    client, farm = causes.proposals_of(attempt)
    assert client == "IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048"
    assert farm.startswith("IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384")
    assert client in finding.what.en and farm in finding.what.en and client in finding.what.ko
    assert (finding.node, finding.address, finding.at) == ("conc1", "198.18.21.101", "2026-11-30T10:31:54Z")
    assert finding.evidence == tuple(line.raw for line in attempt.lines)


def test_unknown_ca_names_the_issuer_and_a_server_certificate_its_subject() -> None:
    by_sa = {a.sa: a for a in _attempts("node-6.0.txt", "n")}
    assert "CN=Other CA" in causes.finding(by_sa["309"]).what.en
    assert "CN=farm-conc1" in causes.finding(by_sa["312"]).what.en


def test_a_session_ended_by_the_farm_on_a_draining_node_is_the_drain() -> None:
    attempt = next(a for a in _attempts("node-6.0.txt", "n") if a.sa == "143")
    assert causes.cause_of(attempt, draining=True) == "node_draining"


def _attempt(*texts: str):
    lines = [f"2026-11-30T10:00:{i:02d}+0000 07[IKE] <svpn|9> {t}" for i, t in enumerate(texts)]
    first = "2026-11-30T09:59:59+0000 07[IKE] <9> 198.18.21.5 is initiating an IKE_SA"
    return attempts_of("n", [first, *lines])[0]


@pytest.mark.parametrize(
    ("texts", "cause"),
    [
        (["certificate status is not available"], "crl_unavailable"),
        (["no virtual IP found for %any requested by 'a@b'"], "pool_exhausted"),
        (["pool 'pool-conc1' is full, unable to assign address"], "pool_exhausted"),
        (["IKE_SA svpn[9] established between a...b", "received DELETE for IKE_SA"], "ended_by_client"),
        (["local host is behind NAT, sending keep alives"], "auth_never_arrived"),
        (["no trusted ECDSA public key found for 'a@b'"], "authentication_failed"),
    ],
)
def test_the_causes_without_a_capture(texts: list[str], cause: str) -> None:
    """Messages of strongSwan's source the lab cannot provoke cheaply (a full pool, a lost IKE_AUTH)."""
    assert causes.cause_of(_attempt(*texts)) == cause


def test_every_cause_speaks_korean_and_english() -> None:
    for cause, (what, tell) in causes.CAUSES.items():
        assert what.ko and what.en and tell.ko and tell.en, cause
        assert any("\uac00" <= ch <= "\ud7a3" for ch in what.ko + tell.ko), cause  # Hangul syllables
    assert all(step.ko and step.en for step in causes.CHECKLIST)


def test_lines_and_attempts() -> None:
    line = parse_line("2026-11-30T10:31:36+0000 03[CFG] <svpn|315> received proposals: IKE:X")
    assert line is not None
    assert (line.sa, line.conn, line.subsystem) == ("315", "svpn", "CFG")
    assert line.text == "received proposals: IKE:X"
    assert line.time == dt.datetime(2026, 11, 30, 10, 31, 36, tzinfo=dt.UTC)
    assert parse_line("not a charon line") is None
    # charon's ids start again after a restart: a new "is initiating" with the same id is a new attempt
    raw = [
        "2026-11-30T10:00:00+0000 01[IKE] <5> 198.18.21.5 is initiating an IKE_SA",
        "2026-11-30T10:00:01+0000 01[IKE] <5> received proposals unacceptable",
        "2026-11-30T11:00:00+0000 01[CFG] loaded certificate 'CN=x'",  # no SA: left out
        "2026-11-30T11:00:02+0000 01[IKE] <5> 198.18.21.6 is initiating an IKE_SA",
    ]
    attempts = attempts_of("n", raw)
    found = [(a.sa, a.address, len(a.lines)) for a in attempts]
    assert found == [("5", "198.18.21.5", 2), ("5", "198.18.21.6", 1)]
