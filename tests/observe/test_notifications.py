"""Webhook notifications against a real server process and a receiver thread on loopback."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.admin.client import AdminClient
from tests.api.client import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, V2Client, digest_of
from tests.observe.receiver import Receiver
from tests.server import ApplianceServer, base_config

EVENTS_V1 = "application/vnd.docker.distribution.events.v1+json"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def endpoint(name: str, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": receiver.url, "timeout": "2s", "threshold": 2,
            "backoff": "100ms", **extra}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def start_server(workdir: Path, endpoints: list[dict[str, Any]], **appliance: Any
                 ) -> ApplianceServer:
    config = base_config(workdir)
    config["notifications"] = {"events": {"includereferences": True}, "endpoints": endpoints}
    if appliance:
        config["appliance"] = {"notifications": appliance}
    return ApplianceServer(workdir, config).start()


def test_every_action_sends_distributions_event(tmp_path: Path, receiver: Receiver) -> None:
    """push, pull, mount and delete each send one event with Distribution's fields; HEADs send
    none; an endpoint ignoring pulls and blob media types gets only what it does not ignore."""
    quiet = Receiver().start()
    server = start_server(tmp_path, [
        endpoint("hook", receiver, headers={"Authorization": ["Bearer s3cret"]}),
        endpoint("quiet", quiet, ignore={"actions": ["pull"],
                                         "mediatypes": ["application/octet-stream"]}),
    ])
    try:
        client = V2Client(server.url)
        layer = b"layer for notifications"
        image = client.push_image("notify/app", "v1", [layer])
        assert client.request("HEAD", "/v2/notify/app/manifests/v1").status_code == 200
        pulled = client.request("GET", "/v2/notify/app/manifests/v1",
                                headers={"Accept": DOCKER_MANIFEST})
        assert pulled.status_code == 200
        layer_digest = digest_of(layer)
        assert client.request("HEAD", f"/v2/notify/app/blobs/{layer_digest}").status_code == 200
        assert client.request("GET", f"/v2/notify/app/blobs/{layer_digest}").content == layer
        mounted = client.request("POST", "/v2/notify/other/blobs/uploads/",
                                 params={"mount": layer_digest, "from": "notify/app"})
        assert mounted.status_code == 201
        assert client.request("DELETE", f"/v2/notify/other/blobs/{layer_digest}").status_code == 202
        assert client.request("DELETE", "/v2/notify/app/manifests/v1").status_code == 202
        assert client.request("DELETE", f"/v2/notify/app/manifests/{image.digest}"
                              ).status_code == 202

        events = receiver.wait_for(9)
        time.sleep(0.3)
        assert len(receiver.accepted()) == 9, "no event for HEAD requests, none twice"
        config_digest = digest_of(image.config)
        manifest_url = f"{server.url}/v2/notify/app/manifests/{image.digest}"
        layer_url = f"{server.url}/v2/notify/app/blobs/{layer_digest}"
        manifest_target = {"mediaType": DOCKER_MANIFEST, "digest": image.digest,
                           "size": len(image.manifest), "length": len(image.manifest),
                           "repository": "notify/app", "url": manifest_url, "tag": "v1",
                           "references": [
                               {"mediaType": DOCKER_CONFIG, "digest": config_digest,
                                "size": len(image.config)},
                               {"mediaType": DOCKER_LAYER, "digest": layer_digest,
                                "size": len(layer)}]}
        blob = {"mediaType": "application/octet-stream", "digest": layer_digest,
                "size": len(layer), "length": len(layer)}
        expected = [
            ("push", "PUT", {"mediaType": "application/octet-stream", "digest": config_digest,
                             "size": len(image.config), "length": len(image.config),
                             "repository": "notify/app",
                             "url": f"{server.url}/v2/notify/app/blobs/{config_digest}"}),
            ("push", "PUT", {**blob, "repository": "notify/app", "url": layer_url}),
            ("push", "PUT", manifest_target),
            ("pull", "GET", manifest_target),
            ("pull", "GET", {**blob, "repository": "notify/app", "url": layer_url}),
            ("mount", "POST", {**blob, "repository": "notify/other", "fromRepository": "notify/app",
                               "url": f"{server.url}/v2/notify/other/blobs/{layer_digest}"}),
            ("delete", "DELETE", {"repository": "notify/other", "digest": layer_digest}),
            ("delete", "DELETE", {"repository": "notify/app", "tag": "v1"}),
            ("delete", "DELETE", {"repository": "notify/app", "digest": image.digest}),
        ]
        assert [(e["action"], e["request"]["method"], e["target"]) for e in events] == expected
        assert len({e["id"] for e in events}) == 9
        for event in events:
            assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]
            request = event["request"]
            assert request["host"] == f"127.0.0.1:{server.port}"
            assert request["addr"].startswith("127.0.0.1:")
            assert request["useragent"].startswith("python-requests/")
            assert request["id"]
            assert event["actor"] == {"name": ""}
            assert event["source"]["addr"].endswith(f":{server.port}")
            assert event["source"]["instanceID"] == events[0]["source"]["instanceID"]
        first = receiver.received[0]
        assert first.headers["Content-Type"] == EVENTS_V1
        assert first.headers["Authorization"] == "Bearer s3cret"

        quiet_events = quiet.wait_for(4)
        assert [(e["action"], e["target"].get("mediaType")) for e in quiet_events] == [
            ("push", DOCKER_MANIFEST), ("delete", None), ("delete", None), ("delete", None)]

        status = AdminClient(server.admin_socket).notifications()
        hook = next(e for e in status["endpoints"] if e["name"] == "hook")
        assert (hook["queued"], hook["delivered"], hook["failures"]) == (0, 9, 0), hook
        assert hook["last_success"] is not None and hook["last_failure"] is None
    finally:
        server.stop()
        quiet.stop()
    assert "Traceback" not in server.log()


def test_no_event_is_lost_while_the_receiver_is_down(tmp_path: Path) -> None:
    """Events made while the receiver refuses connections, across a registry restart, then
    while it answers 500, all arrive in order once it recovers; repeats are retries (same id)."""
    receiver = Receiver()  # not started: connections are refused
    server = start_server(tmp_path, [endpoint("hook", receiver)])
    client = V2Client(server.url)
    expected: list[str] = []

    def push(count: int, label: str) -> None:
        for i in range(count):
            expected.append(client.push_blob("durable/app", f"{label} blob {i}".encode()))

    try:
        push(5, "before restart")
        admin = AdminClient(server.admin_socket)
        deadline = time.monotonic() + 10
        while (hook := admin.notifications()["endpoints"][0])["failures"] < 3:
            assert time.monotonic() < deadline, hook
            time.sleep(0.1)
        assert hook["queued"] == 5 and hook["delivered"] == 0
        assert hook["last_failure"] is not None and "refused" in hook["last_error"].lower()
        server.stop()
        queued = sorted(os.listdir(server.root / "appliance" / "events" / "hook"))
        assert len(queued) == 5 and all(name.endswith(".json") for name in queued), \
            "one fsynced file per event"

        server.start()
        push(3, "after restart")
        receiver.status = 500
        receiver.start()
        deadline = time.monotonic() + 10
        while len(receiver.received) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert receiver.accepted() == []
        push(2, "while failing")
        receiver.status = 200
        events = receiver.wait_for(len(expected))
        time.sleep(0.3)
        events = receiver.accepted()
    finally:
        server.stop()
        receiver.stop()
    first_seen: list[str] = []
    digest_of_id: dict[str, str] = {}
    for event in events:
        digest_of_id.setdefault(event["id"], event["target"]["digest"])
        assert digest_of_id[event["id"]] == event["target"]["digest"]
        if event["id"] not in first_seen:
            first_seen.append(event["id"])
    assert [digest_of_id[i] for i in first_seen] == expected
    retried = [r for r in receiver.received if r.status == 500]
    assert retried and all(r.body["events"][0]["id"] == first_seen[0] for r in retried[:1])
    assert not os.listdir(server.root / "appliance" / "events" / "hook")
    assert "Traceback" not in server.log()


def test_a_full_queue_drops_new_events_and_says_so(tmp_path: Path) -> None:
    """With appliance.notifications.maxqueue events waiting, new ones are dropped and logged;
    `mediatype: v2` sends Distribution 3's envelope."""
    receiver = Receiver()
    server = start_server(tmp_path, [endpoint("hook", receiver)], maxqueue=3, mediatype="v2")
    try:
        client = V2Client(server.url)
        pushed = [client.push_blob("full/app", f"blob {i}".encode()) for i in range(5)]
        hook = AdminClient(server.admin_socket).notifications()["endpoints"][0]
        assert hook["queued"] == 3  # (`dropped` there counts worker 0's drops only)
        receiver.start()
        events = receiver.wait_for(3)
    finally:
        server.stop()
        receiver.stop()
    assert [e["target"]["digest"] for e in events] == pushed[:3]
    assert receiver.received[0].headers["Content-Type"] == (
        "application/vnd.docker.distribution.events.v2+json")
    assert "length" not in events[0]["target"]
    assert server.log().count("notifications endpoint hook: queue full (3 events waiting)") == 2
