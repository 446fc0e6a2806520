"""`svpn loadtest` at work: one run against a lab farm, step by step, and its report.

The I/O half of the load test (svpn.loadtest.generators, .nodeconf, .figures and .summary hold the logic;
the other modules of svpn.loadtest do the I/O for one concern each). A run first works out everything it
needs without changing anything (`_plan`); then every step that changes something pushes its undo onto a
stack first, and the stack runs in reverse whatever happens (an error, Ctrl-C, the time bound), so a run
leaves the lab as it found it: no generator containers, no LB routes, nothing of the load test in any
concentrator's charon (checked, and reported under "cleanup"). Imports svpn.lab, svpn.farm and svpn.core.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from vici.exception import CommandException, SessionException

from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.farm.buckets import DEFAULT_BUCKETS
from svpn.farm.facts import DEFAULT_NODE_STATE
from svpn.lab.topo import Lab, LabHost
from svpn.loadtest import image as loadgen
from svpn.loadtest.cleanup import sweep, verify_clean
from svpn.loadtest.clients import clients_up, restore_lab_clients, sample_traffic
from svpn.loadtest.containers import container_path, container_pid, docker, docker_network_of, process_pid
from svpn.loadtest.driver import GeneratorDriver, start_generators, write_generator_files
from svpn.loadtest.during import during
from svpn.loadtest.figures import calibration, machine_figures, per_user_figures, spread
from svpn.loadtest.generators import (
    GeneratorSettings,
    GeneratorSpec,
    LoadtestCA,
    initiation_delay_ms,
    make_loadtest_ca,
    plan_generators,
    predicted_spread,
)
from svpn.loadtest.lbs import lb_events, route_sources
from svpn.loadtest.names import SOURCE_RANGE
from svpn.loadtest.nodeconf import FarmOffer, farm_offer, node_pool, overflow_pools
from svpn.loadtest.nodes import (
    RunNode,
    load_node,
    loadtest_sas,
    loadtest_users,
    read_node_conf,
    restart_nodes,
)
from svpn.loadtest.ramp import measured_ramp
from svpn.loadtest.storm import storm
from svpn.loadtest.undo import Log, ProgressFn, Undo


@dataclass(frozen=True)
class LoadtestOptions:
    users: int
    rate: float | None = None  # new users per second overall; None: as fast as init_limit allows
    duration: float = 300.0  # bound of the whole run (ramp and storm), seconds
    generators: int = 2
    storm: bool = False
    storm_node: str | None = None
    init_limit: int = 32
    threads: int = 8
    ike_proposal: str | None = None  # default: the node's first (what the farm prefers)
    esp_proposal: str | None = None
    generator_log_level: int = -1
    fresh_nodes: bool = False  # restart charon on the nodes first, so RSS per user is measurable
    client_dpd: int = 30  # the simulated clients' DPD interval, seconds (how soon they notice a dead node)
    during: str | None = None  # a command to run with every user up (svpn.loadtest.during)
    during_settle: float = 180.0  # how long the users have to come back after it, seconds


@dataclass(frozen=True)
class _Plan:
    """What a run will do, worked out before it changes anything."""

    hosts: list[LabHost]  # the concentrators
    lbs: list[LabHost]
    image: str  # the generator image
    confs: dict[str, dict[str, Any]]  # each node's swanctl.conf, parsed
    nodes: dict[str, RunNode]
    specs: list[GeneratorSpec]
    public_network: str  # the docker network of the farm's public side
    active: list[str]  # the nodes that take new users
    delay: int  # ms between two initiations on one generator
    settings: GeneratorSettings
    run_id: str
    ca: LoadtestCA
    farm_ca_pem: bytes


def run(lab: Lab, options: LoadtestOptions, log: Log, progress: ProgressFn) -> dict[str, Any]:
    """One load test against *lab*; returns the report (svpn.loadtest.summary.summary_lines explains it)."""
    with _exclusive():
        sweep(lab, log)
        clients = clients_up(lab)
        report = _run(lab, options, log, progress)
        report["lab_clients_still_down"] = restore_lab_clients(lab, clients, log)
        return report


def _run(lab: Lab, options: LoadtestOptions, log: Log, progress: ProgressFn) -> dict[str, Any]:
    started_at = dt.datetime.now(dt.UTC)
    wall_start = time.monotonic()
    deadline = wall_start + options.duration
    plan = _plan(lab, options, started_at, log)
    undo = Undo(log)
    report = _report_head(lab, options, plan, started_at)
    rundir = repo_root() / ".lab" / "loadtest" / f"run-{plan.run_id}"
    try:
        _set_up(plan, options, rundir, undo, log)
        report["other_containers"] = _other_containers(lab, plan.specs)
        counts, drivers = _measure(lab, plan, options, deadline, started_at, report, progress, log)
        if options.storm:
            report["storm"] = storm(
                plan.nodes, plan.lbs, options.storm_node, counts, deadline, undo, progress, log
            )
        if options.during:
            report["during"] = _during(plan, options, deadline, rundir, progress, log)
        for driver in drivers.values():
            driver.stop.set()
    finally:
        report["cleanup_errors"] = undo.run()
        # anything the steps above missed (a bug, an interrupted step) goes too, and is reported
        report["cleanup_swept"] = sweep(lab, log)
    report["cleanup"] = verify_clean(plan.nodes, plan.lbs, plan.specs)
    report["duration_s"] = round(time.monotonic() - wall_start, 1)
    return report


# --------------------------------------------------------------------------- before anything changes


def _plan(lab: Lab, options: LoadtestOptions, started_at: dt.datetime, log: Log) -> _Plan:
    """Check the lab, build the generator image, read the nodes and plan the generators (nothing changes)."""
    vip, hosts, lbs = _check_lab(lab)
    image = loadgen.ensure_generator_image(log)
    confs = {h.name: read_node_conf(h) for h in hosts}
    nodes = _plan_nodes(lab, hosts, confs, options.users)
    public = lab.networks["public"]
    taken = {public.subnet.network_address + 1, IPv4Address(vip)}
    taken |= {addr for h in lab.hosts for net, addr in h.addresses.items() if net == "public"}
    specs = plan_generators(options.users, options.generators, public.subnet, taken)
    public_network = docker_network_of(lbs[0].container, public.subnet)
    active = [h.name for h in hosts if h.hostvars.get("concentrator_state", DEFAULT_NODE_STATE) == "active"]
    delay = initiation_delay_ms(options.rate, len(specs))
    offer = farm_offer(confs[hosts[0].name], hosts[0].name)
    run_id = started_at.strftime("%Y%m%dT%H%M%S")
    return _Plan(
        hosts=hosts,
        lbs=lbs,
        image=image,
        confs=confs,
        nodes=nodes,
        specs=specs,
        public_network=public_network,
        active=active,
        delay=delay,
        settings=_generator_settings(offer, vip, options),
        run_id=run_id,
        ca=make_loadtest_ca(run_id, started_at, dt.timedelta(seconds=options.duration + 3600)),
        farm_ca_pem=container_path(hosts[0].container, offer.farm_ca_path).read_bytes(),
    )


def _check_lab(lab: Lab) -> tuple[str, list[LabHost], list[LabHost]]:
    """The farm's public address, its concentrators and LBs, all running; or why the lab cannot be tested."""
    vip = str(_farm_vars(lab).get("svpn_public_address", ""))
    if "public" not in lab.networks or not vip:
        raise SvpnError(f"{lab.inventory}: a load test needs svpn_networks.public and svpn_public_address")
    hosts = lab.group("concentrators")
    lbs = lab.group("loadbalancers")
    if not hosts or not lbs:
        raise SvpnError(f"{lab.inventory}: a load test needs concentrators and loadbalancers")
    for host in [*hosts, *lbs]:
        container_pid(host.container)
    return vip, hosts, lbs


def _plan_nodes(
    lab: Lab, hosts: list[LabHost], confs: dict[str, dict[str, Any]], users: int
) -> dict[str, RunNode]:
    """Each node with its own pool and, where that is too small for its share after a node loss, overflow."""
    pools = {name: node_pool(conf) for name, conf in confs.items()}
    overflow = overflow_pools(
        pools, users, reserved=[*(n.subnet for n in lab.networks.values()), SOURCE_RANGE]
    )
    return {h.name: RunNode(h, pools[h.name], overflow.get(h.name)) for h in hosts}


def _generator_settings(offer: FarmOffer, vip: str, options: LoadtestOptions) -> GeneratorSettings:
    return GeneratorSettings(
        vip=vip,
        vpn_name=offer.vpn_name,
        ike_proposal=options.ike_proposal or offer.ike_proposals[0],
        esp_proposal=options.esp_proposal or offer.esp_proposals[0],
        init_limit=options.init_limit,
        threads=options.threads,
        dpd_delay=options.client_dpd,
        log_level=options.generator_log_level,
    )


def _report_head(lab: Lab, options: LoadtestOptions, plan: _Plan, started_at: dt.datetime) -> dict[str, Any]:
    """The report's opening: what was run, with which generator and options."""
    settings = plan.settings
    return {
        "schema": "svpn-loadtest/1",
        "started_at": started_at.isoformat(timespec="seconds"),
        "inventory": str(lab.inventory),
        "users": options.users,
        "options": {k: v for k, v in asdict(options).items()},
        "generator": {
            "image": plan.image,
            "strongswan": loadgen.STRONGSWAN_VERSION,
            "patch": loadgen.patch_file().name,
            "ike_proposal": settings.ike_proposal,
            "esp_proposal": settings.esp_proposal,
            "count": len(plan.specs),
            "initiation_delay_ms": plan.delay,
            "client": {
                "dpd_delay_s": settings.dpd_delay,
                "retransmit_timeout_s": settings.retransmit_timeout,
                "retransmit_base": settings.retransmit_base,
                "retransmit_tries": settings.retransmit_tries,
                "keyingtries": settings.keyingtries,
            },
        },
        "cores": os.cpu_count(),
    }


# --------------------------------------------------------------------------- the changes (each with its undo)


def _set_up(plan: _Plan, options: LoadtestOptions, rundir: Path, undo: Undo, log: Log) -> None:
    """Generator files, the nodes' temporary credentials, the LBs' routes, the generators themselves."""
    # the load-test CA key lives only in the run directory and in the generators
    write_generator_files(rundir, plan.specs, plan.settings, plan.ca, plan.farm_ca_pem, undo)
    # the nodes: trust the load-test CA, overflow pools, the temporary connection (memory only)
    if options.fresh_nodes:
        restart_nodes(plan.hosts, plan.lbs, log)
    for node in plan.nodes.values():
        load_node(node, plan.confs[node.name], plan.ca, undo, log)
    # the LBs route each generator's source block back to it
    route_sources(plan.lbs, plan.specs, undo)
    start_generators(plan.specs, plan.image, plan.public_network, rundir, undo, log)


def _measure(
    lab: Lab,
    plan: _Plan,
    options: LoadtestOptions,
    deadline: float,
    started_at: dt.datetime,
    report: dict[str, Any],
    progress: ProgressFn,
    log: Log,
) -> tuple[dict[str, int], dict[str, GeneratorDriver]]:
    """The ramp and its figures into *report*; the users each node holds and the (running) drivers."""
    report["ramp"], drivers, use = measured_ramp(plan.nodes, plan.specs, plan.delay, deadline, progress, log)
    counts = {}
    for node in plan.nodes.values():
        good, other = loadtest_sas(node.container)
        counts[node.name] = good
        if other:
            report.setdefault("incomplete_sas", {})[node.name] = other
    report["spread_predicted"] = predicted_spread(plan.specs, plan.active, _lb_buckets(lab))
    report["spread"] = asdict(spread(counts))
    report["spread"]["within_10_pct"] = spread(counts).within()
    report["concentrators"] = {
        name: per_user_figures(use.concentrators[name], counts[name]) for name in plan.nodes
    }
    report["generators"] = {
        spec.name: per_user_figures(use.generators[spec.name], drivers[spec.name].progress.up)
        for spec in plan.specs
    }
    report["machine"] = machine_figures(
        use.machine, report["concentrators"], report["generators"], os.cpu_count()
    )
    report["concentrators_fresh"] = options.fresh_nodes
    report["calibration"] = calibration(
        report["concentrators"], with_rss=options.fresh_nodes, curve=report["ramp"]["cost_curve"]
    )
    report["lb_events"] = lb_events(plan.lbs, started_at)
    report["sample_traffic"] = sample_traffic(lab, log)
    return counts, drivers


def _during(
    plan: _Plan, options: LoadtestOptions, deadline: float, rundir: Path, progress: ProgressFn, log: Log
) -> dict[str, Any]:
    """Run the --during command with every user up, reloading a restarted node's run credentials."""
    assert options.during is not None
    nodes = plan.nodes

    def reload(name: str) -> None:
        try:
            # a scratch undo stack: the run's own already unloads these names at the end
            load_node(nodes[name], plan.confs[name], plan.ca, Undo(log), log)
        except (SvpnError, OSError, CommandException, SessionException) as err:
            raise SvpnError(f"reloading the run's connection into {name}: {err}") from None

    users = sum(loadtest_sas(n.container)[0] for n in nodes.values())
    return during(
        options.during,
        users,
        counter=lambda: {n.name: loadtest_users(n.container) for n in nodes.values()},
        exact=lambda: {n.name: loadtest_sas(n.container)[0] for n in nodes.values()},
        pids=lambda: {n.name: process_pid(n.container, "charon-systemd") for n in nodes.values()},
        reload=reload,
        settle=options.during_settle,
        deadline=deadline,
        output=rundir.parent / f"during-{plan.run_id}.log",  # kept: the run directory goes at the end
        progress=progress,
        log=log,
    )


# --------------------------------------------------------------------------- the lab's inventory and machine


def _farm_vars(lab: Lab) -> dict[str, Any]:
    return lab.farm


def _lb_buckets(lab: Lab) -> int:
    """The LBs' bucket count as Ansible gives it to them (their hostvars; the role's default if unset)."""
    lbs = lab.group("loadbalancers")
    return int(lbs[0].hostvars.get("loadbalancer_buckets", DEFAULT_BUCKETS)) if lbs else DEFAULT_BUCKETS


def _other_containers(lab: Lab, generators: list[GeneratorSpec]) -> list[str]:
    mine = {h.container for h in lab.hosts} | {g.container for g in generators}
    names = docker("ps", "--format", "{{.Names}}", check=False).stdout.split()
    return sorted(n for n in names if n not in mine)


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One load test at a time on this machine: two would load and unload the same names on the nodes."""
    path = repo_root() / ".lab" / "loadtest" / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SvpnError(
                "another `svpn loadtest` is running on this machine; wait for it to end"
            ) from None
        yield
