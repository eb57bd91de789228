"""The event envelope, as Distribution 2.8 (v1) and 3 (v2) write it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from appliance.config.model import EVENTS_V1, EVENTS_V2
from appliance.notify.events import RequestInfo, envelope, make_event

REQUEST = RequestInfo("req-1", "10.0.0.7:51234", "registry.example.com", "PUT",
                      "docker/27.0", actor="alice")
SOURCE = {"addr": "host:5000", "instanceID": "instance-1"}
TARGET = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "a" * 64,
          "size": 528, "repository": "team/app", "url": "https://r/v2/team/app/manifests/x",
          "tag": "1.0"}
NOW = datetime(2026, 11, 23, 0, 30, 1, 250000, tzinfo=UTC)


def test_v1_event_has_distributions_fields() -> None:
    """v1 repeats size as length; timestamp is RFC 3339 in UTC; actor and source are kept."""
    event = make_event("push", TARGET, REQUEST, SOURCE, EVENTS_V1, now=NOW)
    assert event["timestamp"] == "2026-11-23T00:30:01.250000Z"
    assert event["target"] == {**TARGET, "length": 528}
    assert event["request"] == {"id": "req-1", "addr": "10.0.0.7:51234",
                                "host": "registry.example.com", "method": "PUT",
                                "useragent": "docker/27.0"}
    assert event["actor"] == {"name": "alice"} and event["source"] == SOURCE
    assert event["action"] == "push" and len(event["id"]) == 36
    assert json.loads(envelope([event])) == {"events": [event]}


def test_v2_event_target_is_an_oci_descriptor() -> None:
    """v2 (Distribution 3) has no `length`; events without a size have none either."""
    assert "length" not in make_event("push", TARGET, REQUEST, SOURCE, EVENTS_V2)["target"]
    deleted = make_event("delete", {"repository": "team/app", "tag": "1.0"}, REQUEST, SOURCE)
    assert deleted["target"] == {"repository": "team/app", "tag": "1.0"}
