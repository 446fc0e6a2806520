"""`svpn report`'s pure parts: the hosts' answers (captured from the lab) read into the sections, drift
found and named, the Markdown."""

from __future__ import annotations

import dataclasses
import json

from report_data import DATA, ESP, IKE, host_results, inputs, report

from svpn.helpdesk.remote import HostResult
from svpn.helpdesk.status_hosts import parts
from svpn.report import drift, hosts
from svpn.report.markdown import render_markdown
from svpn.report.model import FOUND, OK, build_report
from svpn.report.playbook import changed_lines, file_checks
from svpn.report.sections import sections


def test_a_node_answer_gives_its_proposals_authentication_and_live_sas() -> None:
    found = parts(host_results()["conc1"].stdout)
    files = hosts.parse_proposals(found["proposals"])
    assert [(f.file, list(f.ike), list(f.esp)) for f in files] == [
        ("/etc/swanctl/conf.d/svpn.conf", IKE, ESP)
    ]
    (conn,) = hosts.parse_conn_policies(found["conns"].text)
    assert (conn.name, conn.version) == ("svpn", "IKEv2")
    assert conn.local_auth.startswith("public key") and "cert CN=conc1" in conn.local_auth
    assert "revocation GOOD" in conn.remote_auth and "CA CN=SVPN lab CA" in conn.remote_auth
    assert conn.children == ("svpn: TUNNEL, local 198.18.2.0/24, rekey 3600 s",)
    sas = hosts.parse_sas(found["identities"])
    assert {s.identity for s in sas} == {"frank@svpn.test", "dave@svpn.test"}
    assert {s.algorithms for s in sas} == {"AES_GCM_16-256-PRF_HMAC_SHA2_384-ECP_384"}
    assert hosts.parse_packages(found["packages"])["strongswan-swanctl"] == "5.9.8-5+deb12u6"
    assert hosts.parse_release(found["release"]) == "debian bookworm"


def test_the_drift_play_names_the_hand_edited_file_with_its_lines() -> None:
    checks, failed = file_checks(json.loads((DATA / "drift-play.json").read_text()))
    assert failed == {}
    differing = [c for c in checks if c.state != "same"]
    assert [(c.host, c.path) for c in differing] == [("conc2", "/etc/swanctl/conf.d/svpn.conf")]
    assert "- proposals = aes128gcm16-prfsha256-ecp256," in differing[0].detail
    assert "+ proposals = aes256gcm16-prfsha384-ecp384," in differing[0].detail
    assert len(checks) == 3 * 5 + 2 * 6


def test_changed_lines_are_cut_after_a_few() -> None:
    found = "\n".join(f"line {i}" for i in range(10))
    assert changed_lines(found, "").endswith("(+6 more lines)")
    assert changed_lines("a\nb", "a\nc") == "- b; + c"


def test_the_lab_report_has_the_edited_file_as_its_only_drift() -> None:
    r = report()
    assert [(d.host, d.what) for d in r.differences] == [
        ("conc2", "config file /etc/swanctl/conf.d/svpn.conf")
    ]
    assert r.unreachable == () and r.exit_code == FOUND
    clean = report(checks=tuple(c for c in inputs().checks if c.state == "same"))
    assert clean.differences == () and clean.exit_code == OK


def test_an_unreachable_node_is_named_and_the_rest_still_reported() -> None:
    results = dict(inputs().concentrators)
    results["conc3"] = HostResult("conc3", None, "", "", unreachable=True, message="No such container")
    r = report(concentrators=results, play_failed={"conc3": "unreachable"})
    assert r.unreachable == ("conc3: unreachable: No such container",)
    assert ("conc3", "node") in [(d.host, d.what) for d in r.differences]
    assert [p.node for p in r.policies if p.reachable] == ["conc1", "conc2"]
    assert [row.sessions for row in r.capacity.rows] == [2, 2, None]
    assert {c.node for c in r.access.connected} == {"conc1", "conc2"}  # the others still read
    assert r.exit_code == FOUND


def test_pools_proposals_and_packages_that_differ_are_named() -> None:
    r0 = inputs()
    conc2 = r0.concentrators["conc2"]
    edited = conc2.stdout.replace(
        "proposals = aes256gcm16-prfsha384-ecp384,", "proposals = aes128gcm16-prfsha256-ecp256,"
    )
    edited = edited.replace("strongswan-swanctl 5.9.8-5+deb12u6", "strongswan-swanctl 5.9.8-5+deb12u7")
    results = {**r0.concentrators, "conc2": dataclasses.replace(conc2, stdout=edited)}
    hostvars = {**r0.hostvars, "conc1": {"concentrator_pool": "198.19.64.0/20"}}
    r = report(concentrators=results, hostvars=hostvars)
    named = {(d.host, d.what): d for d in r.differences}
    pool = named[("conc1", "pool")]
    assert pool.expected == "198.19.64.0/20 (4094 addresses)" and "198.19.0.0" in pool.found
    ike = named[("conc2", "IKE proposals in /etc/swanctl/conf.d/svpn.conf")]
    assert ike.expected.startswith("aes256gcm16-prfsha384-ecp384") and ike.found.startswith(
        "aes128gcm16-prfsha256"
    )
    package = named[("conc2", "package strongswan-swanctl")]
    assert (package.expected.split()[0], package.found) == ("5.9.8-5+deb12u6", "5.9.8-5+deb12u7")


def test_package_versions_compare_only_within_a_release() -> None:
    packages = {"a": {"strongswan": "5.9.8"}, "b": {"strongswan": "6.0.1"}}
    assert drift.package_differences(packages, {"a": "debian bookworm", "b": "debian trixie"}) == []
    (found,) = drift.package_differences(packages, {"a": "debian bookworm", "b": "debian bookworm"})
    assert (found.what, found.found) == ("package strongswan", "6.0.1")


def test_an_lb_backend_the_inventory_lacks_is_drift() -> None:
    r = report()
    lb = dataclasses.replace(
        r.lbs[0], view=(*r.lbs[0].view, dataclasses.replace(r.lbs[0].view[0], node="conc9"))
    )
    found = drift.node_differences(r.nodes, [lb], ["conc1", "conc2", "conc3"])
    assert [(d.host, d.what, d.found) for d in found] == [(lb.name, "LB backends", "also conc9")]


def test_access_lists_valid_revoked_expiring_ended_and_connected_users() -> None:
    a = report().access
    assert [u.id for u in a.valid] == ["alice", "dave"]
    assert [u.id for u in a.revoked] == ["frank"] and a.revoked_at[
        a.revoked[0].serial
    ] == "2026-11-30T12:00:00Z"
    assert [u.id for u in a.expiring] == ["dave"]
    assert [u.id for u in a.expired] == ["gina"]
    # frank's SA is still up on conc1 (revoked, not yet ended): the report shows it
    assert {(c.user_id, c.node) for c in a.connected} >= {
        ("frank", "conc1"),
        ("alice", "conc2"),
        ("dave", "conc1"),
    }
    assert "conc3: erin@svpn.test" in a.unknown_sessions  # erin holds no certificate in this PKI


def test_a_broken_audit_chain_fails_the_report() -> None:
    r0 = inputs()
    broken = dataclasses.replace(r0.audit, ok=False, first_bad=1, problem="entry 1: its hash does not match")
    r = report(audit=broken, checks=tuple(c for c in r0.checks if c.state == "same"))
    assert r.exit_code == FOUND
    audit = next(s for s in sections(r) if s.id == "audit")
    assert (
        audit.alarm
        and audit.notes[0] == "the hash chain is BROKEN at entry 1: entry 1: its hash does not match"
    )
    assert audit.tables[0].rows[0][-1] == "BROKEN HERE"


def test_client_vocabulary_comes_from_the_mapping_table() -> None:
    crypto = next(s for s in sections(report()) if s.id == "crypto")
    clients = {row[1]: row for row in crypto.tables[1].rows if row[0] == "inventory"}
    assert "EncryptionMethod=GCMAES256" in clients["Windows (Set-VpnConnectionIPsecConfiguration)"][2]
    assert "DiffieHellmanGroup=20" in clients["Apple (.mobileconfig)"][2]


def test_the_markdown_has_every_section_and_names_the_drift() -> None:
    text = render_markdown(report())
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert [h.rstrip(" ⚠") for h in headings] == [
        "## Summary", "## Topology", "## Crypto policy in force", "## Who holds access", "## PKI audit trail",
        "## Capacity against the plan", "## Drift: the live farm against the inventory",
    ]  # fmt: skip
    drift_rows = [line for line in text.splitlines() if line.startswith("| conc2 | config file")]
    assert len(drift_rows) == 1 and "/etc/swanctl/conf.d/svpn.conf" in drift_rows[0]


def test_a_pki_that_cannot_be_read_leaves_the_rest() -> None:
    r = report(pki_why="index unreadable", users=())
    assert r.access.why == "index unreadable" and r.policies and r.capacity.rows
    assert build_report(inputs(play_why="the drift play failed: x")).differences[-1].host == "controller"


def test_thousands_of_unknown_live_identities_are_counted_not_listed() -> None:
    from svpn.report.sections import UNKNOWN_SHOWN, _unknown_notes

    unknown = tuple(f"conc1: CN=g1-u{i}, OU=svpn-loadtest" for i in range(UNKNOWN_SHOWN + 3000))
    notes = _unknown_notes(unknown)
    assert len(notes) == UNKNOWN_SHOWN + 1 and notes[0].endswith(unknown[0])
    assert notes[-1].startswith("... and 3,000 more")
    assert _unknown_notes(unknown[:2]) == [
        f"live IKE SA of an identity no user certificate carries: {u}" for u in unknown[:2]
    ]
