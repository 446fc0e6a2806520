"""`svpn loadtest`: thousands of simulated IKEv2 users through the LB onto a lab farm, measured."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from svpn.cli.options import path_option
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write
from svpn.core.paths import repo_root
from svpn.lab import host as labhost
from svpn.lab.topo import load_lab
from svpn.loadtest.generators import parse_rate
from svpn.loadtest.run import LoadtestOptions, run
from svpn.loadtest.summary import problems, summary_lines


class _Bar:
    """A progress bar per phase (the ramp, the storm) on stderr."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<6}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("up {task.fields[up]}  failed {task.fields[failed]}  {task.fields[rate]}/s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.started: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int, up: int, failed: int) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=total, up=0, failed=0, rate=0)
            self.started[phase] = time.monotonic()
        elapsed = max(time.monotonic() - self.started[phase], 1e-3)
        self.progress.update(
            self.tasks[phase], completed=done, total=total, up=up, failed=failed, rate=round(up / elapsed)
        )


@click.command("loadtest")
@path_option(
    "--inventory",
    "-i",
    kind="dir",
    help="Lab inventory (default: inventories/lab); it must say svpn_lab: true.",
)
@click.option(
    "--users", "-n", type=click.IntRange(min=1), default=1000, show_default=True, help="Simulated users."
)
@click.option(
    "--rate",
    default="unlimited",
    show_default=True,
    help="New users per second overall, or 'unlimited' (then --init-limit handshakes in flight each).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Bound of the whole run in seconds; it stops by itself after the users or this time.",
)
@click.option(
    "--generators", type=click.IntRange(min=1, max=8), default=2, show_default=True, help="Generator hosts."
)
@click.option(
    "--init-limit",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Handshakes in flight per generator.",
)
@click.option(
    "--fresh-nodes/--no-fresh-nodes",
    default=False,
    help="Restart charon on the concentrators first (their users reconnect), so memory per user is "
    "measured on a fresh process; without it the report's calibration leaves rss_kib_per_user out.",
)
@click.option(
    "--storm/--no-storm", default=False, help="With all users up, stop one node and time their return."
)
@click.option(
    "--client-dpd",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="The simulated clients' DPD interval in seconds: how soon they notice a node that died silently.",
)
@click.option(
    "--storm-node", default=None, help="Node to stop for --storm (default: the one with most users)."
)
@click.option(
    "--during",
    default=None,
    metavar="COMMAND",
    help="With every user up, run this shell command (e.g. a rolling upgrade) and count the users through "
    "it; a node whose charon restarts gets the run's connection again. Its output goes to "
    ".lab/loadtest/during-RUN.log (the report names it). The users then have --during-settle seconds "
    "to be back.",
)
@click.option(
    "--during-settle",
    type=click.FloatRange(min=0),
    default=180,
    show_default=True,
    help="Seconds the users have to be back after the --during command.",
)
@click.option(
    "--ike-proposal", default=None, help="The generators' IKE proposal (default: the farm's first)."
)
@click.option(
    "--generator-log-level",
    type=click.IntRange(min=-1, max=4),
    default=-1,
    hidden=True,
    help="charon log level on the generators (logs kept in .lab/loadtest/GEN.log); for debugging.",
)
@path_option(
    "--json",
    "json_file",
    kind="file",
    help="Write the report (the planner's calibration file: `svpn plan --calibration FILE`).",
)
@click.option(
    "--require-clean/--no-require-clean",
    default=True,
    show_default=True,
    help="Fail unless every user came up and nothing of the test remains.",
)
def loadtest(
    inventory: Path | None,
    users: int,
    rate: str,
    duration: float,
    generators: int,
    init_limit: int,
    fresh_nodes: bool,
    storm: bool,
    client_dpd: int,
    storm_node: str | None,
    during: str | None,
    during_settle: float,
    ike_proposal: str | None,
    generator_log_level: int,
    json_file: Path | None,
    require_clean: bool,
) -> None:
    """Drive simulated IKEv2 users (own identity, certificate and source address each) through the LB.

    Each user gets an IKE SA and a CHILD SA with a virtual IP from a concentrator. The concentrators trust
    the load-test CA only for the run (a temporary vici authority and connection, in memory), which is
    checked to be gone afterwards. Reports time until all up, setup rate, failures by reason, users per
    node, each node's CPU per setup and memory per user beside the generators' own CPU.
    """
    topo = load_lab(inventory if inventory is not None else repo_root() / "inventories" / "lab")
    if not labhost.docker_running():
        raise SvpnError("docker is not running: the lab is down (`svpn lab up` brings it up)")
    options = LoadtestOptions(
        users=users,
        rate=parse_rate(rate),
        duration=duration,
        generators=generators,
        storm=storm or storm_node is not None,
        storm_node=storm_node,
        init_limit=init_limit,
        ike_proposal=ike_proposal,
        generator_log_level=generator_log_level,
        fresh_nodes=fresh_nodes,
        client_dpd=client_dpd,
        during=during,
        during_settle=during_settle,
    )
    console = Console(stderr=True)

    def log(message: str) -> None:
        console.print(f"svpn loadtest: {message}", highlight=False)

    bar = _Bar(console)
    with bar.progress:
        report = run(topo, options, log, bar)
    report["command"] = "svpn " + " ".join(sys.argv[1:])
    for line in summary_lines(report):
        click.echo(line)
    if json_file is not None:
        atomic_write(json_file, json.dumps(report, indent=2) + "\n", 0o644)
        click.echo(f"report: {json_file}")
    if require_clean:
        found = problems(report)
        if found:
            raise SvpnError("load test failed: " + "; ".join(found))
