"""`serve --workers N`: one listening socket, N worker processes accepting on it.

The parent binds `http.addr` once (or keeps the socket systemd passed), then starts N copies of
`registry-appliance serve` that each adopt that socket (`--listen-fd`, the socket-activation
code path, with TLS when configured); the kernel spreads connections between them. The parent
serves nothing itself. It:

- restarts a worker that dies, with a log line;
- forwards SIGHUP (each worker reloads htpasswd, TLS and the read-only setting);
- on SIGTERM/SIGINT forwards SIGTERM, waits `appliance.shutdown.timeout` (plus a margin) for
  the workers' graceful stop, then kills what is left;
- under systemd sends READY=1 once every worker is ready. Each worker gets its own
  `NOTIFY_SOCKET`, owned by the parent, so the workers' own sd_notify calls tell the parent
  (not systemd) that they listen.

Shared state (uploads, read-only flag, GC lock) lives in storage. What the workers share on
this host lives in a private folder the parent makes (`--shared-dir`, removed when it stops):
the failed-login counts (one SQLite file) and the Prometheus metric files of every worker
(`PROMETHEUS_MULTIPROC_DIR`), so `/metrics` sums all workers. What must not run N times belongs
to worker 0 only: the admin socket, the upload purging schedule, the `http.debug.addr`
listener and webhook delivery (every worker queues its events in the shared event folder;
worker 0 sends them). Worker 0 is restarted like any other.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import secrets
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from twisted.logger import Logger

from appliance import systemd
from appliance.auth.ratelimit import LoginLimiter
from appliance.config import Config

__all__ = ["Supervisor", "WorkerRole", "bind_listening_socket", "worker_config"]

log = Logger()
RESTART_DELAY = 1.0  # a worker that keeps dying is restarted at most once a second
KILL_MARGIN = 5.0


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """Which worker this process is. A single process is worker 0 of one and shares nothing."""

    index: int = 0
    shared_dir: str | None = None  # the parent's folder for what workers share on this host

    @property
    def delivers_events(self) -> bool:
        return self.index == 0

    @property
    def logins_path(self) -> str:
        """Where failed logins are counted: in memory, or one file for all workers."""
        return os.path.join(self.shared_dir, "logins.sqlite3") if self.shared_dir else ":memory:"


def worker_config(config: Config, index: int) -> Config:
    """The config a worker runs with: its index in every JSON log line; only worker 0 keeps the
    admin socket, upload purging and the debug listener."""
    fields = MappingProxyType({**config.log.fields, "worker": str(index)})
    config = dataclasses.replace(config, log=dataclasses.replace(config.log, fields=fields))
    if index == 0:
        return config
    storage = config.storage
    purging = dataclasses.replace(storage.uploadpurging, enabled=False)
    http = dataclasses.replace(config.http, debug=dataclasses.replace(config.http.debug, addr=""))
    return dataclasses.replace(
        config,
        storage=dataclasses.replace(storage, uploadpurging=purging),
        http=http,
        appliance=dataclasses.replace(config.appliance, admin_socket=""),
    )


def bind_listening_socket(config: Config) -> socket.socket:
    """`http.addr` bound and listening, as the single-process server would bind it."""
    if config.http.net == "unix":
        path = config.http.addr
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
    else:
        from appliance.server import _has_ipv6, split_addr

        interface, port = split_addr(config.http.addr)
        if not interface:
            interface = "::" if _has_ipv6() else "0.0.0.0"
        family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface, port))
    sock.listen(1024)
    return sock


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent goes away (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclasses.dataclass
class _Worker:
    index: int
    notify: socket.socket
    address: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    ready: bool = False
    reloading: bool = False


class Supervisor:
    """Runs and watches the workers; `run()` blocks until they are all stopped."""

    def __init__(self, config: Config, count: int, listening: socket.socket,
                 command: Sequence[str]) -> None:
        self.config = config
        self.count = count
        self.listening = listening
        self.listen_fd = listening.fileno()
        self.command = list(command)
        self.shared_dir = tempfile.mkdtemp(prefix="registry-appliance-workers-")
        self.metrics_dir = os.path.join(self.shared_dir, "metrics")
        os.mkdir(self.metrics_dir)
        LoginLimiter.create_store(WorkerRole(0, self.shared_dir).logins_path)
        self.stopping = False
        self.reload_requested = False
        self.announced = False
        self.reloading = False
        tag = secrets.token_hex(4)
        self.workers = []
        for index in range(count):
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            address = f"registry-appliance-{os.getpid()}-{tag}-{index}"
            notify.bind("\0" + address)
            notify.setblocking(False)
            self.workers.append(_Worker(index, notify, "@" + address))

    def _spawn(self, worker: _Worker) -> None:
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = worker.address
        env["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(name, None)
        worker.process = subprocess.Popen(
            [*self.command, "--listen-fd", str(self.listen_fd),
             "--worker-index", str(worker.index), "--shared-dir", self.shared_dir],
            pass_fds=(self.listen_fd,), env=env, preexec_fn=_die_with_parent,
        )
        worker.started = time.monotonic()
        worker.ready = False
        log.info("started worker {index} (pid {pid})", index=worker.index, pid=worker.process.pid)

    def _signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self.reload_requested = True
        else:
            self.stopping = True

    def run(self) -> int:
        try:
            return self._run()
        finally:
            shutil.rmtree(self.shared_dir, ignore_errors=True)

    def _run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._signal)
        selector = selectors.DefaultSelector()
        for worker in self.workers:
            selector.register(worker.notify, selectors.EVENT_READ, worker)
            self._spawn(worker)
        while not self.stopping:
            for key, _ in selector.select(timeout=0.2):
                self._read_notify(key.data)
            if self.reload_requested:
                self.reload_requested = False
                log.info("reloading: forwarding SIGHUP to {count} workers", count=self.count)
                systemd.notify("RELOADING=1")
                self.reloading = True
                for worker in self.workers:  # one still starting reads the new config anyway
                    worker.reloading = worker.ready and worker.process is not None \
                        and worker.process.poll() is None
                self._send_all(signal.SIGHUP, only_ready=True)
                self._reloaded()
            status = self._check_workers()
            if status is not None:
                self._stop_all()
                return status
        log.info("stopping {count} workers", count=self.count)
        systemd.notify("STOPPING=1")
        self._stop_all()
        return 0

    def _read_notify(self, worker: _Worker) -> None:
        while True:
            try:
                message = worker.notify.recv(4096).decode(errors="replace")
            except BlockingIOError:
                return
            if "READY=1" not in message.splitlines():
                continue
            worker.reloading = False
            self._reloaded()
            if not worker.ready:
                worker.ready = True
                if not self.announced and all(w.ready for w in self.workers):
                    self.announced = True
                    log.info("all {count} workers are ready", count=self.count)
                    systemd.notify(f"READY=1\nSTATUS=serving with {self.count} workers")

    def _reloaded(self) -> None:
        """READY=1 to systemd once every worker has reloaded."""
        if self.reloading and not any(w.reloading for w in self.workers):
            self.reloading = False
            systemd.notify("READY=1")

    def _check_workers(self) -> int | None:
        """Restart dead workers; a status when one fails before the first announcement."""
        for worker in self.workers:
            process = worker.process
            if process is None:
                if time.monotonic() >= worker.started:
                    self._spawn(worker)
                continue
            code = process.poll()
            if code is None:
                continue
            if not self.announced and code != 0:
                log.error("worker {index} (pid {pid}) failed to start (status {code}); stopping",
                          index=worker.index, pid=process.pid, code=code)
                return 1
            log.warn("worker {index} (pid {pid}) exited with status {code}; restarting it",
                     index=worker.index, pid=process.pid, code=code)
            self._forget_gauges(process.pid)
            worker.process = None
            worker.reloading = False
            self._reloaded()
            quick = time.monotonic() - worker.started < RESTART_DELAY
            worker.started = time.monotonic() + (RESTART_DELAY if quick else 0.0)
        return None

    def _forget_gauges(self, pid: int) -> None:
        """A dead worker's gauges (uploads in progress) no longer count; its counters do."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.metrics_dir)

    def _send_all(self, signum: int, only_ready: bool = False) -> None:
        for worker in self.workers:
            if only_ready and not worker.ready:
                continue
            if worker.process is not None and worker.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signum)

    def _stop_all(self) -> None:
        self.listening.close()  # once the workers stop accepting, new connections are refused
        self._send_all(signal.SIGTERM)
        deadline = time.monotonic() + self.config.appliance.shutdown_timeout + KILL_MARGIN
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warn("worker {index} (pid {pid}) did not stop in time; killing it",
                         index=worker.index, pid=worker.process.pid)
                worker.process.kill()
                worker.process.wait()
        for worker in self.workers:
            worker.notify.close()
        log.info("all workers stopped")


def worker_command(config_args: Sequence[str]) -> list[str]:
    """How to start `registry-appliance serve` again: the one-file binary, or this Python."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "serve", *config_args]
    return [sys.executable, "-m", "appliance.cli", "serve", *config_args]
