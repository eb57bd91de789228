"""The built-in token server's realm endpoint, `/auth/token` on the main port.

Speaks what docker and containerd send: GET with Basic credentials (or none, for anonymous
pulls), `service`, `scope` (repeatable), `account`, `offline_token`; and the OAuth2 POST form
with `grant_type=password` or `grant_type=refresh_token`. Tokens grant the subset of the asked
scopes that `appliance.access` allows.
"""

from __future__ import annotations

import json
import math
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from appliance.auth.access import AccessRules
from appliance.auth.basic import HtpasswdAuthenticator
from appliance.auth.issuer import TokenIssuer
from appliance.auth.scope import Scope, parse_scopes
from appliance.registry import RegistryError

from .basicauth import Run, client_address, proven_user, unauthorized
from .resource import respond

__all__ = ["TOKEN_PATH", "TokenEndpoint"]

TOKEN_PATH = b"/auth/token"


class TokenEndpoint(Resource):
    isLeaf = True

    def __init__(self, issuer: TokenIssuer, authenticator: HtpasswdAuthenticator,
                 rules: AccessRules, run: Run) -> None:
        super().__init__()
        self._issuer = issuer
        self._authenticator = authenticator
        self._rules = rules
        self._run = run

    def render(self, request: Request) -> int:
        request.setHeader("Cache-Control", "no-store")
        Deferred.fromCoroutine(respond(request, self._handle(request)))
        return NOT_DONE_YET

    async def _handle(self, request: Request) -> None:
        method = request.method.decode("latin-1")
        if method == "GET":
            await self._get(request)
        elif method == "POST":
            await self._post(request)
        else:
            request.setHeader("Allow", "GET, POST")
            raise RegistryError("UNSUPPORTED", f"{method} is not supported on /auth/token")

    async def _get(self, request: Request) -> None:
        self._check_service(request)
        user = None
        if request.getHeader("authorization") is not None:
            user = await proven_user(self._authenticator, request, self._run)
            if user is None:
                raise unauthorized(self._authenticator, request)
        issued = self._issue(user, _args(request, "scope"))
        body: dict[str, Any] = {"token": issued.token, "access_token": issued.token,
                                "expires_in": issued.expires_in, "issued_at": issued.issued_at}
        if user is not None and _first(request, "offline_token") == "true":
            body["refresh_token"] = self._issuer.refresh_token(user)
        _write(request, body)

    async def _post(self, request: Request) -> None:
        self._check_service(request)
        grant = _first(request, "grant_type")
        if grant == "password":
            user = _first(request, "username")
            password = _first(request, "password")
            verdict = await self._password_ok(request, user, password)
            if not verdict:
                raise RegistryError("UNAUTHORIZED", "wrong user name or password")
        elif grant == "refresh_token":
            user = self._issuer.refresh_subject(_first(request, "refresh_token"))
            if user is None or not self._authenticator.knows(user):
                raise RegistryError("UNAUTHORIZED", "the refresh token is not valid")
        else:
            raise RegistryError("BAD_REQUEST", "grant_type must be password or refresh_token")
        issued = self._issue(user, _args(request, "scope"))
        body: dict[str, Any] = {"access_token": issued.token, "token": issued.token,
                                "expires_in": issued.expires_in, "issued_at": issued.issued_at,
                                "scope": " ".join(_args(request, "scope"))}
        if grant == "refresh_token" or _first(request, "access_type") == "offline":
            body["refresh_token"] = (_first(request, "refresh_token") if grant == "refresh_token"
                                     else self._issuer.refresh_token(user))
        _write(request, body)

    async def _password_ok(self, request: Request, user: str, password: str) -> bool:
        limiter = self._authenticator.limiter
        address = client_address(request)
        if self._authenticator.cached_verdict(user, password):
            return True
        wait = limiter.retry_after(user, address)
        if wait is not None:
            seconds = math.ceil(wait)
            request.setHeader("Retry-After", str(seconds))
            raise RegistryError("TOOMANYREQUESTS", f"too many failed logins for {user!r} or "
                                                   f"from {address}; try again in {seconds} s")
        verdict = bool(await self._run(self._authenticator.check, user, password))
        if not verdict:
            limiter.failed(user, address)
        return verdict

    def _check_service(self, request: Request) -> None:
        service = _first(request, "service")
        if service and service != self._issuer.service:
            raise RegistryError("BAD_REQUEST", f"this token server issues tokens for service "
                                               f"{self._issuer.service!r}, not {service!r}")

    def _issue(self, user: str | None, texts: list[str]) -> Any:
        granted = []
        for scope in parse_scopes(texts):
            actions = self._rules.granted(user, scope)
            if actions:
                granted.append(Scope(scope.type, scope.name,
                                     tuple(a for a in scope.actions if a in actions)))
        return self._issuer.issue(user or "", granted)


def _args(request: Request, name: str) -> list[str]:
    return [value.decode("utf-8", "replace") for value in request.args.get(name.encode(), [])]


def _first(request: Request, name: str) -> str:
    values = _args(request, name)
    return values[0] if values else ""


def _write(request: Request, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    request.setResponseCode(200)
    request.setHeader("Content-Type", "application/json")
    request.setHeader("Content-Length", str(len(data)))
    request.write(data)
