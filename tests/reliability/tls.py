"""Turn TLS on in a test server's config, with a fresh CA and server certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.tls import init_certs
from appliance.tls.certs import CertSet


def enable_tls(config: dict[str, Any], directory: Path) -> CertSet:
    """`http.tls` for 127.0.0.1; clients verify with the returned set's `ca_cert`."""
    certs = init_certs(directory, hostnames=["localhost"], ips=["127.0.0.1"])
    config["http"]["tls"] = {"certificate": str(certs.server_cert), "key": str(certs.server_key)}
    return certs
