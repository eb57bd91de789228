"""Basic credentials on a request: which htpasswd user they prove, and the challenge if none.

Shared by the v2 API and the admin API on the main port, so both check passwords the same way.
"""

from __future__ import annotations

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
    if verdict is None:
        verdict = await run(authenticator.check, user, password)
    return user if verdict else None


def unauthorized(authenticator: HtpasswdAuthenticator, request: Request) -> RegistryError:
    """Set the Basic challenge and return the 401 error to raise."""
    realm = authenticator.realm.replace('"', "")
    request.setHeader("WWW-Authenticate", f'Basic realm="{realm}"')
    return RegistryError("UNAUTHORIZED", "authentication required")
