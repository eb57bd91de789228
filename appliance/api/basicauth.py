"""Basic credentials on a request: which htpasswd user they prove, and the challenge if none.

Shared by the v2 API and the admin API on the main port, so both check passwords the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.server import Request

from appliance.auth.basic import HtpasswdAuthenticator, parse_basic
from appliance.registry import RegistryError

Run = Callable[..., Deferred[Any]]


async def proven_user(
    authenticator: HtpasswdAuthenticator, request: Request, run: Run
) -> str | None:
    """The user whose password the request carries, or None; bcrypt runs via `run` (a thread)."""
    credentials = parse_basic(request.getHeader(b"authorization"))
    if credentials is None:
        return None
    user, password = credentials
    verdict = authenticator.cached_verdict(user, password)
    if verdict:
        return user
    address = client_address(request)
    wait = authenticator.limiter.retry_after(user, address)
    if wait is not None:
        seconds = math.ceil(wait)
        request.setHeader("Retry-After", str(seconds))
        raise RegistryError("TOOMANYREQUESTS", f"too many failed logins for {user!r} or from "
                                               f"{address}; try again in {seconds} s")
    if verdict is None:
        verdict = await run(authenticator.check, user, password)
    if not verdict:
        authenticator.limiter.failed(user, address)
    return user if verdict else None


def client_address(request: Request) -> str:
    """The peer's IP address (`unix` on a UNIX socket), which failed logins are counted by."""
    peer = request.getClientAddress()
    return str(getattr(peer, "host", "unix"))


def unauthorized(authenticator: HtpasswdAuthenticator, request: Request) -> RegistryError:
    """Set the Basic challenge and return the 401 error to raise."""
    realm = authenticator.realm.replace('"', "")
    request.setHeader("WWW-Authenticate", f'Basic realm="{realm}"')
    return RegistryError("UNAUTHORIZED", "authentication required")
