"""The command line, run as a user runs it: a real process, its output and exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance import __version__
from appliance.auth import htpasswd


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    """`version` prints the package version."""
    assert cli("version").stdout.strip() == f"registry-appliance {__version__}"


def test_users_add_list_remove(tmp_path: Path) -> None:
    """Users are added with bcrypt, listed, and removed; the file is private (0600)."""
    path = tmp_path / "htpasswd"
    assert cli("users", "add", "alice", "--password-stdin", "--file", str(path), stdin="s3cret\n").returncode == 0
    assert cli("users", "add", "bob", "--password-stdin", "--file", str(path), stdin="other\n").returncode == 0
    assert cli("users", "list", "--file", str(path)).stdout.split() == ["alice", "bob"]
    entries = htpasswd.read_entries(str(path))
    assert entries["alice"].startswith("$2y$")
    assert htpasswd.verify(entries["alice"], "s3cret") and not htpasswd.verify(entries["alice"], "wrong")
    assert path.stat().st_mode & 0o777 == 0o600
    assert cli("users", "remove", "alice", "--file", str(path)).returncode == 0
    assert cli("users", "list", "--file", str(path)).stdout.split() == ["bob"]
    missing = cli("users", "remove", "alice", "--file", str(path))
    assert missing.returncode == 1 and "no user 'alice'" in missing.stderr


def test_users_add_refuses_bad_names_and_empty_passwords(tmp_path: Path) -> None:
    """A name with a colon and an empty password are refused with a clear message, no traceback."""
    path = tmp_path / "htpasswd"
    bad = cli("users", "add", "a:b", "--password-stdin", "--file", str(path), stdin="x\n")
    assert bad.returncode == 1 and "invalid user name" in bad.stderr and "Traceback" not in bad.stderr
    empty = cli("users", "add", "carol", "--password-stdin", "--file", str(path), stdin="\n")
    assert empty.returncode == 1 and "empty password" in empty.stderr
    assert not path.exists()


def test_htpasswd_files_interoperate_with_apache(tmp_path: Path) -> None:
    """Apache's `htpasswd -B` verifies our entries, and we verify entries it writes."""
    path = tmp_path / "htpasswd"
    cli("users", "add", "alice", "--password-stdin", "--file", str(path), stdin="from-us\n")
    assert subprocess.run(["htpasswd", "-vb", str(path), "alice", "from-us"], capture_output=True).returncode == 0
    assert subprocess.run(["htpasswd", "-vb", str(path), "alice", "nope"], capture_output=True).returncode != 0
    subprocess.run(["htpasswd", "-Bb", str(path), "dave", "from-apache"], check=True, capture_output=True)
    entries = htpasswd.read_entries(str(path))
    assert htpasswd.verify(entries["dave"], "from-apache")
    assert htpasswd.verify(entries["alice"], "from-us")


def test_certs_init_show_and_refuse_overwrite(tmp_path: Path) -> None:
    """`certs init` writes four files and prints docker and podman CA paths; `show` describes them."""
    made = cli("certs", "init", "--dir", str(tmp_path), "--hostname", "reg.example.test", "--ip", "10.1.2.3")
    assert made.returncode == 0, made.stderr
    assert "/etc/docker/certs.d/reg.example.test:5000/ca.crt" in made.stdout
    assert "/etc/containers/certs.d/reg.example.test:5000/ca.crt" in made.stdout
    assert "/etc/docker/certs.d/10.1.2.3:5000/ca.crt" in made.stdout
    assert "/etc/docker/certs.d/localhost:5000/ca.crt" in made.stdout
    assert (tmp_path / "server.key").stat().st_mode & 0o777 == 0o600
    shown = cli("certs", "show", "--dir", str(tmp_path))
    assert "reg.example.test" in shown.stdout and "10.1.2.3" in shown.stdout
    again = cli("certs", "init", "--dir", str(tmp_path))
    assert again.returncode == 1 and "--force" in again.stderr
    assert cli("certs", "init", "--dir", str(tmp_path), "--force").returncode == 0


def test_config_check_reports_problems_by_key(tmp_path: Path) -> None:
    """`config check` exits 1 and names each bad key; a good file prints with secrets redacted."""
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 0.1\nstorage: {filesystem: {rootdirectory: 7}}\nhttp: {tls: {minimumtls: tls1.0, certificate: a, key: b}}\n")
    result = cli("config", "check", str(bad))
    assert result.returncode == 1
    assert "http.tls.minimumtls:" in result.stderr and "Traceback" not in result.stderr
    good = tmp_path / "good.yml"
    good.write_text("version: 0.1\nstorage: {filesystem: {rootdirectory: /srv/r}}\nhttp: {secret: hunter2}\nredis: {addr: x}\n")
    result = cli("config", "check", str(good))
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "<redacted>" in result.stdout
    assert "ignored (not implemented yet): redis" in result.stderr


def test_serve_with_bad_config_names_the_key(tmp_path: Path) -> None:
    """`serve` with a broken config prints `key: problem` and exits 1 without starting."""
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 0.1\nstorage: {floppy: {}}\n")
    result = cli("serve", str(bad))
    assert result.returncode == 1
    assert "storage.floppy" in result.stderr and "Traceback" not in result.stderr
