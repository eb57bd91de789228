"""htpasswd Basic auth (401 + challenge, users changed live) and TLS verified with our CA."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance.auth.htpasswd import hash_password, write_entries
from appliance.tls import init_certs
from tests.api.client import DOCKER_MANIFEST, V2Client, digest_of
from tests.api.conftest import running
from tests.server import ApplianceServer

REALM = "appliance-tests"
USER, PASSWORD = "alice", "correct horse battery staple"
# bcrypt is slow on purpose: hash each password once per run.
HASHES = {
    password: hash_password(password) for password in (PASSWORD, "bob-pw", "carol-pw", "carol-new")
}


def _auth_config(htpasswd: Path) -> dict[str, Any]:
    return {"htpasswd": {"realm": REALM, "path": str(htpasswd)}}


@pytest.fixture(scope="module")
def htpasswd_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("htpasswd") / "htpasswd"
    write_entries(str(path), {USER: HASHES[PASSWORD]})
    return path


@pytest.fixture(scope="module")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, htpasswd_path: Path
) -> Iterator[ApplianceServer]:
    def with_auth(config: dict[str, Any], workdir: Path) -> None:
        config["auth"] = _auth_config(htpasswd_path)

    with running(tmp_path_factory, "auth", with_auth) as started:
        yield started


@pytest.fixture
def anonymous(auth_server: ApplianceServer) -> V2Client:
    return V2Client(auth_server.url)


@pytest.fixture
def alice(auth_server: ApplianceServer) -> V2Client:
    return V2Client(auth_server.url, auth=(USER, PASSWORD))


def _assert_unauthorized(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{REALM}"'
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_anonymous_base_request_is_401_with_basic_challenge(anonymous: V2Client) -> None:
    """Anonymous GET /v2/ is 401 with `WWW-Authenticate: Basic realm="..."` and UNAUTHORIZED."""
    _assert_unauthorized(anonymous.request("GET", "/v2/"))


def test_anonymous_is_refused_everywhere(anonymous: V2Client) -> None:
    """Anonymous reads and writes of every kind are 401, even for unknown or invalid targets."""
    for method, path in (
        ("GET", "/v2/_catalog"),
        ("GET", "/v2/auth/app/tags/list"),
        ("GET", "/v2/auth/app/manifests/latest"),
        ("HEAD", "/v2/auth/app/manifests/latest"),
        ("GET", f"/v2/auth/app/blobs/{digest_of(b'x')}"),
        ("POST", "/v2/auth/app/blobs/uploads/"),
        ("PUT", "/v2/auth/app/manifests/v1"),
        ("DELETE", "/v2/auth/app/manifests/v1"),
        ("GET", "/v2/Invalid Name/tags/list"),
        ("GET", "/v2/no/such/endpoint"),
    ):
        response = anonymous.request(method, path)
        assert response.status_code == 401, (method, path)
        if method != "HEAD":
            _assert_unauthorized(response)


def test_wrong_password_and_unknown_user_are_401(auth_server: ApplianceServer) -> None:
    """A wrong password, an unknown user, or an empty password is 401 with the challenge."""
    for credentials in (
        (USER, "wrong"),
        ("mallory", PASSWORD),
        (USER, ""),
        (USER.upper(), PASSWORD),
    ):
        _assert_unauthorized(V2Client(auth_server.url, auth=credentials).request("GET", "/v2/"))


def test_malformed_authorization_headers_are_401(anonymous: V2Client) -> None:
    """Bearer tokens, bad base64 and credentials without a colon are 401, never a server error."""
    no_colon = base64.b64encode(USER.encode()).decode()
    for header in (
        "Bearer abc",
        "Basic !!!",
        f"Basic {no_colon}",
        "Basic",
        "Basic " + "A" * 10000,
        "basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    ):
        _assert_unauthorized(anonymous.request("GET", "/v2/", headers={"Authorization": header}))


def test_right_password_is_200_and_can_push_and_pull(alice: V2Client) -> None:
    """With the right password, /v2/ is 200 and an image can be pushed and pulled."""
    response = alice.request("GET", "/v2/")
    assert response.status_code == 200
    assert "WWW-Authenticate" not in response.headers
    image = alice.push_image("auth/app", "v1", [os.urandom(1000)])
    got = alice.request("GET", "/v2/auth/app/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert got.content == image.manifest
    assert alice.request("GET", "/v2/_catalog").json()["repositories"] == ["auth/app"]


def test_user_added_to_file_is_accepted_without_restart(
    auth_server: ApplianceServer, htpasswd_path: Path
) -> None:
    """A user added to the htpasswd file is accepted on the next request, no restart needed."""
    bob = V2Client(auth_server.url, auth=("bob", "bob-pw"))
    _assert_unauthorized(bob.request("GET", "/v2/"))
    write_entries(str(htpasswd_path), {USER: HASHES[PASSWORD], "bob": HASHES["bob-pw"]})
    assert bob.request("GET", "/v2/").status_code == 200


def test_removed_user_is_refused_right_away(
    auth_server: ApplianceServer, htpasswd_path: Path
) -> None:
    """A user removed from the htpasswd file is refused on the next request, despite the cache."""
    write_entries(str(htpasswd_path), {USER: HASHES[PASSWORD], "carol": HASHES["carol-pw"]})
    carol = V2Client(auth_server.url, auth=("carol", "carol-pw"))
    assert carol.request("GET", "/v2/").status_code == 200
    assert carol.request("GET", "/v2/").status_code == 200  # now from the verdict cache
    write_entries(str(htpasswd_path), {USER: HASHES[PASSWORD]})
    _assert_unauthorized(carol.request("GET", "/v2/"))
    assert (
        V2Client(auth_server.url, auth=(USER, PASSWORD)).request("GET", "/v2/").status_code == 200
    )


def test_changed_password_takes_effect_right_away(
    auth_server: ApplianceServer, htpasswd_path: Path
) -> None:
    """After a password change in the file, the old password is refused and the new one accepted."""
    write_entries(str(htpasswd_path), {USER: HASHES[PASSWORD], "carol": HASHES["carol-pw"]})
    assert (
        V2Client(auth_server.url, auth=("carol", "carol-pw")).request("GET", "/v2/").status_code
        == 200
    )
    write_entries(str(htpasswd_path), {USER: HASHES[PASSWORD], "carol": HASHES["carol-new"]})
    _assert_unauthorized(
        V2Client(auth_server.url, auth=("carol", "carol-pw")).request("GET", "/v2/")
    )
    assert (
        V2Client(auth_server.url, auth=("carol", "carol-new")).request("GET", "/v2/").status_code
        == 200
    )


# -- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, htpasswd_path: Path
) -> Iterator[ApplianceServer]:
    """HTTPS with a CA and server certificate from `init_certs`, and the same htpasswd auth."""

    def with_tls(config: dict[str, Any], workdir: Path) -> None:
        certs = init_certs(workdir / "certs", hostnames=["localhost"], ips=["127.0.0.1"])
        config["http"]["tls"] = {
            "certificate": str(certs.server_cert),
            "key": str(certs.server_key),
        }
        config["auth"] = _auth_config(htpasswd_path)

    with running(tmp_path_factory, "tls", with_tls) as started:
        yield started


def test_tls_server_is_verified_with_our_ca(tls_server: ApplianceServer) -> None:
    """Over HTTPS the certificate validates with ca.crt; anonymous is 401, right password 200."""
    assert tls_server.url.startswith("https://127.0.0.1:")
    ca = tls_server.workdir / "certs" / "ca.crt"
    _assert_unauthorized(V2Client(tls_server.url, verify=str(ca)).request("GET", "/v2/"))
    client = V2Client(tls_server.url, auth=(USER, PASSWORD), verify=str(ca))
    assert client.request("GET", "/v2/").status_code == 200
    data = os.urandom(50_000)
    digest = client.push_blob("tls/app", data)
    got = client.request("GET", f"/v2/tls/app/blobs/{digest}")
    assert got.content == data
    assert (
        client.start_upload("tls/app")
        .headers["Location"]
        .startswith(f"https://127.0.0.1:{tls_server.port}/")
    )


def test_tls_server_fails_verification_without_our_ca(tls_server: ApplianceServer) -> None:
    """A client trusting only the system CAs refuses the server's certificate."""
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_server.url}/v2/", timeout=10, verify=True)


def test_tls_port_does_not_serve_plain_http(tls_server: ApplianceServer) -> None:
    """Plain HTTP to the TLS port gets no registry response."""
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_server.port}/v2/", timeout=10)
