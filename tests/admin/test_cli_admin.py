"""The admin CLI verbs, run as a user runs them (`python -m appliance.cli`), on a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.admin.client import AdminClient
from appliance.auth.htpasswd import hash_password, write_entries
from appliance.cli_admin import human
from tests.api.client import DOCKER_MANIFEST, V2Client, digest_of
from tests.api.conftest import running
from tests.server import ApplianceServer

from .conftest import image_config


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    result = subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, **(env or {})},
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def on(server: ApplianceServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a verb against `server`'s admin socket; it must succeed."""
    result = cli(*args, "--admin", server.admin_socket)
    assert result.returncode == 0, result.stderr
    return result


def test_readonly_on_status_off(server: ApplianceServer, admin: AdminClient) -> None:
    """`readonly on|status|off` switch and report the mode; `-c CONFIG` finds the socket itself."""
    assert on(server, "readonly", "on").stdout.startswith("read-only: on")
    assert admin.readonly() is True
    config = str(server.workdir / "config.yml")
    assert cli("readonly", "status", "-c", config).stdout.startswith("read-only: on")
    assert cli("readonly", env={"REGISTRY_CONFIGURATION_PATH": config}).stdout.startswith(
        "read-only: on"
    )
    assert on(server, "readonly", "off").stdout.strip() == "read-only: off"
    assert admin.readonly() is False


def test_tags_list_and_delete(server: ApplianceServer, v2: V2Client) -> None:
    """`tags list` shows each tag's digest, kind, size, platform; `tags delete` removes only one."""
    image = v2.push_image(
        "cli/app", "v1", [os.urandom(2048)], config=image_config(created="2024-03-04T05:06:07Z")
    )
    v2.put_manifest("cli/app", "v1-alias", image.manifest, DOCKER_MANIFEST)
    size = human(len(image.manifest) + len(image.config) + 2048)
    lines = on(server, "tags", "list", "cli/app").stdout.splitlines()
    assert lines[0].split() == ["TAG", "DIGEST", "KIND", "SIZE", "CREATED", "PLATFORMS"]
    assert lines[1].split() == [
        "v1",
        image.digest,
        "image",
        *size.split(),
        "2024-03-04",
        "05:06",
        "linux/amd64",
    ]
    assert lines[2].split()[0] == "v1-alias"
    deleted = on(server, "tags", "delete", "cli/app:v1")
    assert f"deleted tag cli/app:v1 (the manifest {image.digest}" in deleted.stdout
    assert [
        line.split()[0] for line in on(server, "tags", "list", "cli/app").stdout.splitlines()[1:]
    ] == ["v1-alias"]
    assert v2.request("GET", "/v2/cli/app/manifests/v1-alias").content == image.manifest


def test_retag_then_pull(server: ApplianceServer, v2: V2Client) -> None:
    """`retag SRC DST` makes DST pullable in another repository with the same digest."""
    image = v2.push_image("cli/src", "v1", [os.urandom(500)], config=image_config())
    out = on(server, "retag", "cli/src:v1", "cli/dst:prod").stdout
    assert out.startswith(f"cli/dst:prod now names {image.digest} (2 blobs linked")
    assert v2.request("GET", "/v2/cli/dst/manifests/prod").content == image.manifest
    assert (
        v2.request("GET", f"/v2/cli/dst/blobs/{digest_of(image.layers[0])}").content
        == image.layers[0]
    )


def test_du_splits_unique_and_shared(server: ApplianceServer, v2: V2Client) -> None:
    """`du` lists each repository's tags, unique and shared sizes; `du REPO` each tag's size."""
    shared = os.urandom(3072)
    a = v2.push_image("cli/du-a", "v1", [shared, os.urandom(1000)], config=image_config())
    v2.push_image("cli/du-b", "v1", [shared], config=image_config())
    rows = {line.split()[0]: line.split() for line in on(server, "du").stdout.splitlines()[1:]}
    unique_a = human(len(a.manifest) + len(a.config) + 1000)
    assert rows["cli/du-a"][1:6] == ["1", *unique_a.split(), "3.0", "KiB"]
    per_tag = on(server, "du", "cli/du-a").stdout.splitlines()
    assert per_tag[1].split() == [
        "v1",
        *human(len(a.manifest) + len(a.config) + 1000 + 3072).split(),
        "image",
        a.digest[:19],
    ]


def test_gc_dry_run_then_real(server: ApplianceServer, v2: V2Client) -> None:
    """`gc --dry-run` lists what would go and keeps it; `gc` then removes exactly that."""
    junk = os.urandom(4096)
    v2.push_blob("cli/junk", junk)
    dry = on(server, "gc", "--dry-run").stdout
    assert dry.startswith("garbage collection started (dry run")
    assert f"would remove blob {digest_of(junk)}" in dry
    would = sorted(line for line in dry.splitlines() if line.startswith("would remove"))
    real = on(server, "gc").stdout
    assert (
        sorted(
            line.replace("removed", "would remove", 1)
            for line in real.splitlines()
            if line.startswith("removed")
        )
        == would
    )
    assert re.fullmatch(
        r"\d+ blobs, \d+ manifests, \d+ bytes \(.+\) freed in [\d.]+s", real.splitlines()[-1]
    )
    assert v2.request("GET", f"/v2/cli/junk/blobs/{digest_of(junk)}").status_code == 404


def test_errors_are_one_line_and_exit_1(server: ApplianceServer, tmp_path: Path) -> None:
    """A stopped server, an unknown repository, a bad reference: one clear line each, exit 1."""
    missing = str(tmp_path / "gone.sock")
    stopped = cli("du", "--admin", missing)
    assert stopped.returncode == 1
    assert stopped.stderr.strip() == (
        f"registry-appliance: cannot reach the admin socket at {missing}: "
        "is the server running? (registry-appliance serve)"
    )
    unknown = cli("tags", "list", "cli/never", "--admin", server.admin_socket)
    assert unknown.returncode == 1
    assert "repository name not known" in unknown.stderr
    for bad in ("cli/app", "Bad:tag", f"cli/app@{digest_of(b'x')}"):
        refused = cli("tags", "delete", bad, "--admin", server.admin_socket)
        assert refused.returncode == 1, bad
        assert refused.stderr.startswith("registry-appliance: "), bad


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    """Plain HTTP with htpasswd auth; alice is an admin."""

    def edit(config: dict[str, Any], workdir: Path) -> None:
        write_entries(str(workdir / "htpasswd"), {"alice": hash_password("alice-pw")})
        config["auth"] = {"htpasswd": {"realm": "cli", "path": str(workdir / "htpasswd")}}
        config["appliance"] = {"admin": {"users": ["alice"]}}

    with running(tmp_path_factory, "cli-password", edit) as started:
        yield started


def test_url_with_user_and_password_from_the_environment(password_server: ApplianceServer) -> None:
    """`--admin URL --user` takes the password from REGISTRY_ADMIN_PASSWORD; wrong ones fail."""
    good = cli(
        "readonly",
        "--admin",
        password_server.url,
        "--user",
        "alice",
        env={"REGISTRY_ADMIN_PASSWORD": "alice-pw"},
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("read-only: off")
    wrong = cli(
        "readonly",
        "--admin",
        password_server.url,
        "--user",
        "alice",
        env={"REGISTRY_ADMIN_PASSWORD": "nope"},
    )
    assert wrong.returncode == 1
    assert "wrong user name or password" in wrong.stderr
    anonymous = cli("du", "--admin", password_server.url)
    assert anonymous.returncode == 1
    assert "admin user name and password are required" in anonymous.stderr
