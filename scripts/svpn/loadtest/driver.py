"""The load generators at work: their files, their containers, and the threads that drive them.

Each generator gets a directory of its own (strongswan.conf, the load-test CA that issues its users, the
farm CA, its source addresses) mounted read-only into a container of the generator image; a driver thread
then tells its load-tester's control socket how many users to set up and how fast, and reads its progress
characters back. The load-test CA's key lives only in that directory and the generators. Imports svpn.core
and svpn.loadtest's own modules.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.loadtest import image as loadgen
from svpn.loadtest.containers import container_path, docker, wait_for
from svpn.loadtest.figures import GeneratorProgress
from svpn.loadtest.generators import (
    GeneratorSettings,
    GeneratorSpec,
    LoadtestCA,
    address_batch,
    render_generator_conf,
)
from svpn.loadtest.undo import Log, Undo

GENERATOR_CONF_DIR = "/etc/svpn-loadgen"


class GeneratorDriver(threading.Thread):
    """Feeds one generator's control socket: "USERS DELAY_MS", then reads its progress characters."""

    def __init__(self, spec: GeneratorSpec, delay_ms: int, lock: threading.Lock) -> None:
        super().__init__(name=f"drive-{spec.name}", daemon=True)
        self.spec = spec
        self.delay_ms = delay_ms
        self.lock = lock
        self.progress = GeneratorProgress()
        self.stop = threading.Event()
        self.error = ""

    def run(self) -> None:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(str(container_path(self.spec.container, "/run/charon.ldt")))
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


def write_generator_files(
    rundir: Path,
    specs: list[GeneratorSpec],
    settings: GeneratorSettings,
    ca: LoadtestCA,
    farm_ca_pem: bytes,
    undo: Undo,
) -> None:
    """The run directory with one directory per generator; its removal goes on *undo*."""
    rundir.mkdir(parents=True, mode=0o700)
    undo.push("remove the run directory", lambda: shutil.rmtree(rundir, ignore_errors=True))
    template = (repo_root() / "loadgen" / "strongswan.conf.j2").read_text()
    for spec in specs:
        gen_dir = rundir / spec.name
        (gen_dir / "cas").mkdir(parents=True, mode=0o700)
        (gen_dir / "strongswan.conf").write_text(render_generator_conf(template, spec, settings))
        (gen_dir / "issuer.crt").write_bytes(ca.cert_pem)
        (gen_dir / "issuer.key").write_bytes(ca.key_pem)
        (gen_dir / "cas" / "farm-ca.crt").write_bytes(farm_ca_pem)
        (gen_dir / "addresses").write_text(address_batch(spec))


def start_generators(
    specs: list[GeneratorSpec], image: str, network: str, rundir: Path, undo: Undo, log: Log
) -> None:
    """A container per generator on the farm's public network; each one's removal goes on *undo* first."""
    for spec in specs:
        undo.push(f"remove {spec.container}", lambda spec=spec: stop_generator(spec))
        start_generator(spec, image, network, rundir / spec.name, log)


def start_generator(spec: GeneratorSpec, image: str, network: str, config_dir: Path, log: Log) -> None:
    docker("rm", "--force", spec.container, check=False)
    docker(
        "run", "--detach", "--name", spec.container, "--hostname", spec.name, "--label", "svpn-lab",
        "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
        "--network", network, "--ip", str(spec.public_address),
        "--volume", f"{config_dir}:{GENERATOR_CONF_DIR}:ro",
        "--env", f"STRONGSWAN_CONF={GENERATOR_CONF_DIR}/strongswan.conf",
        "--entrypoint", "/bin/sh", image, "-c",
        f"ip -batch {GENERATOR_CONF_DIR}/addresses && exec {loadgen.CHARON}",
    )  # fmt: skip
    wait_for(
        lambda: container_path(spec.container, "/run/charon.ldt"), f"{spec.container}'s control socket", 30
    )
    log(f"{spec.container}: {spec.users} users from {spec.first_source}-{spec.last_source}")


def stop_generator(spec: GeneratorSpec) -> None:
    # SIGTERM: charon deletes its IKE SAs (the nodes free them at once), then exits
    docker("stop", "--time", "30", spec.container, check=False, timeout=60)
    logs = docker("logs", spec.container, check=False)
    if logs.stdout or logs.stderr:
        path = repo_root() / ".lab" / "loadtest" / f"{spec.name}.log"
        path.write_text(logs.stdout + logs.stderr)
    docker("rm", "--force", spec.container, check=False)
