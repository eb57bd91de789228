"""Distribution's notification events: the envelope receivers such as GitLab parse. Pure data.

One event is a JSON object with `id`, `timestamp`, `action`, `target`, `request`, `actor` and
`source`, as `notifications/event.go` in Distribution 2.8 writes it. The v1 envelope
(`application/vnd.docker.distribution.events.v1+json`) is Distribution 2.8's; v2 is v3's, whose
target is an OCI descriptor and so has no `length`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.config.model import EVENTS_V1

__all__ = ["ACTIONS", "BLOB_MEDIA_TYPE", "RequestInfo", "envelope", "make_event"]

ACTIONS = ("push", "pull", "delete", "mount")
# What Distribution says a blob's media type is in its events.
BLOB_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class RequestInfo:
    """The HTTP request an event came from, and who made it."""

    id: str
    addr: str
    host: str
    method: str
    useragent: str
    actor: str = ""


def make_event(
    action: str,
    target: dict[str, Any],
    request: RequestInfo,
    source: dict[str, str],
    media_type: str = EVENTS_V1,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One event; `target` holds what applies of mediaType, size, digest, repository, url, tag,
    fromRepository and references. v1 repeats `size` as `length`, as Distribution 2.8 does."""
    target = dict(target)
    if media_type == EVENTS_V1 and "size" in target:
        target["length"] = target["size"]
    stamp = (now or datetime.now(UTC)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {
        "id": str(uuid.uuid4()),
        "timestamp": stamp,
        "action": action,
        "target": target,
        "request": {"id": request.id, "addr": request.addr, "host": request.host,
                    "method": request.method, "useragent": request.useragent},
        "actor": {"name": request.actor},
        "source": dict(source),
    }


def envelope(events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"events": events}, separators=(",", ":")).encode()
