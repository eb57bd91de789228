"""packaging/install.sh into a temporary root (DESTDIR): a fresh install, then an upgrade."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appliance.config import load
from tests.e2e import tools

from .harness import ROOT

pytestmark = pytest.mark.e2e

INSTALL = ROOT / "packaging" / "install.sh"
ETC = "etc/registry-appliance"


def fresh_root(path: Path) -> Path:
    """A root with just root's account, as useradd --prefix needs."""
    (path / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        lines = Path("/etc", name).read_text().splitlines()
        ours = [f"{line}\n" for line in lines if line.startswith("root:")]
        (path / "etc" / name).write_text("".join(ours))
        os.chmod(path / "etc" / name, 0o600 if "shadow" in name else 0o644)
    return path


def install(root: Path, binary: Path, **env: str) -> str:
    environ = tools.clean_env() | {"DESTDIR": str(root), "BINARY": str(binary), **env}
    return tools.run([INSTALL, "--hostname", "registry.example.test"], env=environ).stdout


def account(root: Path, name: str) -> list[str]:
    return [line.split(":") for line in (root / "etc" / name).read_text().splitlines()
            if line.startswith("registry:")]


def test_install_then_upgrade_keeps_config_certs_users_and_data(
    frozen_binary: Path, tmp_path: Path
) -> None:
    """A first install lays out binary, user, units, config and certs; a rerun swaps the binary
    and the units but leaves config, certificates, users and data alone."""
    root = fresh_root(tmp_path / "root")
    said = install(root, frozen_binary)
    assert "systemctl enable --now registry-appliance" in said
    assert "users add" in said

    binary = root / "usr/local/bin/registry-appliance"
    assert binary.read_bytes() == frozen_binary.read_bytes()
    assert os.access(binary, os.X_OK)
    [user] = account(root, "passwd")
    [group] = account(root, "group")
    assert int(user[2]) < 1000
    assert user[6] == "/usr/sbin/nologin"
    assert user[3] == group[2]
    gid = int(group[2])
    unit = (root / "etc/systemd/system/registry-appliance.service").read_text()
    assert ("ExecStart=/usr/local/bin/registry-appliance serve /etc/registry-appliance/config.yml"
            in unit)
    assert (root / "etc/systemd/system/registry-appliance.socket").exists()

    config = load(str(root / ETC / "config.yml"), {})
    assert config.storage.driver == "filesystem"
    assert config.storage.rootdirectory == "/var/lib/registry"
    assert config.storage.delete_enabled
    assert config.http.tls is not None
    assert config.http.tls.certificate == "/etc/registry-appliance/certs/server.crt"
    assert config.auth.htpasswd
    assert config.auth.htpasswd.path == "/etc/registry-appliance/htpasswd"
    assert config.appliance.admin_socket == "/run/registry-appliance/admin.sock"
    assert config.ignored == ()

    def access(relative: str) -> tuple[int, int]:
        status = (root / relative).stat()
        return stat.S_IMODE(status.st_mode), status.st_gid

    assert access(f"{ETC}/certs/server.key") == (0o640, gid)
    assert access(f"{ETC}/certs/ca.key")[0] == 0o600
    assert access(f"{ETC}/htpasswd") == (0o640, gid)
    assert (root / "var/lib/registry").stat().st_uid == int(user[2])
    shown = tools.run([frozen_binary, "certs", "show", "--dir", root / ETC / "certs"]).stdout
    assert "registry.example.test" in shown

    # A user added by root stays readable by the service's group.
    tools.run([binary, "users", "add", "alice", "--password-stdin",
               "--file", root / ETC / "htpasswd"], stdin="secret\n")
    assert access(f"{ETC}/htpasswd") == (0o640, gid)

    kept = {path: path.read_bytes() for path in (root / ETC).rglob("*") if path.is_file()}
    (root / "var/lib/registry/marker").write_text("data")
    newer = tmp_path / "newer"
    newer.write_text('#!/bin/sh\necho "registry-appliance 9.9.9"\n')
    newer.chmod(0o755)
    said = install(root, newer)

    assert "registry-appliance 9.9.9" in said
    assert binary.read_bytes() == newer.read_bytes()
    assert {path: path.read_bytes() for path in (root / ETC).rglob("*") if path.is_file()} == kept
    assert (root / "var/lib/registry/marker").read_text() == "data"
    assert len(account(root, "passwd")) == 1


def test_prefix_moves_the_binary_and_the_units_follow(frozen_binary: Path, tmp_path: Path) -> None:
    """PREFIX=/opt/registry installs the binary there and ExecStart points at it."""
    root = fresh_root(tmp_path / "root")
    install(root, frozen_binary, PREFIX="/opt/registry")
    assert (root / "opt/registry/bin/registry-appliance").exists()
    unit = (root / "etc/systemd/system/registry-appliance.service").read_text()
    assert "ExecStart=/opt/registry/bin/registry-appliance serve" in unit
