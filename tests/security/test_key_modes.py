"""Private keys and secrets on disk are 0600, in folders of their own that are 0700.

Run under umask 022, so a file or folder made with default permissions would show as 0644/0755
and fail here. The files: the CA and server keys (`certs init` and the first start), the token
signing key (`certs init --token-key`), the htpasswd file (`users add`), and the `http.secret`
the server generates when the config has none.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.server import EXECUTABLE, ApplianceServer, base_config


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    with umask(0o022):
        result = subprocess.run([*EXECUTABLE, *args], input=stdin, capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def assert_private(files: list[Path], folder: Path) -> None:
    for path in files:
        assert mode(path) == 0o600, f"{path}: {oct(mode(path))}"
    assert mode(folder) == 0o700, f"{folder}: {oct(mode(folder))}"


def test_certs_init_keys_are_0600(tmp_path: Path) -> None:
    """`certs init` writes ca.key and server.key 0600 into a new 0700 folder; certificates
    stay readable (0644)."""
    certs = tmp_path / "etc" / "certs"
    cli("certs", "init", "--dir", str(certs), "--hostname", "registry.test")
    assert_private([certs / "ca.key", certs / "server.key"], certs)
    assert mode(certs / "ca.crt") == mode(certs / "server.crt") == 0o644


def test_token_signing_key_is_0600(tmp_path: Path) -> None:
    """`certs init --token-key` writes token.key 0600 into a new 0700 folder."""
    folder = tmp_path / "etc" / "token"
    cli("certs", "init", "--token-key", "--dir", str(folder))
    assert_private([folder / "token.key"], folder)
    assert mode(folder / "token.crt") == 0o644


def test_users_add_writes_htpasswd_0600(tmp_path: Path) -> None:
    """`users add` creates the htpasswd file (bcrypt hashes) 0600 in a new 0700 folder."""
    path = tmp_path / "etc" / "auth" / "htpasswd"
    cli("users", "add", "alice", "--password-stdin", "--file", str(path), stdin="pw-of-alice\n")
    assert_private([path], path.parent)


def test_first_start_generates_private_keys_and_http_secret(tmp_path: Path) -> None:
    """The first start with `appliance.certs.autogenerate` writes the CA and server keys 0600
    in a 0700 folder; without `http.secret` the generated secret is stored 0600 under the
    data folder's `appliance/`, a 0700 folder."""
    certs = tmp_path / "certs"
    config = base_config(tmp_path)
    del config["http"]["secret"]
    config["http"]["tls"] = {"certificate": str(certs / "server.crt"),
                             "key": str(certs / "server.key")}
    config["appliance"] = {"certs": {"dir": str(certs), "autogenerate": True}}
    server = ApplianceServer(tmp_path / "run", config)
    with umask(0o022):
        server.start()
    try:
        assert_private([certs / "ca.key", certs / "server.key"], certs)
        secret = server.root / "appliance" / "http-secret"
        assert_private([secret], secret.parent)
        assert len(secret.read_bytes()) >= 32
    finally:
        server.stop()
