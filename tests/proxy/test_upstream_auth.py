"""The upstream client's auth, without sockets: `StubTreq` over a fake registry and realm, a
`Clock` for token expiry. (The same flows against real servers are in test_pull_through.py.)"""

from __future__ import annotations

import base64
import json

import pytest
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Request

from appliance.proxy.upstream import Challenge, Upstream, UpstreamUnavailable, parse_challenge

REALM = "http://upstream.test/token"
SCOPE = "repository:library/app:pull"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class FakeRegistry(Resource):
    """`/token` issues numbered tokens for basic credentials u:p (or anonymously); `/v2/…`
    wants the newest token (Bearer) or u:p (Basic), else answers 401 with a challenge."""

    isLeaf = True

    def __init__(self, scheme: str, status: int = 200) -> None:
        super().__init__()
        self.scheme = scheme
        self.status = status
        self.tokens: list[tuple[str, str | None]] = []  # (scope, Authorization)
        self.hits: list[str | None] = []

    def render_GET(self, request: Request) -> bytes:
        auth = request.getHeader("authorization")
        if request.path == b"/token":
            self.tokens.append((request.args[b"scope"][0].decode(), auth))
            return json.dumps({"token": f"t{len(self.tokens)}", "expires_in": 60}).encode()
        self.hits.append(auth)
        wanted = f"Bearer t{len(self.tokens)}" if self.scheme == "bearer" else basic("u", "p")
        if auth != wanted or not auth:
            request.setResponseCode(401)
            bearer = f'Bearer realm="{REALM}",service="svc",scope="{SCOPE}"'
            request.setHeader("WWW-Authenticate",
                              bearer if self.scheme == "bearer" else 'Basic realm="upstream"')
            return b""
        request.setResponseCode(self.status)
        return b"manifest"


def fetch(upstream: Upstream) -> int:
    test = SynchronousTestCase()
    response = test.successResultOf(Deferred.fromCoroutine(
        upstream.request("GET", "/v2/library/app/manifests/v1", SCOPE)))
    return response.code


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
     'scope="repository:library/redis:pull"',
     Challenge("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                          "scope": "repository:library/redis:pull"})),
    ('Basic realm="Registry Realm"', Challenge("basic", {"realm": "Registry Realm"})),
    ('bearer realm=https://r/t, scope="a:b:pull,push", error="insufficient_scope"',
     Challenge("bearer", {"realm": "https://r/t", "scope": "a:b:pull,push",
                          "error": "insufficient_scope"})),
    ('Bearer realm="with \\"quote\\""', Challenge("bearer", {"realm": 'with "quote"'})),
    ("", None),
])
def test_parse_challenge(header: str, expected: Challenge | None) -> None:
    """`WWW-Authenticate` values as Docker Hub, Distribution and others send them."""
    assert parse_challenge(header) == expected


def test_bearer_token_fetched_with_credentials_cached_until_expiry() -> None:
    """A Bearer challenge: a token from the realm (Basic u:p), the request retried with it;
    the next request reuses it; after it expires a new one is fetched up front."""
    registry, clock = FakeRegistry("bearer"), Clock()
    upstream = Upstream("http://upstream.test", "u", "p", clock, http=StubTreq(registry))
    assert fetch(upstream) == 200
    assert registry.tokens == [(SCOPE, basic("u", "p"))]
    assert registry.hits == [None, "Bearer t1"]
    assert fetch(upstream) == 200
    assert len(registry.tokens) == 1
    assert registry.hits[-1] == "Bearer t1"
    clock.advance(61)
    assert fetch(upstream) == 200
    assert len(registry.tokens) == 2
    assert registry.hits == [None, "Bearer t1", "Bearer t1", "Bearer t2"]


def test_bearer_anonymous_without_credentials() -> None:
    """No username: the token is asked for anonymously (no Authorization to the realm)."""
    registry = FakeRegistry("bearer")
    upstream = Upstream("http://upstream.test", "", "", Clock(), http=StubTreq(registry))
    assert fetch(upstream) == 200
    assert registry.tokens == [(SCOPE, None)]


def test_basic_after_challenge_then_up_front() -> None:
    """A Basic challenge: the credentials are sent on the retry and on every later request."""
    registry = FakeRegistry("basic")
    upstream = Upstream("http://upstream.test", "u", "p", Clock(), http=StubTreq(registry))
    assert fetch(upstream) == 200
    assert fetch(upstream) == 200
    assert registry.hits == [None, basic("u", "p"), basic("u", "p")]


def test_wrong_basic_credentials_give_the_401_back() -> None:
    """Refused credentials are not retried forever: the caller sees the 401."""
    registry = FakeRegistry("basic")
    upstream = Upstream("http://upstream.test", "u", "wrong", Clock(), http=StubTreq(registry))
    assert fetch(upstream) == 401
    assert fetch(upstream) == 401
    assert len(registry.hits) == 3


def test_server_errors_are_unavailable() -> None:
    """A 5xx from the upstream raises UpstreamUnavailable (the cache may serve stale)."""
    registry = FakeRegistry("basic", status=502)
    upstream = Upstream("http://upstream.test", "u", "p", Clock(), http=StubTreq(registry))
    test = SynchronousTestCase()
    failure = test.failureResultOf(Deferred.fromCoroutine(
        upstream.request("GET", "/v2/library/app/manifests/v1", SCOPE)))
    assert failure.check(UpstreamUnavailable)
