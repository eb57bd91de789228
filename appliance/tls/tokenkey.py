"""The built-in token server's signing key and its self-signed certificate.

`token.key` signs tokens; `token.crt` is what the registry (or another registry) trusts as
`auth.token.rootcertbundle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .certs import CertsExistError, _builder, _key_pem, _name, _write_all

__all__ = ["TOKEN_CERT", "TOKEN_KEY", "TokenKeyFiles", "init_token_key"]

TOKEN_KEY, TOKEN_CERT = "token.key", "token.crt"


@dataclass(frozen=True)
class TokenKeyFiles:
    key: Path
    cert: Path
    not_after: datetime


def init_token_key(directory: Path, days: int = 3650, force: bool = False) -> TokenKeyFiles:
    """Write an EC P-256 `token.key` (0600) and `token.crt` (0644), in a folder made 0700 when
    missing (as `init_certs` does); refuse to overwrite."""
    key_path, cert_path = directory / TOKEN_KEY, directory / TOKEN_CERT
    existing = [p for p in (key_path, cert_path) if p.exists()]
    if existing and not force:
        raise CertsExistError(existing)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    not_after = now + timedelta(days=days)
    name = _name("registry-appliance token signer")
    cert = _builder(name, name, key, now, not_after).sign(key, hashes.SHA256())
    _write_all({
        key_path: (_key_pem(key), 0o600),
        cert_path: (cert.public_bytes(serialization.Encoding.PEM), 0o644),
    })
    return TokenKeyFiles(key_path, cert_path, not_after)
