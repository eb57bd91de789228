"""A test token server: keys, a root bundle, tokens in every `kid` form, and a realm thread.

`TestSigner` holds an RSA key and an EC key, each with a certificate signed by one test root CA
(the bundle the registry trusts). `RealmServer` answers docker's GET token requests on loopback
over plain HTTP, granting whatever scopes are asked to one user with one password.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from appliance.auth.keys import jwk_of, libtrust_key_id, thumbprint

ISSUER, SERVICE = "test-token-issuer", "test-registry"


def _cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


class TestSigner:
    """Keys and certificates of a fake token server, made with `cryptography`."""

    __test__ = False

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert("test root", self.root_key, "test root", self.root_key, ca=True)
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rsa_cert = _cert("rsa signer", self.rsa_key, "test root", self.root_key, ca=False)
        self.ec_cert = _cert("ec signer", self.ec_key, "test root", self.root_key, ca=False)
        self.stranger = ec.generate_private_key(ec.SECP256R1())  # trusted by no one

    def bundle(self, path: Path) -> Path:
        """The root bundle: the leaf certificates (for `kid`) and the root CA (for `x5c`)."""
        path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                  for c in (self.rsa_cert, self.ec_cert, self.root)))
        return path

    def token(
        self,
        access: list[dict[str, Any]],
        *,
        key: str = "rsa",
        kid: str = "libtrust",
        issuer: str = ISSUER,
        audience: str = SERVICE,
        expires_in: float = 300,
        not_before: float | None = None,
        algorithm: str | None = None,
        subject: str = "tester",
        signing_key: Any = None,
    ) -> str:
        """A token; `kid` is libtrust, thumbprint, x5c (no kid, chain), jwk, or none."""
        private = {"rsa": self.rsa_key, "ec": self.ec_key}[key]
        cert = {"rsa": self.rsa_cert, "ec": self.ec_cert}[key]
        public = private.public_key()
        headers: dict[str, Any] = {}
        if kid == "libtrust":
            headers["kid"] = libtrust_key_id(public)
        elif kid == "thumbprint":
            headers["kid"] = thumbprint(public)
        elif kid == "x5c":
            headers["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER))
                              .decode()]
        elif kid == "jwk":
            headers["jwk"] = jwk_of(public)
        now = time.time()
        claims = {"iss": issuer, "aud": audience, "sub": subject, "iat": int(now),
                  "exp": int(now + expires_in), "jti": secrets.token_hex(8), "access": access}
        if not_before is not None:
            claims["nbf"] = int(now + not_before)
        algorithm = algorithm or ("RS256" if key == "rsa" else "ES256")
        return jwt.encode(claims, signing_key or private, algorithm=algorithm, headers=headers)


def repo_access(name: str, *actions: str) -> list[dict[str, Any]]:
    return [{"type": "repository", "name": name, "actions": list(actions)}]


class RealmServer:
    """docker's token endpoint on 127.0.0.1 (plain HTTP), in a thread; every scope is granted."""

    def __init__(self, signer: TestSigner, user: str, password: str, kid: str = "libtrust",
                 key: str = "rsa") -> None:
        self.signer, self.user, self.password = signer, user, password
        self.kid, self.key = kid, key
        self.requests: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                outer.requests.append(query)
                expected = base64.b64encode(f"{outer.user}:{outer.password}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                access = []
                for text in query.get("scope", []):
                    for scope in text.split():
                        kind, _, rest = scope.partition(":")
                        name, _, actions = rest.rpartition(":")
                        access.append({"type": kind, "name": name,
                                       "actions": actions.split(",")})
                token = outer.signer.token(access, key=outer.key, kid=outer.kid,
                                           subject=outer.user)
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    @contextmanager
    def running(self) -> Iterator[RealmServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()
            thread.join(5)
