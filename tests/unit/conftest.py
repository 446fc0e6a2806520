"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import pytest
from svpn_testing.pki import PASS, make_ca

from svpn.access.pki.ca import CA, load_ca

Run = Callable[..., tuple[int, str, str]]


OLD_PASSPHRASE = "8charsPW"  # as short as svpn allowed before new passphrases needed 12 characters


def make_older_pki(pki_dir: Path, passphrase: str, old_passphrase: str = OLD_PASSPHRASE) -> None:
    """Turn the PKI in *pki_dir* into one as svpn wrote it before keys were kept like a CA's: the CA key
    under ``cryptography``'s BestAvailableEncryption (PBKDF2-HMAC-SHA256, 2,048 rounds) with the short
    *old_passphrase*, every user's key in clear in ``users/ID.key`` (0600), and no ``ca/kek.json``."""
    from cryptography.hazmat.primitives import serialization

    from svpn.access.pki.ca import load_ca
    from svpn.access.pki.user_keys import read_user_key

    ca = load_ca(pki_dir, passphrase)
    kek = ca.user_kek()
    for sealed in sorted((pki_dir / "users").glob("*.key.enc")):
        uid = sealed.name.removesuffix(".key.enc")
        key = read_user_key(pki_dir, kek, uid)
        clear = pki_dir / "users" / f"{uid}.key"
        clear.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        clear.chmod(0o600)
        sealed.unlink()
    (pki_dir / "ca" / "kek.json").unlink()
    old = serialization.BestAvailableEncryption(old_passphrase.encode())
    (pki_dir / "ca" / "ca.key").write_bytes(
        ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, old)
    )


def one_line_error(err: str) -> str:
    """The one line a refused `svpn` command prints on stderr (no traceback)."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("svpn: error: ")
    return lines[0]


def clear_keys_under(root: Path) -> list[Path]:
    """Files under *root* that hold a private key in clear PEM: PKCS#8, or SEC 1 / PKCS#1 without the
    ``Proc-Type: 4,ENCRYPTED`` header of an encrypted traditional PEM."""

    def in_clear(data: bytes) -> bool:
        traditional = b"BEGIN EC PRIVATE KEY" in data or b"BEGIN RSA PRIVATE KEY" in data
        return b"BEGIN PRIVATE KEY" in data or (traditional and b"Proc-Type: 4,ENCRYPTED" not in data)

    return [path for path in sorted(root.rglob("*")) if path.is_file() and in_clear(path.read_bytes())]


@pytest.fixture(autouse=True)
def quick_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at the real N = 2^17 costs ~0.35 s per CA key or KEK: the unit tests use N = 2^10 (the same
    code and file formats; test_pki checks the real parameters with ``keystore.DEFAULT_KDF``)."""
    from svpn.access.pki import keystore

    monkeypatch.setattr(keystore, "CA_KDF", keystore.ScryptParams(2**10, 8, 1))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``svpn.cli.main(argv)`` in this process: (exit code, stdout, stderr)."""
    from svpn.cli import main

    def _run(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(arg) for arg in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def cli_commands() -> dict[tuple[str, ...], tuple[click.Command, click.Context]]:
    """Every leaf command of `svpn` by its path ("users", "sync"), with its parent's bare context (nothing
    parsed, nothing lenient: ``command.make_context(name, argv, parent=ctx)`` checks argv as svpn would)."""
    from svpn.cli import _register, cli

    _register()  # as svpn.cli.main does (adding a command twice is harmless)
    found = {}
    stack: list[tuple[tuple[str, ...], click.Group, click.Context]] = [
        ((), cli, click.Context(cli, info_name="svpn"))
    ]
    while stack:
        path, group, ctx = stack.pop()
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                stack.append(((*path, name), command, click.Context(command, info_name=name, parent=ctx)))
            else:
                found[(*path, name)] = (command, ctx)
    return found


@pytest.fixture
def d(tmp_path: Path) -> Path:
    """A PKI directory with a CA (ECDSA P-256 to stay quick)."""
    return make_ca(tmp_path / "pki")


@pytest.fixture
def ca(d: Path) -> CA:
    """The CA of :func:`d`, unlocked."""
    return load_ca(d, PASS)
