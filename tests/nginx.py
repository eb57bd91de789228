"""A real nginx (Debian `nginx`) balancing registry-appliance instances, for tests.

nginx runs in the foreground from a config in its own directory (`-p` prefix, pid, logs and
temp files there), terminates TLS and passes each request round-robin to the instances. The
`server`/`location` blocks are the ones README "Scaling out" shows.
"""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NGINX = "/usr/sbin/nginx"

TEMPLATE = """\
daemon off;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$request_method $uri $status upstream=$upstream_addr';
    access_log {prefix}/access.log upstream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    upstream registry {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};

        client_max_body_size 0;          # layers of any size
        chunked_transfer_encoding on;

        location / {{
            proxy_pass http://registry;
            proxy_http_version 1.1;
            proxy_request_buffering off; # stream uploads to the instance as they arrive
            proxy_buffering off;
            proxy_set_header Host $http_host;  # Location headers keep the balancer's address
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 900s;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Nginx:
    prefix: Path
    upstreams: Sequence[str]  # "127.0.0.1:5001", ...
    cert: Path
    key: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Nginx:
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        servers = "\n".join(f"        server {upstream};" for upstream in self.upstreams)
        config = self.prefix / "nginx.conf"
        config.write_text(TEMPLATE.format(prefix=self.prefix, servers=servers, port=self.port,
                                          cert=self.cert, key=self.key))
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c", str(config),
             "-e", str(self.prefix / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not start: {self.error_log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.prefix / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []
