"""GC safety under load: pushes that reuse layers orphaned by deletes, while GC runs again and again.

Clients push like docker (HEAD each layer, upload what is missing, PUT the manifest, and push
again when the manifest is refused because a layer vanished meanwhile). Garbage collection runs
in two loops at once, inside the server (admin API) and as a separate `garbage-collect` process
(they contend for the storage lock; a loop that is a few runs ahead waits for the other, so
neither starves the other), with a one-second grace period so that orphaned
layers really are swept while being reused. Afterwards every image whose push got a
201 (and was not deleted on purpose) must pull completely with matching digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from appliance.admin.client import AdminClient
from tests.api.client import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, digest_of
from tests.server import ApplianceServer, base_config

pytestmark = pytest.mark.e2e

CLIENTS = 4
ROUNDS = 60
LAYER_POOL = 40


class Pusher:
    def __init__(self, url: str, seed: int) -> None:
        self.url = url
        self.session = requests.Session()
        self.random = random.Random(seed)
        self.retries = 0

    def push(self, name: str, tag: str, layers: list[bytes]) -> str:
        config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": DOCKER_LAYER, "digest": digest_of(b), "size": len(b)} for b in layers],
        }).encode()
        for _ in range(10):
            for blob in (config, *layers):
                self._ensure_blob(name, blob)
            put = self.session.put(f"{self.url}/v2/{name}/manifests/{tag}", data=manifest,
                                   headers={"Content-Type": DOCKER_MANIFEST}, timeout=60)
            if put.status_code == 201:
                return put.headers["Docker-Content-Digest"]
            assert put.status_code == 400 and put.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN", put.text
            self.retries += 1
        raise AssertionError(f"push of {name}:{tag} kept failing")

    def _ensure_blob(self, name: str, blob: bytes) -> None:
        digest = digest_of(blob)
        if self.session.head(f"{self.url}/v2/{name}/blobs/{digest}", timeout=60).status_code == 200:
            return
        start = self.session.post(f"{self.url}/v2/{name}/blobs/uploads/", timeout=60)
        assert start.status_code == 202, start.text
        done = self.session.put(start.headers["Location"], params={"digest": digest}, data=blob, timeout=60)
        assert done.status_code == 201, done.text


class Turns:
    """A GC loop that is `LEAD` runs ahead of the other waits (up to a minute) for it. Left to
    race, the in-server loop once took the storage lock every time on a slow S3, and the
    separate process never ran; within the lead the two contend freely."""

    LEAD = 3

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._runs = {"server": 0, "process": 0}
        self._changed = threading.Condition()

    def ran_then_wait(self, who: str) -> None:
        other = "process" if who == "server" else "server"
        with self._changed:
            self._runs[who] += 1
            self._changed.notify_all()
            self._changed.wait_for(
                lambda: self._runs[who] - self._runs[other] <= self.LEAD or self._stop.is_set(),
                timeout=60)

    def end(self) -> None:
        """Stop both loops, waking one that waits for its turn."""
        with self._changed:
            self._stop.set()
            self._changed.notify_all()


@pytest.mark.parametrize(("storage", "rounds"), [("filesystem", ROUNDS), ("s3", ROUNDS // 2)])
def test_gc_never_breaks_an_image_while_pushes_go_on(request: pytest.FixtureRequest, tmp_path: Path,
                                                     storage: str, rounds: int) -> None:
    """Every image pushed (201) during repeated GC runs pulls completely; report the figures.
    On S3 a move is a copy then a delete, not an atomic rename: the same must hold."""
    config = base_config(tmp_path)
    config["appliance"] = {"gc": {"grace": "1s"}}
    if storage == "s3":
        seaweedfs = request.getfixturevalue("seaweedfs")
        bucket = request.getfixturevalue("s3_bucket")
        del config["storage"]["filesystem"]
        config["storage"]["s3"] = seaweedfs.storage_config(bucket, f"/stress/{os.urandom(6).hex()}")
    server = ApplianceServer(tmp_path / "server", config).start()
    config_path = tmp_path / "server" / "config.yml"
    pool = [os.urandom(random.randint(2_000, 40_000)) for _ in range(LAYER_POOL)]
    kept: dict[tuple[str, str], tuple[str, list[bytes]]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    gc_runs: list[tuple[str, int]] = []
    pushers = [Pusher(server.url, seed) for seed in range(CLIENTS)]

    def client(number: int) -> None:
        pusher = pushers[number]
        mine: list[tuple[str, str]] = []
        for round_number in range(rounds):
            name = f"stress/repo{pusher.random.randrange(3)}"
            tag = f"c{number}-r{round_number}"
            layers = pusher.random.sample(pool, 3) + [os.urandom(500)]
            digest = pusher.push(name, tag, layers)
            with lock:
                kept[(name, tag)] = (digest, layers)
            mine.append((name, tag))
            if len(mine) > 2 and pusher.random.random() < 0.5:
                victim = mine.pop(pusher.random.randrange(len(mine)))
                with lock:
                    victim_digest, _ = kept.pop(victim)
                gone = pusher.session.delete(f"{server.url}/v2/{victim[0]}/manifests/{victim_digest}", timeout=60)
                assert gone.status_code in (202, 404), gone.text
                with lock:  # the digest delete also removed any other tag on the same manifest
                    for other in [k for k, v in kept.items() if v[0] == victim_digest and k[0] == victim[0]]:
                        kept.pop(other)

    turns = Turns(stop)
    failures: list[str] = []

    def separate_process() -> None:
        while not stop.is_set():
            result = subprocess.run(
                [sys.executable, "-m", "appliance.cli", "garbage-collect", "--delete-untagged", str(config_path)],
                capture_output=True, text=True, timeout=300,
            )
            if result.returncode == 0:
                gc_runs.append(("process", int(result.stdout.strip().splitlines()[-1].split()[0])))
                turns.ran_then_wait("process")
            elif "already running" not in result.stderr:
                failures.append(result.stderr)  # a thread's assert would be lost
                return
            time.sleep(0.2)

    def in_server() -> None:
        admin = AdminClient(server.admin_socket)
        while not stop.is_set():
            admin.start_gc(dry_run=False, delete_untagged=True)
            while admin.gc_status()["running"]:
                time.sleep(0.1)
            status = admin.gc_status()
            if status["error"] is None:
                gc_runs.append(("server", len(status["history"][0]["blobs"])))
                turns.ran_then_wait("server")
            time.sleep(0.2)

    gc_threads = [threading.Thread(target=separate_process), threading.Thread(target=in_server)]
    for gc_thread in gc_threads:
        gc_thread.start()
    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        turns.end()
        for gc_thread in gc_threads:
            gc_thread.join()
    assert failures == [], failures
    broken = []
    for (name, tag), (digest, layers) in kept.items():
        got = requests.get(f"{server.url}/v2/{name}/manifests/{tag}", headers={"Accept": DOCKER_MANIFEST}, timeout=60)
        if got.status_code != 200 or got.headers["Docker-Content-Digest"] != digest:
            broken.append((name, tag, "manifest", got.status_code))
            continue
        for layer in layers:
            blob = requests.get(f"{server.url}/v2/{name}/blobs/{digest_of(layer)}", timeout=60)
            if blob.status_code != 200 or hashlib.sha256(blob.content).hexdigest() != digest_of(layer)[7:]:
                broken.append((name, tag, digest_of(layer), blob.status_code))
    server.stop()
    runs = {where: sum(1 for w, _ in gc_runs if w == where) for where in ("server", "process")}
    swept = sum(count for _, count in gc_runs)
    print(f"\nGC stress ({storage}): {CLIENTS} clients x {rounds} rounds = {CLIENTS * rounds} pushes, "
          f"{sum(p.retries for p in pushers)} pushes retried after a swept layer, {len(gc_runs)} GC runs "
          f"({runs['server']} in the server, {runs['process']} as a separate process) sweeping {swept} blobs, "
          f"{len(kept)} images checked, {len(broken)} broken")
    # On S3 each separate-process run is slower (boto3 start, remote walks): fewer fit in.
    assert runs["server"] >= 3 and runs["process"] >= (2 if storage == "filesystem" else 1)
    assert broken == []
