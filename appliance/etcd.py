"""LAIN's token auth settings in etcd: read at start, then watched, through etcd's v2 keys API.

LAIN writes `{"realm": ..., "issuer": ..., "service": ...}` to `/lain/config/auth/registry`
with `etcdctl set` (API v2). A value turns token auth on; no key turns it off. Changes apply
without a restart: a long-poll `GET /v2/keys/<key>?wait=true&waitIndex=<n>` hears of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import treq
from twisted.internet.task import deferLater
from twisted.logger import Logger

from appliance.config.model import EtcdConfig

__all__ = ["EtcdError", "EtcdWatcher", "LainAuth", "parse_value"]

log = Logger()
RETRY = 1.0


class EtcdError(Exception):
    """etcd could not be read (every endpoint failed) or answered something unexpected."""


@dataclass(frozen=True)
class LainAuth:
    realm: str
    issuer: str
    service: str


def parse_value(text: str) -> LainAuth:
    """LAIN's JSON value; ValueError naming what is wrong."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError("the value is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError("the value is not a JSON object")
    missing = [key for key in ("realm", "issuer", "service")
               if not isinstance(value.get(key), str) or not value[key]]
    if missing:
        raise ValueError(f"the value lacks {', '.join(missing)}")
    return LainAuth(value["realm"], value["issuer"], value["service"])


class EtcdWatcher:
    """Reads the key and calls `apply(LainAuth | None)` on every change."""

    def __init__(self, config: EtcdConfig, reactor: Any,
                 apply: Callable[[LainAuth | None], None], http: Any = treq) -> None:
        self._config = config
        self._reactor = reactor
        self._apply = apply
        self._http = http
        self._index = 0
        self._stopped = False
        self._current: LainAuth | None = None
        self._endpoint = 0

    async def read(self) -> LainAuth | None:
        """The value now (None: no key). EtcdError when no endpoint answers; ValueError when the
        value is not LAIN's JSON."""
        node, index = await self._get("")
        self._index = index
        self._current = None if node is None else parse_value(str(node.get("value", "")))
        return self._current

    async def watch(self) -> None:
        """Apply every change until `stop()`; errors are logged and retried after a second."""
        while not self._stopped:
            try:
                await self._wait_once()
            except Exception as error:  # network errors, a cleared index: re-read from scratch
                if self._stopped:
                    return
                log.warn("etcd watch of {key}: {error}; retrying", key=self._config.key,
                         error=error)
                await deferLater(self._reactor, RETRY, lambda: None)
                try:
                    await self._reread()
                except Exception as again:
                    log.warn("etcd read of {key} failed: {error}", key=self._config.key,
                             error=again)

    def stop(self) -> None:
        self._stopped = True

    async def _reread(self) -> None:
        node, index = await self._get("")
        self._index = index
        self._changed(node)

    async def _wait_once(self) -> None:
        node, index = await self._get(f"?wait=true&waitIndex={self._index + 1}", watching=True)
        self._index = max(self._index, index)
        self._changed(node)

    def _changed(self, node: dict[str, Any] | None) -> None:
        if node is None:
            value = None
        else:
            try:
                value = parse_value(str(node.get("value", "")))
            except ValueError as error:
                log.error("etcd key {key}: {error}; keeping the current auth settings",
                          key=self._config.key, error=error)
                return
        if value != self._current:
            self._current = value
            self._apply(value)

    async def _get(self, query: str, watching: bool = False) -> tuple[dict[str, Any] | None, int]:
        """(node or None, the index to continue from); tries each endpoint in turn."""
        errors = []
        endpoints = self._config.endpoints
        for attempt in range(len(endpoints)):
            endpoint = endpoints[(self._endpoint + attempt) % len(endpoints)]
            url = f"{endpoint.rstrip('/')}/v2/keys{quote(self._config.key)}{query}"
            try:
                response = await self._http.get(url, timeout=None if watching else 5)
                body = await response.json()
            except Exception as error:
                errors.append(f"{endpoint}: {error.__class__.__name__}: {error}")
                continue
            self._endpoint = (self._endpoint + attempt) % len(endpoints)
            return _node_and_index(response, body)
        raise EtcdError("; ".join(errors) or "no etcd endpoint configured")


def _node_and_index(response: Any, body: Any) -> tuple[dict[str, Any] | None, int]:
    if not isinstance(body, dict):
        raise EtcdError("etcd answered something that is not a JSON object")
    header = response.headers.getRawHeaders(b"x-etcd-index") or [b"0"]
    index = int(header[0])
    if response.code == 404 and body.get("errorCode") == 100:  # key not found
        return None, index
    if response.code >= 400:
        raise EtcdError(f"etcd error {body.get('errorCode')}: {body.get('message')}")
    node = body.get("node") if isinstance(body.get("node"), dict) else None
    if node is not None and body.get("action") in ("delete", "expire", "compareAndDelete"):
        return None, int(node.get("modifiedIndex", index))
    if node is not None and "modifiedIndex" in node and body.get("action") != "get":
        index = int(node["modifiedIndex"])
    return node, index
