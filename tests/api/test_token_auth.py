"""auth.token: bearer challenges, scopes per route, and refused tokens, against a real server.

Tokens come from `tests.tokens.TestSigner` (RSA and EC keys under a test root bundle).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.client import V2Client, digest_of
from tests.api.conftest import running
from tests.server import ApplianceServer
from tests.tokens import ISSUER, SERVICE, TestSigner, repo_access

REALM = "https://auth.example.test/token"


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory,
                 signer: TestSigner) -> Iterator[ApplianceServer]:
    def with_tokens(config: dict[str, Any], workdir: Path) -> None:
        config["auth"] = {"token": {
            "realm": REALM, "service": SERVICE, "issuer": ISSUER,
            "rootcertbundle": str(signer.bundle(workdir / "bundle.pem"))}}

    with running(tmp_path_factory, "token", with_tokens) as started:
        yield started


def client(server: ApplianceServer, token: str | None = None) -> V2Client:
    made = V2Client(server.url)
    if token is not None:
        made.session.headers["Authorization"] = f"Bearer {token}"
    return made


def challenge(response: requests.Response) -> str:
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    return response.headers["WWW-Authenticate"]


def test_anonymous_requests_get_a_bearer_challenge_with_the_scope(
    token_server: ApplianceServer,
) -> None:
    """No token: 401 with realm, service and the scope the route needs; no error parameter."""
    anonymous = client(token_server)
    assert challenge(anonymous.request("GET", "/v2/")) == \
        f'Bearer realm="{REALM}",service="{SERVICE}"'
    assert challenge(anonymous.request("GET", "/v2/team/app/manifests/v1")) == (
        f'Bearer realm="{REALM}",service="{SERVICE}",scope="repository:team/app:pull"')
    assert challenge(anonymous.request("POST", "/v2/team/app/blobs/uploads/")).endswith(
        'scope="repository:team/app:pull,push"')
    assert challenge(anonymous.request("DELETE", "/v2/team/app/manifests/v1")).endswith(
        'scope="repository:team/app:delete"')
    assert challenge(anonymous.request("GET", "/v2/_catalog")).endswith(
        'scope="registry:catalog:*"')
    mount = anonymous.request("POST", "/v2/team/app/blobs/uploads/",
                              params={"mount": digest_of(b"x"), "from": "base/img"})
    assert challenge(mount).endswith(
        'scope="repository:team/app:pull,push repository:base/img:pull"')


@pytest.mark.parametrize("kid", ["libtrust", "thumbprint", "x5c"])
@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_a_token_with_push_and_pull_pushes_and_pulls(
    token_server: ApplianceServer, signer: TestSigner, kid: str, key: str
) -> None:
    """RSA and EC tokens (kid libtrust or thumbprint, or x5c) push then pull an image."""
    name = f"team/{key}-{kid}"
    pusher = client(token_server, signer.token(repo_access(name, "pull", "push"),
                                               key=key, kid=kid))
    assert pusher.request("GET", "/v2/").status_code == 200
    pushed = pusher.push_image(name, "v1", [b"layer " + name.encode()])
    puller = client(token_server, signer.token(repo_access(name, "pull"), key=key, kid=kid))
    response = puller.request("GET", f"/v2/{name}/manifests/v1",
                              headers={"Accept": pushed.media_type})
    assert response.status_code == 200
    assert response.content == pushed.manifest


def test_missing_action_is_insufficient_scope(
    token_server: ApplianceServer, signer: TestSigner
) -> None:
    """A pull-only token cannot push or delete, a token for another repository cannot pull,
    and only `registry:catalog:*` lists the catalog: 401 with error="insufficient_scope"."""
    pull_only = client(token_server, signer.token(repo_access("team/app", "pull")))
    for method, path in (("POST", "/v2/team/app/blobs/uploads/"),
                         ("DELETE", "/v2/team/app/manifests/v1"),
                         ("GET", "/v2/other/app/tags/list"),
                         ("GET", "/v2/_catalog")):
        header = challenge(pull_only.request(method, path))
        assert header.endswith('error="insufficient_scope"'), header
    catalog = client(token_server, signer.token(
        [{"type": "registry", "name": "catalog", "actions": ["*"]}]))
    assert catalog.request("GET", "/v2/_catalog").status_code == 200


@pytest.mark.parametrize(("changes", "message"), [
    ({"issuer": "mallory"}, "untrusted issuer"),
    ({"audience": "another-registry"}, "another service"),
    ({"expires_in": -300}, "expired"),
    ({"algorithm": "RS512", "key": "ec"}, "invalid token"),
    ({"signing_key": "stranger", "key": "ec"}, "signature"),
])
def test_bad_tokens_are_invalid_token(
    token_server: ApplianceServer, signer: TestSigner, changes: dict[str, Any], message: str
) -> None:
    """Wrong issuer, audience, expiry, algorithm for the key, or signature: 401 with
    error="invalid_token" and a message saying which."""
    if changes.get("signing_key") == "stranger":
        changes = {**changes, "signing_key": signer.stranger}
    if changes.get("algorithm") == "RS512":
        token = signer.token(repo_access("team/app", "pull"), key="rsa", algorithm="RS512")
        head, payload, sig = token.split(".")
        import base64
        import json
        header = json.loads(base64.urlsafe_b64decode(head + "=="))
        header["alg"] = "ES256"  # an RSA signature claimed to be ES256
        head = base64.urlsafe_b64encode(json.dumps(header).encode()).decode().rstrip("=")
        token = f"{head}.{payload}.{sig}"
    else:
        token = signer.token(repo_access("team/app", "pull"), **changes)
    response = client(token_server, token).request("GET", "/v2/team/app/tags/list")
    header = challenge(response)
    assert header.endswith('scope="repository:team/app:pull",error="invalid_token"'), header
    assert message in response.json()["errors"][0]["message"]


def test_alg_none_and_garbage_are_invalid_token(token_server: ApplianceServer) -> None:
    """An unsigned `alg: none` token and a non-JWT are refused as invalid_token."""
    import jwt

    unsigned = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": 2**31,
                           "access": repo_access("a", "pull")}, None, algorithm="none")
    for token in (unsigned, "not-a-jwt"):
        header = challenge(client(token_server, token).request("GET", "/v2/a/tags/list"))
        assert header.endswith('error="invalid_token"'), header
