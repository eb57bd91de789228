"""The built-in token server (`/auth/token`) and `appliance.access` rules, over real HTTP.

Users: `reader` (group team-a: pull team-a/*), `writer` (everything on team-a/* and public/*,
and the catalog), anonymous pull of public/*. The same rules under plain htpasswd auth give
403 DENIED.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance.auth.htpasswd import hash_password, write_entries
from appliance.tls.tokenkey import init_token_key
from tests.api.client import V2Client
from tests.api.conftest import running
from tests.server import ApplianceServer

SERVICE = "appliance-test"
PASSWORDS = {"reader": "reader-pw", "writer": "writer-pw", "limited": "limited-pw"}
ACCESS = {
    "groups": {"team-a": ["reader"]},
    "rules": [
        {"repositories": ["team-a/*"], "groups": ["team-a"], "actions": ["pull"]},
        {"repositories": ["team-a/*", "public/*"], "users": ["writer"], "actions": ["*"]},
    ],
    "anonymous": ["public/*"],
    "catalog": ["writer"],
}


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "htpasswd"
    write_entries(str(path), {user: hash_password(pw) for user, pw in PASSWORDS.items()})
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, htpasswd: Path) -> Iterator[ApplianceServer]:
    def with_token_server(config: dict[str, Any], workdir: Path) -> None:
        init_token_key(workdir / "certs")
        port = config["http"]["addr"].rsplit(":", 1)[1]
        config["auth"] = {"token": {"realm": f"http://127.0.0.1:{port}/auth/token",
                                    "service": SERVICE, "issuer": "appliance-test-issuer"}}
        config["appliance"] = {"certs": {"dir": str(workdir / "certs")},
                               "tokenserver": {"path": str(htpasswd), "lifetime": "2m"},
                               "access": ACCESS}

    with running(tmp_path_factory, "tokenserver", with_token_server) as started:
        yield started


def token(server: ApplianceServer, *scopes: str, user: str | None = None,
          **params: str) -> requests.Response:
    auth = (user, PASSWORDS.get(user, "wrong")) if user else None
    return requests.get(f"{server.url}/auth/token", auth=auth, timeout=10,
                        params={"service": SERVICE, "scope": list(scopes), **params})


def bearer(server: ApplianceServer, value: str) -> V2Client:
    client = V2Client(server.url)
    client.session.headers["Authorization"] = f"Bearer {value}"
    return client


def granted(response: requests.Response) -> list[dict[str, Any]]:
    import jwt

    assert response.status_code == 200, response.text
    return jwt.decode(response.json()["token"], options={"verify_signature": False})["access"]


def test_docker_get_flow_grants_what_the_rules_allow(server: ApplianceServer) -> None:
    """GET /auth/token with Basic credentials grants the allowed subset of each scope."""
    assert granted(token(server, "repository:team-a/app:pull,push", user="writer")) == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]}]
    assert granted(token(server, "repository:team-a/app:pull,push", user="reader")) == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull"]}]
    assert granted(token(server, "repository:team-b/app:pull", user="reader")) == []
    assert granted(token(server, "repository:public/base:pull,push")) == [
        {"type": "repository", "name": "public/base", "actions": ["pull"]}]
    assert granted(token(server, "registry:catalog:*", user="writer")) == [
        {"type": "registry", "name": "catalog", "actions": ["*"]}]
    assert granted(token(server, "registry:catalog:*", user="reader")) == []
    body = token(server, user="writer").json()
    assert body["expires_in"] == 120
    assert body["token"] == body["access_token"]
    assert "refresh_token" not in body


def test_tokens_from_the_server_work_on_the_registry(server: ApplianceServer) -> None:
    """A writer's token pushes; a reader's token pulls but cannot push (insufficient_scope)."""
    writer = bearer(server, token(server, "repository:team-a/app:pull,push",
                                  user="writer").json()["token"])
    pushed = writer.push_image("team-a/app", "v1", [b"team-a layer"])
    reader = bearer(server, token(server, "repository:team-a/app:pull,push",
                                  user="reader").json()["token"])
    got = reader.request("GET", "/v2/team-a/app/manifests/v1",
                         headers={"Accept": pushed.media_type})
    assert got.status_code == 200
    refused = reader.request("POST", "/v2/team-a/app/blobs/uploads/")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].endswith('error="insufficient_scope"')


def test_wrong_password_is_401_and_unknown_service_is_400(server: ApplianceServer) -> None:
    """Wrong credentials are 401 with a Basic challenge; another service is 400."""
    response = token(server, user="nobody")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    other = requests.get(f"{server.url}/auth/token", params={"service": "elsewhere"}, timeout=10)
    assert other.status_code == 400


def test_offline_and_oauth2_refresh_flow(server: ApplianceServer) -> None:
    """offline_token=true returns a refresh token; the POST form trades it (and a password)
    for access tokens; a bad refresh token or password is 401."""
    refresh = token(server, user="writer", offline_token="true").json()["refresh_token"]
    url = f"{server.url}/auth/token"
    traded = requests.post(url, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE,
        "scope": "repository:public/x:push", "client_id": "docker"})
    assert traded.json()["refresh_token"] == refresh
    assert granted(traded) == [
        {"type": "repository", "name": "public/x", "actions": ["push"]}]
    by_password = requests.post(url, timeout=10, data={
        "grant_type": "password", "username": "reader", "password": "reader-pw",
        "service": SERVICE, "scope": "repository:team-a/app:pull", "access_type": "offline"})
    assert by_password.status_code == 200
    assert "refresh_token" in by_password.json()
    for data in ({"grant_type": "refresh_token", "refresh_token": "garbage"},
                 {"grant_type": "password", "username": "reader", "password": "nope"}):
        assert requests.post(url, data={**data, "service": SERVICE},
                             timeout=10).status_code == 401


def test_failed_logins_are_rate_limited(server: ApplianceServer) -> None:
    """After 10 failed logins for a user within a minute, even the right password gets 429
    TOOMANYREQUESTS with Retry-After and a message that says why."""
    url = f"{server.url}/auth/token"
    for _ in range(10):
        assert requests.get(url, auth=("limited", "bad"), timeout=10).status_code == 401
    response = requests.get(url, auth=("limited", PASSWORDS["limited"]), timeout=10)
    assert response.status_code == 429
    error = response.json()["errors"][0]
    assert error["code"] == "TOOMANYREQUESTS"
    assert "too many failed logins for 'limited'" in error["message"]
    assert 0 < int(response.headers["Retry-After"]) <= 60


@pytest.fixture(scope="module")
def htpasswd_server(tmp_path_factory: pytest.TempPathFactory,
                    htpasswd: Path) -> Iterator[ApplianceServer]:
    def with_rules(config: dict[str, Any], workdir: Path) -> None:
        config["auth"] = {"htpasswd": {"realm": "rules", "path": str(htpasswd)}}
        config["appliance"] = {"access": ACCESS}

    with running(tmp_path_factory, "rules", with_rules) as started:
        yield started


def test_htpasswd_users_follow_the_same_rules(htpasswd_server: ApplianceServer) -> None:
    """Under htpasswd auth the writer pushes, the reader pulls but gets 403 DENIED on push
    and on the catalog, and anonymous clients pull public/* only."""
    writer = V2Client(htpasswd_server.url, auth=("writer", "writer-pw"))
    writer.push_image("team-a/app", "v1", [b"rules layer"])
    writer.push_image("public/base", "v1", [b"public layer"])
    reader = V2Client(htpasswd_server.url, auth=("reader", "reader-pw"))
    assert reader.request("GET", "/v2/team-a/app/tags/list").status_code == 200
    for method, path in (("POST", "/v2/team-a/app/blobs/uploads/"), ("GET", "/v2/_catalog"),
                         ("GET", "/v2/public/base/tags/list")):
        denied = reader.request(method, path)
        assert denied.status_code == 403, (method, path)
        assert V2Client.error_code(denied) == "DENIED"
    anonymous = V2Client(htpasswd_server.url)
    assert anonymous.request("GET", "/v2/public/base/tags/list").json()["tags"] == ["v1"]
    assert anonymous.request("GET", "/v2/team-a/app/tags/list").status_code == 401
    assert anonymous.request("POST", "/v2/public/base/blobs/uploads/").status_code == 401
    assert writer.request("GET", "/v2/_catalog").status_code == 200
