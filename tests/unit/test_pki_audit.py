"""The PKI's audit trail (svpn.access.pki.audit): every change the CLI makes is chained into audit.jsonl with
its operator and reason, and `svpn pki audit` finds an edited, removed or cut-off entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import test_users
from svpn_testing.pki import PASS
from test_users import STAFF, Env

from svpn.access.pki import audit
from svpn.access.pki.cert_index import Index
from svpn.access.pki.pkidir import PkiDir

Run = Callable[..., tuple[int, str, str]]
env = test_users.env  # the users tests' fixture: a temporary PKI, inventory, bundles and passwords file


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, cli: Run) -> Run:
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", PASS)
    monkeypatch.setenv("SVPN_OPERATOR", "kim.auditee")
    return cli


def entries(pki: Path) -> list[audit.AuditEntry]:
    return audit.read_entries(audit.audit_path(PkiDir(pki)))


def audit_json(run: Run, pki: Path) -> tuple[int, dict, str]:
    code, out, err = run("pki", "audit", "--dir", pki, "--json", "--last", "100")
    return code, json.loads(out), err


def test_each_change_is_chained_with_operator_and_reason(run: Run, env: Env) -> None:
    before = len(entries(env.pki))
    assert run("pki", "user", "alice", "--email", "alice@city.example.kr", "--dir", env.pki,
               "--reason", "ticket 101")[0] == 0  # fmt: skip
    assert run("pki", "user", "bob", "--dir", env.pki)[0] == 0
    assert run("pki", "revoke", "alice", "--dir", env.pki, "--reason", "left the city")[0] == 0
    assert run("pki", "crl", "--dir", env.pki, "--days", "3")[0] == 0
    new = entries(env.pki)[before:]
    assert [(e.action, e.subject) for e in new] == [
        ("issue", "user alice"), ("issue", "user bob"), ("revoke", "user alice"), ("crl", "crl"),
        ("crl", "crl"),
    ]  # fmt: skip
    assert {e.operator for e in new} == {"kim.auditee"}
    assert [e.reason for e in new] == ["ticket 101", "", "left the city", "left the city", ""]
    alice = Index.load(env.pki).current("user", "alice")
    assert alice is not None and new[0].details["serial"] == alice["serial"] == new[2].details["serial"]
    assert new[0].details["email"] == "alice@city.example.kr"
    code, doc, _ = audit_json(run, env.pki)
    assert code == 0 and doc["ok"] is True and doc["entries"][-1]["hash"] == doc["head"]
    assert Index.load(env.pki).audit_head == {"seq": new[-1].seq, "hash": new[-1].hash}


def test_a_users_sync_chains_issues_bundles_and_revocations_in_one_append(run: Run, env: Env) -> None:
    before = len(entries(env.pki))
    code, _, err = run(*env.sync_argv(env.roster(STAFF)), "--reason", "staff list of 30 Nov")
    assert code == 0, err
    first = entries(env.pki)[before:]
    assert sorted((e.action, e.subject) for e in first) == sorted(
        [("issue", f"user {row[0]}") for row in STAFF] + [("bundle", f"user {row[0]}") for row in STAFF]
    )
    assert [e.action for e in first][:3] == ["issue"] * 3  # the certificates first, then their bundles
    assert {e.time for e in first} == {first[0].time}
    assert {e.reason for e in first} == {"staff list of 30 Nov"}
    code, _, err = run(*env.sync_argv(env.roster(STAFF[:2])))
    assert code == 0, err
    second = [(e.action, e.subject) for e in entries(env.pki)[before + len(first) :]]
    assert second == [("revoke", "user spark"), ("crl", "crl"), ("bundle_removed", "user spark")]
    assert audit_json(run, env.pki)[1]["ok"] is True


def test_a_hand_edit_of_an_old_entry_is_found(run: Run, env: Env) -> None:
    for uid in ("alice", "bob", "carol"):
        assert run("pki", "user", uid, "--dir", env.pki)[0] == 0
    path = audit.audit_path(PkiDir(env.pki))
    lines = path.read_text().splitlines()
    target = next(i for i, line in enumerate(lines) if '"user bob"' in line)
    entry = json.loads(lines[target])
    entry["subject"] = "user mallory"  # the hash left as it was
    lines[target] = json.dumps(entry, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    code, doc, err = audit_json(run, env.pki)
    assert code == 1 and doc["ok"] is False and doc["first_bad"] == entry["seq"]
    assert f"broken at entry {entry['seq']}" in err and "changed after it was written" in err
    # re-hashing the edited entry does not help: the next one no longer follows it
    entry["hash"] = audit.entry_hash(entry)
    lines[target] = json.dumps(entry, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    doc = audit_json(run, env.pki)[1]
    assert doc["ok"] is False and doc["first_bad"] == entry["seq"] + 1


@pytest.mark.parametrize("cut", ["middle", "tail"])
def test_a_removed_entry_is_found(run: Run, env: Env, cut: str) -> None:
    for uid in ("alice", "bob", "carol"):
        assert run("pki", "user", uid, "--dir", env.pki)[0] == 0
    path = audit.audit_path(PkiDir(env.pki))
    lines = path.read_text().splitlines()
    gone = len(lines) - 2 if cut == "middle" else len(lines) - 1
    path.write_text("\n".join(lines[:gone] + lines[gone + 1 :]) + "\n")
    code, doc, err = audit_json(run, env.pki)
    assert code == 1 and doc["first_bad"] == gone + 1
    assert ("missing or moved" if cut == "middle" else "index.json records entry") in err


def test_nothing_is_appended_to_a_damaged_log(run: Run, env: Env) -> None:
    path = audit.audit_path(PkiDir(env.pki))
    with path.open("a") as handle:
        handle.write("not json\n")
    before = path.read_bytes()
    code, _, err = run("pki", "user", "dave", "--dir", env.pki)
    assert code != 0 and "its last line is not an audit entry" in err and "Traceback" not in err
    assert path.read_bytes() == before and Index.load(env.pki).current("user", "dave") is None


def test_the_ca_itself_and_a_retire_are_recorded(tmp_path: Path, run: Run) -> None:
    pki = tmp_path / "fresh"
    assert run("pki", "init", "--name", "City CA", "--dir", pki, "--reason", "new farm")[0] == 0
    assert [(e.action, e.subject, e.reason) for e in entries(pki)] == [
        ("issue", "ca City CA", "new farm"), ("crl", "crl", "new farm"),
    ]  # fmt: skip
    assert run("pki", "ca-rollover", "--name", "City CA 2", "--dir", pki)[0] == 0
    assert run("pki", "ca-retire", "--dir", pki, "--reason", "rollover done")[0] == 0
    last = entries(pki)[-1]
    assert (last.action, last.subject, last.reason) == ("ca_retire", "ca City CA", "rollover done")
    assert audit_json(run, pki)[1]["ok"] is True
