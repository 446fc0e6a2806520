"""The per-user work of a users sync, spread over a process pool: issue a certificate and/or (re)build the
bundle (:class:`Task` in, :class:`Outcome` back). A worker starts from :func:`worker_args` (the CA key and the
users' KEK, never the passphrase), issues into an empty in-memory index and writes without fsync; the
parent merges the records and syncs once. Imports svpn.access (bundle, ca, cert_index, certs, issuing,
keystore, pkidir, profiles, user_keys).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from svpn.access.bundles import profiles
from svpn.access.bundles.bundle import BundleContext, UserInfo
from svpn.access.pki import keystore
from svpn.access.pki.ca import CA, Unlock
from svpn.access.pki.cert_index import Index
from svpn.access.pki.certs import serial_hex
from svpn.access.pki.issuing import issue_user
from svpn.access.pki.pkidir import PkiDir
from svpn.access.pki.user_keys import read_user_key

CHUNK = 25  # users per task sent to a worker: big enough to amortise the IPC, small for a smooth bar
INLINE_BELOW = 2 * CHUNK  # fewer tasks than this run in-process (a pool costs more than it saves)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Task:
    """One user's work for a worker: issue a certificate and/or (re)build the bundle."""

    id: str
    name: str
    email: str
    department: str
    issue: bool
    build: bool
    reuse_credentials: bool = False
    password: str = ""
    days: int = 730


@dataclass(frozen=True)
class Outcome:
    """What a worker did for one user: the new index record (None: nothing issued), the serial of the
    current certificate, whether it built the bundle, and the new PKCS#12's password ("": none)."""

    id: str
    record: dict[str, Any] | None
    serial: str
    built: bool
    password: str = ""


_WORKER: dict[str, Any] = {}


def _init_worker(
    pki_dir: str,
    ca_cert_pem: bytes | None,
    ca_key_der: bytes | None,
    kek: keystore.Kek | None,
    ctx: BundleContext | None,
    bundles_dir: str | None,
) -> None:
    ca = None
    unlock = Unlock.with_kek(PkiDir(pki_dir), kek) if kek is not None else None
    if ca_cert_pem is not None and ca_key_der is not None:
        key = serialization.load_der_private_key(ca_key_der, password=None)
        ca = CA(x509.load_pem_x509_certificate(ca_cert_pem), key, unlock)  # type: ignore[arg-type]
    _WORKER.update(
        pki=PkiDir(pki_dir), ca=ca, kek=kek, ctx=ctx, bundles=Path(bundles_dir) if bundles_dir else None
    )


def _init_pool_worker(*args: Any) -> None:
    # Ctrl-C reaches the whole process group: the parent reports it in one line and terminates the pool,
    # so a worker must not die of it with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(*args)


def _work_chunk(tasks: list[Task]) -> list[Outcome]:
    return [_work(task) for task in tasks]


def _work(task: Task) -> Outcome:
    pki_dir: PkiDir = _WORKER["pki"]
    record = None
    if task.issue:
        # An empty index: the parent decided what to issue and merges the record into the real index.
        scratch = Index()
        issue_user(
            pki_dir,
            _WORKER["ca"],
            task.id,
            email=task.email,
            name=task.name,
            days=task.days,
            index=scratch,
            durable=False,  # the parent syncs once before it records anything (svpn.access.users)
        )
        record = scratch.certs[-1]
    cert = x509.load_pem_x509_certificate(pki_dir.cert_path("user", task.id).read_bytes())
    serial = serial_hex(cert.serial_number)
    if task.build:
        ctx: BundleContext = _WORKER["ctx"]
        bundles: Path = _WORKER["bundles"]
        user = UserInfo(task.id, task.name, task.email, task.department)
        if task.reuse_credentials:
            old = bundles / task.id
            creds = profiles.Credentials(
                (old / f"{task.id}.p12").read_bytes(), (old / f"{task.id}.key").read_bytes()
            )
        else:
            key = read_user_key(pki_dir, _WORKER["kek"], task.id)
            creds = profiles.new_credentials(ctx, task.id, key, cert, task.password)
        profiles.write_bundle(bundles, task.id, profiles.bundle_files(ctx, user, cert, creds))
    return Outcome(task.id, record, serial, task.build, "" if task.reuse_credentials else task.password)


def _chunks(tasks: Sequence[Task], size: int) -> Iterator[list[Task]]:
    for start in range(0, len(tasks), size):
        yield list(tasks[start : start + size])


class TaskRunner:
    """Runs tasks over a process pool (one worker per core by default); a context manager.

    The pool is forked on entry, before any progress-bar thread exists, and torn down on exit (terminated
    on error or interruption). Few tasks (or ``workers=1``) run in this process instead: a pool would cost
    more than it saves.
    """

    def __init__(self, tasks: Sequence[Task], initargs: tuple[Any, ...], workers: int | None = None) -> None:
        self.tasks = list(tasks)
        self.initargs = initargs
        self.workers = workers or os.cpu_count() or 1
        self.pool: Any = None

    def __enter__(self) -> TaskRunner:
        if self.workers > 1 and len(self.tasks) >= INLINE_BELOW:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self.pool = context.Pool(self.workers, initializer=_init_pool_worker, initargs=self.initargs)
        else:
            _init_worker(*self.initargs)
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.pool is None:
            _WORKER.clear()
            return
        if exc_type is None:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()

    def outcomes(self, progress: Progress | None = None) -> Iterator[Outcome]:
        """Outcomes as they finish (in no particular order)."""
        if self.pool is None:
            for task in self.tasks:
                outcome = _work(task)
                if progress:
                    progress(1)
                yield outcome
            return
        for outcomes in self.pool.imap_unordered(_work_chunk, _chunks(self.tasks, CHUNK)):
            yield from outcomes
            if progress:
                progress(len(outcomes))


def worker_args(
    pki_dir: PkiDir,
    ca: CA | None,
    kek: keystore.Kek | None,
    ctx: BundleContext | None = None,
    bundles_dir: Path | None = None,
) -> tuple[Any, ...]:
    """What each worker process starts from (see :func:`_init_worker`): the CA to issue (None: nothing to
    issue), the users' KEK, and the bundle context and directory to build bundles (None: no bundles). The
    CA key and the KEK travel unencrypted only to the forked workers of this run (or over their local pipe
    where fork is unavailable). The passphrase never does: no worker runs a KDF."""
    ca_cert = ca_key = None
    if ca is not None:
        ca_cert = pki_dir.ca_cert.read_bytes()
        ca_key = ca.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return (
        str(pki_dir.path),
        ca_cert,
        ca_key,
        kek,
        ctx,
        str(bundles_dir) if bundles_dir is not None else None,
    )
