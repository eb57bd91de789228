"""The upstream registry, over HTTP with treq: requests with Basic or Bearer-token auth.

Authentication follows the registry's challenge, as docker does: a request goes out with what
the last challenge asked for; a 401 carries `WWW-Authenticate`, and
- `Basic realm=...`: the configured username and password are sent from then on;
- `Bearer realm=...,service=...,scope=...`: a token is fetched from the realm (with the
  credentials as Basic auth, or anonymously), cached per scope until it expires, and the
  request is retried once with it.

Connection failures, timeouts and 5xx answers raise `UpstreamUnavailable`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import treq
from treq.client import HTTPClient
from twisted.internet.error import ConnectError, ConnectingCancelledError, DNSLookupError
from twisted.internet.error import TimeoutError as ConnectTimeout
from twisted.web.client import Agent, ResponseFailed
from twisted.web.iweb import IResponse

__all__ = ["Challenge", "Upstream", "UpstreamUnavailable", "parse_challenge"]

TIMEOUT = 30.0
_DEFAULT_TOKEN_LIFETIME = 60.0
_PARAM = re.compile(r'\s*([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


class UpstreamUnavailable(Exception):
    """The upstream cannot be reached, timed out, or answered with a server error."""


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lowercased
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a `WWW-Authenticate` value, e.g. `Bearer realm="…",scope="…"`."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        params[match.group(1).lower()] = value
    return Challenge(scheme.lower(), params)


class Upstream:
    """One upstream registry at `url` (`proxy.remoteurl`). `http` is a treq `HTTPClient`
    (tests pass a `StubTreq`); `clock` gives the time for token expiry."""

    def __init__(self, url: str, username: str, password: str, reactor: Any,
                 http: Any = None) -> None:
        self.url = url.rstrip("/")
        self._credentials = (username, password) if username else None
        self._clock = reactor
        self._http = http if http is not None else HTTPClient(
            Agent(reactor, connectTimeout=10))
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    async def request(self, method: str, path: str, scope: str,
                      headers: dict[str, list[str]] | None = None,
                      time_limit: float | None = TIMEOUT) -> IResponse:
        """`path` under the upstream's URL, e.g. `/v2/library/redis/manifests/7`; `scope` is
        the token scope it needs (`repository:library/redis:pull`). A 5xx is unavailable; any
        other status is returned with its body unread."""
        response = await self._send(method, path, scope, headers, time_limit)
        if response.code == 401:
            header = response.headers.getRawHeaders(b"www-authenticate", [b""])[0]
            challenge = parse_challenge(header.decode("latin-1"))
            known = self._challenge
            if challenge is not None and challenge.scheme in ("basic", "bearer"):
                self._challenge = challenge
                await _drain(response)
                if challenge != known or challenge.scheme == "bearer":
                    self._forget_token(challenge, scope)
                    retry_scope = challenge.params.get("scope") or scope
                    response = await self._send(method, path, retry_scope, headers, time_limit)
        if response.code >= 500:
            await _drain(response)
            raise UpstreamUnavailable(f"{method} {self.url}{path}: HTTP {response.code}")
        return response

    async def _send(self, method: str, path: str, scope: str,
                    headers: dict[str, list[str]] | None, time_limit: float | None) -> IResponse:
        sent = dict(headers or {})
        authorization = await self._authorization(scope)
        if authorization:
            sent["Authorization"] = [authorization]
        try:
            return await self._http.request(method, self.url + path, headers=sent,
                                            timeout=time_limit, allow_redirects=True)
        except (ConnectError, DNSLookupError, ConnectTimeout, ConnectingCancelledError,
                ResponseFailed, OSError) as error:
            raise UpstreamUnavailable(f"{method} {self.url}{path}: {error}") from None
        except Exception as error:  # treq's timeout cancels: CancelledError
            if type(error).__name__ in ("CancelledError", "ResponseNeverReceived"):
                raise UpstreamUnavailable(f"{method} {self.url}{path}: {error!r}") from None
            raise

    async def _authorization(self, scope: str) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return _basic(*self._credentials) if self._credentials else None
        return f"Bearer {await self._token(challenge, scope)}"

    def _token_key(self, challenge: Challenge, scope: str) -> tuple[str, str, str]:
        return (challenge.params.get("realm", ""), challenge.params.get("service", ""), scope)

    def _forget_token(self, challenge: Challenge, scope: str) -> None:
        self._tokens.pop(self._token_key(challenge, challenge.params.get("scope") or scope), None)

    async def _token(self, challenge: Challenge, scope: str) -> str:
        """A token for `scope` from the challenge's realm; cached until shortly before expiry."""
        key = self._token_key(challenge, scope)
        cached = self._tokens.get(key)
        now = self._clock.seconds()
        if cached is not None and cached[1] > now:
            return cached[0]
        realm = key[0]
        if not realm.startswith(("http://", "https://")):
            raise UpstreamUnavailable(f"upstream token realm {realm!r} is not an http(s) URL")
        query = {k: v for k, v in (("service", key[1]), ("scope", scope)) if v}
        url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}" if query else realm
        headers = {"Authorization": [_basic(*self._credentials)]} if self._credentials else {}
        try:
            response = await self._http.get(url, headers=headers, timeout=TIMEOUT)
            body = await treq.content(response)
        except (ConnectError, DNSLookupError, ConnectTimeout, ResponseFailed, OSError) as error:
            raise UpstreamUnavailable(f"token realm {realm}: {error}") from None
        if response.code != 200:
            raise UpstreamUnavailable(f"token realm {realm} answered HTTP {response.code}")
        try:
            answer = json.loads(body)
            token = answer.get("token") or answer.get("access_token")
            lifetime = float(answer.get("expires_in") or _DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            token, lifetime = None, 0.0
        if not isinstance(token, str) or not token:
            raise UpstreamUnavailable(f"token realm {realm} gave no token")
        # Renew a little early so a token does not expire between here and the upstream.
        self._tokens[key] = (token, now + max(lifetime - 10.0, lifetime / 2))
        return token


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


async def _drain(response: IResponse) -> None:
    with contextlib.suppress(Exception):  # the body of an answer we discard
        await treq.content(response)
