"""A real OpenStack Swift all-in-one on loopback for tests (Debian `swift-*` 2.30 packages).

Proxy (tempauth), account, container and object servers plus a memcached for tempauth's tokens,
each on a free 127.0.0.1 port, with configs, rings, the one "device" (a plain directory), logs
and caches under `workdir`. One replica, `mount_check = false`, `workers = 0` (no fork: the PID we
hold is the server), no replicator/auditor/updater daemons. Rings are built in one run of the
system Python (`python3-swift` is not in the venv) with `swift.common.ring.RingBuilder`: the
`swift-ring-builder` command costs about a second per call.

The only file outside `workdir`: Swift servers always read `/etc/swift/swift.conf` (hash path
prefix/suffix, storage policy 0). The Debian package ships one; `ensure_swift_conf` writes it only
when it is missing. Servers start with PR_SET_PDEATHSIG so they die with the test process, and
`stop` ends them by PID: TERM, then KILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

SWIFT_CONF = Path("/etc/swift/swift.conf")
SYSTEM_PYTHON = "/usr/bin/python3"
USER, KEY = "test:tester", "testing"
ACCOUNT = "AUTH_test"
_SERVERS = ("account", "container", "object", "proxy")

_RINGS = """
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(("account", "container", "object"), map(int, sys.argv[2:])):
    b = RingBuilder(8, 1, 1)
    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "replication_ip": "127.0.0.1", "replication_port": port,
               "device": "d1", "weight": 1, "meta": ""})
    b.rebalance()
    b.save(f"{etc}/{name}.builder")
    b.get_ring().save(f"{etc}/{name}.ring.gz")
"""

_PROXY_PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl "
    "tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def ensure_swift_conf() -> None:
    """Swift servers read this path whatever their config says; write one if it is missing."""
    if SWIFT_CONF.exists():
        return
    SWIFT_CONF.parent.mkdir(parents=True, exist_ok=True)
    SWIFT_CONF.write_text(
        "[swift-hash]\n"
        f"swift_hash_path_suffix = {secrets.token_hex(8)}\n"
        "swift_hash_path_prefix = \n"
        "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
    )


@dataclass
class SwiftAllInOne:
    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def auth_url(self) -> str:
        """The v1.0 (tempauth) auth URL, as Distribution's `authurl` with `authversion: 1`."""
        return f"http://127.0.0.1:{self.ports['proxy']}/auth/v1.0"

    @property
    def storage_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}/v1/{ACCOUNT}"

    @property
    def etc(self) -> Path:
        return self.workdir / "etc"

    def log_path(self, server: str) -> Path:
        return self.workdir / "log" / f"{server}.log"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> SwiftAllInOne:
        ensure_swift_conf()
        for directory in ("etc", "log", "node/d1", "cache"):
            (self.workdir / directory).mkdir(parents=True, exist_ok=True)
        if not self.ports:
            self.ports = {name: _free_port() for name in (*_SERVERS, "memcached")}
            self._write_configs()
            subprocess.run(
                [SYSTEM_PYTHON, "-c", _RINGS, str(self.etc),
                 *(str(self.ports[s]) for s in ("account", "container", "object"))],
                check=True, capture_output=True, timeout=60,
            )
        try:
            self._spawn("memcached", ["memcached", "-l", "127.0.0.1", "-p",
                                      str(self.ports["memcached"]), "-U", "0", "-m", "64",
                                      *(["-u", "root"] if os.geteuid() == 0 else [])])
            for server in _SERVERS:
                self._spawn(server, [f"swift-{server}-server",
                                     str(self.etc / f"{server}-server.conf"), "-v"])
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.log_path(name), "ab") as log:
            self.processes[name] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def _wait_ready(self, timeout: float) -> None:
        """Every server answers its /healthcheck, and tempauth hands out a working token."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"swift {name} exited {process.returncode}: "
                                       f"{self.log_tail(name)}")
            try:
                for server in _SERVERS:
                    requests.get(f"http://127.0.0.1:{self.ports[server]}/healthcheck",
                                 timeout=2).raise_for_status()
                url, token = self.token()
                if requests.head(url, headers={"X-Auth-Token": token}, timeout=2).status_code < 300:
                    return
            except (requests.RequestException, KeyError) as error:
                last = error
            time.sleep(0.1)
        raise TimeoutError(f"swift not ready after {timeout} s ({last}): {self.log_tail('proxy')}")

    def stop(self, grace: float = 5.0) -> None:
        """End every server we started, by its PID: TERM, then KILL after `grace` seconds."""
        processes, self.processes = self.processes, {}
        for process in processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(30)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SwiftAllInOne:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests -------------------------------------------------------------------

    def token(self) -> tuple[str, str]:
        """(storage URL, token) from tempauth, for direct requests in tests."""
        got = requests.get(self.auth_url, headers={"X-Auth-User": USER, "X-Auth-Key": KEY},
                           timeout=5)
        got.raise_for_status()
        return got.headers["X-Storage-Url"], got.headers["X-Auth-Token"]

    def new_container(self, prefix: str = "test") -> str:
        """A name no test used yet (the driver creates the container itself)."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def objects(self, container: str) -> list[dict[str, Any]]:
        """Every object in `container` (name, bytes, ...), by a direct JSON listing."""
        url, token = self.token()
        found: list[dict[str, Any]] = []
        marker = ""
        while True:
            got = requests.get(f"{url}/{container}", params={"format": "json", "marker": marker},
                               headers={"X-Auth-Token": token}, timeout=30)
            if got.status_code == 404:
                return found
            got.raise_for_status()
            page = got.json()
            if not page:
                return found
            found += page
            marker = page[-1]["name"]

    def head(self, container: str, name: str) -> requests.Response:
        url, token = self.token()
        return requests.head(f"{url}/{container}/{name}", headers={"X-Auth-Token": token},
                             timeout=10)

    def storage_config(self, container: str, prefix: str = "", **extra: Any) -> dict[str, Any]:
        """Distribution's `storage.swift` section for this server and container."""
        return {"authurl": self.auth_url, "username": USER, "password": KEY, "authversion": 1,
                "container": container, "prefix": prefix, "chunksize": 1 << 20, **extra}

    def log_tail(self, server: str = "proxy", lines: int = 40) -> str:
        try:
            text = self.log_path(server).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- configs -----------------------------------------------------------------------------

    def _common(self, server: str) -> str:
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        return (
            "[DEFAULT]\n"
            "bind_ip = 127.0.0.1\n"
            f"bind_port = {self.ports[server]}\n"
            "workers = 0\n"
            f"user = {user}\n"
            f"swift_dir = {self.etc}\n"
            f"devices = {self.workdir / 'node'}\n"
            "mount_check = false\n"
            "disable_fallocate = true\n"
            f"recon_cache_path = {self.workdir / 'cache'}\n"
            f"log_name = {server}-server\n"
            # no syslog here: UDP to a dead socket would swallow the logs; -v sends them to stderr
            "log_address = /nonexistent\n"
            "log_level = INFO\n"
        )

    def _write_configs(self) -> None:
        for server in ("account", "container", "object"):
            (self.etc / f"{server}-server.conf").write_text(
                self._common(server)
                + f"\n[pipeline:main]\npipeline = healthcheck {server}-server\n"
                f"[app:{server}-server]\nuse = egg:swift#{server}\n"
                "[filter:healthcheck]\nuse = egg:swift#healthcheck\n"
            )
        filters = "".join(
            f"[filter:{name}]\nuse = egg:swift#{name.replace('-', '_')}\n"
            for name in ("catch_errors", "gatekeeper", "healthcheck", "proxy-logging",
                         "listing_formats", "bulk", "tempurl", "copy", "slo", "dlo", "symlink")
        )
        (self.etc / "proxy-server.conf").write_text(
            self._common("proxy")
            + f"\n[pipeline:main]\npipeline = {_PROXY_PIPELINE}\n"
            "[app:proxy-server]\nuse = egg:swift#proxy\n"
            "allow_account_management = true\naccount_autocreate = true\n"
            "[filter:tempauth]\nuse = egg:swift#tempauth\n"
            "user_admin_admin = admin .admin .reseller_admin\n"
            f"user_test_tester = {KEY} .admin\n"
            "token_life = 86400\n"
            "[filter:cache]\nuse = egg:swift#memcache\n"
            f"memcache_servers = 127.0.0.1:{self.ports['memcached']}\n"
            "[filter:versioned_writes]\nuse = egg:swift#versioned_writes\n"
            "allow_versioned_writes = true\n"
            + filters
        )


def object_name(section: dict[str, Any], relative: str) -> str:
    """Distribution's object name for a path in its layout (`docker/registry/v2/...`)."""
    return f"{section.get('prefix', '')}/files/{relative.lstrip('/')}".strip("/")


def swift_object(section: dict[str, Any], relative: str) -> bytes | None:
    """A stored file's bytes (a segmented one joined by Swift), or None if it is not there;
    read straight from Swift with the `storage.swift` section's tempauth credentials."""
    auth = requests.get(section["authurl"], timeout=10, headers={
        "X-Auth-User": section["username"], "X-Auth-Key": section["password"]})
    auth.raise_for_status()
    got = requests.get(f"{auth.headers['X-Storage-Url']}/{section['container']}/"
                       f"{object_name(section, relative)}",
                       headers={"X-Auth-Token": auth.headers["X-Auth-Token"]}, timeout=60)
    if got.status_code == 404:
        return None
    got.raise_for_status()
    return got.content


class Gate:
    """A TCP forwarder on a free loopback port in front of `target_port`. `close()` cuts every
    connection and refuses new ones, an outage that disturbs no one else; `open()` ends it.
    Tempauth hands out storage URLs for the host a client asked, so clients of the gate's
    auth URL stay behind the gate."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def open(self) -> Gate:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets.discard(source)
            source.close()  # each socket is the source of exactly one pump
