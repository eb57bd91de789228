"""A real single-member etcd (Debian `etcd-server`) on free loopback ports, v2 API enabled, as
LAIN runs it; `etcdctl` (Debian `etcd-client`) with ETCDCTL_API=2 writes keys as LAIN does."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.server import free_port


@dataclass
class Etcd:
    workdir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self, timeout: float = 30.0) -> Etcd:
        if shutil.which("etcd") is None or shutil.which("etcdctl") is None:
            pytest.fail("etcd and etcdctl are missing (apt-get install etcd-server etcd-client)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.process = subprocess.Popen(
            ["etcd", "--name", "test", "--data-dir", str(self.workdir / "data"),
             "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}", "--initial-cluster-state", "new",
             "--initial-cluster-token", "test", "--enable-v2=true"],
            stdout=open(self.workdir / "etcd.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.workdir / "etcd.log").read_text())
            try:
                if requests.get(f"{self.endpoint}/health", timeout=1).json().get("health") \
                        == "true":
                    return self
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.1)
        self.stop()
        log = (self.workdir / "etcd.log").read_text()
        raise RuntimeError(f"etcd did not become healthy: {log}")

    def etcdctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ETCDCTL_API": "2"}
        return subprocess.run(["etcdctl", "--endpoints", self.endpoint, *args], env=env,
                              check=True, capture_output=True, text=True, timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
