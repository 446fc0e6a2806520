"""Inventories are read by Ansible's own reader (svpn.core.ansible_inventory): vault-encrypted values, the
group_vars/all/{main,vault}.yml layout and Ansible's precedence are what `svpn inventory check` and
`svpn plan --from` see. Vault values are made with ansible-core's VaultLib and a password file in tmp."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from svpn.core.ansible_inventory import VaultOptions, read_inventory
from svpn.core.errors import SvpnError

Run = Callable[..., tuple[int, str, str]]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
SECRET = "the CA passphrase, kept with ansible-vault"
MGMT = ("--management-networks", "198.18.73.0/24")


def encrypt_string(name: str, value: str, password: str = PASSWORD) -> str:
    """What `ansible-vault encrypt_string --name NAME VALUE` prints: a ``!vault |`` YAML entry."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(password.encode()))])
    ciphertext = vault.encrypt(value).decode()
    return f"{name}: !vault |\n" + "".join(f"  {line}\n" for line in ciphertext.splitlines())


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def planned(cli: Run, tmp_path: Path) -> Path:
    """A planned inventory (500 users) whose group_vars/all.yml also holds a vaulted secret."""
    out = tmp_path / "inv"
    assert cli("plan", *MGMT, "--users", "500", "--out", out)[0] == 0
    with (out / "group_vars" / "all.yml").open("a") as handle:
        handle.write(encrypt_string("vault_ca_passphrase", SECRET))
    return out


def split_all(inventory: Path) -> None:
    """group_vars/all.yml -> group_vars/all/main.yml, the vaulted value -> group_vars/all/vault.yml."""
    text = (inventory / "group_vars" / "all.yml").read_text()
    plain, vaulted = text.split("vault_ca_passphrase: !vault |\n")
    (inventory / "group_vars" / "all").mkdir()
    (inventory / "group_vars" / "all" / "main.yml").write_text(plain)
    (inventory / "group_vars" / "all" / "vault.yml").write_text("vault_ca_passphrase: !vault |\n" + vaulted)
    (inventory / "group_vars" / "all.yml").unlink()


def svpn(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `svpn` in a new process: ansible-core reads ANSIBLE_* settings when it is imported."""
    return subprocess.run(
        [sys.executable, "-m", "svpn", *map(str, argv)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


# --------------------------------------------------------------------------- vault


def test_check_reads_a_vaulted_value_with_the_password_file(
    cli: Run, planned: Path, password_file: Path
) -> None:
    code, out, err = cli("inventory", "check", planned, "--vault-password-file", password_file)
    assert (code, err) == (0, "") and "OK (2 concentrators" in out
    read = read_inventory(planned, VaultOptions(password_files=(str(password_file),)))
    assert read.all_vars["vault_ca_passphrase"] == SECRET
    assert read.hostvars["conc1"]["vault_ca_passphrase"] == SECRET
    # --vault-id LABEL@FILE as ansible-playbook takes it
    assert cli("inventory", "check", planned, "--vault-id", f"prod@{password_file}")[0] == 0


def test_without_the_password_the_error_names_the_value_and_the_options(cli: Run, planned: Path) -> None:
    code, out, err = cli("inventory", "check", planned)
    assert code != 0 and out == "" and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("svpn: error:")]
    assert "group_vars/all.yml:" in line and "vault_ca_passphrase is vault-encrypted" in line
    assert "--vault-password-file" in line and "--vault-id" in line and "ANSIBLE_VAULT_PASSWORD_FILE" in line
    code, _out, err = cli("plan", "--from", planned, "--users", "900")
    assert code != 0 and "vault_ca_passphrase is vault-encrypted" in err and "Traceback" not in err


def test_a_wrong_password_is_a_clear_error(cli: Run, planned: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    code, _out, err = cli("inventory", "check", planned, "--vault-password-file", wrong)
    assert code != 0 and "Traceback" not in err
    assert "vault_ca_passphrase is vault-encrypted and cannot be read: Decryption failed" in err
    code, _out, err = cli("inventory", "check", planned, "--vault-password-file", tmp_path / "missing")
    assert code != 0 and "vault password file" in err and "was not found" in err and "Traceback" not in err


def test_the_environment_gives_the_password_as_it_does_to_ansible(planned: Path, password_file: Path) -> None:
    done = svpn("inventory", "check", planned, env={"ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)})
    assert done.returncode == 0, done.stderr
    done = svpn(
        "plan", "--from", planned, "--users", "900", env={"ANSIBLE_VAULT_PASSWORD_FILE": str(password_file)}
    )
    assert done.returncode == 0, done.stderr
    assert "+        conc3: {}" in done.stdout  # the grown farm's diff
    done = svpn("inventory", "check", planned, env={"ANSIBLE_VAULT_IDENTITY_LIST": f"prod@{password_file}"})
    assert done.returncode == 0, done.stderr
    done = svpn("inventory", "check", planned)
    assert done.returncode != 0 and "vault-encrypted" in done.stderr and "Traceback" not in done.stderr


def test_growing_keeps_the_vaulted_value_encrypted(cli: Run, planned: Path, password_file: Path) -> None:
    before = (planned / "group_vars" / "all.yml").read_text()
    ciphertext = before.split("vault_ca_passphrase: !vault |\n")[1]
    vault = ("--vault-password-file", password_file)
    code, _out, err = cli("plan", "--from", planned, "--out", planned, "--users", "3000", *vault)
    assert code == 0, err
    after = (planned / "group_vars" / "all.yml").read_text()
    assert "svpn_users: 3000" in after and SECRET not in after
    assert "vault_ca_passphrase: !vault |\n" + ciphertext in after  # the same ciphertext, byte for byte
    assert cli("inventory", "check", planned, *vault)[0] == 0
    read = read_inventory(planned, VaultOptions(password_files=(str(password_file),)))
    assert read.all_vars["vault_ca_passphrase"] == SECRET and len(read.groups["concentrators"]) > 2


# --------------------------------------------------------------------------- group_vars/all/{main,vault}.yml


def test_the_directory_layout_is_read_fully(cli: Run, planned: Path, password_file: Path) -> None:
    split_all(planned)
    vault = ("--vault-password-file", password_file)
    code, out, err = cli("inventory", "check", planned, *vault)
    assert (code, err) == (0, "") and "500 users" in out
    # a problem placed only in group_vars/all/main.yml is found
    main = planned / "group_vars" / "all" / "main.yml"
    main.write_text(
        main.read_text().replace("svpn_peak_concurrency_percent: 100", "svpn_peak_concurrency_percent: 150")
    )
    code, _out, err = cli("inventory", "check", planned, *vault)
    assert code == 1 and "svpn_peak_concurrency_percent: 150 is outside 1-100" in err
    # a setting placed only there reaches svpn plan --from
    main.write_text(
        main.read_text().replace("svpn_peak_concurrency_percent: 150", "svpn_peak_concurrency_percent: 50")
    )
    code, out, err = cli("plan", "--from", planned, "--json", *vault)
    assert code == 0, err
    assert json.loads(out)["input"]["concurrency_percent"] == 50


def test_growing_the_directory_layout_writes_main_yml(cli: Run, planned: Path, password_file: Path) -> None:
    split_all(planned)
    vault = ("--vault-password-file", password_file)
    code, _out, err = cli("plan", "--from", planned, "--out", planned, "--users", "3000", *vault)
    assert code == 0, err
    assert not (planned / "group_vars" / "all.yml").exists()  # Ansible would ignore it beside all/
    assert "svpn_users: 3000" in (planned / "group_vars" / "all" / "main.yml").read_text()
    assert SECRET not in (planned / "group_vars" / "all" / "vault.yml").read_text()
    code, out, err = cli("inventory", "check", planned, *vault)
    assert (code, err) == (0, "") and "3,000 users" in out


def test_files_ansible_ignores_are_problems(cli: Run, planned: Path, password_file: Path) -> None:
    """group_vars/all.yml beside group_vars/all/: Ansible reads only the directory; so does the check."""
    shutil.copy(planned / "group_vars" / "all.yml", planned / "all.yml.orig")
    split_all(planned)
    shutil.copy(planned / "all.yml.orig", planned / "group_vars" / "all.yml")
    (planned / "all.yml.orig").unlink()
    code, _out, err = cli("inventory", "check", planned, "--vault-password-file", password_file)
    assert code == 1
    assert "group_vars/all.yml: ignored by Ansible, which reads group_vars/all/ instead; merge the two" in err


def test_a_plan_ansible_would_not_see_is_refused(cli: Run, planned: Path, password_file: Path) -> None:
    """A later file of group_vars/all/ sets a planner key again: Ansible would take it over the plan's."""
    split_all(planned)
    (planned / "group_vars" / "all" / "zz-override.yml").write_text("svpn_users: 700\n")
    vault = ("--vault-password-file", password_file)
    before = {p: p.read_bytes() for p in planned.rglob("*") if p.is_file()}
    code, _out, err = cli("plan", "--from", planned, "--out", planned, "--users", "3000", *vault)
    assert code == 2 and "Traceback" not in err
    assert "Ansible would not see what this plan writes" in err
    assert "group_vars/all/main.yml: svpn_users: the plan writes 3000 but Ansible reads 700" in err
    assert {p: p.read_bytes() for p in planned.rglob("*") if p.is_file()} == before  # nothing written


# --------------------------------------------------------------------------- precedence


def test_precedence_is_ansibles(tmp_path: Path) -> None:
    """host_vars over hosts.yml host vars over group_vars/GROUP over group_vars/all over hosts.yml all.vars;
    a child group over its parent."""
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": {"x": "all inline", "y": "all inline"},
                    "children": {
                        "farm": {
                            "children": {
                                "concentrators": {"hosts": {"conc1": {"x": "host inline"}, "conc2": None}}
                            }
                        },
                        "loadbalancers": {"hosts": {"lb1": None}},
                    },
                }
            }
        )
    )
    (inv / "group_vars" / "all.yml").write_text("x: all\n")
    (inv / "group_vars" / "farm.yml").write_text("x: farm\nz: farm\n")
    (inv / "group_vars" / "concentrators.yml").write_text("x: group\n")
    (inv / "host_vars" / "conc1.yml").write_text("x: host\n")
    read = read_inventory(inv)
    assert read.hostvars["conc1"]["x"] == "host"
    assert read.hostvars["conc2"]["x"] == "group" and read.hostvars["conc2"]["z"] == "farm"
    assert read.hostvars["lb1"]["x"] == "all" and read.hostvars["lb1"]["y"] == "all inline"
    assert read.all_vars == {"x": "all", "y": "all inline"}
    assert read.groups["concentrators"] == ["conc1", "conc2"] and read.groups["farm"] == ["conc1", "conc2"]
    assert read.hostvars["conc2"]["group_names"] == ["concentrators", "farm"]


@pytest.mark.parametrize("name", ["lab", "example-500"])
def test_the_reader_sees_what_ansible_inventory_lists(name: str) -> None:
    """Every host's variables as `ansible-inventory --list` prints them (Ansible's own CLI)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    listing = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-inventory")),
            "-i",
            str(ROOT / "inventories" / name),
            "--list",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    listed = json.loads(listing.stdout)["_meta"]["hostvars"]
    read = read_inventory(ROOT / "inventories" / name)
    assert set(read.hostvars) == set(listed)
    for host, values in read.hostvars.items():
        own = {k: v for k, v in values.items() if k not in ("inventory_hostname", "group_names")}
        assert own == listed[host], host


def test_ansible_cannot_read_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(SvpnError, match="is not a directory"):
        read_inventory(tmp_path / "nowhere")
