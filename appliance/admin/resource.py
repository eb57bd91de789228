"""The admin API's resource: routing, who may call it, JSON bodies in and out, errors as envelope.

On the UNIX socket the file's permissions are the access control, so no password is asked.
On the main port only htpasswd users listed in `appliance.admin.users` get in: no or wrong
credentials are 401 with a Basic challenge, a valid user who is not an admin is 403 DENIED.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from appliance.api.basicauth import proven_user, unauthorized
from appliance.api.resource import respond
from appliance.api.v2 import write_json
from appliance.auth.basic import HtpasswdAuthenticator
from appliance.registry import RegistryError

from . import routes
from .handlers import AdminApi

MAX_BODY = 64 * 1024


class AdminResource(Resource):
    isLeaf = True

    def __init__(
        self,
        api: AdminApi,
        authenticator: HtpasswdAuthenticator | None = None,
        admins: Collection[str] = (),
    ) -> None:
        """Without `authenticator` every caller is trusted (the socket); with it, only `admins`."""
        super().__init__()
        self._api = api
        self._authenticator = authenticator
        self._admins = frozenset(admins)

    def render(self, request: Request) -> int:
        request.setHeader("Server", "registry-appliance")
        Deferred.fromCoroutine(respond(request, self._dispatch(request)))
        return NOT_DONE_YET

    async def _dispatch(self, request: Request) -> None:
        await self._authorize(request)
        method, path = request.method.decode("latin-1"), request.path.decode("latin-1")
        handler, params, allowed = routes.match(method, path)
        if handler is None:
            if not allowed:
                raise RegistryError("NOT_FOUND", f"no such admin endpoint: {path}")
            request.setHeader("Allow", ", ".join(allowed))
            raise RegistryError("UNSUPPORTED", f"{method} is not supported on {path}")
        status, value = await getattr(self._api, handler)(_json_body(request), **params)
        write_json(request, status, value)

    async def _authorize(self, request: Request) -> None:
        if self._authenticator is None:
            return
        user = await proven_user(self._authenticator, request, self._api.run)
        if user is None:
            raise unauthorized(self._authenticator, request)
        request.user_name = user
        if user not in self._admins:
            raise RegistryError(
                "DENIED", f"{user} is not an admin (admins are listed in appliance.admin.users)"
            )


def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is `{}`."""
    data = request.content.read(MAX_BODY + 1) if request.content is not None else b""
    if len(data) > MAX_BODY:
        raise RegistryError("BAD_REQUEST", f"request body is larger than {MAX_BODY} bytes")
    if not data.strip():
        return {}
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise RegistryError("BAD_REQUEST", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RegistryError("BAD_REQUEST", "request body must be a JSON object")
    return body
