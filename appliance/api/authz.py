"""Who may make this request: no auth, htpasswd users (with `appliance.access` rules), or bearer
tokens (`auth.token`, possibly switched on and off at runtime from LAIN's etcd key).

Each v2 route needs actions on resources, as Distribution's: GET/HEAD pull, POST/PUT/PATCH pull
and push (and pull on the source repository of a cross-repository mount), DELETE delete, the catalog
`registry:catalog:*`, and `/v2/` itself only a valid credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from twisted.web.server import Request

from appliance.auth.access import AccessRules
from appliance.auth.basic import HtpasswdAuthenticator
from appliance.auth.scope import CATALOG, Scope, format_scopes
from appliance.auth.token import InvalidToken, TokenVerifier
from appliance.registry import RegistryError

from .basicauth import Run, proven_user, unauthorized

__all__ = ["Gate", "TokenAuth", "required_scopes"]

_WRITE = ("pull", "push")  # a push-only token cannot write, as with Distribution
_METHOD_ACTIONS = {"GET": ("pull",), "HEAD": ("pull",), "POST": _WRITE, "PUT": _WRITE,
                   "PATCH": _WRITE, "DELETE": ("delete",)}


def required_scopes(handler: str | None, method: str, params: dict[str, str],
                    args: dict[bytes, list[bytes]]) -> list[Scope]:
    """The scopes a request needs; [] means "any valid credential" (`/v2/`, unknown routes)."""
    if handler == "catalog":
        return [CATALOG]
    name, actions = params.get("name"), _METHOD_ACTIONS.get(method)
    if handler is None or handler == "base" or not name or actions is None:
        return []
    scopes = [Scope("repository", name, actions)]
    source = (args.get(b"from") or [b""])[0].decode("utf-8", "replace")
    if handler == "start_upload" and args.get(b"mount") and source and source != name:
        scopes.append(Scope("repository", source, ("pull",)))
    return scopes


@dataclass(frozen=True)
class TokenAuth:
    """Bearer tokens: the verifier and what the challenge tells clients."""

    verifier: TokenVerifier
    realm: str
    autoredirect: bool = False

    def challenge(self, request: Request, scopes: Sequence[Scope], error: str = "") -> str:
        realm = self.realm
        if self.autoredirect and request.getHeader("host"):
            secure = request.isSecure() or request.getHeader("x-forwarded-proto") == "https"
            realm = f"{'https' if secure else 'http'}://{request.getHeader('host')}" \
                    f"{urlsplit(self.realm).path}"
        parts = [f'realm="{_quote(realm)}"', f'service="{_quote(self.verifier.service)}"']
        if scopes:
            parts.append(f'scope="{_quote(format_scopes(scopes))}"')
        if error:
            parts.append(f'error="{error}"')
        return "Bearer " + ",".join(parts)


class Gate:
    """The current way requests are authorized. `token` may be swapped at runtime (etcd)."""

    def __init__(
        self,
        authenticator: HtpasswdAuthenticator | None = None,
        rules: AccessRules | None = None,
        token: TokenAuth | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.rules = rules or AccessRules()
        self.token = token

    async def authorize(self, request: Request, scopes: Sequence[Scope], run: Run) -> None:
        """Return when allowed (setting `request.user_name`); raise the 401/403/429 otherwise."""
        token = self.token
        if token is not None:
            self._check_token(token, request, scopes)
        elif self.authenticator is not None:
            await self._check_password(self.authenticator, request, scopes, run)

    def _check_token(self, token: TokenAuth, request: Request, scopes: Sequence[Scope]) -> None:
        scheme, _, value = (request.getHeader("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            request.setHeader("WWW-Authenticate", token.challenge(request, scopes))
            raise RegistryError("UNAUTHORIZED", "authentication required")
        try:
            claims = token.verifier.verify(value.strip())
        except InvalidToken as error:
            request.setHeader("WWW-Authenticate",
                              token.challenge(request, scopes, "invalid_token"))
            raise RegistryError("UNAUTHORIZED", str(error)) from None
        missing = [scope for scope in scopes if not claims.allows(scope)]
        if missing:
            request.setHeader("WWW-Authenticate",
                              token.challenge(request, scopes, "insufficient_scope"))
            raise RegistryError("UNAUTHORIZED", "the token does not allow this",
                                [{"Type": s.type, "Name": s.name, "Action": a}
                                 for s in missing for a in s.actions])
        request.user_name = claims.subject

    async def _check_password(self, authenticator: HtpasswdAuthenticator, request: Request,
                              scopes: Sequence[Scope], run: Run) -> None:
        if request.getHeader("authorization") is None and scopes and all(
                self.rules.allows(None, scope) for scope in scopes):
            return  # anonymous pull of a public repository
        user = await proven_user(authenticator, request, run)
        if user is None:
            raise unauthorized(authenticator, request)
        request.user_name = user
        denied = [scope for scope in scopes if not self.rules.allows(user, scope)]
        if denied:
            raise RegistryError("DENIED", f"{user} may not {', '.join(denied[0].actions)} "
                                          f"{denied[0].name} (see appliance.access)")


def _quote(text: str) -> str:
    return text.replace("\\", "").replace('"', "")
