"""Real servers for the pull-through cache tests: an upstream (ours with htpasswd, ours with
token auth, or Distribution 2.8.2) and a cache of ours in front of it, all on loopback."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.auth.htpasswd import hash_password, write_entries
from appliance.tls.tokenkey import init_token_key
from tests.api.client import V2Client
from tests.server import ApplianceServer, base_config

USER, PASSWORD = "mirror-bot", "pw-" + secrets.token_hex(6)


def htpasswd(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "htpasswd"
    write_entries(str(path), {USER: hash_password(PASSWORD)})
    return path


@contextmanager
def serving(server: ApplianceServer) -> Iterator[ApplianceServer]:
    """Start; stop on the way out; the log must hold no traceback."""
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


def basic_upstream(workdir: Path) -> ApplianceServer:
    """Ours, with htpasswd auth (401 + `WWW-Authenticate: Basic`)."""
    config = base_config(workdir)
    config["auth"] = {"htpasswd": {"realm": "upstream", "path": str(htpasswd(workdir / "users"))}}
    return ApplianceServer(workdir, config)


def token_upstream(workdir: Path) -> ApplianceServer:
    """Ours, with `auth.token` and the built-in token server as realm (Docker Hub's scheme:
    401 + `WWW-Authenticate: Bearer realm=…,service=…,scope=…`)."""
    config = base_config(workdir)
    init_token_key(workdir / "certs")
    port = config["http"]["addr"].rsplit(":", 1)[1]
    config["auth"] = {"token": {"realm": f"http://127.0.0.1:{port}/auth/token",
                                "service": "upstream-test", "issuer": "upstream-test-issuer"}}
    config["appliance"] = {"certs": {"dir": str(workdir / "certs")},
                           "tokenserver": {"path": str(htpasswd(workdir / "users")),
                                           "lifetime": "2m"},
                           "access": {"rules": [{"repositories": ["*"], "users": [USER],
                                                 "actions": ["*"]}]}}
    return ApplianceServer(workdir, config)


def cache(workdir: Path, upstream_url: str, prefix: str | None = "hub/", ttl: str = "168h",
          credentials: bool = True, **extra: Any) -> ApplianceServer:
    config = base_config(workdir)
    config["proxy"] = {"remoteurl": upstream_url, "ttl": ttl}
    if credentials:
        config["proxy"] |= {"username": USER, "password": PASSWORD}
    if prefix is not None:
        config["appliance"] = {"proxy": {"prefix": prefix}}
    config.update(extra)
    return ApplianceServer(workdir, config)


def upstream_client(server: ApplianceServer | str) -> V2Client:
    url = server if isinstance(server, str) else server.url
    return V2Client(url, auth=(USER, PASSWORD))


@dataclass
class DebugPort:
    """Where a server's /metrics is, as `tests.observe.test_health_metrics.scrape` wants it."""

    debug_url: str
