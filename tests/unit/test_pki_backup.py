"""`svpn pki backup` and `svpn pki restore`: the archive format, the checks of a restore, the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import one_line_error
from svpn_testing.pki import PASS, make_ca

from svpn.access.pki import backup_format, keystore, restore
from svpn.access.pki.backup import make_backup
from svpn.access.pki.backup_format import Member
from svpn.access.pki.ca import CA, load_ca
from svpn.access.pki.issuing import issue_server, issue_user
from svpn.access.pki.restore import open_archive
from svpn.access.pki.revocation import revoke, write_crl
from svpn.access.pki.user_keys import read_user_key
from svpn.core.errors import SvpnError

Run = Callable[..., tuple[int, str, str]]


# --------------------------------------------------------------------------- helpers


def tree_hash(root: Path) -> str:
    """One hash over every path under *root* (and *root*'s siblings' names): its name, mode and bytes."""
    digest = hashlib.sha256()
    for path in sorted(root.parent.iterdir()):
        digest.update(f"sibling {path.name}\n".encode())
    if root.exists():
        for path in sorted(root.rglob("*")):
            info = path.lstat()
            digest.update(f"{path.relative_to(root)} {info.st_mode:o}\n".encode())
            if path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in sorted(root.rglob("*"))
    }


def populate(d: Path, ca: CA, users: int = 3) -> None:
    """A PKI with a server, *users* users (the second one revoked, so a CRL with one serial)."""
    issue_server(d, ca, "conc1", ["vpn.example.org"])
    for number in range(users):
        issue_user(d, ca, f"user{number}", email=f"user{number}@example.org")
    revoke(d, ca, "user1")


@pytest.fixture
def pki(d: Path, ca: CA) -> Path:
    populate(d, ca)
    return d


@pytest.fixture
def archive(pki: Path, tmp_path: Path) -> Path:
    out = tmp_path / "backups" / "pki.svpnpki"
    out.parent.mkdir()
    make_backup(pki, out, PASS)
    return out


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, cli: Run) -> Run:
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", PASS)
    return cli


def sealed(members: list[Member], meta: dict | None = None) -> bytes:
    """An archive of *members* sealed with the test passphrase, as svpn would seal it."""
    payload = backup_format.pack(members)
    return backup_format.seal(payload, meta or {}, PASS.encode(), keystore.CA_KDF)


def members_of(pki: Path) -> list[Member]:
    from svpn.access.pki.backup import read_tree

    return read_tree(pki)


# --------------------------------------------------------------------------- backup


def test_round_trip_is_byte_identical_and_the_pki_works(pki: Path, archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    result = restore.restore(archive, target, PASS)
    assert result.action == "restored" and result.replaced is None
    assert snapshot(target) == snapshot(pki)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    for key in [*target.rglob("*.key"), *target.rglob("*.key.enc"), target / "ca" / "kek.json"]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    restored_ca = load_ca(target, PASS)
    assert read_user_key(target, restored_ca.user_kek(), "user0") is not None
    issue_user(target, restored_ca, "after-restore")  # a restored PKI is a working one
    assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]


def test_the_archive_is_0600_and_its_header_says_what_it_holds(pki: Path, archive: Path) -> None:
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    header = backup_format.read_header(archive.read_bytes(), str(archive))
    meta = header.meta["pki"]
    ca = load_ca(pki, PASS).cert
    assert meta["ca"]["subject"] == "CN=Test VPN CA"
    assert (
        meta["ca"]["sha256_fingerprint"].replace(":", "").lower()
        == ca.fingerprint(
            __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()
        ).hex()
    )
    index = json.loads((pki / "index.json").read_text())
    assert meta["index"]["certificates"] == len(index["certs"]) == 5  # ca, server, 3 users
    assert meta["index"]["by_kind"] == {"ca": 1, "server": 1, "user": 3}
    assert meta["index"]["revoked"] == 1
    assert meta["crl"]["number"] == index["crl_number"]
    assert meta["tree"]["files"] == sum(1 for p in pki.rglob("*") if p.is_file())
    assert header.kdf == keystore.CA_KDF
    assert b"BEGIN" not in archive.read_bytes()  # nothing of the PKI in clear


def test_an_existing_out_is_not_overwritten_unless_forced(pki: Path, archive: Path) -> None:
    before = archive.read_bytes()
    with pytest.raises(SvpnError, match="exists: refusing to overwrite it"):
        make_backup(pki, archive, PASS)
    assert archive.read_bytes() == before
    make_backup(pki, archive, PASS, force=True)
    assert archive.read_bytes() != before  # a new salt and nonce
    assert open_archive(archive, PASS).members == open_archive(archive, PASS).members


def test_backup_refuses_a_passphrase_that_does_not_open_the_ca(pki: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.svpnpki"
    with pytest.raises(SvpnError, match="CA passphrase is wrong"):
        make_backup(pki, out, "not the passphrase")
    assert list(tmp_path.iterdir()) == [pki]  # no archive, no temp file


def test_backup_refuses_an_out_inside_the_pki_and_links_in_it(pki: Path, tmp_path: Path) -> None:
    with pytest.raises(SvpnError, match="inside the PKI directory"):
        make_backup(pki, pki / "users" / "b.svpnpki", PASS)
    (pki / "users" / "link.crt").symlink_to(pki / "users" / "user0.crt")
    with pytest.raises(SvpnError, match="is a symbolic link"):
        make_backup(pki, tmp_path / "b.svpnpki", PASS)
    assert not (tmp_path / "b.svpnpki").exists()


# --------------------------------------------------------------------------- refused archives


def test_wrong_passphrase_is_refused_and_the_target_untouched(pki: Path, archive: Path) -> None:
    before = tree_hash(pki)
    with pytest.raises(SvpnError, match=r"CA passphrase is wrong for .*it does not open this backup"):
        restore.restore(archive, pki, "correct horse battery staple", force=True)
    assert tree_hash(pki) == before


@pytest.mark.parametrize("where", ["payload", "header", "tag"])
def test_a_tampered_byte_is_refused(pki: Path, archive: Path, tmp_path: Path, where: str) -> None:
    data = bytearray(archive.read_bytes())
    header = backup_format.read_header(bytes(data), "x")
    if where == "header":  # same length, still valid JSON: only the tag tells
        at = data.index(b'"certificates": 5')
        data[at + len('"certificates": ')] = ord("9")
    else:
        data[len(header.raw) + 10 if where == "payload" else len(data) - 1] ^= 0x01
    archive.write_bytes(bytes(data))
    target = tmp_path / "target"
    before = tree_hash(target)
    with pytest.raises(SvpnError, match="was altered: the passphrase is right but"):
        restore.restore(archive, target, PASS)
    assert tree_hash(target) == before


@pytest.mark.parametrize("keep", [0, 10, 30, -1])
def test_a_truncated_archive_is_refused(archive: Path, tmp_path: Path, keep: int) -> None:
    data = archive.read_bytes()
    archive.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(SvpnError, match=r"is not an svpn PKI backup|truncated"):
        restore.restore(archive, tmp_path / "target", PASS)
    assert not (tmp_path / "target").exists()


def test_not_a_backup_names_what_it_starts_with(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello world, not a backup\n")
    with pytest.raises(SvpnError, match=r"is not an svpn PKI backup: it starts with b'hello world, not'"):
        restore.restore(other, tmp_path / "target", PASS)


def _tar_with(info: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        ca_dir = tarfile.TarInfo("ca")
        ca_dir.type, ca_dir.mode = tarfile.DIRTYPE, 0o700
        tar.addfile(ca_dir)
        tar.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("../evil", tarfile.REGTYPE, "name '../evil' is not valid"),
        ("ca/../../evil", tarfile.REGTYPE, "is not valid"),
        ("/tmp/evil", tarfile.REGTYPE, "name '/tmp/evil' is not valid"),
        ("ca/link", tarfile.SYMTYPE, "is a symbolic link to '/etc/passwd'"),
        ("ca/hard", tarfile.LNKTYPE, "is a hard link"),
        ("ca/fifo", tarfile.FIFOTYPE, "is a FIFO"),
        ("ca/dev", tarfile.CHRTYPE, "is a device"),
        ("users/x.crt", tarfile.REGTYPE, "comes before its directory 'users'"),
    ],
)
def test_a_bad_member_is_refused_and_nothing_written(
    tmp_path: Path, name: str, kind: bytes, message: str
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, "/etc/passwd"
    data = b"x" * 8 if kind == tarfile.REGTYPE else b""
    info.size = len(data)
    payload = _tar_with(info, data)
    archive = tmp_path / "crafted.svpnpki"
    archive.write_bytes(backup_format.seal(payload, {}, PASS.encode(), keystore.CA_KDF))
    work = tmp_path / "work"
    work.mkdir()
    target = work / "pki"
    before = tree_hash(tmp_path)
    with pytest.raises(SvpnError, match=message):
        restore.restore(archive, target, PASS)
    assert tree_hash(tmp_path) == before
    assert not (tmp_path / "evil").exists() and not (work / "evil").exists()


def test_a_member_twice_is_refused(pki: Path, tmp_path: Path) -> None:
    members = members_of(pki)
    archive = tmp_path / "twice.svpnpki"
    archive.write_bytes(sealed([*members, members[-1]]))
    with pytest.raises(SvpnError, match="appears twice"):
        restore.restore(archive, tmp_path / "target", PASS)


def test_an_archive_without_the_ca_key_is_refused(pki: Path, tmp_path: Path) -> None:
    archive = tmp_path / "nokey.svpnpki"
    archive.write_bytes(sealed([m for m in members_of(pki) if m.name != "ca/ca.key"]))
    with pytest.raises(SvpnError, match=r"has no ca/ca\.key"):
        restore.restore(archive, tmp_path / "target", PASS)


def test_keys_are_restored_0600_whatever_the_archive_says(pki: Path, tmp_path: Path) -> None:
    loose = [
        Member(m.name, m.kind, 0o644, m.mtime, m.data) if m.kind == "file" else m for m in members_of(pki)
    ]
    archive = tmp_path / "loose.svpnpki"
    archive.write_bytes(sealed(loose))
    target = tmp_path / "target"
    restore.restore(archive, target, PASS)
    assert stat.S_IMODE((target / "ca" / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "users" / "user0.key.enc").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "ca" / "kek.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "users" / "user0.crt").stat().st_mode) == 0o644


# --------------------------------------------------------------------------- the target


def test_a_newer_target_is_refused_and_force_keeps_it_aside(pki: Path, ca: CA, archive: Path) -> None:
    issue_user(pki, ca, "later1")
    issue_user(pki, ca, "later2")
    revoke(pki, ca, "user0")
    before, old = tree_hash(pki), snapshot(pki)
    with pytest.raises(SvpnError) as caught:
        restore.restore(archive, pki, PASS)
    message = str(caught.value)
    assert "holds a PKI newer than this backup" in message
    assert "it has 2 certificates issued after this backup was made" in message
    assert "1 certificate was revoked after this backup was made" in message
    assert "its CRL number is" in message and "--force" in message
    assert tree_hash(pki) == before
    result = restore.restore(archive, pki, PASS, force=True)
    assert result.replaced is not None and result.replaced.name.startswith("pki.replaced-")
    assert snapshot(result.replaced) == old
    assert json.loads((pki / "index.json").read_text())["certs"][-1]["name"] == "user2"


def test_an_older_pki_of_the_same_ca_is_replaced_and_kept(pki: Path, ca: CA, tmp_path: Path) -> None:
    target = tmp_path / "old"
    old = tmp_path / "old.svpnpki"
    make_backup(pki, old, PASS)
    restore.restore(old, target, PASS)
    issue_user(pki, ca, "newer")
    new = tmp_path / "new.svpnpki"
    make_backup(pki, new, PASS)
    result = restore.restore(new, target, PASS)
    assert result.action == "restored" and result.target.kind == "older"
    assert result.replaced is not None and result.replaced.exists()
    assert snapshot(target) == snapshot(pki)


def test_another_ca_is_refused(archive: Path, tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other", name="Other CA")
    before = tree_hash(other)
    with pytest.raises(
        SvpnError, match=r"holds another CA's PKI: its CA is CN=Other CA .*the backup's is CN=Test"
    ):
        restore.restore(archive, other, PASS)
    assert tree_hash(other) == before
    assert restore.restore(archive, other, PASS, force=True).replaced is not None


def test_a_directory_that_is_no_pki_is_refused(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "stuff"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    with pytest.raises(SvpnError, match="is not empty and holds no PKI"):
        restore.restore(archive, target, PASS)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert restore.restore(archive, empty, PASS).replaced is None


def test_the_same_pki_is_left_as_it_is(pki: Path, archive: Path) -> None:
    before = tree_hash(pki)
    assert restore.restore(archive, pki, PASS).action == "unchanged"
    assert tree_hash(pki) == before


def test_check_writes_nothing(archive: Path, tmp_path: Path) -> None:
    before = tree_hash(tmp_path / "target")
    result = restore.restore(archive, tmp_path / "target", PASS, check_only=True)
    assert result.action == "checked" and result.target.kind == "absent"
    assert tree_hash(tmp_path / "target") == before


def test_a_restore_that_does_not_load_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, pki: Path, ca: CA, archive: Path
) -> None:
    issue_user(pki, ca, "later")
    before = tree_hash(pki)

    def broken(*_args: object) -> None:
        raise SvpnError("CA key does not load")

    monkeypatch.setattr(restore, "load_ca", broken)
    with pytest.raises(SvpnError, match="CA key does not load"):
        restore.restore(archive, pki, PASS, force=True)
    assert tree_hash(pki) == before  # no temp dir beside it, no DIR.replaced-*


def test_a_directory_that_cannot_be_written_is_one_line(
    monkeypatch: pytest.MonkeyPatch, archive: Path, tmp_path: Path
) -> None:
    def full(*_args: object, **_kw: object) -> str:
        raise OSError(28, "No space left on device", str(tmp_path))

    monkeypatch.setattr(restore.tempfile, "mkdtemp", full)
    with pytest.raises(
        SvpnError, match=r"could not be restored: No space left on device .*nothing was changed"
    ):
        restore.restore(archive, tmp_path / "target", PASS)


def test_a_restore_says_what_the_restored_pki_needs_soon(run: Run, pki: Path, ca: CA, tmp_path: Path) -> None:
    """A CRL within its warning window (as a backup's is, days later): the restore says so on stderr."""
    write_crl(pki, ca, days=1)
    out = tmp_path / "b.svpnpki"
    make_backup(pki, out, PASS)
    code, _out, err = run("pki", "restore", out, "--dir", tmp_path / "target")
    assert code == 0
    assert err.startswith("svpn: warning: CRL ") and "expires" in err, err


# --------------------------------------------------------------------------- the CLI


def test_cli_backup_and_restore(run: Run, pki: Path, tmp_path: Path) -> None:
    out = tmp_path / "b.svpnpki"
    code, stdout, _ = run("pki", "backup", "--dir", pki, "--out", out)
    assert code == 0
    assert stdout.startswith(f"written: {out} (")
    assert "5 certificates (1 ca, 1 server, 3 user), 1 revoked" in stdout
    code, stdout, err = run("pki", "backup", "--dir", pki, "--out", out)
    assert code == 2 and "exists: refusing to overwrite it (--force replaces it)" in one_line_error(err)
    target = tmp_path / "restored"
    code, stdout, _ = run("pki", "restore", out, "--dir", target, "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["action"] == "restored" and doc["pki"]["index"]["certificates"] == 5
    assert doc["pki"]["tree"]["files"] == sum(1 for p in target.rglob("*") if p.is_file())
    code, stdout, _ = run("pki", "restore", out, "--dir", target)
    assert code == 0 and stdout.startswith(f"unchanged: {target} already holds exactly {out}")


def test_cli_backup_json(run: Run, pki: Path, tmp_path: Path) -> None:
    code, stdout, _ = run("pki", "backup", "--dir", pki, "--out", tmp_path / "b.svpnpki", "--json")
    doc = json.loads(stdout)
    assert code == 0 and doc["action"] == "written"
    assert doc["archive_bytes"] == (tmp_path / "b.svpnpki").stat().st_size
    assert doc["pki"]["ca"]["subject"] == "CN=Test VPN CA"


def test_cli_wrong_passphrase_one_line_nothing_written(
    cli: Run, monkeypatch: pytest.MonkeyPatch, archive: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("SVPN_CA_PASSPHRASE", "wrong passphrase here")
    before = tree_hash(tmp_path / "target")
    code, _out, err = cli("pki", "restore", archive, "--dir", tmp_path / "target")
    assert code == 2
    assert (
        one_line_error(err)
        == f"svpn: error: CA passphrase is wrong for {archive}: it does not open this backup"
    )
    assert tree_hash(tmp_path / "target") == before
    code, _out, err = cli("pki", "backup", "--dir", tmp_path / "target", "--out", tmp_path / "x")
    assert code == 2 and "no CA in" in one_line_error(err)


def test_cli_passphrase_file_is_the_same_as_the_environment(cli: Run, archive: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text(PASS + "\n")
    code, stdout, err = cli("pki", "restore", archive, "--check", "--passphrase-file", secret)
    assert code == 0, err
    assert stdout.startswith(f"ok: {archive} opens with the CA passphrase and holds a whole PKI")


def test_cli_check_without_passphrase_shows_the_header_and_fails(
    cli: Run, monkeypatch: pytest.MonkeyPatch, archive: Path
) -> None:
    monkeypatch.delenv("SVPN_CA_PASSPHRASE", raising=False)
    code, stdout, err = cli("pki", "restore", archive, "--check")
    assert code == 2
    assert stdout.startswith(f"header of {archive} (not authenticated):")
    assert "CN=Test VPN CA" in stdout
    assert "is not verified" in one_line_error(err)


def test_cli_newer_target_refused_message(run: Run, pki: Path, ca: CA, archive: Path) -> None:
    for number in range(3):
        issue_user(pki, ca, f"later{number}")
    code, _out, err = run("pki", "restore", archive, "--dir", pki)
    line = one_line_error(err)
    assert code == 2
    assert f"{pki} holds a PKI newer than this backup: it has 3 certificates issued after this backup" in line
    code, stdout, _ = run("pki", "restore", archive, "--dir", pki, "--check")
    assert code == 0 and "(a restore is refused without --force)" in stdout
    code, stdout, _ = run("pki", "restore", archive, "--dir", pki, "--force")
    assert code == 0 and "; the PKI that was there is kept as " in stdout
    assert [p.name for p in pki.parent.iterdir() if p.name.startswith("pki.replaced-")]


def test_real_kdf_parameters_are_written(monkeypatch: pytest.MonkeyPatch, pki: Path, tmp_path: Path) -> None:
    """Production's scrypt cost is what an archive records (the other tests run at a lower N)."""
    monkeypatch.setattr(keystore, "CA_KDF", keystore.DEFAULT_KDF)
    out = tmp_path / "real.svpnpki"
    make_backup(pki, out, PASS)
    assert backup_format.read_header(out.read_bytes(), "x").kdf == keystore.DEFAULT_KDF
    assert os.stat(out).st_size > 0
