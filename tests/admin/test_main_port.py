"""The admin API on the main port: only for htpasswd users in `appliance.admin.users`, over TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.admin.client import AdminClient, AdminError
from appliance.auth.htpasswd import hash_password, write_entries
from appliance.config import ConfigError, load
from appliance.tls import init_certs
from tests.api.client import V2Client
from tests.api.conftest import running
from tests.server import ApplianceServer, free_port

REALM = "admin-tests"
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
COMMON = {"X-Content-Type-Options": "nosniff"}


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("admin-htpasswd") / "htpasswd"
    write_entries(str(path), {user: hash_password(password) for user, password in USERS.items()})
    return path


@pytest.fixture(scope="module")
def tls_admin(
    tmp_path_factory: pytest.TempPathFactory, htpasswd: Path
) -> Iterator[ApplianceServer]:
    """HTTPS with htpasswd auth; alice is an admin, bob only a registry user."""

    def edit(config: dict[str, Any], workdir: Path) -> None:
        certs = init_certs(workdir / "certs", hostnames=["localhost"], ips=["127.0.0.1"])
        config["http"]["tls"] = {
            "certificate": str(certs.server_cert),
            "key": str(certs.server_key),
        }
        config["auth"] = {"htpasswd": {"realm": REALM, "path": str(htpasswd)}}
        config["appliance"] = {"admin": {"users": ["alice"]}}

    with running(tmp_path_factory, "admin-tls", edit) as started:
        yield started


@pytest.fixture(scope="module")
def no_admins(
    tmp_path_factory: pytest.TempPathFactory, htpasswd: Path
) -> Iterator[ApplianceServer]:
    def edit(config: dict[str, Any], workdir: Path) -> None:
        config["auth"] = {"htpasswd": {"realm": REALM, "path": str(htpasswd)}}

    with running(tmp_path_factory, "admin-none", edit) as started:
        yield started


def ca(server: ApplianceServer) -> str:
    return str(server.workdir / "certs" / "ca.crt")


def http(server: ApplianceServer, user: str | None = None, password: str | None = None) -> V2Client:
    """A client that also checks the registry's common headers on every admin response."""
    auth = (user, password or USERS[user]) if user else None
    return V2Client(
        server.url,
        auth=auth,
        verify=ca(server) if server.scheme == "https" else False,
        expect_headers=COMMON,
    )


@pytest.mark.parametrize("auth", [None, ("alice", "wrong"), ("mallory", "alice-pw")])
def test_missing_or_wrong_credentials_are_401(
    tls_admin: ApplianceServer, auth: tuple[str, str] | None
) -> None:
    """Anonymous, a wrong password, an unknown user: 401 UNAUTHORIZED with a Basic challenge."""
    response = http(tls_admin, *(auth or ())).request("GET", "/admin/v1/status")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{REALM}"'
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_registry_user_who_is_not_an_admin_is_403(tls_admin: ApplianceServer) -> None:
    """bob's password is right but he is not in appliance.admin.users: 403 DENIED, v2 still his."""
    response = http(tls_admin, "bob").request("GET", "/admin/v1/status")
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "appliance.admin.users" in error["message"]
    assert http(tls_admin, "bob").request("GET", "/v2/").status_code == 200


def test_admin_user_gets_the_admin_api(tls_admin: ApplianceServer) -> None:
    """alice reaches every admin endpoint on the main port, with the registry's common headers."""
    alice = http(tls_admin, "alice")
    alice.push_image("main/app", "v1", [b"layer"])
    assert alice.request("GET", "/admin/v1/status").json()["totals"]["tags"] == 1
    assert (
        alice.request("GET", "/admin/v1/repositories/main/app/tags").json()["tags"][0]["tag"]
        == "v1"
    )
    assert alice.request("GET", "/admin/v1/readonly").json()["enabled"] is False


def test_client_over_https_with_the_ca(tls_admin: ApplianceServer) -> None:
    """The client speaks HTTPS with the registry's CA; each way of failing has its own message."""
    assert (
        AdminClient(tls_admin.url, "alice", "alice-pw", ca(tls_admin)).status()["storage_driver"]
        == "filesystem"
    )
    for client, message in [
        (AdminClient(tls_admin.url, "alice", "alice-pw"), "cannot verify the TLS certificate"),
        (
            AdminClient(tls_admin.url, cafile=ca(tls_admin)),
            "an admin user name and password are required",
        ),
        (AdminClient(tls_admin.url, "alice", "nope", ca(tls_admin)), "wrong user name or password"),
        (AdminClient(tls_admin.url, "bob", "bob-pw", ca(tls_admin)), "bob is not an admin"),
        (AdminClient(f"https://127.0.0.1:{free_port()}"), "cannot reach the admin API"),
    ]:
        with pytest.raises(AdminError, match=message):
            client.status()


def test_socket_needs_no_password(tls_admin: ApplianceServer) -> None:
    """On the same server the admin socket answers without credentials: its file mode guards it."""
    assert AdminClient(tls_admin.admin_socket).readonly() is False


def test_without_admin_users_admin_is_404_on_the_main_port(no_admins: ApplianceServer) -> None:
    """With no appliance.admin.users, /admin/ on the main port is 404 even for a valid user."""
    for path in ("/admin/v1/status", "/admin/", "/admin"):
        response = http(no_admins, "alice").request("GET", path)
        assert (response.status_code, response.json()["errors"][0]["code"]) == (404, "NOT_FOUND")
    assert AdminClient(no_admins.admin_socket).status()["read_only"] is False


def test_admin_users_need_htpasswd(tmp_path: Path) -> None:
    """appliance.admin.users without auth.htpasswd is a config error naming the key."""
    path = tmp_path / "config.yml"
    path.write_text(
        "version: 0.1\nstorage: {filesystem: {rootdirectory: /srv}}\n"
        "appliance: {admin: {users: [alice]}}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load(str(path), {})
    assert any(
        p.startswith("appliance.admin.users: needs auth.htpasswd") for p in raised.value.problems
    )
