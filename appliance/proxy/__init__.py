"""Pull-through cache (`proxy` in config.yml): a registry wrapper that fetches from an upstream
registry on a miss. `upstream.py` talks to the upstream (auth included); `cache.py` decides
what is fetched, stored and served. The v2 handlers ask the `Proxy` first for the names it
covers (all of them, or those under `appliance.proxy.prefix`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from appliance.registry import Registry

from .cache import Observe, Proxy, RemoteBlob
from .upstream import Upstream, UpstreamUnavailable

__all__ = ["Proxy", "RemoteBlob", "Upstream", "UpstreamUnavailable", "open_proxy"]


def open_proxy(registry: Registry, run: Callable[..., Deferred[Any]], reactor: Any, *,
               remoteurl: str, username: str = "", password: str = "", ttl: float,
               prefix: str = "", http: Any = None, observe: Observe | None = None) -> Proxy:
    """The cache for `proxy.*` settings; `http` replaces treq's client (tests); `observe`
    hears each cache hit or miss (metrics)."""
    upstream = Upstream(remoteurl, username, password, reactor, http)
    return Proxy(registry, upstream, run, reactor, ttl, prefix, observe)
