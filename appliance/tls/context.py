"""
Build the server's TLS settings from PEM files, with errors that name the config key at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from OpenSSL import crypto
from twisted.internet.ssl import AcceptableCiphers, CertificateOptions, TLSVersion

__all__ = ["TLSConfigError", "server_context_factory"]

_T = TypeVar("_T")
# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are all of that already.
_CIPHERS = AcceptableCiphers.fromOpenSSLCipherString("ECDHE+AESGCM:ECDHE+CHACHA20")
_MINIMUM = {"tls1.2": TLSVersion.TLSv1_2, "tls1.3": TLSVersion.TLSv1_3}


class TLSConfigError(ValueError):
    """A TLS setting that cannot be used; str() starts with the config key, for the CLI."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


def server_context_factory(
    certificate: str,
    key: str,
    minimum_tls: str = "tls1.2",
    client_cas: Sequence[str] = (),
) -> CertificateOptions:
    """
    TLS options for the listening socket, checked now so a bad file fails at startup.

    @param certificate: PEM file with the server certificate first, then any intermediates.
    @param client_cas: PEM files of CAs; when given, clients must present a certificate
        signed by one of them (Distribution's C{http.tls.clientcas}).
    """
    if minimum_tls not in _MINIMUM:
        raise TLSConfigError(
            "http.tls.minimumtls", f"{minimum_tls!r} is not supported; use tls1.2 or tls1.3"
        )
    chain = _load("http.tls.certificate", certificate, x509.load_pem_x509_certificates)
    private_key = _load("http.tls.key", key, _load_key)
    if chain[0].public_key() != private_key.public_key():
        raise TLSConfigError("http.tls.key", f"{key} does not match the certificate {certificate}")
    cas = [
        crypto.X509.from_cryptography(ca)
        for path in client_cas
        for ca in _load("http.tls.clientcas", path, x509.load_pem_x509_certificates)
    ]
    # pyOpenSSL now wants cryptography objects here; Twisted passes them through untouched.
    return CertificateOptions(
        privateKey=private_key,  # type: ignore[arg-type]
        certificate=chain[0],  # type: ignore[arg-type]
        extraCertChain=chain[1:],  # type: ignore[arg-type]
        raiseMinimumTo=_MINIMUM[minimum_tls],
        acceptableCiphers=_CIPHERS,
        verify=bool(cas),
        caCerts=cas or None,
    )


def _load(key_name: str, path: str, parse: Callable[[bytes], _T]) -> _T:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TLSConfigError(key_name, f"cannot read {path}: {error.strerror}") from error
    try:
        return parse(data)
    except (ValueError, TypeError) as error:
        raise TLSConfigError(key_name, f"cannot parse {path}: {error}") from error


def _load_key(data: bytes) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(data, password=None)
