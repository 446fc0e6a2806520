"""whereis' pure parts: finding a user as a caller names themselves (Korean names typed either way), the node
query run by a real POSIX shell over a real attempt log, and live sessions read from swanctl's raw listing."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from svpn.farm.identities import identity_key
from svpn.helpdesk import nodequery
from svpn.helpdesk.attempts import attempts_of
from svpn.helpdesk.directory import fold, search, users_of
from svpn.helpdesk.sessions import sessions_of, split_reply

DATA = Path(__file__).parent / "data" / "helpdesk"
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def _record(name: str, full_name: str, status: str = "valid", not_after: str = "2028-01-01T00:00:00Z", **kw):
    return {
        "serial": kw.get("serial", f"{abs(hash(name)) % 10**12:012x}"),
        "kind": kw.get("kind", "user"),
        "name": name,
        "not_after": not_after,
        "status": status,
        "email": f"{name}@city.example",
        "full_name": full_name,
        "department": "민원과",
        "identities": [f"CN={name}", f"{name}@city.example"],
    }


RECORDS = [
    _record("jiwoo.kim", "김지우", status="superseded", serial="0a"),
    _record("jiwoo.kim", "김지우", serial="0b01"),
    _record("jiwoo.kang", "강지우"),
    _record("minji.park", "박민지", status="revoked"),
    _record("old.lee", "이영수", not_after="2026-01-01T00:00:00Z"),
    _record("vpn-node1", "", kind="server"),
]
USERS = users_of(RECORDS, NOW)


def test_one_user_per_id_with_its_newest_certificate_and_status():
    by_id = {u.id: u for u in USERS}
    assert set(by_id) == {"jiwoo.kim", "jiwoo.kang", "minji.park", "old.lee"}  # no server
    assert by_id["jiwoo.kim"].serial == "0b01"
    assert (by_id["minji.park"].status, by_id["old.lee"].status) == ("revoked", "expired")


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("김지우", ["jiwoo.kim"]),
        (unicodedata.normalize("NFD", "김지우"), ["jiwoo.kim"]),  # typed as jamo on a phone
        ("김 지우", ["jiwoo.kim"]),
        ("지우", ["jiwoo.kang", "jiwoo.kim"]),  # part of two names: both, to choose from
        ("JIWOO.KIM@city.example", ["jiwoo.kim"]),
        ("jiwoo", ["jiwoo.kang", "jiwoo.kim"]),
        ("CN=jiwoo.kim", ["jiwoo.kim"]),  # an identity from a log line
        ("00:0b:01", ["jiwoo.kim"]),  # a serial as a certificate viewer shows it
        ("0b01", []),  # too short to be taken for a serial
        ("박민지", ["minji.park"]),  # revoked users are found too: the caller needs to hear why
        ("nobody", []),
        ("   ", []),
    ],
)
def test_search(query: str, found: list[str]):
    assert [u.id for u in search(USERS, query)] == found


def test_an_exact_id_wins_over_partial_matches():
    users = users_of([_record("kim", "김철수"), _record("kimberly", "Kimberly Jones")], NOW)
    assert [u.id for u in search(users, "kim")] == ["kim"]
    assert fold(" Kim  Berly ") == "kimberly"


def test_sessions_from_swanctls_raw_listing():
    line = (DATA / "list-sas-raw.txt").read_text().strip()
    owners = {identity_key("erin@svpn.test"): "erin"}
    (session,) = sessions_of("farm-conc2", [line], owners, NOW)
    assert (session.user_id, session.node, session.identity) == ("erin", "farm-conc2", "erin@svpn.test")
    assert (session.virtual_ip, session.public_address, session.state) == (
        "198.19.22.2",
        "198.18.21.106",
        "ESTABLISHED",
    )
    assert session.ike_sa.startswith("svpn[") and session.connected_since.endswith("Z")
    assert sessions_of("farm-conc2", [line], {identity_key("CN=bob"): "bob"}, NOW) == []


def _node_reply(tmp_path: Path, identities: list[str], addresses: list[str]) -> str:
    log = tmp_path / "charon.log"
    shutil.copy(DATA / "charon-6.0.log", log)
    command = nodequery.node_command(identities, addresses).replace(nodequery.LOG_VARIABLE, str(log))
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return done.stdout


def test_the_node_query_finds_the_users_attempts_and_those_from_their_address(tmp_path: Path):
    """Real log: frank's device at 198.18.21.109 connected, then dialled with five bad credentials and was
    revoked, while the LBs' health probes (198.18.23.2 and .3) wrote four lines a second each."""
    reply = split_reply(_node_reply(tmp_path, ["CN=frank", "frank@svpn.test"], []))
    assert reply.has_log and reply.state == "active"
    attempts = attempts_of("conc3", reply.log_lines)
    # the server certificate (312) and the weak proposals (315) sent no frank identity: found by his address
    assert [a.sa for a in attempts] == ["143", "302", "306", "309", "312", "315", "386"]
    assert {a.address for a in attempts} == {"198.18.21.109"}
    by_address = split_reply(_node_reply(tmp_path, [], ["198.18.21.109"]))
    assert [a.sa for a in attempts_of("conc3", by_address.log_lines)] == [a.sa for a in attempts]


def test_the_node_query_without_a_log_or_charon_says_so(tmp_path: Path):
    command = nodequery.node_command(["CN=x"]).replace(nodequery.LOG_VARIABLE, str(tmp_path / "none.log"))
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    reply = split_reply(out)
    assert not reply.has_log and not reply.log_lines
    if shutil.which("swanctl") is None:  # the controller has no charon: the node's answer would say so
        assert reply.charon_down


def test_the_node_query_quotes_what_a_shell_would_take_apart():
    command = nodequery.node_command(["CN=o'brien, O=x"], ["198.18.21.5", "$(reboot)"])
    assert "$(reboot)" not in command  # not an address: left out
    assert "o'\"'\"'brien" in command
