"""Gunicorn servers the suite starts, watches and always stops.

Every server is ``gunicorn -c gunicorn.conf.py MODULE:app``, the command of
the demo and of docker-compose, bound to a free port of 127.0.0.1
(``GUNICORN_BIND``); the worker count and the other knobs come from the
environment as gunicorn.conf.py reads them. Each server runs in a session of
its own, with its output in ``var/log/bench-<name>.log``. :class:`Servers`
stops each one it started when its block ends, however it ends: SIGTERM to
the master (gunicorn's graceful stop), then SIGKILL to the server's process
group if it is still there after :data:`STOP_TIMEOUT_S`.
"""

import contextlib
import http.client
import logging
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "log"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
STOP_TIMEOUT_S = 20
POLL_S = 0.2
SETTLE_S = 0.5
"""Workers count as ready once none used any CPU for this long."""


def configured_workers(env: dict[str, str]) -> int:
    """Return the worker count gunicorn.conf.py gives under ``env``."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return int(runpy.run_path(str(GUNICORN_CONF))["workers"])
    finally:
        os.environ.clear()
        os.environ.update(saved)


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running gunicorn master and its workers."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    workers: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_processes(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []

    def worker_rss(self) -> list[int]:
        """Return the resident set of each worker, in bytes."""
        sizes = []
        for worker in self.worker_processes():
            with contextlib.suppress(psutil.Error):
                sizes.append(worker.memory_info().rss)
        return sizes

    def get(self, path: str, timeout_s: float = 30) -> tuple[int, bytes]:
        """Send one GET on a connection of its own; return status and body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Servers:
    """The servers of one run; each is stopped when the block ends."""

    running: list[Server] = field(default_factory=list)

    def __enter__(self) -> "Servers":
        return self

    def __exit__(self, *exc_info) -> None:
        for server in reversed(self.running):
            stop(server)
        self.running.clear()

    def start(
        self,
        name: str,
        module: str,
        env: dict[str, str],
        *,
        ready_path: str,
        ready_line: str | None = None,
        start_timeout_s: float = 120,
    ) -> Server:
        """Start ``gunicorn -c gunicorn.conf.py MODULE`` and wait until it serves.

        Ready means: every worker is up, ``ready_line`` (when given) has
        appeared in the log once per worker, ``ready_path`` answers 200 and
        the workers have gone idle.

        Raises:
            RuntimeError: the server died or was not ready in time; the end
                of its log is in the message.
        """
        port = free_port()
        env = env | {"GUNICORN_BIND": f"127.0.0.1:{port}"}
        workers = configured_workers(env)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log_path = LOG_DIR / f"bench-{name}.log"
        with log_path.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), module],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(name, process, port, log_path, workers)
        self.running.append(server)
        log.info("servers: %s started (pid %d, port %d)", name, process.pid, port)

        _wait_ready(server, ready_path, ready_line, start_timeout_s)
        return server

    def stop(self, server: Server) -> None:
        """Stop ``server`` now."""
        stop(server)
        if server in self.running:
            self.running.remove(server)


def _wait_ready(
    server: Server, ready_path: str, ready_line: str | None, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with status {server.process.returncode}:\n"
                f"{server.log_tail()}"
            )
        workers = server.worker_processes()
        logged = ready_line is None or (
            server.log_path.read_text().count(ready_line) >= server.workers
        )
        if len(workers) == server.workers and logged and _answers(server, ready_path):
            _wait_idle(workers, deadline)
            return
        time.sleep(POLL_S)
    raise RuntimeError(f"{server.name} was not ready in {timeout_s:g} s")


def _answers(server: Server, path: str) -> bool:
    try:
        status, _ = server.get(path, timeout_s=5)
    except OSError:
        return False
    return status == 200


def _wait_idle(workers: list[psutil.Process], deadline: float) -> None:
    def busy() -> float:
        total = 0.0
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                times = worker.cpu_times()
                total += times.user + times.system
        return total

    before = busy()
    while time.monotonic() < deadline:
        time.sleep(SETTLE_S)
        now = busy()
        if now - before < 0.01:
            return
        before = now


def stop(server: Server) -> None:
    """Stop the server gracefully, then by force; never raises."""
    process = server.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("servers: %s ignored SIGTERM; killing it", server.name)
    # The group is the server's own session: its master and any worker left.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    log.info("servers: %s stopped", server.name)
