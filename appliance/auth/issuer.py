"""Issue tokens for the built-in token server: signed JWTs in the form Distribution verifies.

The signing key is `token.key` in the certs directory (`registry-appliance certs init
--token-key` writes it with `token.crt`, the certificate to trust as `auth.token.rootcertbundle`).
Each token names its key by the libtrust `kid`, as docker_auth does.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .keys import libtrust_key_id
from .scope import Scope

__all__ = ["REFRESH_AUDIENCE_SUFFIX", "TokenIssuer", "load_signing_key"]

REFRESH_AUDIENCE_SUFFIX = "#refresh"
REFRESH_LIFETIME = 90 * 24 * 3600.0


def load_signing_key(path: str) -> Any:
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: the token key must be RSA or EC")
    return key


@dataclass(frozen=True)
class Issued:
    token: str
    expires_in: int
    issued_at: str


class TokenIssuer:
    def __init__(
        self,
        key: Any,
        issuer: str,
        service: str,
        lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.issuer = issuer
        self.service = service
        self.lifetime = lifetime
        self._clock = clock
        self.algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else {
            256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
        self.kid = libtrust_key_id(key.public_key())

    def issue(self, subject: str, scopes: Iterable[Scope]) -> Issued:
        now = int(self._clock())
        claims = {
            "iss": self.issuer, "sub": subject, "aud": self.service,
            "iat": now, "nbf": now - 1, "exp": now + int(self.lifetime),
            "jti": secrets.token_urlsafe(16),
            "access": [{"type": s.type, "name": s.name, "actions": list(s.actions)}
                       for s in scopes],
        }
        return Issued(self._sign(claims), int(self.lifetime), _rfc3339(now))

    def refresh_token(self, subject: str) -> str:
        now = int(self._clock())
        return self._sign({
            "iss": self.issuer, "sub": subject, "aud": self.service + REFRESH_AUDIENCE_SUFFIX,
            "iat": now, "exp": now + int(REFRESH_LIFETIME), "jti": secrets.token_urlsafe(16),
        })

    def refresh_subject(self, token: str) -> str | None:
        """The user a refresh token we issued was given to, or None when it is not valid."""
        try:
            claims = jwt.decode(token, self._key.public_key(), algorithms=[self.algorithm],
                                audience=self.service + REFRESH_AUDIENCE_SUFFIX,
                                issuer=self.issuer, options={"require": ["exp", "sub"]})
        except jwt.PyJWTError:
            return None
        return str(claims["sub"])

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=self.algorithm,
                          headers={"kid": self.kid, "typ": "JWT"})


def _rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


