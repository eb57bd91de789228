"""Key identifiers as token servers write them in a JWT's `kid`.

Two forms: libtrust's (Docker's docker_auth, LAIN, Distribution's own keys) and the RFC 7638
JWK thumbprint (most OAuth servers).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["jwk_of", "libtrust_key_id", "public_key_from_jwk", "thumbprint"]

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def libtrust_key_id(key: Any) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32, in 12 groups of 4."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, 48, 4))


def _b64(number: int, length: int | None = None) -> str:
    size = length or max(1, (number.bit_length() + 7) // 8)
    return base64.urlsafe_b64encode(number.to_bytes(size, "big")).decode().rstrip("=")


_CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def jwk_of(key: Any) -> dict[str, str]:
    """The public JWK members RFC 7638 hashes (RSA: e, kty, n; EC: crv, kty, x, y)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv, size = _CURVES[key.curve.name]
        point = key.public_numbers()
        return {"crv": crv, "kty": "EC", "x": _b64(point.x, size), "y": _b64(point.y, size)}
    raise ValueError(f"unsupported key type {type(key).__name__}")


def thumbprint(key: Any) -> str:
    """RFC 7638: SHA-256 of the canonical JSON of the required members, base64url."""
    canonical = json.dumps(jwk_of(key), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).decode().rstrip("=")


def public_key_from_jwk(jwk: dict[str, Any]) -> Any:
    """An RSA or EC public key from a JWK mapping; ValueError for anything else."""
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    kty = jwk.get("kty")
    text = json.dumps({k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")})
    if kty == "RSA":
        key = RSAAlgorithm.from_jwk(text)
    elif kty == "EC":
        key = ECAlgorithm.from_jwk(text)
    else:
        raise ValueError(f"unsupported JWK key type {kty!r}")
    return key.public_key() if hasattr(key, "private_bytes") else key
