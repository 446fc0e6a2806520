"""`svpn plan` and `svpn inventory check`: the I/O around svpn.planning (inputs, plan, report) and
svpn.inventory (render, grow, read, tree)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import click

from svpn.cli.options import path_option, vault_options, warn
from svpn.core.ansible_inventory import VaultOptions
from svpn.core.errors import SvpnError
from svpn.farm.facts import TUNNEL_MODES
from svpn.inventory import tree
from svpn.inventory.grow import existing_farm, place_files, unseen
from svpn.inventory.read import load_yaml
from svpn.inventory.render import render_tree
from svpn.inventory.schema import HOSTS
from svpn.planning.defaults import DEFAULT_INPUT, FLAGS, PROFILES, REDUNDANCY_SPARES
from svpn.planning.inputs import calibration_layer, plan_file_layer, resolve_input
from svpn.planning.layout import INSIDE_VIP_HOST_OFFSET, LB_HOST_OFFSETS, VIP_HOST_OFFSET
from svpn.planning.plan import make_plan
from svpn.planning.report import plan_data, plan_text

Layer = tuple[dict[str, Any], str]


class InventoryProblems(SvpnError):
    """`svpn inventory check` found problems (listed before this one-line summary)."""

    exit_code = 1


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise SvpnError(f"{what}: cannot read {path}: {err.strerror or err}") from None


def _plan_file_layer(path: Path) -> Layer:
    label = f"plan file {path.name}"
    try:
        data, duplicates = load_yaml(_read_text(path, "--plan"))
    except ValueError as err:
        raise SvpnError(f"{label}: not valid YAML: {err}") from None
    if duplicates:
        raise SvpnError(f"{label}: {'; '.join(duplicates)}")
    return plan_file_layer(data, label), label


def _calibration_layer(path: Path) -> Layer:
    text = _read_text(path, "--calibration")
    label = f"calibration {path.name} (sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SvpnError(f"{label}: not valid JSON: {err}") from None
    return calibration_layer(data, label), label


def _guard_out_dir(
    out_dir: Path, files: dict[str, str], growing_in_place: bool, force: bool, vault: VaultOptions
) -> tuple[dict[str, str], list[str]]:
    """Refuse to overwrite a different inventory unless told to; the files placed as the inventory there
    keeps them (group_vars/all/ a directory: group_vars/all/main.yml) and the stale host files --force
    removes. Into an existing inventory, the result is read back by Ansible first: every planner setting must
    be what Ansible will see (not set again by a file that wins, nor written where Ansible does not look)."""
    if not (out_dir / HOSTS).is_file():
        return files, []
    current = tree.read_tree(out_dir)
    files = place_files(current, files)
    same = all(current.get(path) == text for path, text in files.items())
    stale = tree.stale_host_files(current, files)
    if not (growing_in_place or (same and not stale)) and not force:
        raise SvpnError(
            f"--out: {out_dir} already holds an inventory that differs from this plan; grow it with "
            f"`--from {out_dir} --out {out_dir}` (keeps every existing node), or pass --force to replace it"
        )
    after = {path: text for path, text in {**current, **files}.items() if path not in stale}
    loaded = tree.load_files(after, vault)
    hidden = unseen(files, loaded.farm) if loaded.farm is not None else []
    if hidden:
        raise SvpnError(
            f"--out: {out_dir}: Ansible would not see what this plan writes: " + "; ".join(hidden)
        )
    return files, stale


# inputs whose default is derived from other inputs (None in DEFAULT_INPUT): how the help names it
_DERIVED_DEFAULTS = {
    "vip": f"host .{VIP_HOST_OFFSET} of the public network",
    "lb_addresses": f"hosts {','.join(f'.{offset}' for offset in LB_HOST_OFFSETS)} of the public network",
    "inside_vip": f"host .{INSIDE_VIP_HOST_OFFSET} of inside",
    "internal_networks": "the internal network",
}


def shown_default(key: str) -> str:
    """A plan input's default as the options' help shows it, read from the planner's DEFAULT_INPUT."""
    value = DEFAULT_INPUT[key]
    if value is None:
        return _DERIVED_DEFAULTS[key]
    if isinstance(value, bool):
        return "optional" if value else "required"
    if isinstance(value, list):
        return ",".join(value) if value else "none"
    return str(value)


def _help(text: str, key: str, note: str = "") -> str:
    return f"{text} [{shown_default(key)}{note}]."


_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--users", {"type": int, "help": "Users the farm serves (required unless --plan or --from gives it)."}),
    (
        "--concurrency",
        {
            "type": float,
            "help": _help("Peak concurrency: percent of users connected at once", "concurrency_percent"),
        },
    ),
    ("--profile", {"type": click.Choice(list(PROFILES)), "help": _help("Traffic per user", "profile")}),
    ("--cores", {"type": int, "help": _help("CPU cores per concentrator", "cores")}),
    ("--nic-gbps", {"type": float, "help": _help("NIC speed per concentrator, Gbps", "nic_gbps")}),
    ("--memory-gib", {"type": float, "help": _help("RAM per concentrator, GiB", "memory_gib")}),
    (
        "--ike-sas-per-node",
        {"type": int, "help": _help("IKE SAs one node may hold", "ike_sas_per_node", ", see CAPACITY.md")},
    ),
    (
        "--setup-rate-per-core",
        {"type": float, "help": _help("IKE setups per second per core", "setup_rate_per_core")},
    ),
    (
        "--esp-gbps-per-core",
        {"type": float, "help": _help("ESP Gbps per core", "esp_gbps_per_core", ", estimate")},
    ),
    ("--rss-kib-per-user", {"type": float, "help": _help("charon memory per user, KiB", "rss_kib_per_user")}),
    (
        "--storm-seconds",
        {"type": int, "help": _help("Seconds in which all users must be able to reconnect", "storm_seconds")},
    ),
    (
        "--redundancy",
        {"type": click.Choice(list(REDUNDANCY_SPARES)), "help": _help("Spare nodes", "redundancy")},
    ),
    (
        "--headroom",
        {"type": float, "help": _help("Spare capacity above the peak, percent", "headroom_percent")},
    ),
    ("--supernet", {"help": _help("Network the per-node pools are carved from", "supernet")}),
    (
        "--reserved-networks",
        {"help": _help("Networks pools must avoid, comma-separated", "reserved_networks")},
    ),
    ("--vpn-name", {"help": _help("Public VPN name", "vpn_name")}),
    ("--vip", {"help": _help("The address users dial", "vip")}),
    ("--lb-addresses", {"help": _help("The LB pair's public addresses A,B", "lb_addresses")}),
    (
        "--inside-vip",
        {"help": _help("The LB pair's inside VIP, the concentrators' route back", "inside_vip")},
    ),
    ("--public-network", {"help": _help("Where users arrive: the LBs' outer side", "public_network")}),
    ("--inside-network", {"help": _help("LBs <-> concentrators", "inside_network")}),
    ("--internal-network", {"help": _help("Concentrators <-> the city's services", "internal_network")}),
    ("--internal-networks", {"help": _help("What users reach, comma-separated", "internal_networks")}),
    ("--dns", {"help": _help("DNS servers handed to clients, comma-separated", "dns")}),
    (
        "--management-networks",
        {
            "help": _help(
                "Where SSH to the farm's hosts comes from (the controller, jump hosts), comma-separated; "
                "the only SSH the firewalls accept",
                "management_networks",
            )
        },
    ),
    (
        "--tunnel-mode",
        {"type": click.Choice(list(TUNNEL_MODES)), "help": _help(" or ".join(TUNNEL_MODES), "tunnel_mode")},
    ),
    ("--ike-proposals", {"help": "IKE proposals, comma-separated strongSwan keywords."}),
    ("--esp-proposals", {"help": "ESP proposals, comma-separated strongSwan keywords."}),
    (
        "--esp-pfs-optional/--esp-pfs-required",
        {
            "help": _help(
                "Let ESP proposals without a DH group (no PFS on rekeys) through, for legacy clients "
                "only; see docs/operations.md, Crypto policy",
                "esp_pfs_optional",
            )
        },
    ),
]
_FLAG_TO_KEY = {flag: key for key, flag in FLAGS.items()}


def _input_options(func: Any) -> Any:
    for flag, settings in reversed(_OPTIONS):
        func = click.option(flag, _FLAG_TO_KEY[flag.split("/")[0]], default=None, **settings)(func)
    return func


@click.command("plan")
@_input_options
@path_option("--plan", "plan_file", kind="file", help="YAML plan file.")
@path_option(
    "--calibration",
    kind="file",
    help="Measured limits (JSON from the load test): ike_sas_per_node, setup_rate_per_core, ...",
)
@path_option(
    "--from",
    "from_dir",
    kind="dir",
    help="Grow this inventory: its nodes, names, pools and addresses stay; prints the diff.",
)
@path_option("--out", "out_dir", kind="dir", help="Write the inventory here.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--force", is_flag=True, help="With --out: replace a different inventory already there.")
@vault_options
def plan(
    plan_file: Path | None,
    calibration: Path | None,
    from_dir: Path | None,
    out_dir: Path | None,
    as_json: bool,
    force: bool,
    vault: VaultOptions,
    **flags: Any,
) -> None:
    """Turn "how many users" into a farm: node count and why, pools, LB buckets, tuning.

    Prints the plan and writes nothing unless --out DIR is given; then DIR gets hosts.yml, group_vars/,
    host_vars/ and CAPACITY.md. Inputs, later ones winning: defaults, --from DIR's stored plan,
    --calibration, --plan FILE, flags. Inventories are read by Ansible itself: vault-encrypted values need
    the vault password (--vault-password-file, --vault-id, or Ansible's environment and ansible.cfg).
    """
    layers: list[Layer] = []
    old_files: dict[str, str] = {}
    existing = kept = None
    if from_dir is not None:
        grown = tree.load(from_dir, vault)
        old_files = grown.files
        stored, existing, kept = existing_farm(grown, f"--from {from_dir}")
        layers.append((stored, f"inventory {from_dir}"))
    if calibration is not None:
        layers.append(_calibration_layer(calibration))
    if plan_file is not None:
        layers.append(_plan_file_layer(plan_file))
    layers.append(({key: value for key, value in flags.items() if value is not None}, "command line"))

    inp = resolve_input(layers)
    result = make_plan(inp, existing)
    files = place_files(old_files, render_tree(result, kept))
    diff = tree.tree_diff(old_files, files, str(out_dir or from_dir)) if from_dir is not None else None

    stale: list[str] = []
    if out_dir is not None:
        in_place = from_dir is not None and from_dir.resolve() == out_dir.resolve()
        files, stale = _guard_out_dir(out_dir, files, in_place, force, vault)

    if as_json:
        data = plan_data(result)
        if diff is not None:
            data["diff"] = diff
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(plan_text(result), nl=False)
        if diff is not None:
            click.echo(f"\nChanges to {out_dir or from_dir}:")
            click.echo(diff or "(none)\n", nl=False)

    if out_dir is None:
        if from_dir is not None:
            click.echo(f"(nothing written: add --out {from_dir} to apply)", err=True)
        return
    changed = tree.write_tree(out_dir, files, stale)
    summary = f"wrote {len(changed)} file(s) in {out_dir}" if changed else f"{out_dir} is up to date"
    click.echo(summary, err=True)
    if not inp.management_networks:
        warn(
            "svpn_management_networks is empty: the firewalls will accept no SSH, so `svpn inventory check` "
            "and the playbooks refuse hosts managed over SSH until it lists where SSH comes from "
            "(--management-networks CIDR,...)"
        )


@click.group("inventory")
def inventory() -> None:
    """Farm inventories (written by `svpn plan --out`, or by hand like inventories/lab)."""


@inventory.command("check")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@vault_options
def check(directory: Path, vault: VaultOptions) -> None:
    """Check a farm inventory: files, networks, addresses, pools, concentrator states.

    The inventory is read by Ansible itself (group_vars/NAME/ directories, vault values, its precedence):
    give the vault password as ansible-playbook takes it. Files: valid YAML, no duplicate keys, each var
    file for a known group or host and one Ansible reads. Any farm: addresses inside their networks and
    unique, pools overlapping nothing, an active concentrator. A planned one (with svpn_plan) also: every
    planner setting, pool capacity vs users. Lists every problem and exits 1 if there is any.
    """
    loaded = tree.load(directory, vault)
    if loaded.problems or loaded.farm is None:
        for problem in loaded.problems:
            click.echo(f"{directory}: {problem}", err=True)
        raise InventoryProblems(f"{directory}: {len(loaded.problems)} problem(s) found (listed above)")
    click.echo(f"{directory}: OK ({tree.summary(loaded.farm)})")
