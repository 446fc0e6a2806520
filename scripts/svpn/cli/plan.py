"""`svpn plan` and `svpn inventory check`: the I/O around svpn.planning.plan, svpn.inventory.tree and
svpn.planning.capacity_doc."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import click

from svpn.cli.options import path_option
from svpn.core.errors import SvpnError
from svpn.inventory import tree as inv
from svpn.planning import plan as planlib

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
        data, duplicates = inv.load_yaml(_read_text(path, "--plan"))
    except ValueError as err:
        raise SvpnError(f"{label}: not valid YAML: {err}") from None
    if duplicates:
        raise SvpnError(f"{label}: {'; '.join(duplicates)}")
    return planlib.plan_file_layer(data, label), label


def _calibration_layer(path: Path) -> Layer:
    text = _read_text(path, "--calibration")
    label = f"calibration {path.name} (sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SvpnError(f"{label}: not valid JSON: {err}") from None
    return planlib.calibration_layer(data, label), label


def _guard_out_dir(out_dir: Path, files: dict[str, str], growing_in_place: bool, force: bool) -> list[str]:
    """Refuse to overwrite a different inventory unless told to; the stale host files --force removes."""
    if not (out_dir / inv.HOSTS).is_file():
        return []
    current = inv.read_tree(out_dir)
    same = all(current.get(path) == text for path, text in files.items())
    stale = inv.stale_host_files(current, files)
    if growing_in_place or (same and not stale):
        return []
    if not force:
        raise SvpnError(
            f"--out: {out_dir} already holds an inventory that differs from this plan; grow it with "
            f"`--from {out_dir} --out {out_dir}` (keeps every existing node), or pass --force to replace it"
        )
    return stale


_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--users", {"type": int, "help": "Users the farm serves (required unless --plan or --from gives it)."}),
    ("--concurrency", {"type": float, "help": "Peak concurrency: percent of users connected at once [100]."}),
    ("--profile", {"type": click.Choice(list(planlib.PROFILES)), "help": "Traffic per user [office]."}),
    ("--cores", {"type": int, "help": "CPU cores per concentrator [4]."}),
    ("--nic-gbps", {"type": float, "help": "NIC speed per concentrator, Gbps [10]."}),
    ("--memory-gib", {"type": float, "help": "RAM per concentrator, GiB [8]."}),
    ("--ike-sas-per-node", {"type": int, "help": "IKE SAs one node may hold [5000, see CAPACITY.md]."}),
    ("--setup-rate-per-core", {"type": float, "help": "IKE setups per second per core [370]."}),
    ("--esp-gbps-per-core", {"type": float, "help": "ESP Gbps per core [1, estimate]."}),
    ("--rss-kib-per-user", {"type": float, "help": "charon memory per user, KiB [36]."}),
    ("--storm-seconds", {"type": int, "help": "Seconds in which all users must be able to reconnect [60]."}),
    ("--redundancy", {"type": click.Choice(list(planlib.REDUNDANCY_SPARES)), "help": "Spare nodes [N+1]."}),
    ("--headroom", {"type": float, "help": "Spare capacity above the peak, percent [25]."}),
    ("--supernet", {"help": "Network the per-node pools are carved from [198.19.0.0/16]."}),
    ("--reserved-networks", {"help": "Networks pools must avoid, comma-separated [198.19.255.0/24]."}),
    ("--vpn-name", {"help": "Public VPN name [vpn.svpn.test]."}),
    ("--vip", {"help": "The address users dial [host .100 of the public network]."}),
    ("--lb-addresses", {"help": "The LB pair's public addresses A,B [hosts .11,.12 of the public network]."}),
    (
        "--inside-vip",
        {"help": "The LB pair's inside VIP, the concentrators' route back [host .10 of inside]."},
    ),
    ("--public-network", {"help": "Where users arrive: the LBs' outer side [198.18.70.0/24]."}),
    ("--inside-network", {"help": "LBs <-> concentrators [198.18.71.0/24]."}),
    ("--internal-network", {"help": "Concentrators <-> the city's services [198.18.72.0/24]."}),
    ("--internal-networks", {"help": "What users reach, comma-separated [the internal network]."}),
    ("--dns", {"help": "DNS servers handed to clients, comma-separated [none]."}),
    ("--tunnel-mode", {"type": click.Choice(list(planlib.TUNNEL_MODES)), "help": "split or full [split]."}),
    ("--ike-proposals", {"help": "IKE proposals, comma-separated strongSwan keywords."}),
    ("--esp-proposals", {"help": "ESP proposals, comma-separated strongSwan keywords."}),
    (
        "--esp-pfs-optional/--esp-pfs-required",
        {
            "help": "Let ESP proposals without a DH group (no PFS on rekeys) through, for legacy clients "
            "only; see docs/operations.md, Crypto policy [required]."
        },
    ),
]
_FLAG_TO_KEY = {flag: key for key, flag in planlib.FLAGS.items()}


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
def plan(
    plan_file: Path | None,
    calibration: Path | None,
    from_dir: Path | None,
    out_dir: Path | None,
    as_json: bool,
    force: bool,
    **flags: Any,
) -> None:
    """Turn "how many users" into a farm: node count and why, pools, LB buckets, tuning.

    Prints the plan and writes nothing unless --out DIR is given; then DIR gets hosts.yml, group_vars/,
    host_vars/ and CAPACITY.md. Inputs, later ones winning: defaults, --from DIR's stored plan,
    --calibration, --plan FILE, flags.
    """
    layers: list[Layer] = []
    old_files: dict[str, str] = {}
    existing = kept = None
    if from_dir is not None:
        old_files = inv.read_tree(from_dir)
        stored, existing, kept = inv.existing_farm(old_files, f"--from {from_dir}")
        layers.append((stored, f"inventory {from_dir}"))
    if calibration is not None:
        layers.append(_calibration_layer(calibration))
    if plan_file is not None:
        layers.append(_plan_file_layer(plan_file))
    layers.append(({key: value for key, value in flags.items() if value is not None}, "command line"))

    inp = planlib.resolve_input(layers)
    result = planlib.make_plan(inp, existing)
    files = inv.render_tree(result, kept)
    diff = inv.tree_diff(old_files, files, str(out_dir or from_dir)) if from_dir is not None else None

    stale: list[str] = []
    if out_dir is not None:
        in_place = from_dir is not None and from_dir.resolve() == out_dir.resolve()
        stale = _guard_out_dir(out_dir, files, in_place, force)

    if as_json:
        data = planlib.plan_data(result)
        if diff is not None:
            data["diff"] = diff
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(planlib.plan_text(result), nl=False)
        if diff is not None:
            click.echo(f"\nChanges to {out_dir or from_dir}:")
            click.echo(diff or "(none)\n", nl=False)

    if out_dir is None:
        if from_dir is not None:
            click.echo(f"(nothing written: add --out {from_dir} to apply)", err=True)
        return
    changed = inv.write_tree(out_dir, files, stale)
    summary = f"wrote {len(changed)} file(s) in {out_dir}" if changed else f"{out_dir} is up to date"
    click.echo(summary, err=True)


@click.group("inventory")
def inventory() -> None:
    """Farm inventories (written by `svpn plan --out`, or by hand like inventories/lab)."""


@inventory.command("check")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def check(directory: Path) -> None:
    """Check a farm inventory: files, networks, addresses, pools, concentrator states.

    Any farm: addresses inside their networks and unique, pools overlapping nothing, an active
    concentrator. A planned one (with svpn_plan) also: every planner setting, pool capacity vs users.
    Lists every problem and exits 1 if there is any.
    """
    files = inv.read_tree(directory)
    problems = inv.check_tree(files)
    if problems:
        for problem in problems:
            click.echo(f"{directory}: {problem}", err=True)
        raise InventoryProblems(f"{directory}: {len(problems)} problem(s) found (listed above)")
    click.echo(f"{directory}: OK ({inv.summary(files)})")
