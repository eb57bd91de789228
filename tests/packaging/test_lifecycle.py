"""The server under a (fake) systemd: sd_notify, SIGHUP reload, graceful SIGTERM stop.

The server runs from the Python source (`python -m appliance.cli serve`); a UNIX datagram
socket in the test stands in for systemd's NOTIFY_SOCKET.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from appliance.auth.basic import HtpasswdAuthenticator
from appliance.auth.htpasswd import hash_password, write_entries
from appliance.config import ConfigError
from appliance.lifecycle import Reloader
from tests.e2e import tools
from tests.server import base_config

from .harness import SOURCE, Server, start_server


@pytest.fixture
def run_server(workdir: Path) -> Iterator[Any]:
    """Start servers from the source under a fake systemd; all are stopped afterwards."""
    started: list[Server] = []

    def run(config: dict[str, Any]) -> Server:
        server = start_server(SOURCE, config, workdir / f"server-{len(started)}")
        started.append(server)
        return server.ready()

    yield run
    for server in started:
        server.stop()


def url_of(config: dict[str, Any]) -> str:
    scheme = "https" if "tls" in config["http"] else "http"
    return f"{scheme}://{config['http']['addr']}"


def der(pem_path: Path) -> bytes:
    return x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(Encoding.DER)


def test_ready_is_sent_once_the_port_answers(run_server: Any, tls_config: dict[str, Any]) -> None:
    """READY=1 is the first thing systemd hears, and by then GET /v2/ already answers."""
    server = run_server(tls_config)
    assert server.notify.received[0].splitlines()[0] == "READY=1"
    ca = tls_config_ca(tls_config)
    assert requests.get(url_of(tls_config) + "/v2/", verify=ca, timeout=5).status_code == 200


def tls_config_ca(config: dict[str, Any]) -> str:
    return str(Path(config["http"]["tls"]["certificate"]).with_name("ca.crt"))


def test_sighup_swaps_a_changed_certificate_without_dropping_connections(
    run_server: Any, tls_config: dict[str, Any], workdir: Path
) -> None:
    """After SIGHUP new TLS connections get the new certificate; an open keep-alive one goes on."""
    old, new = tools.make_certs(workdir / "old"), tools.make_certs(workdir / "new")
    live = workdir / "live"
    live.mkdir()
    for source, name in ((old.server_cert, "server.crt"), (old.server_key, "server.key")):
        shutil.copy(source, live / name)
    tls_config["http"]["tls"] = {"certificate": str(live / "server.crt"),
                                 "key": str(live / "server.key")}
    server = run_server(tls_config)
    trust = ssl.create_default_context(cafile=str(old.ca_cert))
    trust.load_verify_locations(cafile=str(new.ca_cert))
    port = int(tls_config["http"]["addr"].rsplit(":", 1)[1])

    def get(connection: http.client.HTTPSConnection) -> bytes:
        connection.request("GET", "/v2/")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        return connection.sock.getpeercert(binary_form=True)

    kept = http.client.HTTPSConnection("localhost", port, context=trust, timeout=10)
    assert get(kept) == der(old.server_cert)
    kept_socket = kept.sock
    for source, name in ((new.server_cert, "server.crt"), (new.server_key, "server.key")):
        shutil.copy(source, live / f".{name}")
        os.replace(live / f".{name}", live / name)

    server.process.send_signal(signal.SIGHUP)
    assert server.notify.wait_for("READY=1", 10)[0] == "RELOADING=1"
    fresh = http.client.HTTPSConnection("localhost", port, context=trust, timeout=10)
    assert get(fresh) == der(new.server_cert)
    assert get(kept) == der(old.server_cert)
    assert kept.sock is kept_socket
    kept.close()
    fresh.close()


def test_sighup_applies_readonly_from_the_changed_config(run_server: Any, workdir: Path) -> None:
    """readonly.enabled turned on in the file and SIGHUP: writes get 405; turned off: allowed."""
    config = base_config(workdir)
    config["appliance"] = {"admin": {"socket": str(workdir / "admin.sock")}}
    server = run_server(config)
    start = url_of(config) + "/v2/team/app/blobs/uploads/"
    assert requests.post(start, timeout=5).status_code == 202

    for enabled, status in ((True, 405), (False, 202)):
        config["storage"]["maintenance"] = {"readonly": {"enabled": enabled}}
        server.config_path.write_text(yaml.safe_dump(config))
        server.process.send_signal(signal.SIGHUP)
        server.notify.wait_for("READY=1", 10)
        assert requests.post(start, timeout=5).status_code == status
    assert "reloaded htpasswd, TLS certificate and read-only setting" in server.log()


def test_sigterm_lets_an_upload_in_flight_finish(run_server: Any, workdir: Path) -> None:
    """SIGTERM sends STOPPING=1 and stops accepting, but an upload already sending completes."""
    config = base_config(workdir)
    config["appliance"] = {"admin": {"socket": str(workdir / "admin.sock")}}
    server = run_server(config)
    base = url_of(config)
    location = requests.post(base + "/v2/team/big/blobs/uploads/", timeout=5).headers["Location"]
    halves = [os.urandom(1 << 20), os.urandom(1 << 20)]
    digest = "sha256:" + hashlib.sha256(b"".join(halves)).hexdigest()
    go_on, outcome = threading.Event(), {}

    def body() -> Iterator[bytes]:
        yield halves[0]
        go_on.wait(30)
        yield halves[1]

    def upload() -> None:
        target = location if location.startswith("http") else base + location
        done = requests.put(target, params={"digest": digest}, data=body(), timeout=60)
        outcome["status"] = done.status_code

    uploader = threading.Thread(target=upload)
    uploader.start()
    time.sleep(1)  # the first half is on its way
    server.process.send_signal(signal.SIGTERM)
    server.notify.wait_for("STOPPING=1", 10)
    host, port = config["http"]["addr"].rsplit(":", 1)
    tools.wait_for(lambda: refused(host, int(port)), timeout=10, what="the port to close")
    go_on.set()
    uploader.join(60)
    assert outcome == {"status": 201}
    assert server.process.wait(30) == 0
    hex_digest = digest.split(":")[1]
    blobs = Path(config["storage"]["filesystem"]["rootdirectory"], "docker/registry/v2/blobs")
    stored = blobs / "sha256" / hex_digest[:2] / hex_digest / "data"
    assert stored.read_bytes() == b"".join(halves)


def refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


class FakeFlag:
    def __init__(self) -> None:
        self.enabled = False
        self.calls: list[bool] = []

    def set(self, enabled: bool) -> None:
        self.calls.append(enabled)
        self.enabled = enabled


class FakeRegistry:
    def __init__(self) -> None:
        self.readonly = FakeFlag()


def test_a_config_that_does_not_validate_changes_nothing(tmp_path: Path) -> None:
    """A reload that finds a broken config keeps users, certificate and read-only as they were."""
    htpasswd = tmp_path / "htpasswd"
    write_entries(str(htpasswd), {"alice": hash_password("pw")})
    authenticator = HtpasswdAuthenticator(str(htpasswd), "realm")
    assert authenticator.check("alice", "pw")

    def broken() -> Any:
        raise ConfigError(("storage.maintenance.readonly.enabled: must be true or false",))

    registry = FakeRegistry()
    config = object()
    reloader = Reloader(config, registry, authenticator, None, load_config=broken)  # type: ignore[arg-type]
    reloader.reload()
    assert reloader.config is config
    assert registry.readonly.calls == []
    assert authenticator.cached_verdict("alice", "pw") is True


def test_htpasswd_reload_rereads_a_file_that_looks_unchanged(tmp_path: Path) -> None:
    """SIGHUP forces a read even when size, inode and mtime say nothing changed."""
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{hash_password('one')}\n")
    authenticator = HtpasswdAuthenticator(str(path), "realm")
    assert authenticator.check("alice", "one")
    before = path.stat()
    with open(path, "r+") as file:  # same size, same inode, mtime put back
        file.write(f"bobby:{hash_password('two')}\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert authenticator.cached_verdict("alice", "one") is True
    authenticator.reload()
    assert authenticator.cached_verdict("alice", "one") is None
    assert not authenticator.check("alice", "one")
    assert authenticator.check("bobby", "two")
