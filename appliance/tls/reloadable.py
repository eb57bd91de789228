"""
The listener's TLS settings, swappable at runtime so a renewed certificate needs no restart.

Twisted's TLS factory asks its connection creator for a new connection on every accept, so
swapping the options we hand out changes what new connections see while open ones keep theirs.
"""

from __future__ import annotations

from typing import Any

from OpenSSL.SSL import Connection
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import CertificateOptions
from zope.interface import implementer

from appliance.config import TLSConfig

from .context import server_context_factory

__all__ = ["ReloadableServerTLS"]


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableServerTLS:
    """
    Serve with the files of a L{TLSConfig}; L{reload} reads them again.

    @ivar options: the settings new connections get.
    """

    def __init__(self, tls: TLSConfig) -> None:
        self.options: CertificateOptions = _options(tls)

    def reload(self, tls: TLSConfig) -> None:
        """Use the files now; if they are unusable, raise L{TLSConfigError} and keep the old."""
        self.options = _options(tls)

    def serverConnectionForTLS(self, tlsProtocol: Any) -> Connection:
        return Connection(self.options.getContext(), None)


def _options(tls: TLSConfig) -> CertificateOptions:
    """Built now, OpenSSL context included: failures show at startup or reload, not per accept."""
    options = server_context_factory(tls.certificate, tls.key, tls.minimumtls, tls.clientcas)
    options.getContext()
    return options
