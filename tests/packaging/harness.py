"""Play systemd for the packaging tests: a notify socket, socket activation, the built binary.

Nothing here imports pytest; ``conftest.py`` wraps these helpers in fixtures.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e import tools

ROOT = Path(__file__).resolve().parents[2]
SOURCE = (sys.executable, "-m", "appliance.cli")
BINARY = ROOT / "dist" / "registry-appliance"
#: What goes into the binary; a change to any of it means a rebuild.
BUILD_INPUTS = ("appliance", "tui", "packaging", "pyproject.toml")


class NotifySocket:
    """A fake ``$NOTIFY_SOCKET``: an abstract UNIX datagram socket, as systemd's may be."""

    def __init__(self) -> None:
        self.address = f"@registry-appliance-test-{secrets.token_hex(8)}"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + self.address[1:])
        self.received: list[str] = []

    def wait_for(
        self, line: str, timeout: float = 30.0, alive: Callable[[], bool] = lambda: True
    ) -> list[str]:
        """Collect messages until one has ``line`` (e.g. "READY=1"); return the new messages.

        Raises TimeoutError after ``timeout``, or as soon as ``alive()`` says the sender is gone.
        """
        deadline = time.monotonic() + timeout
        new: list[str] = []
        while line not in (new[-1].splitlines() if new else ()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not alive():
                raise TimeoutError(f"no {line!r} within {timeout}s; got {new!r}")
            self._socket.settimeout(min(remaining, 0.5))
            try:
                new.append(self._socket.recv(4096).decode())
            except TimeoutError:
                continue
        self.received += new
        return new

    def close(self) -> None:
        self._socket.close()


@dataclass
class Server:
    """A `serve` process and what it told its fake systemd."""

    process: subprocess.Popen[bytes]
    notify: NotifySocket
    log_path: Path
    config_path: Path
    config: dict[str, Any] = field(default_factory=dict)

    def ready(self, timeout: float = 60.0) -> Server:
        try:
            self.notify.wait_for("READY=1", timeout, alive=lambda: self.process.poll() is None)
        except TimeoutError:
            raise AssertionError(f"server not ready:\n{self.log()}") from None
        return self

    def stop(self) -> None:
        tools.stop_process(self.process)
        self.notify.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    command: tuple[str, ...],
    config: dict[str, Any],
    workdir: Path,
    listening: socket.socket | None = None,
    args: Sequence[str] = (),
) -> Server:
    """Start ``COMMAND serve CONFIG`` under a fake systemd; with ``listening``, socket-activated.

    For socket activation the socket becomes fd 3 and LISTEN_PID names the server itself: a
    shell sets it to its own pid ($$) and then execs the server, as systemd would (bash: dash
    cannot redirect fds above 9).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    notify = NotifySocket()
    env = tools.clean_env(drop_prefixes=("REGISTRY_", "LISTEN_"), drop=("NOTIFY_SOCKET",))
    env["NOTIFY_SOCKET"] = notify.address
    argv: list[str] = [*command, "serve", str(config_path), *args]
    passed: tuple[int, ...] = ()
    if listening is not None:
        fd = fcntl.fcntl(listening.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)  # never 3 itself
        script = ('LISTEN_PID=$$ LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; '
                  f'exec "$@" 3<&{fd} {fd}<&-')
        argv, passed = ["bash", "-c", script, "bash", *argv], (fd,)
    try:
        process = tools.spawn(argv, env=env, log_path=workdir / "server.log", pass_fds=passed)
    finally:
        for fd in passed:
            os.close(fd)
    return Server(process, notify, workdir / "server.log", config_path, config)


def sources_digest() -> str:
    """A hash of every file the binary is built from."""
    digest = hashlib.sha256()
    for name in BUILD_INPUTS:
        top = ROOT / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_binary() -> Path:
    """dist/registry-appliance from packaging/build.sh, unless built from these very sources."""
    stamp = ROOT / "build" / "registry-appliance.sources"
    digest = sources_digest()
    if not (BINARY.exists() and stamp.exists() and stamp.read_text() == digest):
        tools.run([ROOT / "packaging" / "build.sh"], cwd=ROOT, timeout=1200)
        stamp.write_text(digest)
    return BINARY
