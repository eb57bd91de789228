"""Verify bearer tokens as Distribution's token access controller does.

A token is trusted when its signature checks with a trusted key, found by (in this order) the
`x5c` chain up to a root-bundle certificate, an embedded `jwk` that is one of the trusted keys,
or `kid` naming a trusted key: the libtrust id or the RFC 7638 thumbprint of a root
certificate's public key, or a `jwks` entry. Then `iss`, `aud` (= service) and `exp`/`nbf`
(60 s leeway) are checked; what the token allows is in its `access` claim.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from .keys import libtrust_key_id, public_key_from_jwk, thumbprint
from .scope import Scope

__all__ = ["DEFAULT_ALGORITHMS", "InvalidToken", "TokenClaims", "TokenVerifier", "load_trust"]

DEFAULT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
ALLOWED_ALGORITHMS = frozenset({*DEFAULT_ALGORITHMS, "PS256", "PS384", "PS512", "EdDSA"})
LEEWAY = 60.0


class InvalidToken(ValueError):
    """The token is not acceptable; the message says why (safe to show to the client)."""


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    access: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    def allows(self, scope: Scope) -> bool:
        granted = self.access.get((scope.type, scope.name), frozenset())
        return "*" in granted or all(action in granted for action in scope.actions)


def load_trust(
    rootcertbundle: str, jwks: str = ""
) -> tuple[list[x509.Certificate], dict[str, Any]]:
    """The root certificates (PEM bundle) and the `kid` -> key map of a JWKS file."""
    roots: list[x509.Certificate] = []
    if rootcertbundle:
        with open(rootcertbundle, "rb") as f:
            roots = x509.load_pem_x509_certificates(f.read())
    keys: dict[str, Any] = {}
    if jwks:
        with open(jwks, encoding="utf-8") as f:
            document = json.load(f)
        for entry in document.get("keys", []):
            if isinstance(entry, dict) and entry.get("kid"):
                keys[str(entry["kid"])] = public_key_from_jwk(entry)
    return roots, keys


class TokenVerifier:
    def __init__(
        self,
        issuer: str,
        service: str,
        roots: Iterable[x509.Certificate],
        jwks: Mapping[str, Any] | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        clock: Callable[[], float] = time.time,
        leeway: float = LEEWAY,
    ) -> None:
        self.issuer = issuer
        self.service = service
        self.roots = list(roots)
        self.algorithms = [a for a in algorithms if a in ALLOWED_ALGORITHMS]
        self._clock = clock
        self._leeway = leeway
        self._keys: dict[str, Any] = dict(jwks or {})
        for cert in self.roots:
            key = cert.public_key()
            self._keys[libtrust_key_id(key)] = key
            self._keys[thumbprint(key)] = key

    def verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken(f"malformed token: {error}") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise InvalidToken(f"signing algorithm {algorithm!r} is not accepted")
        key = self._signing_key(header)
        if not _fits(algorithm, key):
            raise InvalidToken(f"invalid token: {algorithm} does not match the signing key's type")
        try:
            claims = jwt.decode(
                token, key, algorithms=[algorithm], audience=self.service, issuer=self.issuer,
                leeway=self._leeway, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("token is for another service (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("token is from an untrusted issuer (iss)") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("token signature is invalid") from None
        except (jwt.PyJWTError, TypeError, ValueError) as error:
            raise InvalidToken(f"invalid token: {error}") from None
        return TokenClaims(str(claims.get("sub", "")), _access(claims.get("access")))

    def _signing_key(self, header: Mapping[str, Any]) -> Any:
        if "x5c" in header:
            return self._chain_key(header["x5c"])
        if "jwk" in header:
            try:
                key = public_key_from_jwk(header["jwk"])
            except (ValueError, TypeError, KeyError):
                raise InvalidToken("token carries an unreadable jwk") from None
            if thumbprint(key) not in self._keys:
                raise InvalidToken("token's embedded jwk is not a trusted key")
            return key
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self._keys:
            return self._keys[kid]
        if kid:
            raise InvalidToken(f"token signed by an unknown key (kid {kid})")
        raise InvalidToken("token names no signing key (no kid, x5c or jwk)")

    def _chain_key(self, x5c: object) -> Any:
        """The leaf's key, if the chain leads to a root certificate and every link is valid."""
        if not isinstance(x5c, list) or not x5c:
            raise InvalidToken("token's x5c is not a certificate list")
        try:
            chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in x5c]
        except (ValueError, TypeError):
            raise InvalidToken("token's x5c holds an unreadable certificate") from None
        now = self._clock()
        for cert in chain:
            if not (cert.not_valid_before_utc.timestamp() - self._leeway <= now
                    <= cert.not_valid_after_utc.timestamp() + self._leeway):
                raise InvalidToken("a certificate in the token's x5c is expired or not yet valid")
        for child, parent in pairwise(chain):
            if not _issued_by(child, parent):
                raise InvalidToken("token's x5c is not a chain")
        last = chain[-1]
        if not any(last == root or _issued_by(last, root) for root in self.roots):
            raise InvalidToken("token's x5c does not lead to a trusted root certificate")
        return chain[0].public_key()


def _fits(algorithm: str, key: Any) -> bool:
    if algorithm.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm.startswith("ES"):
        return isinstance(key, ec.EllipticCurvePublicKey)
    return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, Exception):  # InvalidSignature is not a ValueError
        return False
    return True


def _access(value: object) -> dict[tuple[str, str], frozenset[str]]:
    access: dict[tuple[str, str], frozenset[str]] = {}
    for entry in value if isinstance(value, list) else []:
        if not isinstance(entry, dict):
            continue
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if isinstance(kind, str) and isinstance(name, str) and isinstance(actions, list):
            key = (kind, name)
            access[key] = access.get(key, frozenset()) | {a for a in actions if isinstance(a, str)}
    return access
