"""Certificates for the registry's TLS listener: generate them, describe them, serve with them."""

from appliance.tls.certs import (
    CertSet,
    CertsExistError,
    describe,
    ensure_server_certs,
    init_certs,
    install_hints,
)
from appliance.tls.context import TLSConfigError, server_context_factory
from appliance.tls.reloadable import ReloadableServerTLS

__all__ = [
    "CertSet",
    "CertsExistError",
    "ReloadableServerTLS",
    "TLSConfigError",
    "describe",
    "ensure_server_certs",
    "init_certs",
    "install_hints",
    "server_context_factory",
]
