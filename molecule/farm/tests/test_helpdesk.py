"""The helpdesk's tools on the lab-built farm, from the caller's side: a connected user is found by ID, e-mail
and Korean name; explain names the cause of real failed attempts, each made the way a caller's device would
make it (an expired certificate, only weak proposals, a server's certificate installed as a user's, a revoked
user's device dialling on, a device that never reaches the farm); the web page answers in a real headless
Chromium, asks for a login off localhost, and ending a stuck user's sessions leaves its audit line while the
device reconnects by itself.

Runs after test_farm.py (name order) on the same farm. Clients: farm-client5 is erin (김지우), farm-client6
is frank, whom the last explain test revokes. Figures go to .lab/reports/farm.json.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from svpn_testing.dial import Farm, dial_with
from svpn_testing.scenario import ScenarioHosts
from svpn_testing.status import farm_status

from svpn.access.pki.ca import load_ca
from svpn.access.pki.cert_policy import USER_CERT_POLICY
from svpn.access.pki.validation import read_passphrase_file
from svpn.loadtest.nodeconf import parse_swanctl

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY_FILE = os.environ["MOLECULE_INVENTORY_FILE"]
INVENTORY = EPHEMERAL / "inventory"
PKI, BUNDLES = EPHEMERAL / "pki", EPHEMERAL / "bundles"
REPORT = ROOT / ".lab" / "reports" / "farm.json"
VIP, APP, VPN_NAME = "198.18.21.10", "198.18.22.20", "vpn.svpn.test"
NODES = ["farm-conc1", "farm-conc2", "farm-conc3"]
ERIN, ERIN_CLIENT, ERIN_ADDR = "erin", "farm-client5", "198.18.21.106"
FRANK_CLIENT, FRANK_ADDR = "farm-client6", "198.18.21.109"
NOWHERE = "198.18.21.250"  # on the clients' network, no host: a profile with a wrong server address
HOST_ON_PUBLIC = "198.18.21.1"  # this machine's address on farm-public: a bind off localhost

testinfra_hosts = ["ansible://farm-app1"]
LAB = ScenarioHosts(INVENTORY_FILE, REPORT, APP)
ENV = {**os.environ, "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg")}


def svpn(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "svpn", *args], capture_output=True, text=True, env=ENV, cwd=ROOT, check=False
    )
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return done


def playbook(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["ansible-playbook", "-i", str(INVENTORY), str(ROOT / "playbooks" / name), *args],
        capture_output=True, text=True, env=ENV, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done


def helpdesk(verb: str, *args: str) -> dict[str, Any]:
    return json.loads(svpn(verb, *args, "--inventory", str(INVENTORY), "--pki", str(PKI), "--json").stdout)


def _wait_tunnel(client: str, timeout: float = 60, other_than: str = "") -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vip, sa = LAB.client_sa(client)
        if vip and sa != other_than and LAB.reaches_app(client, vip):
            return vip, sa
        time.sleep(1)
    raise AssertionError(f"{client}: no tunnel reaching the app within {timeout:.0f} s")


# --------------------------------------------------------------------------- status


def _live_users(node: str) -> int:
    return LAB.host(node).check_output("swanctl --list-sas --raw").count("state=ESTABLISHED")


def _lb_back_in_the_pair() -> None:
    """test_farm.py's failover test stops an LB and leaves it so: the operator brings it back (it rejoins
    as the backup, nopreempt keeps the VIPs where they are), and status must then find all well."""
    stopped = subprocess.run(
        ["docker", "ps", "--filter", "status=exited", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    for lb in {"farm-lb1", "farm-lb2"} & set(stopped):
        subprocess.run(["docker", "start", lb], check=True, capture_output=True)
    deadline = time.monotonic() + 90
    while farm_status(INVENTORY, PKI).exit_code != 0:
        assert time.monotonic() < deadline, farm_status(INVENTORY, PKI).status.get("problems")
        time.sleep(3)


def test_status_shows_the_farm_as_its_hosts_say_and_a_lost_node_without_losing_the_rest(tmp_path: Path):
    _lb_back_in_the_pair()
    _wait_tunnel(ERIN_CLIENT)
    run = farm_status(INVENTORY, PKI)
    LAB.record("helpdesk_status_seconds", round(run.seconds, 2))
    assert run.exit_code == 0, (run.status.get("problems"), run.stderr[-1500:])
    assert {n["name"]: n["state"] for n in run.status["nodes"]} == dict.fromkeys(NODES, "active")
    assert {n["name"]: n["users"] for n in run.status["nodes"]} == {n: _live_users(n) for n in NODES}
    holders = [
        lb for lb in ("farm-lb1", "farm-lb2") if f" {VIP}/" in LAB.host(lb).check_output("ip -o -4 addr")
    ]
    assert [v["holders"] for v in run.status["pair"]["vips"] if v["vip"] == "public"] == [holders]
    assert sum(b["buckets"] for b in run.status["pair"]["buckets"]) == 256
    # a concentrator that cannot be reached (its container is gone) is shown as such, the rest still are
    lost = tmp_path / "inventory"
    shutil.copytree(INVENTORY, lost, symlinks=True)
    (lost / "zz-lost.yml").write_text(
        "all:\n  children:\n    concentrators:\n      hosts:\n        farm-conc9:\n"
        "          ansible_connection: community.docker.docker\n"
    )
    run = farm_status(lost, PKI)
    assert run.exit_code == 1, run.stderr[-1500:]
    nine = run.node("farm-conc9")
    assert (nine["reachable"], nine["state"]) == (False, "down") and nine["why"], nine
    assert {n["name"]: n["state"] for n in run.status["nodes"] if n["name"] != "farm-conc9"} == dict.fromkeys(
        NODES, "active"
    )
    assert any("farm-conc9" in problem for problem in run.status["problems"])


# --------------------------------------------------------------------------- whereis


def test_whereis_finds_a_connected_user_by_id_email_and_korean_name():
    vip, _ = _wait_tunnel(ERIN_CLIENT)
    holder = LAB.node_of_vips(NODES)[vip]
    for query in ("erin", "erin@svpn.test", "김지우", "지우", "김 지우"):
        started = time.monotonic()
        answer = helpdesk("whereis", query)
        took = time.monotonic() - started
        assert [u["id"] for u in answer["users"]] == [ERIN], (query, answer["users"])
        assert answer["users"][0]["name"] == "김지우"
        sessions = [s for s in answer["sessions"] if s["user_id"] == ERIN]
        assert [(s["node"], s["virtual_ip"], s["public_address"]) for s in sessions] == [
            (holder, vip, ERIN_ADDR)
        ], sessions
        assert not answer["unreachable"]
    LAB.record("helpdesk_whereis_seconds", round(took, 2))


# --------------------------------------------------------------------------- explain


def _farm() -> Farm:
    conf = parse_swanctl(LAB.host("farm-conc1").check_output("cat /etc/swanctl/conf.d/svpn.conf"))
    conn = conf["connections"]["svpn"]
    return Farm(VIP, VPN_NAME, "198.18.22.0/24", conn["proposals"], conn["children"]["svpn"]["esp_proposals"])


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    return cert.public_bytes(serialization.Encoding.PEM), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _expired_certificate_of(user: str) -> tuple[bytes, bytes]:
    """The user's certificate as the farm's CA issued it, but past its end (a device never updated)."""
    ca = load_ca(PKI, read_passphrase_file(EPHEMERAL / "ca-passphrase"))
    key, now = ec.generate_private_key(ec.SECP256R1()), dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now - dt.timedelta(days=3))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(f"{user}@svpn.test")]), critical=False)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(USER_CERT_POLICY, None)]), critical=False
        )
        .sign(ca.key, hashes.SHA384())
    )
    return _pem(cert, key)


def _bundle(user: str) -> tuple[bytes, bytes, str]:
    with (EPHEMERAL / "passwords.csv").open(newline="") as f:
        password = next(row["password"] for row in csv.DictReader(f) if row["id"] == user)
    folder = BUNDLES / user
    return (folder / f"{user}.crt").read_bytes(), (folder / f"{user}.key").read_bytes(), password


def _explained(query: str, *args: str) -> dict[str, Any]:
    started = time.monotonic()
    answer = helpdesk("explain", query, *args)
    LAB.record("helpdesk_explain_seconds", round(time.monotonic() - started, 2))
    assert not answer["unreachable"], answer["unreachable"]
    return answer


def _first(answer: dict[str, Any]) -> dict[str, Any]:
    return answer["findings"][0]


def test_explain_an_expired_certificate():
    cert, key = _expired_certificate_of("frank")
    out = dial_with(FRANK_CLIENT, _farm(), cert, key, "frank@svpn.test")
    assert "AUTHENTICATION_FAILED" in out, out[-1500:]
    first = _first(_explained("frank"))
    assert first["cause"] == "expired", first
    assert (first["node"] in NODES, first["address"]) == (True, FRANK_ADDR)
    assert any("subject certificate invalid" in line for line in first["evidence"])
    assert first["tell"]["ko"] and first["tell"]["en"]


def test_explain_a_client_offering_only_proposals_the_farm_refuses():
    """erin's own bundle on her own device (her address), set up by hand with weak proposals."""
    cert, key, password = _bundle(ERIN)
    out = dial_with(ERIN_CLIENT, _farm(), cert, key, "erin@svpn.test", password, ike="aes128-sha1-modp2048")
    assert "NO_PROPOSAL_CHOSEN" in out, out[-1500:]
    answer = _explained("김지우")  # no identity was sent: found by the address erin connects from
    first = _first(answer)
    assert (first["cause"], first["address"]) == ("proposal_mismatch", ERIN_ADDR), first
    assert "AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048" in first["what"]["en"]  # the client's
    assert "AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384" in first["what"]["en"]  # the farm's
    assert [s["user_id"] for s in answer["sessions"]] == [ERIN]  # her tunnel is still up


def test_explain_a_server_certificate_used_as_a_users():
    servers = PKI / "servers"
    cert, key = (servers / "farm-conc1.crt").read_bytes(), (servers / "farm-conc1.key").read_bytes()
    out = dial_with(FRANK_CLIENT, _farm(), cert, key, "CN=farm-conc1")
    assert "AUTHENTICATION_FAILED" in out, out[-1500:]
    for query, extra in (("farm-conc1", ()), (FRANK_ADDR, ())):  # the server's name, or the caller's address
        first = _first(_explained(query, *extra))
        assert first["cause"] == "server_cert_as_user", (query, first)
        assert "CN=farm-conc1" in first["what"]["en"]


def test_explain_a_user_whose_device_never_reaches_the_farm(tmp_path: Path):
    roster = tmp_path / "roster.csv"
    roster.write_text((EPHEMERAL / "lab-roster.csv").read_text() + "gina,Gina Hwang,gina@svpn.test,Lab\n")
    svpn(
        "users", "sync", "--roster", str(roster), "--bundles", str(BUNDLES), "--inventory", str(INVENTORY),
        "--dir", str(PKI), "--passphrase-file", str(EPHEMERAL / "ca-passphrase"),
    )  # fmt: skip
    cert, key, password = _bundle("gina")
    farm = _farm()
    wrong = Farm(NOWHERE, VPN_NAME, farm.remote_ts, farm.ike_proposals, farm.esp_proposals)
    out = dial_with(FRANK_CLIENT, wrong, cert, key, "gina@svpn.test", password, timeout=8)
    assert "established" not in out
    answer = _explained("gina")
    assert [f["cause"] for f in answer["findings"]] == ["never_seen"], answer["findings"]
    assert answer["user"]["id"] == "gina"


def test_explain_a_revoked_users_device_that_keeps_dialling():
    playbook("revoke.yml", "-e", "users=frank")
    # frank presses "connect" again on his device (its bundle still holds the revoked certificate)
    out = LAB.host(FRANK_CLIENT).run("swanctl --initiate --child svpn --timeout 15").stdout
    assert "AUTHENTICATION_FAILED" in out, out[-1500:]
    answer = _explained("frank")
    first = _first(answer)
    assert first["cause"] == "revoked", first
    assert any("certificate was revoked on" in line for line in first["evidence"])
    assert answer["user"]["status"] == "revoked"


# --------------------------------------------------------------------------- the web page, in a real browser

AGENT, AGENT_PASSWORD = "agent-kim", "correct horse battery staple"


def _serve(bind: str, port: int, agents: Path, audit: Path) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "svpn", "helpdesk", "serve", "--inventory", str(INVENTORY), "--pki", str(PKI),
         "--bundles", str(BUNDLES), "--agents", str(agents), "--audit-log", str(audit), "--bind", bind,
         "--port", str(port)],
        env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read() if server.stderr else "serve exited"
        probe = subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://{bind}:{port}/"], check=False)
        if probe.returncode == 0:
            return server
        time.sleep(0.3)
    server.kill()
    raise AssertionError(f"svpn helpdesk serve on {bind}:{port} did not answer within 30 s")


def test_the_web_page_finds_erin_asks_for_a_login_off_localhost_and_audits_ending_her_sessions(
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from svpn_testing.browser import headless_chromium

    secret = tmp_path / "agent-password"
    secret.write_text(AGENT_PASSWORD + "\n")
    agents, audit = tmp_path / "agents.json", tmp_path / "audit.jsonl"
    svpn("helpdesk", "agent", "add", AGENT, "--agents", str(agents), "--password-file", str(secret))
    vip, sa_before = _wait_tunnel(ERIN_CLIENT)
    holder = LAB.node_of_vips(NODES)[vip]
    servers = [_serve("127.0.0.1", 18088, agents, audit), _serve(HOST_ON_PUBLIC, 18089, agents, audit)]
    try:
        with headless_chromium(timeout=90) as browser:
            wait = WebDriverWait(browser, 60)

            def shown(css: str) -> str:
                return wait.until(lambda d: d.find_element(By.CSS_SELECTOR, css)).text

            # on localhost: searching needs no login; a partial Korean name finds erin where she is
            browser.get("http://127.0.0.1:18088/")
            browser.find_element(By.ID, "q").send_keys("지우")
            browser.find_element(By.ID, "search-button").click()
            assert shown("#user .name") == "김지우"
            rows = browser.find_elements(By.CSS_SELECTOR, "#sessions tr.session")
            cells = [(r.find_element(By.CSS_SELECTOR, ".node").text,
                      r.find_element(By.CSS_SELECTOR, ".virtual-ip").text) for r in rows]  # fmt: skip
            assert cells == [(holder, vip)], cells
            assert browser.find_elements(By.CSS_SELECTOR, "#checklist li.step .ko")
            assert browser.find_elements(By.ID, "actions-need-login")  # no action without an agent

            # off localhost: the page asks for a login first, then the agent ends erin's sessions
            browser.get(f"http://{HOST_ON_PUBLIC}:18089/?q=erin")
            shown("#login")
            assert not browser.find_elements(By.ID, "search")
            browser.find_element(By.ID, "name").send_keys(AGENT)
            browser.find_element(By.ID, "password").send_keys(AGENT_PASSWORD)
            browser.find_element(By.ID, "login-button").click()
            assert shown("#agent-name") == AGENT
            assert shown("#user .id") == ERIN
            started = time.monotonic()
            browser.find_element(By.ID, "end-sessions-button").click()
            shown("#result")
            assert browser.find_element(By.ID, "result").get_attribute("data-ok") == "yes"
            LAB.record("helpdesk_end_sessions_seconds", round(time.monotonic() - started, 1))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=20)
    lines = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    ended = [e for e in lines if e["action"] == "end-sessions"]
    assert [(e["agent"], e["user_id"], e["result"], e["remote"]) for e in ended] == [
        (AGENT, ERIN, "ok", HOST_ON_PUBLIC)
    ], lines
    assert "1 session(s) ended" in ended[0]["message"], ended
    # the stuck device reconnects cleanly by itself: a new IKE SA, through the tunnel to the app
    _, sa_after = _wait_tunnel(ERIN_CLIENT, timeout=60, other_than=sa_before)
    assert sa_after != sa_before
