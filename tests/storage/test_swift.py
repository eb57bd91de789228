"""What only the Swift driver does, over the session's real Swift all-in-one: Distribution's
object names, Dynamic Large Objects (its and ours), segments that never outlive or outnumber
their file, temp URLs, Keystone authentication, and a backend that fails.

The shared behaviour (every method, every edge) is in test_driver_contract.py.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from appliance.storage.driver import PathNotFound, StorageError, StorageUnavailable
from appliance.storage.swift import SwiftDriver, SwiftOptions, auth_version, segment_name
from tests.swift_server import KEY, USER, SwiftAllInOne

MiB = 1 << 20


@pytest.fixture
def container(swift_server: SwiftAllInOne) -> str:
    return swift_server.new_container("driver")


def _driver(swift_server: SwiftAllInOne, container: str, prefix: str = "", **extra: Any) -> SwiftDriver:
    return SwiftDriver(SwiftOptions(**swift_server.storage_config(container, prefix, **extra)))


def _names(swift_server: SwiftAllInOne, container: str) -> list[str]:
    return [entry["name"] for entry in swift_server.objects(container)]


def _put_raw(swift_server: SwiftAllInOne, container: str, name: str, data: bytes,
             headers: dict[str, str] | None = None) -> None:
    url, token = swift_server.token()
    got = requests.put(f"{url}/{container}/{name}", data=data, timeout=30,
                       headers={"X-Auth-Token": token, **(headers or {})})
    assert got.status_code == 201, got.text


# -- Distribution's layout -----------------------------------------------------------------


def test_objects_are_named_as_distribution_names_them(swift_server: SwiftAllInOne, container: str) -> None:
    """`<prefix>/files<path>`, outer slashes trimmed; a large file is an empty manifest object
    whose X-Object-Manifest names `<container>/<prefix>/segments/<3 hex>/<37 hex>`, and its
    segments are `/<16-digit number from 1>`, each at most chunksize."""
    driver = _driver(swift_server, container, prefix="/reg/")
    driver.put_content("/docker/registry/v2/small", b"x")
    local = os.path.join(driver.spool_directory(), "big")
    with open(local, "wb") as f:
        f.write(os.urandom(2 * MiB + 10))
    driver.put_file("/docker/registry/v2/big", local)
    names = _names(swift_server, container)
    assert "reg//files/docker/registry/v2/small" in names  # Distribution keeps the double slash
    manifest = swift_server.head(container, "reg//files/docker/registry/v2/big").headers["X-Object-Manifest"]
    owner, _, segments = manifest.partition("/")
    assert owner == container
    assert segments.startswith("reg//segments/")  # the double slash again, as Distribution
    parts = segments.split("/")[3:]
    assert len(parts) == 2 and len(parts[0]) == 3 and len(parts[1]) == 37
    listed = {entry["name"]: entry["bytes"] for entry in swift_server.objects(container)}
    assert [listed[segment_name(segments, n)] for n in (1, 2, 3)] == [MiB, MiB, 10]
    assert len(listed) == 5


def test_reads_a_distribution_style_large_object(swift_server: SwiftAllInOne, container: str) -> None:
    """A DLO as Distribution 2.8.2 writes it (its long segment names included) reads, stats,
    lists, walks, moves and deletes as one file, segments and all."""
    data = [os.urandom(MiB), os.urandom(MiB), os.urandom(12345)]
    segments = "segments/2f6/46f636b6572" + "ab" * 40 + "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    driver = _driver(swift_server, container)
    assert driver.list("/") == []  # creates the container
    for number, part in enumerate(data, start=1):
        _put_raw(swift_server, container, segment_name(segments, number), part)
    _put_raw(swift_server, container, "files/docker/blob/data", b"",
             {"X-Object-Manifest": f"{container}/{segments}"})
    whole = b"".join(data)
    assert driver.stat("/docker/blob/data").size == len(whole)
    assert driver.get_content("/docker/blob/data") == whole
    with driver.reader("/docker/blob/data", MiB + 5) as f:
        assert f.read() == whole[MiB + 5:]
    assert [(i.path, i.size) for i in driver.walk("/docker")] == [("/docker/blob/data", len(whole))]
    driver.move("/docker/blob/data", "/docker/moved/data")
    assert hashlib.sha256(driver.get_content("/docker/moved/data")).digest() == hashlib.sha256(whole).digest()
    assert not any(name.startswith(segments) for name in _names(swift_server, container))
    driver.delete("/docker")
    assert _names(swift_server, container) == []


def test_a_move_leaves_no_shared_and_no_stray_segments(swift_server: SwiftAllInOne, container: str) -> None:
    """After moves and a concatenation only the files' own segments exist, each file has a
    prefix of its own, and deleting everything leaves the container empty."""
    driver = _driver(swift_server, container)
    for name in ("a", "b"):
        writer = driver.writer(f"/w/{name}")
        writer.write(os.urandom(3 * MiB))
        writer.commit()
    driver.move("/w/a", "/w/moved")
    driver.concatenate(["/w/moved", "/w/b"], "/w/joined")
    manifests = {swift_server.head(container, f"files/w/{n}").headers["X-Object-Manifest"]
                 for n in ("moved", "b", "joined")}
    assert len(manifests) == 3
    names = _names(swift_server, container)
    assert len([n for n in names if n.startswith("segments/")]) == 3 + 3 + 6
    driver.delete("/w")
    assert _names(swift_server, container) == []


def test_a_cancelled_writer_leaves_no_segments(swift_server: SwiftAllInOne, container: str) -> None:
    """Segments sent before a cancel, or before a close without commit, are deleted."""
    driver = _driver(swift_server, container)
    for finish in ("cancel", "close"):
        writer = driver.writer(f"/w/{finish}")
        writer.write(os.urandom(3 * MiB))
        getattr(writer, finish)()
    assert _names(swift_server, container) == []


def test_move_and_delete_racing_have_one_winner(swift_server: SwiftAllInOne, container: str) -> None:
    """A move (a pull taking a blob back from GC's trash) racing a delete (GC emptying its
    trash) never leaves a file whose segments are gone: it is either whole or absent."""
    for attempt in range(6):
        first, second = _driver(swift_server, container), _driver(swift_server, container)
        data = os.urandom(2 * MiB + attempt)
        writer = first.writer("/trash/blob")
        writer.write(data)
        writer.commit()
        barrier, errors = threading.Barrier(2), []

        def run(action: Any, barrier: threading.Barrier = barrier, errors: list = errors) -> None:
            barrier.wait()
            try:
                action()
            except PathNotFound:
                pass
            except Exception as error:  # reported below
                errors.append(error)

        actions = [functools.partial(first.move, "/trash/blob", "/blobs/data"),
                   functools.partial(second.delete, "/trash/blob")]
        threads = [threading.Thread(target=run, args=(action,)) for action in actions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        with contextlib.suppress(PathNotFound):
            assert first.get_content("/blobs/data") == data
        first.delete("/")
        assert _names(swift_server, container) == []


def test_walk_reports_the_size_of_large_objects(swift_server: SwiftAllInOne, container: str) -> None:
    """A manifest lists as 0 bytes in Swift; walk still gives the file's size."""
    driver = _driver(swift_server, container)
    writer = driver.writer("/u/chunks/0")
    writer.write(b"y" * (MiB + 1))
    writer.commit()
    driver.put_content("/u/chunks/1", b"")
    assert {(i.path, i.size) for i in driver.walk("/u")} == {("/u/chunks/0", MiB + 1), ("/u/chunks/1", 0)}


def test_the_container_is_created_on_first_use(swift_server: SwiftAllInOne) -> None:
    """A missing container is created, as Distribution does at start."""
    container = swift_server.new_container("fresh")
    driver = _driver(swift_server, container)
    with pytest.raises(PathNotFound):
        driver.stat("/anything")
    url, token = swift_server.token()
    assert requests.head(f"{url}/{container}", headers={"X-Auth-Token": token}, timeout=10).status_code == 204


# -- temp URLs -----------------------------------------------------------------------------


def test_temp_urls_use_the_configured_key_and_survive_a_second_driver(
        swift_server: SwiftAllInOne, container: str) -> None:
    """With `secretkey` set, it becomes the container's temp URL key (Swift >= 2.3); a driver
    without one reuses the key already there, so earlier URLs keep working."""
    first = _driver(swift_server, container, secretkey="configured-key")
    first.put_content("/t/file", b"temp url content")
    url = first.redirect_url("/t/file")
    assert url is not None and "temp_url_sig=" in url
    got = requests.head(f"{swift_server.storage_url}/{container}", timeout=10,
                        headers={"X-Auth-Token": swift_server.token()[1]})
    assert got.headers["X-Container-Meta-Temp-Url-Key"] == "configured-key"
    second = _driver(swift_server, container)
    assert requests.get(second.redirect_url("/t/file"), timeout=10).content == b"temp url content"
    assert requests.get(url, timeout=10).content == b"temp url content"
    assert requests.get(url.replace("temp_url_sig=", "temp_url_sig=0"), timeout=10).status_code == 401


def test_workers_starting_together_agree_on_the_temp_url_key(
        swift_server: SwiftAllInOne, container: str) -> None:
    """Several workers on a container without a key each set one at once; the key is derived
    from the settings, so all set the same one and every worker's URLs keep working."""
    drivers = [_driver(swift_server, container) for _ in range(4)]
    drivers[0].put_content("/t/file", b"shared key")
    barrier, urls = threading.Barrier(len(drivers)), []

    def sign(driver: SwiftDriver) -> None:
        barrier.wait()
        urls.append(driver.redirect_url("/t/file"))

    threads = [threading.Thread(target=sign, args=(driver,)) for driver in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(urls) == len(drivers)
    for url in urls:
        assert requests.get(url, timeout=10).content == b"shared key"


# -- authentication ------------------------------------------------------------------------


class _Keystone(http.server.BaseHTTPRequestHandler):
    """A stand-in Keystone: checks the request body, hands out the all-in-one's tempauth token
    with a catalog of two regions and three interfaces."""

    swift: SwiftAllInOne
    seen: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, body))
        storage, token = self.swift.token()

        def endpoints_v3(region: str, url: str) -> list[dict[str, str]]:
            return [{"interface": kind, "region_id": region, "region": region,
                     "url": url if kind == "internal" else "http://127.0.0.1:9/nowhere"}
                    for kind in ("public", "internal", "admin")]

        if self.path.endswith("/v3/auth/tokens"):
            answer = {"token": {"project": {"id": "project-id"}, "catalog": [
                {"type": "identity", "endpoints": endpoints_v3("RegionTwo", "http://127.0.0.1:9/x")},
                {"type": "object-store", "endpoints": endpoints_v3("RegionOne", "http://127.0.0.1:9/y")
                 + endpoints_v3("RegionTwo", storage)},
            ]}}
            headers = {"X-Subject-Token": token}
        else:
            answer = {"access": {"token": {"id": token, "tenant": {"id": "tenant-id"}}, "serviceCatalog": [
                {"type": "object-store", "endpoints": [
                    {"region": "RegionOne", "publicURL": "http://127.0.0.1:9/z", "internalURL": "http://127.0.0.1:9/z"},
                    {"region": "RegionTwo", "publicURL": "http://127.0.0.1:9/z", "internalURL": storage}]}]}}
            headers = {}
        data = json.dumps(answer).encode()
        self.send_response(201 if "v3" in self.path else 200)
        for name, value in {**headers, "Content-Type": "application/json",
                            "Content-Length": str(len(data))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def keystone(swift_server: SwiftAllInOne) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    handler = type("Handler", (_Keystone,), {"swift": swift_server, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_keystone_v3(swift_server: SwiftAllInOne, container: str, keystone: Any) -> None:
    """authversion 3: password auth scoped to a project by name in the user's domain; the
    storage URL is the catalog's object-store endpoint for `region` and `endpointtype`."""
    base, seen = keystone
    driver = SwiftDriver(SwiftOptions(
        authurl=f"{base}/v3", username="alice", password="secret", container=container,
        tenant="project", domain="users", region="RegionTwo", endpointtype="internal"))
    driver.put_content("/k/file", b"via keystone v3")
    assert _driver(swift_server, container).get_content("/k/file") == b"via keystone v3"
    path, body = seen[0]
    assert path == "/v3/auth/tokens"
    assert body == {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "alice", "password": "secret", "domain": {"name": "users"}}}},
        "scope": {"project": {"name": "project", "domain": {"name": "users"}}}}}
    assert driver.auth.project_id == "project-id"


def test_keystone_v2(swift_server: SwiftAllInOne, container: str, keystone: Any) -> None:
    """authversion 2 (read from the URL): passwordCredentials and tenantId."""
    base, seen = keystone
    driver = SwiftDriver(SwiftOptions(
        authurl=f"{base}/v2.0", username="bob", password="pw", container=container,
        tenantid="t-1", region="RegionTwo", endpointtype="internal"))
    driver.put_content("/k/v2", b"via keystone v2")
    assert seen[0] == ("/v2.0/tokens", {"auth": {
        "passwordCredentials": {"username": "bob", "password": "pw"}, "tenantId": "t-1"}})


def test_auth_version_from_the_url() -> None:
    """As ncw/swift: "v3" in the URL means 3, "v2" means 2, anything else 1."""
    def version(url: str, given: int = 0) -> int:
        return auth_version(SwiftOptions(authurl=url, username="u", password="p", container="c",
                                         authversion=given))
    assert [version("https://k/v3"), version("https://k/v2.0"), version("http://s/auth/v1.0"),
            version("https://k/v3", 1)] == [3, 2, 1, 1]


def test_wrong_credentials_are_a_storage_error(swift_server: SwiftAllInOne, container: str) -> None:
    """A refused password is an operator's problem, not an outage: no 503, a clear message."""
    driver = SwiftDriver(SwiftOptions(authurl=swift_server.auth_url, username=USER,
                                      password=KEY + "-wrong", container=container))
    with pytest.raises(StorageError, match="authentication failed") as caught:
        driver.stat("/x")
    assert not isinstance(caught.value, StorageUnavailable)


def test_a_token_swift_refuses_is_renewed(swift_server: SwiftAllInOne, container: str) -> None:
    """When the token expires (here: is replaced by garbage), the next call authenticates again."""
    driver = _driver(swift_server, container)
    driver.put_content("/x", b"1")
    expired = "AUTH_tk-no-longer-valid"
    driver.auth._token = expired
    for connection in driver._pool:
        connection.token = connection._issued = expired
    assert driver.get_content("/x") == b"1"


# -- failures ------------------------------------------------------------------------------


class _Failing(http.server.BaseHTTPRequestHandler):
    """tempauth that works, then a storage URL answering 503 to everything."""

    def _answer(self) -> None:
        if self.path.startswith("/auth/"):
            self.send_response(200)
            self.send_header("X-Storage-Url", f"http://127.0.0.1:{self.server.server_address[1]}/v1/AUTH_x")
            self.send_header("X-Auth-Token", "AUTH_tk")
        else:
            self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def test_5xx_and_unreachable_backends_are_unavailable(tmp_path: Any) -> None:
    """Swift answering 503, and Swift not listening at all, raise StorageUnavailable (clients
    get 503 UNAVAILABLE) after a few quick retries."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        failing = SwiftDriver(SwiftOptions(
            authurl=f"http://127.0.0.1:{server.server_address[1]}/auth/v1.0", username="u",
            password="p", container="c"))
        started = time.monotonic()
        for call in (lambda: failing.stat("/x"), lambda: failing.put_content("/x", b"1"),
                     lambda: failing.get_content("/x"), lambda: failing.delete("/x")):
            with pytest.raises(StorageUnavailable):
                call()
        assert time.monotonic() - started < 20
    finally:
        server.shutdown()
        server.server_close()
    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    gone = SwiftDriver(SwiftOptions(authurl=f"http://127.0.0.1:{dead}/auth/v1.0", username="u",
                                    password="p", container="c"))
    with pytest.raises(StorageUnavailable):
        gone.get_content("/x")


def test_racing_creators_have_one_winner_every_time(swift_server: SwiftAllInOne, container: str) -> None:
    """Swift checks If-None-Match when a PUT starts, so racing PUTs can all succeed; the claim
    check after them still leaves exactly one winner, round after round."""
    drivers = [_driver(swift_server, container) for _ in range(8)]
    for round_number in range(4):
        barrier = threading.Barrier(len(drivers))
        results: list[bool] = []

        def create(driver: SwiftDriver, barrier: threading.Barrier = barrier,
                   results: list[bool] = results) -> None:
            barrier.wait()
            results.append(driver.create_exclusive("/gc/lock", b"holder"))

        threads = [threading.Thread(target=create, args=(driver,)) for driver in drivers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results.count(True) == 1, (round_number, results)
        drivers[0].delete("/gc/lock")
