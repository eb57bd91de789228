"""The TLS listener offers TLS 1.2 and 1.3 only, with forward-secret AEAD suites only, for the
generated EC certificate and for an operator's RSA certificate. Checked with `openssl s_client`
and `sslscan` (Debian package, installed by scripts/test.sh).

Every refusal is paired with a control: `openssl s_server` with the same certificate and every
protocol and cipher allowed must accept the same probe, so a refusal is the registry's doing and
not the probing client's. The token endpoint is served on this same listener; the debug listener
(`http.debug.addr`) is plain HTTP, like Distribution's, and belongs on loopback.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from appliance.tls import init_certs
from tests.api.conftest import running
from tests.server import free_port

# Accepted TLS 1.2 suites: ECDHE key exchange (forward secrecy) with an AEAD cipher.
MODERN_TLS12 = ("ECDHE-", ("GCM", "CHACHA20"))
TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
# Per key type: suites that are CBC, or RSA key exchange (no forward secrecy), or finite-field DH.
WEAK = {
    "ec": ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"],
    "rsa": ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384",
            "DHE-RSA-AES128-GCM-SHA256"],
}
STRONG = {"ec": "ECDHE-ECDSA-AES128-GCM-SHA256", "rsa": "ECDHE-RSA-CHACHA20-POLY1305"}


def _rsa_pair(directory: Path) -> tuple[Path, Path]:
    """An operator's own RSA certificate (self-signed: only the handshake matters here)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "rsa.crt", directory / "rsa.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class Target:
    kind: str
    port: int
    certificate: Path
    key: Path


@pytest.fixture(scope="module", params=["ec", "rsa"])
def target(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    kind = request.param
    paths: list[Path] = []

    def with_tls(config: dict[str, Any], workdir: Path) -> None:
        if kind == "ec":
            made = init_certs(workdir / "certs", ["localhost"])
            paths[:] = [made.server_cert, made.server_key]
        else:
            paths[:] = list(_rsa_pair(workdir / "certs"))
        config["http"]["tls"] = {"certificate": str(paths[0]), "key": str(paths[1])}

    with running(tmp_path_factory, f"tls-{kind}", with_tls) as server:
        yield Target(kind, server.port, paths[0], paths[1])


@pytest.fixture(scope="module")
def control(target: Target) -> Iterator[int]:
    """`openssl s_server` with the target's certificate, every protocol and cipher allowed."""
    port = free_port()
    process = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(target.certificate),
         "-key", str(target.key), "-cipher", "ALL@SECLEVEL=0", "-www", "-quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not handshake(port, "-tls1_2") and time.monotonic() < deadline:
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def handshake(port: int, *options: str) -> bool:
    """Whether `openssl s_client` completes a handshake with these options. SECLEVEL=0 lets this
    client offer what the server must refuse."""
    if not any(o.startswith("-cipher") or o.startswith("-ciphersuites") for o in options):
        options = (*options, "-cipher", "ALL@SECLEVEL=0")
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief", *options],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    return "CONNECTION ESTABLISHED" in result.stdout + result.stderr


@pytest.mark.parametrize(("version", "offered"), [
    ("-tls1", False), ("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)])
def test_protocol_versions(target: Target, control: int, version: str, offered: bool) -> None:
    """TLS 1.0 and 1.1 handshakes fail (the control accepts them); 1.2 and 1.3 succeed."""
    assert handshake(control, version)
    assert handshake(target.port, version) is offered


def test_weak_tls12_suites_are_refused(target: Target, control: int) -> None:
    """CBC suites, RSA key exchange and finite-field DHE are refused over TLS 1.2, though the
    control accepts each; a modern ECDHE AEAD suite is accepted."""
    for cipher in WEAK[target.kind]:
        assert handshake(control, "-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0"), cipher
        assert not handshake(target.port, "-tls1_2", "-cipher", f"{cipher}@SECLEVEL=0"), cipher
    assert handshake(target.port, "-tls1_2", "-cipher", STRONG[target.kind])


@dataclass
class Scan:
    protocols: set[str]
    ciphers: set[tuple[str, str]]  # (protocol, suite)
    root: ET.Element


def sslscan(port: int) -> Scan:
    result = subprocess.run(["sslscan", "--no-colour", "--xml=-", f"127.0.0.1:{port}"],
                            capture_output=True, text=True, timeout=120)
    root = ET.fromstring(result.stdout[result.stdout.index("<?xml"):])
    test = root.find("ssltest")
    assert test is not None, result.stdout
    return Scan(
        {f"{p.get('type')}{p.get('version')}" for p in test.iter("protocol")
         if p.get("enabled") == "1"},
        {(c.get("sslversion", ""), c.get("cipher", "")) for c in test.iter("cipher")},
        test)


def test_sslscan_finds_only_modern_protocols_and_suites(target: Target, control: int) -> None:
    """sslscan sees TLS 1.0 on the control, and on the registry only TLS 1.2/1.3 with ECDHE
    AEAD (1.2) or the standard 1.3 suites; no compression, no heartbleed, no insecure
    renegotiation. (scripts/test.sh installs sslscan; without it this fails, never skips.)"""
    assert shutil.which("sslscan"), "sslscan is missing: apt install sslscan (scripts/test.sh does)"
    assert "tls1.0" in sslscan(control).protocols
    scan = sslscan(target.port)
    assert scan.protocols == {"tls1.2", "tls1.3"}, scan.protocols
    prefix, aead = MODERN_TLS12
    weak = [(version, suite) for version, suite in scan.ciphers
            if not (version == "TLSv1.3" and suite in TLS13)
            and not (version == "TLSv1.2" and suite.startswith(prefix)
                     and any(mode in suite for mode in aead))]
    assert not weak, weak
    assert {version for version, _ in scan.ciphers} == {"TLSv1.2", "TLSv1.3"}
    for compression in scan.root.iter("compression"):
        assert compression.get("supported") == "0"
    for heartbleed in scan.root.iter("heartbleed"):
        assert heartbleed.get("vulnerable") == "0"
    for renegotiation in scan.root.iter("renegotiation"):
        assert renegotiation.get("supported") == "0" or renegotiation.get("secure") == "1"


def test_minimumtls_13_refuses_tls12(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With `http.tls.minimumtls: tls1.3`, a TLS 1.2 handshake fails and TLS 1.3 works."""
    def with_tls13(config: dict[str, Any], workdir: Path) -> None:
        made = init_certs(workdir / "certs", ["localhost"])
        config["http"]["tls"] = {"certificate": str(made.server_cert),
                                 "key": str(made.server_key), "minimumtls": "tls1.3"}

    with running(tmp_path_factory, "tls13", with_tls13) as server:
        assert not handshake(server.port, "-tls1_2")
        assert handshake(server.port, "-tls1_3")
