"""SIGKILL the server at random moments while clients push, delete tags and GC runs: nothing
acknowledged is lost, nothing corrupt is served, and abandoned upload state is purged later.

Each client owns its tags, so the order of its operations on a tag is known. A manifest PUT
answered 201 (or a tag DELETE answered 202) is acknowledged; one cut off by a kill may or may
not have happened. After the last restart every acknowledged manifest must pull completely by
digest (GC runs without `--delete-untagged`, so untagged manifests stay), and every tag must
name what its last acknowledged operation left, or what a later unacknowledged one did.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from appliance.admin.client import AdminClient, AdminError
from appliance.config.loader import load
from appliance.registry.fsck import Fsck
from appliance.server import open_driver
from tests.api.client import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    V2Client,
    digest_of,
    image_manifest,
    index_manifest,
)
from tests.server import EXECUTABLE, ApplianceServer, base_config

from .integrity import check_storage
from .processes import kill_tree

pytestmark = pytest.mark.e2e

KILLS = int(os.environ.get("CRASH_KILLS", "20"))
CLIENTS = 6
WORKERS = os.environ.get("CRASH_WORKERS", "1")
SEED = int(os.environ.get("CRASH_SEED", "9"))
ABSENT = None  # a tag's value after a delete

Value = str | None


@dataclass
class TagHistory:
    """What was done to one tag, in order: (digest or ABSENT, acknowledged)."""

    events: list[tuple[Value, bool]] = field(default_factory=list)

    def possible(self) -> set[Value]:
        """The last acknowledged value, or anything attempted after it."""
        allowed: set[Value] = {ABSENT}
        for value, acknowledged in self.events:
            if acknowledged:
                allowed = {value}
            else:
                allowed.add(value)
        return allowed


@dataclass
class Ledger:
    """Everything the clients were told, shared by their threads."""

    # (name, digest) of every acknowledged manifest -> the blobs (or child manifests) it names
    manifests: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    indexes: set[str] = field(default_factory=set)
    tags: dict[tuple[str, str], TagHistory] = field(default_factory=dict)
    attempted: int = 0
    acknowledged: int = 0
    refused: int = 0  # a manifest PUT answered 400 MANIFEST_BLOB_UNKNOWN (a layer swept meanwhile)
    cut_off: int = 0  # operations whose connection a kill broke
    deletes_acknowledged: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class CrashClient:
    """One client thread: pushes images and indexes (monolithic and chunked), moves and deletes
    its own tags, and records each answer in the ledger."""

    def __init__(self, url: str, number: int, ledger: Ledger) -> None:
        self.client = V2Client(url)
        self.number = number
        self.random = random.Random(SEED * 100 + number)
        self.ledger = ledger
        self.mine: list[tuple[str, str]] = []  # acknowledged (name, digest) of images it pushed

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
            except (requests.ConnectionError, requests.Timeout):
                with self.ledger.lock:
                    self.ledger.cut_off += 1
                time.sleep(0.2)
            except AssertionError as error:  # a 5xx, a traceback, or an answer nobody expects
                with self.ledger.lock:
                    self.ledger.errors.append(str(error)[:300])

    def step(self) -> None:
        name = f"crash/repo{self.random.randrange(3)}"
        tag = f"c{self.number}-t{self.random.randrange(6)}"
        choice = self.random.random()
        if choice < 0.55 or len(self.mine) < 2:
            self.push_image(name, tag)
        elif choice < 0.7:
            self.push_index(name, tag)
        elif choice < 0.85:
            self.retag(tag)
        else:
            self.delete_tag(name, tag)

    def push_image(self, name: str, tag: str) -> None:
        config = json.dumps(
            {"os": "linux", "architecture": "amd64", "nonce": os.urandom(8).hex()}
        ).encode()
        layers = [
            os.urandom(self.random.randint(1_000, 400_000))
            for _ in range(self.random.randint(1, 3))
        ]
        for blob in (config, *layers):
            self.upload(name, blob)
        manifest = image_manifest(config, layers)
        self.put(name, tag, manifest, DOCKER_MANIFEST, [digest_of(b) for b in (config, *layers)])

    def push_index(self, name: str, tag: str) -> None:
        """An index of two of this client's images, pushed into the repository holding them."""
        name, first = self.random.choice(self.mine)
        second = next((d for n, d in self.mine if n == name and d != first), first)
        children = [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": d,
                "size": self.size(name, d),
                "platform": {"os": "linux", "architecture": arch},
            }
            for d, arch in ((first, "amd64"), (second, "arm64"))
        ]
        self.put(name, tag, index_manifest(children), OCI_INDEX, [first, second])

    def size(self, name: str, digest: str) -> int:
        got = self.client.request(
            "GET", f"/v2/{name}/manifests/{digest}", headers={"Accept": DOCKER_MANIFEST}
        )
        assert got.status_code == 200, f"acknowledged {name}@{digest} answers {got.status_code}"
        return len(got.content)

    def retag(self, tag: str) -> None:
        """Point a tag at one of this client's existing images: a manifest PUT of the same bytes."""
        name, digest = self.random.choice(self.mine)
        body = self.client.request(
            "GET", f"/v2/{name}/manifests/{digest}", headers={"Accept": DOCKER_MANIFEST}
        )
        assert body.status_code == 200, f"acknowledged {name}@{digest} answers {body.status_code}"
        with self.ledger.lock:
            references = self.ledger.manifests[(name, digest)]
        self.put(name, tag, body.content, DOCKER_MANIFEST, references)

    def upload(self, name: str, blob: bytes) -> None:
        """Monolithic (POST+PUT), single POST, or chunked (POST, PATCHes, PUT), at random."""
        digest = digest_of(blob)
        way = self.random.randrange(3)
        if way == 1:
            done = self.client.request(
                "POST", f"/v2/{name}/blobs/uploads/", params={"digest": digest}, data=blob
            )
            assert done.status_code == 201, done.text
            return
        location = self.client.start_upload(name).headers["Location"]
        if way == 2:
            cut = len(blob) // 2
            for start, part in ((0, blob[:cut]), (cut, blob[cut:])):
                patched = self.client.request(
                    "PATCH",
                    location,
                    data=part,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + len(part) - 1}",
                    },
                )
                assert patched.status_code == 202, patched.text
                location = patched.headers["Location"]
            blob = b""
        done = self.client.request("PUT", location, params={"digest": digest}, data=blob)
        assert done.status_code == 201, done.text

    def put(
        self, name: str, tag: str, manifest: bytes, media_type: str, references: list[str]
    ) -> None:
        digest = digest_of(manifest)
        history = self.history(name, tag)
        with self.ledger.lock:
            self.ledger.attempted += 1
            history.events.append((digest, False))
            position = len(history.events) - 1
        answer = self.client.put_manifest(name, tag, manifest, media_type)
        if answer.status_code == 400 and V2Client.error_code(answer) == "MANIFEST_BLOB_UNKNOWN":
            with self.ledger.lock:
                self.ledger.refused += 1
            return
        assert answer.status_code == 201, answer.text
        assert answer.headers["Docker-Content-Digest"] == digest
        with self.ledger.lock:
            history.events[position] = (digest, True)
            self.ledger.acknowledged += 1
            self.ledger.manifests[(name, digest)] = references
            if media_type == OCI_INDEX:
                self.ledger.indexes.add(digest)
        if media_type == DOCKER_MANIFEST:
            self.mine.append((name, digest))

    def delete_tag(self, name: str, tag: str) -> None:
        history = self.history(name, tag)
        with self.ledger.lock:
            history.events.append((ABSENT, False))
            position = len(history.events) - 1
            allowed = history.possible()
        answer = self.client.request("DELETE", f"/v2/{name}/manifests/{tag}")
        assert answer.status_code in (202, 404), answer.text
        if answer.status_code == 404:  # only right if the tag may be gone already
            assert allowed & {ABSENT} and V2Client.error_code(answer) == "MANIFEST_UNKNOWN", (
                f"{name}:{tag} lost (expected one of {allowed})"
            )
        with self.ledger.lock:
            history.events[position] = (ABSENT, True)
            self.ledger.deletes_acknowledged += answer.status_code == 202

    def history(self, name: str, tag: str) -> TagHistory:
        with self.ledger.lock:
            return self.ledger.tags.setdefault((name, tag), TagHistory())


class GarbageCollectors:
    """GC in the server (admin socket) and as a separate `garbage-collect` process, in loops;
    the separate process is itself killed now and then."""

    def __init__(self, server: ApplianceServer, config_path: Path, seed: int) -> None:
        self.server = server
        self.command = [*EXECUTABLE, "garbage-collect", str(config_path)]
        self.random = random.Random(seed)
        self.completed = {"server": 0, "process": 0}
        self.process_kills = 0
        self.errors: list[str] = []

    def in_server(self, stop: threading.Event) -> None:
        admin = AdminClient(self.server.admin_socket, timeout=5)
        while not stop.is_set():
            try:
                admin.start_gc()
                while admin.gc_status()["running"]:
                    time.sleep(0.1)
                if admin.gc_status()["error"] is None:
                    self.completed["server"] += 1
            except AdminError:
                pass  # the server is down, or the other collector holds the lock
            time.sleep(0.3)

    def separate_process(self, stop: threading.Event) -> None:
        while not stop.is_set():
            process = subprocess.Popen(
                self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            try:
                _, stderr = process.communicate(timeout=self.random.uniform(1.0, 8.0))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.communicate()
                self.process_kills += 1
                continue
            if process.returncode == 0:
                self.completed["process"] += 1
            elif "already running" not in stderr:
                self.errors.append(stderr[-500:])
            time.sleep(0.5)


def _run_threads(
    targets: list[Callable[[threading.Event], None]], stop: threading.Event
) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(stop,), daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    return threads


def _verify(url: str, ledger: Ledger) -> list[str]:
    """Every acknowledged manifest and its blobs by digest, and every tag, against the ledger."""
    client = V2Client(url)
    accept = {"Accept": f"{DOCKER_MANIFEST}, {OCI_INDEX}"}
    lost = []
    for (name, digest), references in ledger.manifests.items():
        got = client.request("GET", f"/v2/{name}/manifests/{digest}", headers=accept)
        if got.status_code != 200 or digest_of(got.content) != digest:
            lost.append(f"{name}@{digest}: {got.status_code}")
            continue
        for reference in references:
            kind = "manifests" if digest in ledger.indexes else "blobs"
            part = client.request("GET", f"/v2/{name}/{kind}/{reference}", headers=accept)
            if part.status_code == 307:  # S3: a presigned URL of the object itself
                part = requests.get(part.headers["Location"], timeout=30)
            if part.status_code != 200 or digest_of(part.content) != reference:
                lost.append(f"{name}@{digest} {kind} {reference}: {part.status_code}")
    for (name, tag), history in ledger.tags.items():
        got = client.request("GET", f"/v2/{name}/manifests/{tag}", headers=accept)
        value = got.headers["Docker-Content-Digest"] if got.status_code == 200 else ABSENT
        if got.status_code not in (200, 404) or value not in history.possible():
            lost.append(
                f"{name}:{tag} is {value} ({got.status_code}), expected one of {history.possible()}"
            )
    for name in client.request("GET", "/v2/_catalog").json()["repositories"]:
        for tag in client.request("GET", f"/v2/{name}/tags/list").json()["tags"]:
            if (
                client.request("HEAD", f"/v2/{name}/manifests/{tag}", headers=accept).status_code
                != 200
            ):
                lost.append(f"{name}:{tag} is listed but does not resolve")
    return lost


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@dataclass
class Kills:
    count: int = 0
    processes: int = 0
    during_server_gc: int = 0
    restarts: list[float] = field(default_factory=list)


def _kill_and_restart(server: ApplianceServer, kills: int, rng: random.Random) -> Kills:
    """SIGKILL the server's whole process tree at random moments, restart it each time."""
    done = Kills()
    for _ in range(kills):
        time.sleep(rng.uniform(0.5, 3.0))
        with contextlib.suppress(AdminError):
            admin = AdminClient(server.admin_socket, timeout=1)
            done.during_server_gc += admin.gc_status()["running"]
        done.processes += kill_tree(server.process.pid)
        server.process.wait()
        done.count += 1
        time.sleep(rng.uniform(0.0, 0.5))  # clients meet a closed port for a while
        restarting = time.monotonic()
        server.start()
        done.restarts.append(time.monotonic() - restarting)
    return done


@pytest.mark.parametrize(("storage", "kills"), [("filesystem", KILLS), ("s3", max(KILLS // 2, 1))])
def test_sigkill_during_pushes_deletes_and_gc_loses_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, storage: str, kills: int
) -> None:
    """Random SIGKILLs: every acknowledged push pulls whole, no blob is corrupt, uploads purge.
    On S3 (fewer kills: each restart and GC run is slower) the spool folder is configured, so
    that its leftovers are purged too (the default is a per-process temporary folder)."""
    config = base_config(tmp_path)
    config["appliance"] = {"gc": {"grace": "2s"}}
    if storage == "s3":
        seaweedfs = request.getfixturevalue("seaweedfs")
        bucket = request.getfixturevalue("s3_bucket")
        del config["storage"]["filesystem"]
        config["storage"]["s3"] = seaweedfs.storage_config(bucket, f"/crash/{os.urandom(6).hex()}")
        config["appliance"]["spooldir"] = str(tmp_path / "spool")
    # One worker: a restart takes ~1 s instead of several on a loaded 2-core machine, so more
    # kills fit in. `kill_tree` kills every worker too when CRASH_WORKERS is raised.
    server = ApplianceServer(tmp_path / "server", config, args=["--workers", WORKERS]).start()
    # A copy of its own: each restart rewrites the server's config file.
    own_config = tmp_path / "gc.yml"
    own_config.write_text((tmp_path / "server" / "config.yml").read_text())
    driver = open_driver(load(str(own_config), {}))
    ledger = Ledger()
    collectors = GarbageCollectors(server, own_config, SEED)
    clients = [CrashClient(server.url, n, ledger) for n in range(CLIENTS)]
    stop = threading.Event()
    threads = _run_threads(
        [c.run for c in clients] + [collectors.in_server, collectors.separate_process], stop
    )
    started = time.monotonic()
    try:
        kills_done = _kill_and_restart(server, kills, random.Random(SEED))
        time.sleep(2.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    duration = time.monotonic() - started
    lost = _verify(server.url, ledger)
    server.stop()
    report = check_storage(driver)
    fsck = Fsck(driver).run()
    # A tag delete cut off inside its folder removal can leave the folder without `current/link`:
    # not listed, not served (checked above), and fsck reports it; anything else is a fault.
    fsck_faults = [p for p in fsck.problems if p.detail != "the tag has no current/link"]

    # Restarted with upload purging on a short age: what the kills abandoned goes away.
    spool = Path(driver.spool_directory())
    spooled = len(list(spool.iterdir()))
    config["storage"]["maintenance"] = {
        "uploadpurging": {"enabled": True, "age": "1s", "interval": "1s"}
    }
    purging = ApplianceServer(tmp_path / "server", config, args=["--workers", WORKERS]).start()
    purged = _wait_for(
        lambda: not check_storage(driver).uploads and not any(spool.iterdir()), timeout=30
    )
    purging.stop()

    gc_runs = collectors.completed
    print(
        f"\ncrash safety ({storage}): {kills_done.count} server kills "
        f"({kills_done.processes} processes) in {duration:.0f} s "
        f"({kills_done.during_server_gc} while the server's GC ran), "
        f"{collectors.process_kills} GC process kills; GC runs completed: {gc_runs}; "
        f"manifest pushes attempted {ledger.attempted}, acknowledged {ledger.acknowledged} "
        f"({len(ledger.indexes)} indexes), refused {ledger.refused}, "
        f"operations cut off {ledger.cut_off}; "
        f"tag deletes acknowledged {ledger.deletes_acknowledged}; lost {len(lost)}; "
        f"blobs checked {report.blobs}, corrupt {len(report.corrupt)}, "
        f"bad links {len(report.bad_links)}, dangling links {len(report.dangling)}, "
        f"stale layer links {len(report.stale_layer_links)}; "
        f"fsck problems {dict(Counter(p.kind for p in fsck.problems))}; "
        f"uploads left after the kills {len(report.uploads)}, spool files {spooled}, "
        f"purged: {purged}; restart {sum(kills_done.restarts) / kills:.1f} s on average"
    )
    assert ledger.errors == [], ledger.errors[:5]
    assert collectors.errors == [], collectors.errors[:3]
    assert lost == [], lost[:10]
    assert report.corrupt == [] and report.bad_links == [] and report.dangling == [], report
    assert fsck_faults == [], fsck_faults[:5]
    assert purged, (check_storage(driver).uploads[:5], list(spool.iterdir())[:5])
    assert ledger.acknowledged > kills and collectors.completed["server"] > 0
    assert storage == "s3" or collectors.completed["process"] > 0  # slower there: may not finish
