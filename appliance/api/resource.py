"""The root resource: common headers, authentication, routing, and errors as the spec's envelope.

`/admin/` goes to the admin API's resource when one is mounted (admin users are configured).
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from appliance.auth.basic import HtpasswdAuthenticator
from appliance.registry import RegistryError

from . import routes
from .basicauth import proven_user, unauthorized
from .errors import envelope, status_of
from .v2 import V2Api

log = Logger()


class RegistryResource(Resource):
    isLeaf = True

    def __init__(
        self,
        api: V2Api,
        authenticator: HtpasswdAuthenticator | None,
        headers: Mapping[str, tuple[str, ...]],
        admin: Resource | None = None,
    ) -> None:
        super().__init__()
        self._api = api
        self._authenticator = authenticator
        self._headers = headers
        self._admin = admin

    def render(self, request: Request) -> int:
        if self._admin is not None and (request.path == b"/admin" or request.path.startswith(b"/admin/")):
            self.set_common_headers(request)
            return self._admin.render(request)
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
        await respond(request, self._dispatch(request))

    async def _dispatch(self, request: Request) -> None:
        path = request.path.decode("latin-1")
        if not path.startswith("/v2"):
            raise RegistryError("NOT_FOUND", "not found; the registry API lives under /v2/")
        await self._authenticate(request)
        found = routes.match(path)
        if found is None:
            raise RegistryError("NOT_FOUND", f"no such endpoint: {path}")
        route, params = found
        method = request.method.decode("latin-1")
        handler_name = route.methods.get(method)
        if handler_name is None:
            request.setHeader("Allow", ", ".join(sorted(route.methods)))
            raise RegistryError("UNSUPPORTED", f"{method} is not supported here")
        await getattr(self._api, handler_name)(request, **params)

    async def _authenticate(self, request: Request) -> None:
        if self._authenticator is None:
            return
        user = await proven_user(self._authenticator, request, self._api._run)
        if user is None:
            raise unauthorized(self._authenticator, request)
        request.user_name = user


async def respond(request: Request, work: Coroutine[Any, Any, None]) -> None:
    """Await a handler; a `RegistryError` becomes the error envelope, anything else a logged 500."""
    try:
        await work
    except RegistryError as error:
        _write_error(request, status_of(error), error.code, error.message, error.detail)
    except Exception:
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
