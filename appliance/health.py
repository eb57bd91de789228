"""Health checks as Distribution's `health:` section defines them, run periodically.

`storagedriver` stats the storage root; `file` fails while its file exists (a way to take a
node out of a load balancer); `tcp` fails when its address refuses a connection; `http` fails
when its URI does not answer `statuscode`. A check with a `threshold` turns unhealthy only after
that many failures in a row. `/debug/health` answers 200 `{}`, or 503 with each failing
check's message, keyed by the check's name (file, addr, uri, or `storagedriver_<driver>`).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from appliance.config.model import HealthCheckConfig, HealthConfig
from appliance.storage.driver import PathNotFound

__all__ = ["Check", "HealthChecks"]

log = Logger()
Probe = Callable[[], Awaitable[None]]  # raises with the message to report


class Check:
    def __init__(self, name: str, probe: Probe, interval: float, threshold: int) -> None:
        self.name = name
        self.probe = probe
        self.interval = interval
        self.threshold = max(threshold, 1)
        self.failures = 0
        self.error: str | None = None

    @property
    def failing(self) -> bool:
        return self.error is not None and self.failures >= self.threshold

    async def run(self) -> None:
        try:
            await self.probe()
        except Exception as error:
            self.failures += 1
            message = str(error) or type(error).__name__
            if self.failures == self.threshold:
                log.warn("health check {name} failing: {error}", name=self.name, error=message)
            self.error = message
            return
        if self.failing:
            log.info("health check {name} passes again", name=self.name)
        self.failures, self.error = 0, None


class HealthChecks:
    def __init__(self, checks: list[Check], reactor: Any) -> None:
        self.checks = checks
        self._reactor = reactor
        self._calls: list[LoopingCall] = []

    @classmethod
    def from_config(cls, config: HealthConfig, reactor: Any, driver: Any,
                    run: Callable[..., Deferred[Any]]) -> HealthChecks:
        """`run` runs a blocking call in the storage pool."""
        checks = []
        if config.storagedriver_enabled:
            checks.append(Check(f"storagedriver_{driver.name}", lambda: run(_stat_root, driver),
                                config.storagedriver_interval, config.storagedriver_threshold))
        for check in config.checks:
            checks.append(Check(check.target, _probe(check, reactor), check.interval,
                                check.threshold))
        return cls(checks, reactor)

    def start(self) -> None:
        for check in self.checks:
            call = LoopingCall(lambda check=check: Deferred.fromCoroutine(check.run()))
            call.clock = self._reactor
            call.start(check.interval, now=True).addErrback(
                lambda failure: log.failure("health check stopped", failure))
            self._calls.append(call)

    def stop(self) -> None:
        for call in self._calls:
            if call.running:
                call.stop()

    def failing(self) -> dict[str, str]:
        """Failing checks' messages by name; empty when healthy."""
        return {check.name: check.error or "" for check in self.checks if check.failing}


def _stat_root(driver: Any) -> None:
    try:
        driver.stat("/")
    except PathNotFound:
        pass  # an empty registry is healthy, as in Distribution


def _probe(check: HealthCheckConfig, reactor: Any) -> Probe:
    if check.kind == "file":
        async def file_exists() -> None:
            if os.path.exists(check.target):
                raise RuntimeError("file exists")
        return file_exists
    if check.kind == "tcp":
        host, _, port = check.target.rpartition(":")

        async def tcp() -> None:
            endpoint = HostnameEndpoint(reactor, host.strip("[]") or "localhost", int(port),
                                        timeout=check.timeout)
            try:
                protocol = await connectProtocol(endpoint, Protocol())
            except Exception:
                raise RuntimeError(f"connection to {check.target} failed") from None
            protocol.transport.loseConnection()
        return tcp

    async def http() -> None:
        import treq

        headers = {name: list(values) for name, values in check.headers.items()}
        try:
            response = await treq.get(check.target, headers=headers, timeout=check.timeout,
                                      reactor=reactor, persistent=False)
            await treq.content(response)
        except Exception as error:
            raise RuntimeError(f"error while checking: {check.target}: {error}") from None
        if response.code != check.statuscode:
            raise RuntimeError(f"downstream service returned unexpected status: {response.code}")
    return http
