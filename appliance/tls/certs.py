"""
Create the private CA and server certificate that let the registry serve TLS out of the box.

Docker, podman and skopeo refuse plain-HTTP registries unless every client is reconfigured;
trusting one CA file per client (see L{install_hints}) is the smaller ask.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertSet",
    "CertsExistError",
    "describe",
    "ensure_server_certs",
    "init_certs",
    "install_hints",
]

CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY = "ca.crt", "ca.key", "server.crt", "server.key"
_LOOKUP_SECONDS = 2.0
_T = TypeVar("_T")
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class CertSet:
    """Where L{init_certs} wrote its files and which names the server certificate covers."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_after: datetime


class CertsExistError(FileExistsError):
    """Raised instead of replacing certificates, because clients may already trust the old CA."""

    def __init__(
        self, paths: Sequence[Path], problem: str = "certificate files already exist"
    ) -> None:
        self.paths = tuple(paths)
        files = ", ".join(map(str, self.paths))
        super().__init__(f"{problem}: {files}; pass --force to replace them")


def init_certs(
    directory: Path,
    hostnames: Sequence[str] = (),
    ips: Sequence[str] = (),
    days: int = 825,
    force: bool = False,
) -> CertSet:
    """
    Create a CA and a server certificate it signs, valid for this host's names and addresses.

    825 days is the longest validity Apple clients accept for a server certificate.
    Hostnames that are really IP addresses become IP SANs, since Go matches IPs only there.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    dns_names, ip_addresses = _subject_alt_names(hostnames, ips)
    paths = _paths(directory)
    existing = [path for path in paths if path.exists()]
    if existing and not force:
        raise CertsExistError(existing)

    now = datetime.now(UTC)
    not_after = now + timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"registry-appliance CA on {socket.gethostname()}")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key, now, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    sans: list[x509.GeneralName] = [*map(x509.DNSName, dns_names)]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    server_cert = (
        _builder(_name(dns_names[0]), ca_name, server_key, now, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    _write_all(
        {
            paths[0]: (ca_cert.public_bytes(pem), 0o644),
            paths[1]: (_key_pem(ca_key), 0o600),
            paths[2]: (server_cert.public_bytes(pem), 0o644),
            paths[3]: (_key_pem(server_key), 0o600),
        }
    )
    return CertSet(*paths, dns_names, ip_addresses, not_after)


def ensure_server_certs(directory: Path, hostnames: Sequence[str] = ()) -> bool:
    """
    Generate certificates on the server's first start; return whether it did.

    A CA that is already there is never replaced behind the operator's back.
    """
    if (directory / SERVER_CERT).exists() and (directory / SERVER_KEY).exists():
        return False
    existing = [path for path in _paths(directory) if path.exists()]
    if existing:
        raise CertsExistError(
            existing, f"{SERVER_CERT} or {SERVER_KEY} is missing; creating them would replace"
        )
    init_certs(directory, hostnames)
    return True


def describe(directory: Path, now: datetime | None = None) -> str:
    """Summarise the CA and server certificates so an operator can check names and expiry."""
    files = {"CA certificate": directory / CA_CERT, "Server certificate": directory / SERVER_CERT}
    missing = [str(path) for path in files.values() if not path.exists()]
    if missing:
        raise FileNotFoundError(f"no certificate at {', '.join(missing)}")
    now = now or datetime.now(UTC)
    return "\n".join(_describe_one(label, path, now) for label, path in files.items())


def install_hints(names: Sequence[str], port: int, ca_path: Path) -> list[str]:
    """
    Shell lines that make docker, podman and skopeo on another host trust this registry's CA.

    Both look in certs.d/HOST:PORT, with IPv6 hosts in brackets and no port when it is 443.
    """
    lines = []
    for name in names:
        host = f"[{name}]" if ":" in name else name
        registry = host if port == 443 else f"{host}:{port}"
        for root in ("/etc/docker/certs.d", "/etc/containers/certs.d"):
            folder = f"{root}/{registry}"
            lines.append(
                f"sudo mkdir -p {shlex.quote(folder)} && "
                f"sudo cp {shlex.quote(str(ca_path))} {shlex.quote(folder + '/ca.crt')}"
            )
    return lines


def _paths(directory: Path) -> tuple[Path, Path, Path, Path]:
    return directory / CA_CERT, directory / CA_KEY, directory / SERVER_CERT, directory / SERVER_KEY


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "registry-appliance"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    now: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    """Common fields; not_before is back-dated so clients with a slow clock accept the cert."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _key_usage(ca: bool) -> x509.KeyUsage:
    """ECDSA keys only sign, so the server needs no keyEncipherment."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_all(files: dict[Path, tuple[bytes, int]]) -> None:
    """
    Stage every file beside its target, then rename them all, so a failure leaves no half set.

    mkstemp opens with mode 0600, so a key is never readable by others, not even for a moment.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, (data, mode) in files.items():
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            staged.append((temp, path))
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), mode)
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        for temp, path in staged:
            os.replace(temp, path)
    except BaseException:
        for temp, _ in staged:
            with suppress(FileNotFoundError):
                os.unlink(temp)
        raise


def _subject_alt_names(
    hostnames: Iterable[str], ips: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The given names first, then every name and address a client here or on the LAN may use."""
    addresses: list[_IP] = []
    for ip in ips:
        try:
            addresses.append(ipaddress.ip_address(ip))
        except ValueError:
            raise ValueError(f"--ip {ip!r} is not a valid IPv4 or IPv6 address") from None
    names = []
    for name in hostnames:
        try:
            addresses.append(ipaddress.ip_address(name))
        except ValueError:
            names.append(name)
    hostname = socket.gethostname()
    names += [hostname, _bounded(socket.getfqdn, hostname), "localhost"]
    addresses += [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    addresses += _local_addresses(hostname)
    unique_names = dict.fromkeys(name.lower() for name in names if name)
    return tuple(unique_names), tuple(dict.fromkeys(map(str, addresses)))


def _local_addresses(hostname: str) -> list[_IP]:
    """This host's LAN addresses from DNS and its interfaces; a missing tool just finds fewer."""
    none: list[str] = []
    found = _bounded(lambda: [str(i[4][0]) for i in socket.getaddrinfo(hostname, None)], none)
    found += _interface_addresses()
    addresses = []
    for text in found:
        with suppress(ValueError):
            address = ipaddress.ip_address(text.split("%")[0])
            if not (address.is_loopback or address.is_link_local or address.is_multicast):
                addresses.append(address)
    return addresses


def _interface_addresses() -> list[str]:
    try:
        out = subprocess.run(
            ["ip", "-o", "addr", "show"],
            capture_output=True,
            text=True,
            timeout=_LOOKUP_SECONDS,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    words = out.split()
    return [cidr.split("/")[0] for word, cidr in pairwise(words) if word in ("inet", "inet6")]


def _bounded(lookup: Callable[[], _T], default: _T) -> _T:
    """Run a lookup that may wait on DNS in a daemon thread, so a broken resolver cannot hang us."""
    result = [default]

    def run() -> None:
        with suppress(OSError, UnicodeError):
            result[0] = lookup()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(_LOOKUP_SECONDS)
    return result[0]


def _describe_one(label: str, path: Path, now: datetime) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [f"DNS:{name}" for name in sans.get_values_for_type(x509.DNSName)]
        names += [f"IP:{ip}" for ip in sans.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = ["(none)"]
    left = cert.not_valid_after_utc - now
    status = f"{left.days} days left" if left > timedelta(0) else "EXPIRED"
    return "\n".join(
        [
            f"{label}: {path}",
            f"  subject:    {cert.subject.rfc4514_string()}",
            f"  issuer:     {cert.issuer.rfc4514_string()}",
            f"  SANs:       {', '.join(names)}",
            f"  not before: {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            f"  not after:  {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC ({status})",
        ]
    )
