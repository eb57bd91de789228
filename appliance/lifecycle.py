"""What the running server does when systemd (or a terminal) reloads or stops it.

SIGHUP re-reads the htpasswd file, the TLS certificate and key, and the read-only setting of
the config file, without dropping a connection. SIGTERM stops accepting, lets requests in
flight (uploads too) finish for up to `appliance.shutdown.timeout`, then lets the reactor stop.
systemd hears of each step through `sd_notify`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from appliance import systemd
from appliance.api.connections import Connections
from appliance.auth.basic import HtpasswdAuthenticator
from appliance.config import Config, ConfigError, load
from appliance.config.model import EMBEDDED
from appliance.registry import Registry
from appliance.tls import ReloadableServerTLS, TLSConfigError

__all__ = ["Reloader", "manage"]

log = Logger()


class Reloader:
    """Applies what a SIGHUP may change; everything else in the config needs a restart."""

    def __init__(
        self,
        config: Config,
        registry: Registry,
        authenticator: HtpasswdAuthenticator | None,
        tls: ReloadableServerTLS | None,
        load_config: Callable[[], Config] | None = None,
    ) -> None:
        self.config = config
        self._registry = registry
        self._authenticator = authenticator
        self._tls = tls
        self._load = load_config or (lambda: _reload_source(config))

    def reload(self) -> None:
        """Blocking (files, storage): run it in a thread. A bad new config changes nothing."""
        try:
            config = self._load()
        except ConfigError as error:
            log.error("reload refused, config unchanged: {problems}",
                      problems="; ".join(error.problems))
            return
        if self._authenticator is not None:
            self._authenticator.reload()
        if self._tls is not None and config.http.tls is not None:
            try:
                self._tls.reload(config.http.tls)
            except TLSConfigError as error:
                log.error("TLS certificate not reloaded, keeping the previous one: {error}",
                          error=error)
        if config.storage.readonly or self.config.storage.readonly:
            self._registry.readonly.set(config.storage.readonly)
        self.config = config
        log.info("reloaded htpasswd, TLS certificate and read-only setting (read-only {state})",
                 state="on" if self._registry.readonly.enabled else "off")


def _reload_source(config: Config) -> Config:
    return load(None if config.source == EMBEDDED else config.source, os.environ)


def manage(
    reactor: Any,
    port: IListeningPort,
    connections: Connections,
    reloader: Reloader,
    pool: ThreadPool,
) -> None:
    """Install the SIGHUP and graceful-stop handlers, then tell systemd we are ready."""

    async def reload() -> None:
        systemd.notify("RELOADING=1")
        try:
            await deferToThreadPool(reactor, pool, reloader.reload)
        except Exception:
            log.failure("reload failed")
        systemd.notify("READY=1")

    async def stop() -> None:
        systemd.notify("STOPPING=1")
        await port.stopListening()
        timeout = reloader.config.appliance.shutdown_timeout
        log.info("stopped accepting; waiting up to {timeout}s for {count} requests in flight",
                 timeout=timeout, count=len(connections))
        left = await connections.drain(reactor, timeout)
        if left:
            log.warn("stopping with {count} requests still in flight", count=left)

    signal.signal(signal.SIGHUP, lambda signum, frame: reactor.callFromThread(
        lambda: Deferred.fromCoroutine(reload())))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: Deferred.fromCoroutine(stop()))
    systemd.notify("READY=1\nSTATUS=serving")
