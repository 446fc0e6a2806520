"""`svpn loadtest` at work: generators, the nodes' temporary credentials, measurements and teardown.

The I/O half of the load test (svpn.loadtest.logic holds the logic). Every step that changes something pushes
its undo onto a stack first, and the stack runs in reverse whatever happens (an error, Ctrl-C, the time
bound), so a run leaves the lab as it found it: no generator containers, no LB routes, nothing of the
load test in any concentrator's charon (checked, and reported under "cleanup").

Charon is reached through each container's own vici socket seen from the host
(/proc/PID/root/run/charon.vici), the generators' load-tester through its control socket the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import vici
import yaml
from cryptography import x509
from vici.exception import CommandException, SessionException

from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.lab import status as labstatus
from svpn.lab.topo import Lab, LabHost
from svpn.loadtest import image as loadgen
from svpn.loadtest import logic as lt

Log = Callable[[str], None]
# progress(phase, done, total, up, failed): called a few times a second while users are set up
ProgressFn = Callable[[str, int, int, int, int], None]

NODE_CONF = "/etc/swanctl/conf.d/svpn.conf"
GENERATOR_CONF_DIR = "/etc/svpn-loadgen"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


# --------------------------------------------------------------------------- small I/O helpers


def _docker(*args: str, check: bool = True, timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise SvpnError(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()}")
    return done


def container_pid(container: str) -> int:
    done = _docker("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", container, check=False)
    running, _, pid = done.stdout.strip().partition(" ")
    if done.returncode != 0 or running != "true":
        raise SvpnError(f"container {container} is not running (`svpn lab up` starts the lab)")
    return int(pid)


def process_pid(container: str, command: str) -> int:
    """The host PID of *command* inside *container* (0 if it does not run)."""
    done = _docker("top", container, "-eo", "pid,comm", check=False)
    for line in done.stdout.splitlines()[1:]:
        pid, _, comm = line.strip().partition(" ")
        if comm.strip() == command:
            return int(pid)
    return 0


def node_path(container: str, path: str) -> Path:
    return Path(f"/proc/{container_pid(container)}/root{path}")


@contextlib.contextmanager
def vici_session(container: str, timeout: float = 30.0) -> Iterator[vici.Session]:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    try:
        sock.connect(str(node_path(container, "/run/charon.vici")))
    except OSError as err:
        sock.close()
        raise SvpnError(f"{container}: cannot reach charon's vici socket: {err}") from None
    try:
        yield vici.Session(sock)
    finally:
        sock.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def process_use(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS KiB) of a process; (0, 0) once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0
    return lt.proc_cpu_seconds(stat, CLOCK_TICKS), lt.proc_rss_kib(status)


def machine_jiffies() -> tuple[float, float]:
    return lt.machine_cpu(Path("/proc/stat").read_text())


class Undo:
    """A stack of clean-up steps, run in reverse; a failing step is logged and the rest still run."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.steps: list[tuple[str, Callable[[], None]]] = []

    def push(self, what: str, step: Callable[[], None]) -> None:
        self.steps.append((what, step))

    def run(self) -> list[str]:
        errors = []
        while self.steps:
            what, step = self.steps.pop()
            try:
                step()
            except Exception as err:
                errors.append(f"{what}: {err}")
                self.log(f"clean-up step failed: {what}: {err}")
        return errors


# --------------------------------------------------------------------------- the nodes


def node_counts(container: str, pool_names: list[str]) -> int:
    """Online leases in the given pools of a node (cheap: no SA listing)."""
    try:
        with vici_session(container, timeout=5) as session:
            pools = session.get_pools()
    except (SvpnError, OSError, SessionException):
        return 0
    return sum(int(_text(pools[name]["online"])) for name in pool_names if name in pools)


def loadtest_sas(container: str, block: bool = True) -> tuple[int, int]:
    """(load-test IKE SAs with an installed CHILD SA and a virtual IP, other load-test IKE SAs).

    *block*: wait for SAs that are busy (in an exchange) rather than skip them, for an exact count.
    """
    good = other = 0
    query = {"ike": lt.CONN_NAME} if block else {"ike": lt.CONN_NAME, "noblock": "yes"}
    try:
        with vici_session(container, timeout=60) as session:
            for entry in session.list_sas(query):
                for sa in entry.values():
                    children = sa.get("child-sas", {}) or {}
                    installed = any(_text(c.get("state")) == "INSTALLED" for c in children.values())
                    if _text(sa.get("state")) == "ESTABLISHED" and installed and sa.get("remote-vips"):
                        good += 1
                    else:
                        other += 1
    except SvpnError:
        pass
    return good, other


def node_leftovers(container: str, overflow_pool: str | None) -> dict[str, list[str]]:
    """What of the load test a node's charon still knows: connections, authorities, pools, certs."""
    with vici_session(container) as session:
        conns = lt.conn_leftovers(session.list_conns())
        authorities = sorted(
            name for entry in session.list_authorities() for name in entry if name == lt.AUTHORITY_NAME
        )
        pools = sorted(name for name in session.get_pools() if name.startswith(lt.OVERFLOW_POOL_PREFIX))
        subjects = []
        for cert in session.list_certs({"type": "X509"}):
            with contextlib.suppress(ValueError):
                subjects.append(x509.load_der_x509_certificate(bytes(cert["data"])).subject.rfc4514_string())
        count = len(lt.conn_leftovers(session.list_sas({"noblock": "yes"})))
        sas = [f"{count} IKE SAs of {lt.CONN_NAME}"] if count else []
    certs = lt.cert_leftovers(subjects)
    return {
        k: v
        for k, v in {
            "conns": conns,
            "authorities": authorities,
            "pools": pools,
            "certs": certs,
            "sas": sas,
        }.items()
        if v
    }


# --------------------------------------------------------------------------- generators


class GeneratorDriver(threading.Thread):
    """Feeds one generator's control socket: "USERS DELAY_MS", then reads its progress characters."""

    def __init__(self, spec: lt.GeneratorSpec, delay_ms: int, lock: threading.Lock) -> None:
        super().__init__(name=f"drive-{spec.name}", daemon=True)
        self.spec = spec
        self.delay_ms = delay_ms
        self.lock = lock
        self.progress = lt.GeneratorProgress()
        self.stop = threading.Event()
        self.error = ""

    def run(self) -> None:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(str(node_path(self.spec.container, "/run/charon.ldt")))
            sock.sendall(f"{self.spec.users} {self.delay_ms}\n".encode())
            sock.settimeout(0.25)
            while not self.stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                with self.lock:
                    self.progress.feed(data.decode("ascii", "replace"), time.monotonic())
        except (OSError, SvpnError) as err:
            self.error = str(err)
        finally:
            sock.close()


def _wait_for(path_fn: Callable[[], Path], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(SvpnError, OSError):
            if path_fn().exists():
                return
        time.sleep(0.2)
    raise SvpnError(f"{what} did not appear within {timeout:.0f} s")


def _start_generator(spec: lt.GeneratorSpec, image: str, network: str, config_dir: Path, log: Log) -> None:
    _docker("rm", "--force", spec.container, check=False)
    _docker(
        "run", "--detach", "--name", spec.container, "--hostname", spec.name, "--label", "svpn-lab",
        "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
        "--network", network, "--ip", str(spec.public_address),
        "--volume", f"{config_dir}:{GENERATOR_CONF_DIR}:ro",
        "--env", f"STRONGSWAN_CONF={GENERATOR_CONF_DIR}/strongswan.conf",
        "--entrypoint", "/bin/sh", image, "-c",
        f"ip -batch {GENERATOR_CONF_DIR}/addresses && exec {loadgen.CHARON}",
    )  # fmt: skip
    _wait_for(lambda: node_path(spec.container, "/run/charon.ldt"), f"{spec.container}'s control socket", 30)
    log(f"{spec.container}: {spec.users} users from {spec.first_source}-{spec.last_source}")


def _lb_exec(lb: LabHost, *args: str) -> subprocess.CompletedProcess[str]:
    return _docker("exec", lb.container, *args, check=False)


# --------------------------------------------------------------------------- the run


@dataclass
class _Node:
    host: LabHost
    pool: lt.NodePool
    overflow: Any  # IPv4Network | None
    pid: int = 0

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def container(self) -> str:
        return self.host.container

    @property
    def pool_names(self) -> list[str]:
        return [self.pool.name] + ([self.overflow_name] if self.overflow else [])

    @property
    def overflow_name(self) -> str:
        return f"{lt.OVERFLOW_POOL_PREFIX}{self.name}"


def _farm_vars(lab: Lab) -> dict[str, Any]:
    return yaml.safe_load((lab.inventory / "group_vars" / "all.yml").read_text()) or {}


def _docker_network_of(container: str, subnet: lt.IPv4Network) -> str:
    """The docker network through which *container* sits on *subnet* (lab and molecule name them apart)."""
    done = _docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container)
    for name, net in (json.loads(done.stdout) or {}).items():
        with contextlib.suppress(ValueError):
            if lt.IPv4Address(net.get("IPAddress") or "0.0.0.0") in subnet:
                return name
    raise SvpnError(f"{container} is on no docker network with the subnet {subnet}")


def _lb_buckets(lab: Lab) -> int:
    path = lab.inventory / "group_vars" / "loadbalancers.yml"
    data = yaml.safe_load(path.read_text()) if path.exists() else {}
    return int((data or {}).get("loadbalancer_buckets", lt.DEFAULT_BUCKETS))


def _other_containers(lab: Lab, generators: list[lt.GeneratorSpec]) -> list[str]:
    mine = {h.container for h in lab.hosts} | {g.container for g in generators}
    names = _docker("ps", "--format", "{{.Names}}", check=False).stdout.split()
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


def _clients_up(lab: Lab) -> set[str]:
    """The lab's own clients (group lab_clients) that have their tunnel up."""
    up = set()
    for client in lab.group("lab_clients"):
        with contextlib.suppress(SvpnError, OSError, SessionException):
            sas = labstatus.list_sas(client.container, ike=labstatus.LAB_CONNECTION)
            if any(sa.get("state") == "ESTABLISHED" and sa.get("children") for sa in sas):
                up.add(client.name)
    return up


def restore_lab_clients(lab: Lab, before: set[str], log: Log, timeout: float = 60) -> list[str]:
    """Bring back the lab's own clients that were up before the run (node restarts and a storm may have
    left one that gave up, e.g. after too many COOKIE rounds); returns those still down."""
    missing = before - _clients_up(lab)
    by_name = {c.name: c for c in lab.group("lab_clients")}
    for name in sorted(missing):
        subprocess.Popen(
            [
                "docker",
                "exec",
                by_name[name].container,
                "swanctl",
                "--initiate",
                "--child",
                "svpn",
                "--timeout",
                "30",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        time.sleep(2)
        missing = before - _clients_up(lab)
    if before:
        log(f"lab clients up again: {len(before) - len(missing)} of {len(before)}")
    return sorted(missing)


SAMPLE_PINGS = 20  # per lab client, 0.2 s apart: 4 s, all clients at once


def sample_traffic(lab: Lab, log: Log) -> dict[str, dict[str, Any]]:
    """Traffic through the lab's own clients' tunnels while the load is up (they carry ESP; the simulated
    users do not): does the app answer each client's virtual IP, and ping loss and round-trip times."""
    apps = lab.group("lab_apps")
    if not apps:
        log("traffic sample skipped: no host in group lab_apps")
        return {}
    app = str(apps[0].addresses["internal"])
    rows = {
        row.host: row for row in labstatus.client_statuses(lab, f"http://{app}/") if row.virtual_ip != "-"
    }
    by_name = {c.name: c for c in lab.group("lab_clients")}
    ping = ["ping", "-q", "-n", "-c", str(SAMPLE_PINGS), "-i", "0.2", "-W", "2", app]
    pings = {
        name: subprocess.Popen(
            ["docker", "exec", by_name[name].container, *ping],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in rows
    }
    sample = {}
    for name, proc in pings.items():
        out, _ = proc.communicate(timeout=SAMPLE_PINGS * 0.2 + 30)
        sample[name] = {
            "virtual_ip": rows[name].virtual_ip,
            "node": rows[name].node,
            "through_tunnel": rows[name].app_reachable,
            **lt.ping_summary(out),
        }
    return sample


def run(lab: Lab, options: LoadtestOptions, log: Log, progress: ProgressFn) -> dict[str, Any]:
    """One load test against *lab*; returns the report (svpn.loadtest.logic.summary_lines explains it)."""
    with _exclusive():
        sweep(lab, log)
        clients = _clients_up(lab)
        report = _run(lab, options, log, progress)
        report["lab_clients_still_down"] = restore_lab_clients(lab, clients, log)
        return report


def _run(lab: Lab, options: LoadtestOptions, log: Log, progress: ProgressFn) -> dict[str, Any]:
    started_at = dt.datetime.now(dt.UTC)
    wall_start = time.monotonic()
    deadline = wall_start + options.duration
    farm = _farm_vars(lab)
    vip = str(farm.get("svpn_public_address", ""))
    if "public" not in lab.networks or not vip:
        raise SvpnError(f"{lab.inventory}: a load test needs svpn_networks.public and svpn_public_address")
    hosts = lab.group("concentrators")
    lbs = lab.group("loadbalancers")
    if not hosts or not lbs:
        raise SvpnError(f"{lab.inventory}: a load test needs concentrators and loadbalancers")
    for host in [*hosts, *lbs]:
        container_pid(host.container)

    image = loadgen.ensure_generator_image(log)
    confs = {h.name: lt.parse_swanctl(node_path(h.container, NODE_CONF).read_text()) for h in hosts}
    pools = {name: lt.node_pool(conf) for name, conf in confs.items()}
    overflow = lt.overflow_pools(
        pools, options.users, reserved=[*(n.subnet for n in lab.networks.values()), lt.SOURCE_RANGE]
    )
    nodes = {h.name: _Node(h, pools[h.name], overflow.get(h.name)) for h in hosts}
    public = lab.networks["public"]
    taken = {public.subnet.network_address + 1, lt.IPv4Address(vip)}
    taken |= {addr for h in lab.hosts for net, addr in h.addresses.items() if net == "public"}
    specs = lt.plan_generators(options.users, options.generators, public.subnet, taken)
    public_network = _docker_network_of(lbs[0].container, public.subnet)
    active = [h.name for h in hosts if h.hostvars.get("concentrator_state", "active") == "active"]
    delay = lt.initiation_delay_ms(options.rate, len(specs))

    first = confs[hosts[0].name]
    svpn_conn = lt.node_conn(first)
    proposals = lt._vici_value("proposals", svpn_conn.get("proposals", ""))
    esp = lt._vici_value(
        "esp_proposals", next(iter(svpn_conn.get("children", {}).values()), {}).get("esp_proposals", "")
    )
    vpn_name = next(
        (v.get("id") for k, v in svpn_conn.items() if k.startswith("local") and isinstance(v, dict)), None
    )
    if not proposals or not esp or not vpn_name:
        raise SvpnError(f"{hosts[0].name}: connection svpn lacks proposals, esp_proposals or a local id")
    settings = lt.GeneratorSettings(
        vip=vip,
        vpn_name=str(vpn_name),
        ike_proposal=options.ike_proposal or proposals[0],
        esp_proposal=options.esp_proposal or esp[0],
        init_limit=options.init_limit,
        threads=options.threads,
        dpd_delay=options.client_dpd,
        log_level=options.generator_log_level,
    )
    run_id = started_at.strftime("%Y%m%dT%H%M%S")
    ca = lt.make_loadtest_ca(run_id, started_at, dt.timedelta(seconds=options.duration + 3600))
    farm_ca = next(
        (v.get("cacerts") for k, v in svpn_conn.items() if k.startswith("remote") and isinstance(v, dict)),
        None,
    )
    if not farm_ca:
        raise SvpnError(f"{hosts[0].name}: connection svpn names no remote cacerts (the farm CA)")
    farm_ca_pem = node_path(
        hosts[0].container, farm_ca if farm_ca.startswith("/") else f"/etc/swanctl/x509ca/{farm_ca}"
    ).read_bytes()

    undo = Undo(log)
    report: dict[str, Any] = {
        "schema": "svpn-loadtest/1",
        "started_at": started_at.isoformat(timespec="seconds"),
        "inventory": str(lab.inventory),
        "users": options.users,
        "options": {k: v for k, v in asdict(options).items()},
        "generator": {
            "image": image,
            "strongswan": loadgen.STRONGSWAN_VERSION,
            "patch": loadgen.patch_file().name,
            "ike_proposal": settings.ike_proposal,
            "esp_proposal": settings.esp_proposal,
            "count": len(specs),
            "initiation_delay_ms": delay,
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
    rundir = repo_root() / ".lab" / "loadtest" / f"run-{run_id}"
    try:
        # -- generator files (the load-test CA key lives only here and in the generators)
        rundir.mkdir(parents=True, mode=0o700)
        undo.push("remove the run directory", lambda: shutil.rmtree(rundir, ignore_errors=True))
        template = (repo_root() / "loadgen" / "strongswan.conf.j2").read_text()
        for spec in specs:
            gen_dir = rundir / spec.name
            (gen_dir / "cas").mkdir(parents=True, mode=0o700)
            (gen_dir / "strongswan.conf").write_text(lt.render_generator_conf(template, spec, settings))
            (gen_dir / "issuer.crt").write_bytes(ca.cert_pem)
            (gen_dir / "issuer.key").write_bytes(ca.key_pem)
            (gen_dir / "cas" / "farm-ca.crt").write_bytes(farm_ca_pem)
            (gen_dir / "addresses").write_text(lt.address_batch(spec))

        # -- the nodes: trust the load-test CA, overflow pools, the temporary connection (memory only)
        if options.fresh_nodes:
            restart_nodes(hosts, lbs, log)
        for node in nodes.values():
            _load_node(node, confs[node.name], ca, undo, log)

        # -- the LBs route each generator's source block back to it
        for lb in lbs:
            for spec in specs:
                route = [str(spec.source_block), "via", str(spec.public_address)]
                done = _lb_exec(lb, "ip", "route", "replace", *route)
                if done.returncode != 0:
                    raise SvpnError(f"{lb.name}: ip route replace {' '.join(route)}: {done.stderr.strip()}")
                undo.push(
                    f"{lb.name}: remove the route to {spec.source_block}",
                    lambda lb=lb, route=route: _lb_exec(lb, "ip", "route", "del", *route),
                )

        # -- the generators
        for spec in specs:
            undo.push(f"remove {spec.container}", lambda spec=spec: _stop_generator(spec))
            _start_generator(spec, image, public_network, rundir / spec.name, log)
        report["other_containers"] = _other_containers(lab, specs)

        # -- the ramp
        for node in nodes.values():
            node.pid = process_pid(node.container, "charon-systemd")
        gen_pids = {spec.name: process_pid(spec.container, "charon") for spec in specs}
        before = {n.name: process_use(n.pid) for n in nodes.values()}
        gen_before = {name: process_use(pid) for name, pid in gen_pids.items()}
        machine_before = machine_jiffies()
        report["ramp"], drivers = _ramp(
            specs, delay, deadline, progress, log, [n.pid for n in nodes.values()], list(gen_pids.values())
        )
        after = {n.name: process_use(n.pid) for n in nodes.values()}
        gen_after = {name: process_use(pid) for name, pid in gen_pids.items()}
        machine_after = machine_jiffies()

        counts = {}
        for node in nodes.values():
            good, other = loadtest_sas(node.container)
            counts[node.name] = good
            if other:
                report.setdefault("incomplete_sas", {})[node.name] = other
        report["spread_predicted"] = lt.predicted_spread(specs, active, _lb_buckets(lab))
        report["spread"] = asdict(lt.spread(counts))
        report["spread"]["within_10_pct"] = lt.spread(counts).within()
        report["concentrators"] = {
            name: lt.per_user_figures(
                lt.ProcessUse(after[name][0] - before[name][0], before[name][1], after[name][1]), counts[name]
            )
            for name in nodes
        }
        report["generators"] = {
            spec.name: lt.per_user_figures(
                lt.ProcessUse(
                    gen_after[spec.name][0] - gen_before[spec.name][0],
                    gen_before[spec.name][1],
                    gen_after[spec.name][1],
                ),
                drivers[spec.name].progress.up,
            )
            for spec in specs
        }
        busy = machine_after[0] - machine_before[0]
        total = machine_after[1] - machine_before[1]
        conc_cpu = sum(r["cpu_s"] for r in report["concentrators"].values())
        gen_cpu = sum(r["cpu_s"] for r in report["generators"].values())
        report["machine"] = {
            "cores": os.cpu_count(),
            "busy_pct": round(busy / total * 100, 1) if total else 0.0,
            "concentrators_cpu_s": round(conc_cpu, 2),
            "generators_cpu_s": round(gen_cpu, 2),
            "generator_share_pct": round(gen_cpu / (gen_cpu + conc_cpu) * 100, 1)
            if gen_cpu + conc_cpu
            else 0.0,
        }
        report["concentrators_fresh"] = options.fresh_nodes
        report["calibration"] = lt.calibration(
            report["concentrators"], with_rss=options.fresh_nodes, curve=report["ramp"]["cost_curve"]
        )
        report["lb_events"] = _lb_events(lbs, started_at)
        report["sample_traffic"] = sample_traffic(lab, log)

        # -- the reconnect storm
        if options.storm:
            report["storm"] = _storm(nodes, lbs, options, counts, deadline, undo, progress, log)
        for driver in drivers.values():
            driver.stop.set()
    finally:
        report["cleanup_errors"] = undo.run()
        # anything the steps above missed (a bug, an interrupted step) goes too, and is reported
        report["cleanup_swept"] = sweep(lab, log)
    report["cleanup"] = _verify_clean(nodes, lbs, specs)
    report["duration_s"] = round(time.monotonic() - wall_start, 1)
    return report


def _load_node(node: _Node, conf: dict[str, Any], ca: lt.LoadtestCA, undo: Undo, log: Log) -> None:
    container = node.container
    with vici_session(container) as session:
        session.load_authority({lt.AUTHORITY_NAME: {"cacert": ca.cert_pem}})
        undo.push(f"{node.name}: unload the load-test authority", lambda: _unload(container, "authority"))
        if node.overflow:
            session.load_pool({node.overflow_name: {"addrs": str(node.overflow)}})
            undo.push(
                f"{node.name}: unload pool {node.overflow_name}",
                lambda: _unload(container, "pool", node.overflow_name),
            )
        session.load_conn(lt.loadtest_conn(conf, ca.dn, node.pool_names))
        undo.push(f"{node.name}: unload connection {lt.CONN_NAME}", lambda: _unload(container, "conn"))
    log(
        f"{node.name}: loaded connection {lt.CONN_NAME} (pools {', '.join(node.pool_names)})"
        + (f", overflow {node.overflow}" if node.overflow else "")
    )


def _running(container: str) -> bool:
    return process_pid(container, "charon-systemd") != 0


def _terminate_loadtest_sas(session: vici.Session) -> None:
    # force: delete without waiting for the (possibly gone) peer; timeout -1: do not wait here either
    with contextlib.suppress(CommandException):
        for _ in session.terminate({"ike": lt.CONN_NAME, "force": "yes", "timeout": "-1"}):
            pass


def _unload(container: str, what: str, name: str = "") -> None:
    """Remove one load-test item from a node's charon (a node whose charon restarted has none)."""
    if not _running(container):
        return
    with vici_session(container, timeout=120) as session:
        if what == "conn":
            if not lt.conn_leftovers(session.list_conns()):
                return  # gone with a charon restart
            # SAs of the connection go first (the generators' DELETEs normally did that already)
            deadline = time.monotonic() + 30
            while loadtest_sas(container, block=False) != (0, 0) and time.monotonic() < deadline:
                time.sleep(1)
            if loadtest_sas(container, block=False) != (0, 0):
                _terminate_loadtest_sas(session)
            session.unload_conn({"name": lt.CONN_NAME})
        elif what == "pool":
            if name not in session.get_pools():
                return
            deadline = time.monotonic() + 30
            while True:
                try:
                    session.unload_pool({"name": name})
                    break
                except CommandException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
        elif what == "authority":
            with contextlib.suppress(CommandException):
                session.unload_authority({"name": lt.AUTHORITY_NAME})
            # certificates cached while verifying load-test users go too (the cache refills itself)
            session.flush_certs({"type": "x509"})


def sweep(lab: Lab, log: Log) -> list[str]:
    """Remove whatever a load test may have left (a crashed run): generators, LB routes, node items.

    Runs before every load test and after its own teardown; returns what it had to remove.
    """
    removed = []
    names = _docker("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    for name in names:
        if name.startswith(lt.GENERATOR_CONTAINER_PREFIX):
            _docker("rm", "--force", name, check=False)
            removed.append(f"container {name}")
    for lb in lab.group("loadbalancers"):
        if _docker("container", "inspect", lb.container, check=False).returncode != 0:
            continue
        for line in _lb_exec(lb, "ip", "-4", "route", "show").stdout.splitlines():
            dest = line.split(" ", 1)[0]
            with contextlib.suppress(ValueError):
                if lt.IPv4Network(dest).subnet_of(lt.SOURCE_RANGE):
                    _lb_exec(lb, "ip", "route", "del", dest)
                    removed.append(f"{lb.name}: route {dest}")
    for host in lab.group("concentrators"):
        try:
            if not _running(host.container):
                continue
            with vici_session(host.container) as session:
                busy = loadtest_sas(host.container, block=False) != (0, 0)
                if lt.conn_leftovers(session.list_conns()) or busy:
                    _terminate_loadtest_sas(session)
                    deadline = time.monotonic() + 15
                    while loadtest_sas(host.container, block=False) != (0, 0) and time.monotonic() < deadline:
                        time.sleep(1)
                if lt.conn_leftovers(session.list_conns()):
                    session.unload_conn({"name": lt.CONN_NAME})
                    removed.append(f"{host.name}: connection {lt.CONN_NAME}")
                for pool in session.get_pools():
                    if pool.startswith(lt.OVERFLOW_POOL_PREFIX):
                        with contextlib.suppress(CommandException):
                            session.unload_pool({"name": pool})
                            removed.append(f"{host.name}: pool {pool}")
                if any(lt.AUTHORITY_NAME in entry for entry in session.list_authorities()):
                    session.unload_authority({"name": lt.AUTHORITY_NAME})
                    removed.append(f"{host.name}: authority {lt.AUTHORITY_NAME}")
                session.flush_certs({"type": "x509"})
        except (SvpnError, OSError, SessionException, CommandException) as err:
            removed.append(f"{host.name}: could not check ({err})")
    for item in removed:
        log(f"removed a leftover: {item}")
    return removed


def _stop_generator(spec: lt.GeneratorSpec) -> None:
    # SIGTERM: charon deletes its IKE SAs (the nodes free them at once), then exits
    _docker("stop", "--time", "30", spec.container, check=False, timeout=60)
    logs = _docker("logs", spec.container, check=False)
    if logs.stdout or logs.stderr:
        path = repo_root() / ".lab" / "loadtest" / f"{spec.name}.log"
        path.write_text(logs.stdout + logs.stderr)
    _docker("rm", "--force", spec.container, check=False)


def _ramp(
    specs: list[lt.GeneratorSpec],
    delay: int,
    deadline: float,
    progress: ProgressFn,
    log: Log,
    node_pids: list[int],
    gen_pids: list[int],
) -> tuple[dict[str, Any], dict[str, GeneratorDriver]]:
    lock = threading.Lock()
    drivers = {spec.name: GeneratorDriver(spec, delay, lock) for spec in specs}
    start = time.monotonic()
    for driver in drivers.values():
        driver.start()
    total = sum(spec.users for spec in specs)
    timed_out = False
    samples: list[tuple[int, float, float]] = []  # (users up, nodes' CPU s, generators' CPU s)
    next_sample = start
    while True:
        with lock:
            up = sum(d.progress.up for d in drivers.values())
            failed = sum(d.progress.failed for d in drivers.values())
        progress("ramp", up + failed, total, up, failed)
        if time.monotonic() >= next_sample:
            samples.append(
                (
                    up,
                    sum(process_use(pid)[0] for pid in node_pids),
                    sum(process_use(pid)[0] for pid in gen_pids),
                )
            )
            next_sample += 1.0
        if up + failed >= total:
            break
        if time.monotonic() > deadline:
            timed_out = True
            log("the time bound (--duration) ran out before every user was set up")
            break
        if all(not d.is_alive() for d in drivers.values()):
            errors = "; ".join(f"{d.spec.name}: {d.error}" for d in drivers.values() if d.error)
            log(f"every generator stopped reporting before the end{': ' + errors if errors else ''}")
            break
        time.sleep(0.2)
    end = time.monotonic()
    with lock:
        up_times = sorted(t for d in drivers.values() for t in d.progress.up_times)
        failures: dict[str, int] = {}
        for d in drivers.values():
            for key, count in d.progress.failures.items():
                failures[key] = failures.get(key, 0) + count
        ramp = {
            "up": len(up_times),
            "failed": sum(failures.values()),
            "failures": lt.failure_table(failures),
            "failure_codes": failures,
            "retransmits": sum(d.progress.retransmits for d in drivers.values()),
            "time_to_all_up_s": lt.time_to_count(up_times, start, total),
            "time_to_half_up_s": lt.time_to_count(up_times, start, (total + 1) // 2),
            "elapsed_s": round(end - start, 2),
            "timed_out": timed_out,
            "mean_rate_per_s": round(len(up_times) / (up_times[-1] - start), 1) if up_times else 0.0,
            "cost_curve": lt.cost_curve(
                [
                    *samples,
                    (
                        len(up_times),
                        *[sum(process_use(p)[0] for p in pids) for pids in (node_pids, gen_pids)],
                    ),
                ],
                step=max(total // 10, 1),
            ),
            "setup_rate": lt.rate_timeline(up_times, start),
            "per_generator": {
                name: {"users": d.spec.users, "up": d.progress.up, "failed": d.progress.failed}
                for name, d in drivers.items()
            },
        }
    return ramp, drivers


def _storm(
    nodes: dict[str, _Node],
    lbs: list[LabHost],
    options: LoadtestOptions,
    counts: dict[str, int],
    deadline: float,
    undo: Undo,
    progress: ProgressFn,
    log: Log,
) -> dict[str, Any]:
    """Stop one node's charon with its users up; time until every one of them is back on a survivor."""
    victim = options.storm_node or max(counts, key=lambda n: counts[n])
    if victim not in nodes:
        raise SvpnError(f"--storm-node: {victim!r} is not a concentrator of this lab ({', '.join(nodes)})")
    lost = counts[victim]
    total = sum(counts.values())
    survivors = [n for n in nodes.values() if n.name != victim]
    baseline = {n.name: node_counts(n.container, n.pool_names) for n in survivors}
    container = nodes[victim].container
    log(f"reconnect storm: stopping strongswan on {victim} with {lost} load-test users")
    # (run in reverse: start it, then wait for the LBs)
    undo.push("wait until the LBs see every node again", lambda: wait_lbs_see_all_up(lbs, list(nodes), log))
    undo.push(f"{victim}: start strongswan again", lambda: _restart_node(container))
    start = time.monotonic()
    subprocess.Popen(
        ["docker", "exec", container, "systemctl", "stop", "strongswan"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    timeline: list[list[float]] = []
    recovery = lbs_moved = None
    exact: dict[str, int] = {}
    next_exact = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        back = sum(node_counts(n.container, n.pool_names) - baseline[n.name] for n in survivors)
        back = max(back, 0)
        timeline.append([round(now - start, 2), back])
        if lbs_moved is None and all(view.get(victim) is False for view in _lb_views(lbs)):
            lbs_moved = round(now - start, 2)
        progress("storm", min(back, lost), lost, min(back, lost), 0)
        if back >= lost and now >= next_exact:
            exact = {n.name: loadtest_sas(n.container)[0] for n in survivors}
            if sum(exact.values()) >= total:
                recovery = round(now - start, 2)
                break
            next_exact = time.monotonic() + 2
        time.sleep(0.5)
    if not exact or recovery is None:
        exact = {n.name: loadtest_sas(n.container)[0] for n in survivors}
    return {
        "node": victim,
        "users_lost": lost,
        "users_back": max(sum(exact.values()) - (total - lost), 0),
        "recovery_s": recovery,
        "lbs_moved_buckets_s": lbs_moved,
        **lt.storm_milestones(timeline, lost),
        "survivors": exact,
        "spread_after": asdict(lt.spread(exact)),
        "timeline": timeline,
    }


def _restart_node(container: str) -> None:
    _docker("exec", container, "systemctl", "start", "strongswan", timeout=120)
    _wait_for(lambda: node_path(container, "/run/charon.vici"), f"{container}'s vici socket", 60)


def _lb_views(lbs: list[LabHost]) -> list[dict[str, bool]]:
    views = []
    for lb in lbs:
        try:
            state = json.loads(node_path(lb.container, "/run/svpn-lb/state.json").read_text())
        except (OSError, ValueError, SvpnError):
            views.append({})
            continue
        views.append({node["name"]: bool(node.get("up")) for node in state.get("nodes", [])})
    return views


def _lb_events(lbs: list[LabHost], since: dt.datetime) -> dict[str, list[str]]:
    """The LB health checkers' node state changes since *since* (a busy node may miss its probes)."""
    events = {}
    stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    for lb in lbs:
        out = _lb_exec(
            lb, "journalctl", "-u", "svpn-lb-health", "--no-pager", "-o", "cat", "--since", stamp
        ).stdout
        events[lb.name] = [line for line in out.splitlines() if ": DOWN:" in line or ": UP:" in line]
    return events


def wait_lbs_see_all_up(lbs: list[LabHost], names: list[str], log: Log, timeout: float = 60) -> None:
    """Until every LB's health checker has every node up (its buckets back), for 3 s in a row."""
    deadline = time.monotonic() + timeout
    steady_since = None
    while time.monotonic() < deadline:
        ok = all(all(view.get(name) for name in names) for view in _lb_views(lbs))
        if ok:
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since >= 3:
                return
        else:
            steady_since = None
        time.sleep(0.5)
    log(f"the LBs do not see every node up after {timeout:.0f} s: {_lb_views(lbs)}")


def restart_nodes(hosts: list[LabHost], lbs: list[LabHost], log: Log) -> None:
    """Restart charon on every concentrator (a fresh process: memory per user is then measurable)."""
    for host in hosts:
        _docker("exec", host.container, "systemctl", "restart", "strongswan", timeout=120)
    for host in hosts:
        _wait_for(lambda host=host: node_path(host.container, "/run/charon.vici"), f"{host.name}'s vici", 60)
    time.sleep(3)  # let the health checkers notice, if they will
    wait_lbs_see_all_up(lbs, [h.name for h in hosts], log)
    log(f"restarted strongswan on {', '.join(h.name for h in hosts)}")


def _verify_clean(
    nodes: dict[str, _Node], lbs: list[LabHost], specs: list[lt.GeneratorSpec]
) -> dict[str, Any]:
    """After teardown: nothing of the load test on any node, LB or in docker."""
    found: dict[str, Any] = {}
    for node in nodes.values():
        try:
            left = node_leftovers(node.container, node.overflow_name if node.overflow else None)
        except SvpnError as err:
            left = {"error": [str(err)]}
        if left:
            found[node.name] = left
    for lb in lbs:
        routes = _lb_exec(lb, "ip", "-4", "route", "show").stdout
        stale = [str(s.source_block) for s in specs if str(s.source_block) in routes]
        if stale:
            found[lb.name] = {"routes": stale}
    containers = [
        s.container
        for s in specs
        if _docker("container", "inspect", s.container, check=False).returncode == 0
    ]
    if containers:
        found["docker"] = {"containers": containers}
    return {"clean": not found, "left": found}
