"""The root resource: common headers, authentication, routing, and errors as the spec's envelope.

`/admin/` goes to the admin API's resource when one is mounted (admin users are configured);
`/auth/token` to the built-in token server when `appliance.tokenserver` is configured.
"""

from __future__ import annotations

import errno
from collections.abc import Coroutine, Mapping
from contextlib import nullcontext
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from appliance.auth.basic import HtpasswdAuthenticator
from appliance.registry import RegistryError, StorageUnavailable
from appliance.registry.uploadlimits import TooManyUploads

from . import routes
from .authz import Gate, required_scopes
from .body import SpooledBody
from .debug import HEALTH_PATH, render_health
from .errors import envelope, status_of
from .v2 import V2Api

log = Logger()
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_UPLOAD_HANDLERS = frozenset({"start_upload", "patch_upload", "finish_upload"})
# Refused under names a pull-through cache mirrors (`proxy`).
_WRITE_HANDLERS = _UPLOAD_HANDLERS | {"cancel_upload", "put_manifest", "delete_manifest",
                                      "delete_blob"}


class RegistryResource(Resource):
    isLeaf = True

    def __init__(
        self,
        api: V2Api,
        authenticator: HtpasswdAuthenticator | None,
        headers: Mapping[str, tuple[str, ...]],
        admin: Resource | None = None,
        health: Any = None,
        metrics: Any = None,
        gate: Gate | None = None,
        token_endpoint: Resource | None = None,
    ) -> None:
        """`health`: `appliance.health.HealthChecks`; `metrics`: `appliance.metrics.Metrics`."""
        super().__init__()
        self._api = api
        self._authenticator = authenticator
        self._headers = headers
        self._admin = admin
        self._health = health
        self._metrics = metrics
        self.gate = gate or Gate(authenticator)
        self._token_endpoint = token_endpoint

    def render(self, request: Request) -> int | bytes:
        if self._admin is not None and (request.path == b"/admin" or request.path.startswith(b"/admin/")):
            request.route_name = "admin"
            self.set_common_headers(request)
            return self._admin.render(request)
        if request.path == HEALTH_PATH or (self._health is not None and self._health.failing()):
            # As Distribution's health.Handler: while a check fails, every request gets a 503.
            request.route_name = "health"
            self.set_common_headers(request)
            return render_health(self._health, request)
        if self._token_endpoint is not None and request.path == b"/auth/token":
            request.route_name = "token"
            self.set_common_headers(request)
            return self._token_endpoint.render(request)
        Deferred.fromCoroutine(self._handle(request))
        return NOT_DONE_YET

    def set_common_headers(self, request: Request) -> None:
        """The headers every response carries, errors included; `http.headers` come from config."""
        request.setHeader("Server", "registry-appliance")
        request.setHeader("Docker-Distribution-Api-Version", "registry/2.0")
        for name, values in self._headers.items():
            request.responseHeaders.setRawHeaders(name, list(values))

    async def _handle(self, request: Request) -> None:
        self.set_common_headers(request)
        body = getattr(request, "content", None)
        # A client that hangs up must not close the body under the handler.
        with body.held() if isinstance(body, SpooledBody) else nullcontext():
            await respond(request, self._dispatch(request))

    async def _dispatch(self, request: Request) -> None:
        path = request.path.decode("latin-1")
        if not path.startswith("/v2"):
            raise RegistryError("NOT_FOUND", "not found; the registry API lives under /v2/")
        found = routes.match(path)
        method = request.method.decode("latin-1")
        handler_name = found[0].methods.get(method) if found is not None else None
        params = found[1] if found is not None else {}
        scopes = required_scopes(handler_name, method, params, request.args)
        await self.gate.authorize(request, scopes, self._api._run)
        if found is None:
            raise RegistryError("NOT_FOUND", f"no such endpoint: {path}")
        route = found[0]
        if handler_name is None:
            request.setHeader("Allow", ", ".join(sorted(route.methods)))
            raise RegistryError("UNSUPPORTED", f"{method} is not supported here")
        request.route_name = handler_name
        if self._api.proxy is not None and handler_name in _WRITE_HANDLERS:
            self._api.proxy.refuse_writes(params.get("name", ""))
        failure = getattr(getattr(request, "content", None), "failure", None)
        if failure is not None:  # the body could not be spooled (the disk is full)
            raise failure
        uploading = self._metrics is not None and handler_name in _UPLOAD_HANDLERS
        if uploading:
            self._metrics.uploads.inc()
        try:
            await getattr(self._api, handler_name)(request, **params)
        finally:
            if uploading:
                self._metrics.uploads.dec()


async def respond(request: Request, work: Coroutine[Any, Any, None]) -> None:
    """Await a handler; a `RegistryError` becomes the error envelope, an unavailable backend a
    503 UNAVAILABLE, a full disk a 507, anything else a logged 500."""
    try:
        await work
    except RegistryError as error:
        if isinstance(error, TooManyUploads) and not request.startedWriting:
            request.setHeader("Retry-After", str(error.retry_after))
        _write_error(request, status_of(error), error.code, error.message, error.detail)
    except StorageUnavailable as error:
        # The backend is down or throttling: nothing half-done was committed, the client retries.
        log.warn("request {method} {path}: {error}", method=request.method, path=request.path, error=error)
        _write_error(request, 503, "UNAVAILABLE", "storage backend unavailable; retry later")
    except Exception as error:
        if isinstance(error, OSError) and error.errno in _NO_SPACE:
            # Nothing half-written is visible (atomic writes, checked digests): free space, retry.
            log.warn("request {method} {path}: storage full: {error}", method=request.method,
                     path=request.path, error=error)
            _write_error(request, 507, "UNKNOWN",
                         "the registry's storage is full; free space and retry")
        else:
            log.failure("request {method} {path} failed", method=request.method, path=request.path)
            _write_error(request, 500, "UNKNOWN", "internal server error; see the server log")
    if not request.finished and not request._disconnected:
        request.finish()


def _write_error(request: Request, status: int, code: str, message: str, detail: object = None) -> None:
    if request.finished or request._disconnected:
        return
    if request.startedWriting:
        request.loseConnection()
        return
    body = envelope(code, message, detail)
    request.setResponseCode(status)
    request.setHeader("Content-Type", "application/json; charset=utf-8")
    request.setHeader("Content-Length", str(len(body)))
    request.write(body)
