"""``svpn users bench``: how long `users sync` takes for N users, against a loop of strongSwan's `pki`.

In a throwaway directory: a CA like production's (ECDSA P-384), a roster of N synthetic users, then

1. ``users sync`` without bundles (certificates only: what `pki` does too);
2. ``users sync --bundles`` on a fresh PKI (certificates + PKCS#12 + profiles + guides, the real job);
3. the same sync again (nothing to do: what a daily run costs);
4. a shell-style loop of ``pki --gen --type ecdsa --size 256`` + ``pki --issue`` for a sample of users,
   extrapolated per user to N (key + certificate only, one process at a time, as an operator would script it).

The ratio is the `pki` loop's extrapolated time over ours. The directory is removed afterwards unless
``work_dir`` was given.
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from svpn.access import users
from svpn.access.pki.ca_setup import init_ca
from svpn.access.pki.pkidir import PkiDir
from svpn.core.errors import SvpnError

PKI_BINARY = "pki"


@dataclass
class BenchResult:
    users: int
    workers: int
    cores: int
    legacy_p12: bool
    certs_only_s: float
    bundles_s: float
    bundles_flush_s: float  # of bundles_s: the final sync that makes the bundles durable
    certs_only_cpu_s: float  # CPU time (user + system) of svpn and its workers, whatever else runs
    bundles_cpu_s: float
    noop_s: float
    pki_sample: int
    pki_sample_s: float | None
    pki_binary: str | None

    @property
    def pki_per_user_ms(self) -> float | None:
        return None if self.pki_sample_s is None else self.pki_sample_s / self.pki_sample * 1000

    @property
    def pki_extrapolated_s(self) -> float | None:
        return None if self.pki_sample_s is None else self.pki_sample_s / self.pki_sample * self.users

    def ratio(self, ours: float) -> float | None:
        extrapolated = self.pki_extrapolated_s
        return None if extrapolated is None or ours <= 0 else extrapolated / ours

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            pki_per_user_ms=self.pki_per_user_ms,
            pki_extrapolated_s=self.pki_extrapolated_s,
            ratio_certs_only=self.ratio(self.certs_only_s),
            ratio_bundles=self.ratio(self.bundles_s),
            per_user_bundles_ms=self.bundles_s / self.users * 1000,
        )
        return data

    def table(self) -> list[str]:
        def ms(total: float, count: int | None = None) -> str:
            return f"{total / (count or self.users) * 1000:.2f}"

        def ratio(ours: float) -> str:
            value = self.ratio(ours)
            return "n/a" if value is None else f"{value:.1f}x"

        p12 = "legacy 3DES/SHA-1" if self.legacy_p12 else "AES-256/SHA-256"
        n = str(self.users)
        rows = [
            ("run", "users", "wall s", "ms/user", "CPU s", "pki loop / this"),
            ("svpn users sync, certificates only", n, f"{self.certs_only_s:.2f}", ms(self.certs_only_s),
             f"{self.certs_only_cpu_s:.1f}", ratio(self.certs_only_s)),
            (f"svpn users sync --bundles (PKCS#12 {p12})", n, f"{self.bundles_s:.2f}", ms(self.bundles_s),
             f"{self.bundles_cpu_s:.1f}", ratio(self.bundles_s)),
            ("svpn users sync again (no change)", n, f"{self.noop_s:.2f}", ms(self.noop_s), "", ""),
        ]  # fmt: skip
        if self.pki_sample_s is None:
            rows.append(("strongSwan pki loop", "-", "not installed", "-", "", ""))
        else:
            assert self.pki_extrapolated_s is not None
            per_user = ms(self.pki_sample_s, self.pki_sample)
            rows.append((f"strongSwan pki loop, {self.pki_sample} users", str(self.pki_sample),
                         f"{self.pki_sample_s:.2f}", per_user, "", ""))  # fmt: skip
            rows.append((f"strongSwan pki loop, extrapolated to {self.users}", n,
                         f"{self.pki_extrapolated_s:.1f}", per_user, "", "1.0x"))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for row in rows:
            cells = [
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
        lines.append(
            f"CPU s: user + system time of svpn and its workers (on {self.cores} otherwise idle cores, the "
            f"wall time cannot go below CPU s / {self.cores}). The bundle run includes "
            f"{self.bundles_flush_s:.2f} s for its final sync to disk. {self.workers} worker processes; the "
            "pki loop runs one process at a time and makes keys and certificates only."
        )
        return lines


def _roster(path: Path, count: int) -> None:
    lines = ["id,name,email,department"]
    lines += [f"u{n:06d},User {n},u{n:06d}@bench.svpn.test,Bench" for n in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _sync(
    work: Path,
    name: str,
    roster: Path,
    inventory: Path,
    bundles: bool,
    passphrase: str,
    legacy_p12: bool,
    workers: int | None,
    progress_factory: Callable[[int], Any] | None,
) -> tuple[float, dict[str, float]]:
    pki_dir = PkiDir(work / name)
    if not pki_dir.ca_cert.exists():
        init_ca(pki_dir, "Bench VPN CA", passphrase, key_type="ecdsa384")
    opts = users.SyncOptions(
        pki_dir=pki_dir,
        roster=roster,
        inventory=inventory,
        bundles=work / f"{name}-bundles" if bundles else None,
        passwords=work / f"{name}-passwords.csv" if bundles else None,
        legacy_p12=legacy_p12,
        workers=workers,
    )
    cpu = _cpu_seconds()
    start = time.perf_counter()
    result = users.sync(opts, lambda: passphrase, progress_factory)
    wall = time.perf_counter() - start
    return wall, {**result.timings, "cpu": _cpu_seconds() - cpu}


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the pool's workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def pki_loop(work: Path, sample: int, binary: str) -> float:
    """Seconds for *sample* users through strongSwan's pki, one process after another."""
    ca_key, ca_crt = work / "pki-ca.key", work / "pki-ca.crt"

    def pki_to(args: list[str], out: Path) -> None:
        with out.open("wb") as handle:
            subprocess.run([binary, *args], stdout=handle, stderr=subprocess.DEVNULL, check=True)

    pki_to(["--gen", "--type", "ecdsa", "--size", "384", "--outform", "pem"], ca_key)
    pki_to(
        [
            "--self",
            "--ca",
            "--in",
            str(ca_key),
            "--type",
            "ecdsa",
            "--dn",
            "CN=Bench pki CA",
            "--lifetime",
            "3650",
            "--outform",
            "pem",
        ],
        ca_crt,
    )
    start = time.perf_counter()
    for n in range(sample):
        key, crt = work / f"pki-u{n}.key", work / f"pki-u{n}.crt"
        pki_to(["--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem"], key)
        pki_to(
            [
                "--issue",
                "--cacert",
                str(ca_crt),
                "--cakey",
                str(ca_key),
                "--type",
                "priv",
                "--in",
                str(key),
                "--dn",
                f"CN=u{n:06d}",
                "--san",
                f"u{n:06d}@bench.svpn.test",
                "--flag",
                "clientAuth",
                "--lifetime",
                "730",
                "--outform",
                "pem",
            ],
            crt,
        )
    return time.perf_counter() - start


def run(
    users: int = 10_000,
    sample: int = 50,
    inventory: Path | None = None,
    legacy_p12: bool = False,
    workers: int | None = None,
    work_dir: Path | None = None,
    progress_factory: Callable[[int], Any] | None = None,
) -> BenchResult:
    if inventory is None:
        raise SvpnError("bench needs an inventory for the farm settings (--inventory)")
    keep = work_dir is not None
    if work_dir is not None:
        work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if any(work_dir.iterdir()):
            raise SvpnError(f"work directory {work_dir} is not empty: give an empty or new directory")
        work = work_dir
    else:
        work = Path(tempfile.mkdtemp(prefix="svpn-bench-"))
    passphrase = secrets.token_urlsafe(16)
    try:
        roster = work / "roster.csv"
        _roster(roster, users)
        common = dict(
            roster=roster,
            inventory=inventory,
            passphrase=passphrase,
            legacy_p12=legacy_p12,
            workers=workers,
            progress_factory=progress_factory,
        )
        certs_only, certs_phases = _sync(work, "certs", bundles=False, **common)  # type: ignore[arg-type]
        with_bundles, phases = _sync(work, "full", bundles=True, **common)  # type: ignore[arg-type]
        noop, _ = _sync(work, "full", bundles=True, **common)  # type: ignore[arg-type]
        binary = shutil.which(PKI_BINARY)
        pki_seconds = pki_loop(work, sample, binary) if binary else None
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return BenchResult(
        users=users,
        workers=workers or os.cpu_count() or 1,
        cores=os.cpu_count() or 1,
        legacy_p12=legacy_p12,
        certs_only_s=certs_only,
        bundles_s=with_bundles,
        bundles_flush_s=phases.get("flush", 0.0),
        certs_only_cpu_s=certs_phases["cpu"],
        bundles_cpu_s=phases["cpu"],
        noop_s=noop,
        pki_sample=sample,
        pki_sample_s=pki_seconds,
        pki_binary=binary,
    )
