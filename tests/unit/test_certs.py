"""Tests for appliance.tls: generated certificates, their description, the server's TLS options."""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

from appliance.tls import (
    CertSet,
    CertsExistError,
    TLSConfigError,
    describe,
    ensure_server_certs,
    init_certs,
    install_hints,
    server_context_factory,
)


@pytest.fixture
def certs(tmp_path: Path) -> CertSet:
    return init_certs(
        tmp_path / "certs",
        hostnames=["Registry.Example", "10.9.8.7"],
        ips=["192.0.2.10", "2001:db8::1"],
    )


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _round_trip(
    serve: Callable[[socket.socket], None], client: ssl.SSLContext, server_hostname: str
) -> None:
    """Serve one end of a socket pair in a thread; raise whatever the TLS client end hits."""
    server_end, client_end = socket.socketpair()

    def run() -> None:
        try:
            serve(server_end)
        except (OSError, SSL.Error):
            pass
        finally:
            server_end.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        with client.wrap_socket(client_end, server_hostname=server_hostname) as tls:
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
    finally:
        client_end.close()
        thread.join(5)


def _python_server(certs: CertSet) -> Callable[[socket.socket], None]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)

    def serve(sock: socket.socket) -> None:
        with context.wrap_socket(sock, server_side=True) as tls:
            tls.recv(4)
            tls.sendall(b"pong")

    return serve


def _twisted_options_server(context: SSL.Context) -> Callable[[socket.socket], None]:
    def serve(sock: socket.socket) -> None:
        connection = SSL.Connection(context, sock)
        connection.set_accept_state()
        connection.do_handshake()
        connection.recv(4)
        connection.sendall(b"pong")

    return serve


def _client(certs: CertSet) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certs.ca_cert)


def test_files_and_modes(certs: CertSet) -> None:
    """The directory is private, keys are 0600 and certificates 0644."""
    assert _mode(certs.ca_cert.parent) == 0o700
    assert (_mode(certs.ca_key), _mode(certs.server_key)) == (0o600, 0o600)
    assert (_mode(certs.ca_cert), _mode(certs.server_cert)) == (0o644, 0o644)
    assert sorted(p.name for p in certs.ca_cert.parent.iterdir()) == [
        "ca.crt",
        "ca.key",
        "server.crt",
        "server.key",
    ]


def test_subject_alt_names(certs: CertSet) -> None:
    """The server certificate names the given hosts and IPs, this host, and loopback."""
    sans = _cert(certs.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    dns = sans.value.get_values_for_type(x509.DNSName)
    ips = [str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)]
    assert dns[0] == "registry.example"
    assert {"localhost", socket.gethostname().lower()} <= set(dns)
    assert {"10.9.8.7", "192.0.2.10", "2001:db8::1", "127.0.0.1", "::1"} <= set(ips)
    assert (tuple(dns), tuple(ips)) == (certs.dns_names, certs.ip_addresses)
    assert len(set(ips)) == len(ips)
    assert _cert(certs.server_cert).not_valid_after_utc == certs.not_after.replace(microsecond=0)


def test_chain_verifies(certs: CertSet) -> None:
    """The server certificate is issued by the CA, which is a CA, for server use only."""
    ca, server = _cert(certs.ca_cert), _cert(certs.server_cert)
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_refuses_to_overwrite(certs: CertSet) -> None:
    """A second run without force names the existing files, says --force, and changes nothing."""
    before = certs.ca_cert.read_bytes()
    with pytest.raises(CertsExistError, match=r"ca\.crt.*--force"):
        init_certs(certs.ca_cert.parent)
    assert certs.ca_cert.read_bytes() == before


def test_force_replaces(certs: CertSet) -> None:
    """With force, a new CA and server certificate replace the old ones."""
    before = certs.ca_cert.read_bytes()
    init_certs(certs.ca_cert.parent, force=True)
    assert certs.ca_cert.read_bytes() != before
    assert _mode(certs.server_key) == 0o600


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"ips": ["10.0.0.300"]}, "--ip '10.0.0.300' is not a valid"), ({"days": 0}, "days")],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    """A bad --ip or a validity under one day is refused before anything is written."""
    with pytest.raises(ValueError, match=message):
        init_certs(tmp_path / "certs", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "certs").exists()


def test_describe(certs: CertSet) -> None:
    """describe shows subject, issuer, SANs and expiry of both certificates."""
    text = describe(certs.ca_cert.parent)
    assert "CA certificate:" in text
    assert "Server certificate:" in text
    assert "CN=registry.example" in text
    assert "issuer:     CN=registry-appliance CA on" in text
    assert "DNS:localhost" in text
    assert "IP:::1" in text
    assert "824 days left" in text


def test_describe_expired(certs: CertSet) -> None:
    """Certificates past their end date are marked EXPIRED."""
    text = describe(certs.ca_cert.parent, now=datetime.now(UTC) + timedelta(days=900))
    assert text.count("(EXPIRED)") == 2


def test_describe_missing(tmp_path: Path) -> None:
    """describe of a directory without certificates names the missing files."""
    with pytest.raises(FileNotFoundError, match=r"ca\.crt.*server\.crt"):
        describe(tmp_path)


def test_install_hints() -> None:
    """Hints copy the CA into docker's and podman's certs.d, with IPv6 hosts in brackets."""
    assert install_hints(["reg.example", "::1"], 5000, Path("/srv/certs/ca.crt")) == [
        "sudo mkdir -p /etc/docker/certs.d/reg.example:5000 && "
        "sudo cp /srv/certs/ca.crt /etc/docker/certs.d/reg.example:5000/ca.crt",
        "sudo mkdir -p /etc/containers/certs.d/reg.example:5000 && "
        "sudo cp /srv/certs/ca.crt /etc/containers/certs.d/reg.example:5000/ca.crt",
        "sudo mkdir -p '/etc/docker/certs.d/[::1]:5000' && "
        "sudo cp /srv/certs/ca.crt '/etc/docker/certs.d/[::1]:5000/ca.crt'",
        "sudo mkdir -p '/etc/containers/certs.d/[::1]:5000' && "
        "sudo cp /srv/certs/ca.crt '/etc/containers/certs.d/[::1]:5000/ca.crt'",
    ]


def test_install_hints_default_port() -> None:
    """On port 443 clients look up certs.d/HOST without a port."""
    assert install_hints(["reg.example"], 443, Path("ca.crt"))[0] == (
        "sudo mkdir -p /etc/docker/certs.d/reg.example && "
        "sudo cp ca.crt /etc/docker/certs.d/reg.example/ca.crt"
    )


def test_ensure_server_certs(tmp_path: Path) -> None:
    """The first start generates certificates; later starts keep them."""
    directory = tmp_path / "certs"
    assert ensure_server_certs(directory, ["reg.example"])
    before = (directory / "server.crt").read_bytes()
    assert not ensure_server_certs(directory)
    assert (directory / "server.crt").read_bytes() == before


def test_ensure_server_certs_keeps_ca(certs: CertSet) -> None:
    """A CA without a server certificate is an error, never silently replaced."""
    certs.server_key.unlink()
    before = certs.ca_cert.read_bytes()
    with pytest.raises(CertsExistError, match=r"server\.key is missing.*ca\.crt"):
        ensure_server_certs(certs.ca_cert.parent)
    assert certs.ca_cert.read_bytes() == before


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "::1", "registry.example", "10.9.8.7"])
def test_handshake_validates_names(certs: CertSet, name: str) -> None:
    """A client that trusts only ca.crt accepts the server under each of its names."""
    _round_trip(_python_server(certs), _client(certs), name)


def test_handshake_rejects_other_names(certs: CertSet) -> None:
    """A name missing from the SANs fails verification."""
    with pytest.raises(ssl.SSLCertVerificationError):
        _round_trip(_python_server(certs), _client(certs), "elsewhere.example")


def test_context_serves_generated_certs(certs: CertSet) -> None:
    """The context factory serves the generated pair to a client trusting the CA."""
    options = server_context_factory(str(certs.server_cert), str(certs.server_key))
    _round_trip(_twisted_options_server(options.getContext()), _client(certs), "localhost")


def test_context_sends_chain(certs: CertSet, tmp_path: Path) -> None:
    """Certificates after the first in the certificate file are sent as the chain."""
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(certs.server_cert.read_bytes() + certs.ca_cert.read_bytes())
    options = server_context_factory(str(bundle), str(certs.server_key))
    assert options.extraCertChain == [_cert(certs.ca_cert)]


def test_context_refuses_tls_1_1(certs: CertSet) -> None:
    """A client that speaks at most TLS 1.1 gets a protocol_version alert."""
    client = _client(certs)
    client.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.minimum_version = client.maximum_version = ssl.TLSVersion.TLSv1_1
    options = server_context_factory(str(certs.server_cert), str(certs.server_key))
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        _round_trip(_twisted_options_server(options.getContext()), client, "localhost")


def test_context_tls_1_3_minimum(certs: CertSet) -> None:
    """With minimum tls1.3 a TLS 1.2 client is refused."""
    client = _client(certs)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    options = server_context_factory(str(certs.server_cert), str(certs.server_key), "tls1.3")
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        _round_trip(_twisted_options_server(options.getContext()), client, "localhost")


def test_context_refuses_cbc_ciphers(certs: CertSet) -> None:
    """A TLS 1.2 client offering only a non-AEAD suite cannot connect."""
    client = _client(certs)
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    client.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    options = server_context_factory(str(certs.server_cert), str(certs.server_key))
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        _round_trip(_twisted_options_server(options.getContext()), client, "localhost")


def _client_cert(certs: CertSet, tmp_path: Path) -> tuple[Path, Path]:
    """A clientAuth certificate signed by the generated CA."""
    ca_key = serialization.load_pem_private_key(certs.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")]))
        .issuer_name(_cert(certs.ca_cert).subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_path, key_path = tmp_path / "client.crt", tmp_path / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_context_client_cas(certs: CertSet, tmp_path: Path) -> None:
    """With client CAs, a client needs a certificate they signed."""
    options = server_context_factory(
        str(certs.server_cert), str(certs.server_key), client_cas=[str(certs.ca_cert)]
    )
    context = options.getContext()
    # TLS 1.3 rejects a missing client certificate after the client thinks the handshake is
    # done, so under load the client may see the alert or only the closed connection.
    with pytest.raises(OSError, match="CERTIFICATE_REQUIRED|EOF|reset|Broken pipe"):
        _round_trip(_twisted_options_server(context), _client(certs), "localhost")
    client = _client(certs)
    client.load_cert_chain(*_client_cert(certs, tmp_path))
    _round_trip(_twisted_options_server(context), client, "localhost")


def test_context_mismatched_key(certs: CertSet, tmp_path: Path) -> None:
    """A key that does not belong to the certificate is blamed on http.tls.key."""
    other = init_certs(tmp_path / "other")
    with pytest.raises(TLSConfigError, match=r"^http\.tls\.key: .* does not match") as caught:
        server_context_factory(str(certs.server_cert), str(other.server_key))
    assert caught.value.key == "http.tls.key"


def test_context_missing_file(certs: CertSet, tmp_path: Path) -> None:
    """A missing file is reported with its config key, path and the OS reason."""
    missing = tmp_path / "nope.crt"
    with pytest.raises(TLSConfigError) as caught:
        server_context_factory(str(missing), str(certs.server_key))
    assert str(caught.value) == (
        f"http.tls.certificate: cannot read {missing}: No such file or directory"
    )


@pytest.mark.parametrize("which", ["certificate", "key", "clientcas"])
def test_context_unreadable_pem(certs: CertSet, tmp_path: Path, which: str) -> None:
    """A file that is not PEM is reported under the config key that named it."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a pem\n")
    files = {"certificate": str(certs.server_cert), "key": str(certs.server_key), "clientcas": ""}
    files[which] = str(junk)
    with pytest.raises(TLSConfigError, match=rf"^http\.tls\.{which}: cannot parse {junk}"):
        server_context_factory(
            files["certificate"],
            files["key"],
            client_cas=[files["clientcas"]] if files["clientcas"] else [],
        )


def test_context_old_minimum(certs: CertSet) -> None:
    """Minimum versions below TLS 1.2 are refused, naming http.tls.minimumtls."""
    with pytest.raises(TLSConfigError, match=r"^http\.tls\.minimumtls: 'tls1\.0'"):
        server_context_factory(str(certs.server_cert), str(certs.server_key), "tls1.0")
