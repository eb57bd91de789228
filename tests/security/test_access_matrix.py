"""Every route (v2, admin, token endpoint, debug listener) with every kind of credential, against
real servers: htpasswd auth with `appliance.access` rules and admin users, and token auth with
the built-in token server. 0 unexpected allows and 0 unexpected denials; run with `-s` to see
the matrices as Markdown tables.

The debug listener (`http.debug.addr`: /debug/health, /metrics) answers everyone, as
Distribution's does: it is meant for loopback or an operations network, never a public address.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from appliance.auth.htpasswd import hash_password, write_entries
from appliance.tls.tokenkey import init_token_key
from tests.api.client import DOCKER_MANIFEST, PushedImage, V2Client, digest_of
from tests.api.conftest import running
from tests.security.matrix import (
    ALLOW,
    DENY,
    Call,
    Cell,
    Credential,
    Need,
    counts,
    run_matrix,
    table,
)
from tests.server import ApplianceServer, free_port
from tests.tokens import ISSUER, TestSigner, repo_access

REPO, SOURCE, OTHER = "team/app", "base/img", "other/repo"
SERVICE = "matrix-registry"
PASSWORDS = {"alice": "alice-secret-pw", "reader": "reader-secret-pw", "mallory": "mallory-pw"}
ACCESS = {
    "rules": [
        {"repositories": ["*"], "users": ["alice"], "actions": ["*"]},
        {"repositories": ["team/*"], "users": ["reader"], "actions": ["pull"]},
    ],
    "catalog": ["alice"],
}
EVERYTHING = frozenset({Need.BASE, Need.PULL, Need.PUSH, Need.DELETE, Need.CATALOG, Need.MOUNT})
MISSING = "sha256:" + "0" * 64


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Setup:
    """A running server with an image in REPO, a blob in SOURCE, and a client allowed all."""

    server: ApplianceServer
    debug_url: str
    owner: V2Client
    image: PushedImage
    source_blob: str

    @property
    def urls(self) -> dict[str, str]:
        return {"main": self.server.url, "debug": self.debug_url}

    def fresh_upload(self) -> str:
        """A new upload session in REPO, so each cell's PATCH/PUT/DELETE has its own."""
        return self.owner.start_upload(REPO).headers["Location"]


def _prepare(owner_auth: Callable[[V2Client], None], server: ApplianceServer,
             debug_port: int) -> Setup:
    owner = V2Client(server.url)
    owner_auth(owner)
    image = owner.push_image(REPO, "v1", [b"matrix layer"])
    source_blob = owner.push_blob(SOURCE, b"a blob to mount")
    return Setup(server, f"http://127.0.0.1:{debug_port}", owner, image, source_blob)


def _with_debug(config: dict[str, Any]) -> int:
    port = free_port()
    config["http"]["debug"] = {"addr": f"127.0.0.1:{port}", "prometheus": {"enabled": True}}
    return port


def v2_calls(setup: Setup) -> list[Call]:
    image, blob = setup.image, setup.source_blob
    config_digest = digest_of(image.config)
    name = f"/v2/{REPO}"
    return [
        Call("GET /v2/", "GET", "/v2/", Need.BASE),
        Call("HEAD /v2/", "HEAD", "/v2/", Need.BASE),
        Call("GET /v2/_catalog", "GET", "/v2/_catalog", Need.CATALOG),
        Call("GET tags/list", "GET", f"{name}/tags/list", Need.PULL),
        Call("GET manifest", "GET", f"{name}/manifests/v1", Need.PULL,
             headers={"Accept": DOCKER_MANIFEST}),
        Call("HEAD manifest", "HEAD", f"{name}/manifests/{image.digest}", Need.PULL),
        Call("PUT manifest", "PUT", f"{name}/manifests/v2", Need.PUSH, data=image.manifest,
             headers={"Content-Type": DOCKER_MANIFEST}),
        Call("DELETE manifest", "DELETE", f"{name}/manifests/{MISSING}", Need.DELETE),
        Call("GET blob", "GET", f"{name}/blobs/{config_digest}", Need.PULL),
        Call("HEAD blob", "HEAD", f"{name}/blobs/{config_digest}", Need.PULL),
        Call("DELETE blob", "DELETE", f"{name}/blobs/{MISSING}", Need.DELETE),
        Call("POST upload", "POST", f"{name}/blobs/uploads/", Need.PUSH),
        Call("PATCH upload", "PATCH", "", Need.PUSH, data=b"chunk",
             headers={"Content-Type": "application/octet-stream"}, prepare=setup.fresh_upload),
        Call("PUT upload", "PUT", "", Need.PUSH, params={"digest": digest_of(b"")},
             prepare=setup.fresh_upload),
        Call("GET upload", "GET", "", Need.PULL, prepare=setup.fresh_upload),
        Call("DELETE upload", "DELETE", "", Need.DELETE, prepare=setup.fresh_upload),
        Call("POST mount", "POST", f"{name}/blobs/uploads/", Need.MOUNT,
             params={"mount": blob, "from": SOURCE}),
        Call("GET referrers", "GET", f"{name}/referrers/{image.digest}", Need.PULL),
    ]


def admin_calls(setup: Setup) -> list[Call]:
    admin, digest = "/admin/v1", setup.image.digest
    return [
        Call("admin GET status", "GET", f"{admin}/status", Need.ADMIN),
        Call("admin GET repositories", "GET", f"{admin}/repositories", Need.ADMIN),
        Call("admin GET tags", "GET", f"{admin}/repositories/{REPO}/tags", Need.ADMIN),
        Call("admin GET manifest", "GET", f"{admin}/repositories/{REPO}/manifests/{digest}",
             Need.ADMIN),
        Call("admin DELETE tag", "DELETE", f"{admin}/repositories/{REPO}/tags/no-such-tag",
             Need.ADMIN),
        Call("admin DELETE manifest", "DELETE",
             f"{admin}/repositories/{REPO}/manifests/{MISSING}", Need.ADMIN),
        Call("admin POST copy", "POST", f"{admin}/copy", Need.ADMIN,
             json={"source": f"{REPO}:v1", "destination": "team/copy:v1"}),
        Call("admin GET readonly", "GET", f"{admin}/readonly", Need.ADMIN),
        Call("admin PUT readonly", "PUT", f"{admin}/readonly", Need.ADMIN,
             json={"enabled": False}),
        Call("admin GET gc", "GET", f"{admin}/gc", Need.ADMIN),
        Call("admin POST gc", "POST", f"{admin}/gc", Need.ADMIN, json={"dry_run": True}),
        Call("admin GET purge", "GET", f"{admin}/uploads/purge", Need.ADMIN),
        Call("admin POST purge", "POST", f"{admin}/uploads/purge", Need.ADMIN,
             json={"dry_run": True}),
        Call("admin GET notifications", "GET", f"{admin}/notifications", Need.ADMIN),
    ]


def open_calls() -> list[Call]:
    return [
        Call("GET /debug/health (main port)", "GET", "/debug/health", Need.OPEN),
        Call("debug GET /debug/health", "GET", "/debug/health", Need.OPEN, port="debug"),
        Call("debug HEAD /debug/health", "HEAD", "/debug/health", Need.OPEN, port="debug"),
        Call("debug GET /metrics", "GET", "/metrics", Need.OPEN, port="debug"),
    ]


def _report(title: str, cells: list[Cell]) -> dict[str, int]:
    summary = counts(cells)
    print(f"\n### {title}\n\n{table(cells)}\n\n{summary}\n")
    return summary


def _assert_clean(cells: list[Cell]) -> None:
    summary = counts(cells)
    wrong = [f"{c.call.label} / {c.credential.label}: expected {c.expected}, got {c.observed} "
             f"({c.status})" for c in cells if not c.ok]
    assert summary["unexpected_allows"] == 0, wrong
    assert summary["unexpected_denials"] == 0, wrong
    assert not wrong, wrong
    # The matrix must exercise both verdicts, or it proves nothing.
    assert {c.observed for c in cells} >= {ALLOW, DENY}


# --- htpasswd ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("matrix-users") / "htpasswd"
    write_entries(str(path), {user: hash_password(pw) for user, pw in PASSWORDS.items()})
    return path


@pytest.fixture(scope="module")
def basic_setup(tmp_path_factory: pytest.TempPathFactory, htpasswd: Path) -> Iterator[Setup]:
    ports: list[int] = []

    def edit(config: dict[str, Any], workdir: Path) -> None:
        config["auth"] = {"htpasswd": {"realm": "matrix", "path": str(htpasswd)}}
        config["appliance"] = {"admin": {"users": ["alice"]}, "access": ACCESS}
        ports.append(_with_debug(config))

    with running(tmp_path_factory, "matrix-basic", edit) as server:
        def as_alice(client: V2Client) -> None:
            client.session.auth = ("alice", PASSWORDS["alice"])

        yield _prepare(as_alice, server, ports[0])


def test_htpasswd_matrix(basic_setup: Setup) -> None:
    """htpasswd: no credentials, a wrong password, a user with pull only who is no admin, and
    the admin: every route allows or denies exactly as its need and the user's grants say."""
    credentials = [
        Credential("none", {}, frozenset()),
        # Another address and user than the others: the login limiter may answer 429 here.
        Credential("wrong password", basic("mallory", "not-the-password"), frozenset(),
                   source="127.0.0.2"),
        Credential("unknown user", basic("nobody", PASSWORDS["alice"]), frozenset(),
                   source="127.0.0.3"),
        Credential("reader (pull team/*)", basic("reader", PASSWORDS["reader"]),
                   frozenset({Need.BASE, Need.PULL})),
        Credential("alice (admin)", basic("alice", PASSWORDS["alice"]),
                   EVERYTHING | {Need.ADMIN}),
    ]
    calls = v2_calls(basic_setup) + admin_calls(basic_setup) + open_calls()
    cells = run_matrix(calls, credentials, basic_setup.urls)
    _report("htpasswd auth", cells)
    _assert_clean(cells)


def test_admin_socket_is_private(basic_setup: Setup) -> None:
    """The admin socket, which asks no password, is 0600 and owned by the server's user, in a
    0700 folder."""
    path = basic_setup.server.admin_socket
    info = os.stat(path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()  # the test runs the server as its own user
    folder = os.stat(os.path.dirname(path))
    assert stat.S_IMODE(folder.st_mode) & 0o077 == 0, oct(folder.st_mode)


# --- tokens -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="module")
def token_setup(tmp_path_factory: pytest.TempPathFactory, htpasswd: Path,
                signer: TestSigner) -> Iterator[Setup]:
    ports: list[int] = []

    def edit(config: dict[str, Any], workdir: Path) -> None:
        keys = init_token_key(workdir / "certs")
        bundle = signer.bundle(workdir / "bundle.pem")
        bundle.write_bytes(bundle.read_bytes() + keys.cert.read_bytes())
        port = config["http"]["addr"].rsplit(":", 1)[1]
        config["auth"] = {"token": {"realm": f"http://127.0.0.1:{port}/auth/token",
                                    "service": SERVICE, "issuer": ISSUER,
                                    "rootcertbundle": str(bundle)}}
        config["appliance"] = {"certs": {"dir": str(workdir / "certs")},
                               "tokenserver": {"path": str(htpasswd)}, "access": ACCESS}
        ports.append(_with_debug(config))

    with running(tmp_path_factory, "matrix-token", edit) as server:
        def with_token(client: V2Client) -> None:
            owner = _all_access() + repo_access(SOURCE, "push")  # to push the source blob
            client.session.headers.update(bearer(signer.token(owner, audience=SERVICE)))

        yield _prepare(with_token, server, ports[0])


def _all_access() -> list[dict[str, Any]]:
    return (repo_access(REPO, "pull", "push", "delete") + repo_access(SOURCE, "pull")
            + [{"type": "registry", "name": "catalog", "actions": ["*"]}])


def test_token_matrix(token_setup: Setup, signer: TestSigner) -> None:
    """Bearer tokens: none, garbage, Basic instead of a token, expired, signed by an unknown
    key, unsigned, wrong audience or issuer, for another repository, pull only, push only, and
    the right one (ours and the built-in server's). Without htpasswd users the admin API is not
    served on the main port."""
    def token(**kwargs: Any) -> str:
        kwargs.setdefault("audience", SERVICE)
        return signer.token(kwargs.pop("access", _all_access()), **kwargs)

    issued = requests.get(f"{token_setup.server.url}/auth/token", timeout=10,
                          auth=("alice", PASSWORDS["alice"]),
                          params={"service": SERVICE,
                                  "scope": [f"repository:{REPO}:pull,push,delete",
                                            f"repository:{SOURCE}:pull", "registry:catalog:*"]})
    assert issued.status_code == 200, issued.text
    nothing: frozenset[str] = frozenset()
    credentials = [
        Credential("none", {}, nothing),
        Credential("garbage", bearer("not.a.token"), nothing),
        Credential("Basic", basic("alice", PASSWORDS["alice"]), nothing),
        Credential("expired", bearer(token(expires_in=-3600)), nothing),
        Credential("unknown key", bearer(token(key="ec", signing_key=signer.stranger)), nothing),
        Credential("alg none", bearer(_unsigned(token())), nothing),
        Credential("wrong audience", bearer(token(audience="another-registry")), nothing),
        Credential("wrong issuer", bearer(token(issuer="another-issuer")), nothing),
        Credential("other repository", bearer(token(access=repo_access(
            OTHER, "pull", "push", "delete"))), frozenset({Need.BASE})),
        Credential("pull only", bearer(token(access=repo_access(REPO, "pull")
                                             + repo_access(SOURCE, "pull"))),
                   frozenset({Need.BASE, Need.PULL})),
        # writes need pull and push, as with Distribution: push alone opens nothing
        Credential("push only", bearer(token(access=repo_access(REPO, "push"))),
                   frozenset({Need.BASE})),
        Credential("right token", bearer(token()), EVERYTHING),
        Credential("built-in token", bearer(issued.json()["token"]), EVERYTHING),
    ]
    calls = v2_calls(token_setup) + admin_calls(token_setup)[:2] + open_calls()
    cells = run_matrix(calls, credentials, token_setup.urls, absent={Need.ADMIN})
    _report("token auth", cells)
    _assert_clean(cells)


def _unsigned(token: str) -> str:
    """The same claims with `alg: none` and no signature, which must never be accepted."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header.decode().rstrip('=')}.{token.split('.')[1]}."


def _granted(scope: str) -> Callable[[requests.Response], str]:
    """The token endpoint's verdict: allow when the token grants every action asked."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")

    def judge(response: requests.Response) -> str:
        if response.status_code != 200:
            refused = response.status_code in (400, 401, 403, 429)
            return DENY if refused else f"status {response.status_code}"
        claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
        for entry in claims.get("access", []):
            if (entry["type"], entry["name"]) == (kind, name) and \
                    set(actions.split(",")) <= set(entry["actions"]):
                return ALLOW
        return DENY

    return judge


def test_token_endpoint_matrix(token_setup: Setup) -> None:
    """/auth/token (GET with Basic, POST with a password grant) issues a token for exactly the
    scopes `appliance.access` grants the user: none to anonymous or wrong passwords."""
    def ask(method: str, need: str, scope: str) -> Call:
        params = {"service": SERVICE, "scope": scope}
        if method == "GET":
            return Call(f"GET /auth/token {scope}", "GET", "/auth/token", need, params=params,
                        judge=_granted(scope))
        return Call(f"POST /auth/token {scope}", "POST", "/auth/token", need,
                    form={**params, "grant_type": "password", "client_id": "matrix"},
                    judge=_granted(scope))

    calls = [ask(method, need, scope) for method in ("GET", "POST") for need, scope in (
        (Need.PULL, f"repository:{REPO}:pull"), (Need.PUSH, f"repository:{REPO}:push"),
        (Need.DELETE, f"repository:{REPO}:delete"), (Need.CATALOG, "registry:catalog:*"))]

    def user(label: str, name: str, password: str, grants: frozenset[str],
             source: str = "127.0.0.1") -> Credential:
        return Credential(label, basic(name, password), grants, source,
                          form={"username": name, "password": password})

    credentials = [
        Credential("none", {}, frozenset()),
        user("wrong password", "mallory", "not-the-password", frozenset(), "127.0.0.4"),
        user("reader (pull team/*)", "reader", PASSWORDS["reader"], frozenset({Need.PULL})),
        user("alice", "alice", PASSWORDS["alice"], EVERYTHING),
    ]
    cells = run_matrix(calls, credentials, token_setup.urls)
    _report("token endpoint", cells)
    _assert_clean(cells)
