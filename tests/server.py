"""Start `registry-appliance serve` as a real process for tests, on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

EXECUTABLE = [sys.executable, "-m", "appliance.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApplianceServer:
    """One server process; `config` is Distribution-style YAML written to `workdir/config.yml`."""

    workdir: Path
    config: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)  # after `serve CONFIG`, e.g. ["--workers", "3"]
    process: subprocess.Popen | None = None

    @property
    def port(self) -> int:
        return int(self.config["http"]["addr"].rsplit(":", 1)[1])

    @property
    def scheme(self) -> str:
        return "https" if "tls" in self.config["http"] else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def root(self) -> Path:
        return Path(self.config["storage"]["filesystem"]["rootdirectory"])

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def admin_socket(self) -> str:
        return self.config["appliance"]["admin"]["socket"]

    def start(self, timeout: float = 60.0) -> ApplianceServer:
        """Start and wait for /v2/; the admin socket goes in `workdir` unless the config says."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        admin = self.config.setdefault("appliance", {}).setdefault("admin", {})
        admin.setdefault("socket", str(self.workdir / "admin.sock"))
        config_path = self.workdir / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env.update(self.env)
        self.process = subprocess.Popen(
            [*EXECUTABLE, "serve", str(config_path), *self.args],
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                with warnings.catch_warnings():  # readiness only: no certificate to check yet
                    warnings.simplefilter("ignore")
                    requests.get(f"{self.url}/v2/", timeout=5, verify=False)
                if self._admin_answers():  # with several workers, worker 0 owns it
                    return self
                time.sleep(0.1)
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def _admin_answers(self) -> bool:
        if not self.admin_socket:
            return True
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.admin_socket)
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text()


def base_config(workdir: Path, port: int | None = None) -> dict[str, Any]:
    return {
        "version": "0.1",
        "log": {"level": "info"},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port or free_port()}", "secret": "test-secret"},
    }
