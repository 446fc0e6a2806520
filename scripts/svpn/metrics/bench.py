"""`python -m svpn.metrics.bench`: what a scrape of each exporter costs on a lab farm, measured the way the
issue asks: wall time of the scrape as Prometheus' host sees it (curl on the monitoring host) and the exporter
process's CPU (utime+stime from /proc) per scrape, plus its CPU share over a window in which Prometheus
scrapes as configured. Run it while the load test holds users (`make bench-metrics`). I/O through `docker
exec` on the lab's containers; the summary is pure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from svpn.core.ansible_inventory import read_inventory
from svpn.core.errors import SvpnError
from svpn.farm.scrape import DEFAULT_EXPORTER_PORT

CLOCK_TICKS = 100  # Linux's USER_HZ: /proc/PID/stat counts CPU time in 1/100 s


def docker(container: str, command: str) -> str:
    done = subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True)
    if done.returncode != 0:
        raise SvpnError(f"{container}: {command!r} failed: {done.stderr.strip()}")
    return done.stdout


def cpu_seconds(container: str) -> float:
    """The exporter's CPU in seconds: its own utime+stime and its children's (nft, ip) that it waited for
    (fields 14 to 17 of /proc/PID/stat)."""
    stat = docker(container, "cat /proc/$(systemctl show -p MainPID --value svpn-exporter)/stat")
    fields = stat.rpartition(")")[2].split()
    return sum(int(f) for f in fields[11:15]) / CLOCK_TICKS


def measure(container: str, monitor: str, url: str, scrapes: int, window: float) -> dict[str, Any]:
    walls = []
    before = cpu_seconds(container)
    for _ in range(scrapes):
        out = docker(monitor, f"curl -s -o /dev/null -w '%{{time_total}}' {url}")
        walls.append(float(out))
    cpu_per_scrape = (cpu_seconds(container) - before) / scrapes
    start, cpu0 = time.monotonic(), cpu_seconds(container)
    time.sleep(window)
    share = (cpu_seconds(container) - cpu0) / (time.monotonic() - start)
    body = docker(monitor, f"curl -s {url}")
    sas = [line.split()[-1] for line in body.splitlines() if line.startswith("svpn_concentrator_ike_sas ")]
    return {
        "scrape_wall_median_s": round(statistics.median(walls), 4),
        "scrape_wall_max_s": round(max(walls), 4),
        "cpu_per_scrape_s": round(cpu_per_scrape, 4),
        "cpu_share_of_core_in_window": round(share, 4),
        "ike_sas": float(sas[0]) if sas else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m svpn.metrics.bench", description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", type=Path, default=Path("inventories/lab"))
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of Prometheus' own scrapes")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    inv = read_inventory(args.inventory)
    monitor = inv.hostvars[inv.groups["monitoring"][0]].get("ansible_host")
    report: dict[str, Any] = {}
    for host in inv.groups.get("concentrators", []) + inv.groups.get("loadbalancers", []):
        hv = inv.hostvars[host]
        url = f"http://{hv['svpn_addresses']['inside']}:{DEFAULT_EXPORTER_PORT}/metrics"
        report[host] = measure(hv.get("ansible_host", host), monitor, url, args.scrapes, args.window)
        print(host, json.dumps(report[host]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
