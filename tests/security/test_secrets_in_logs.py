"""No secret reaches a log, a config dump, the admin API, an error body or /metrics.

Two real servers at debug level with JSON logs: `upstream`, with token auth and the built-in
token server, and `registry`, with htpasswd auth, S3 storage (SeaweedFS), `http.secret`, webhook
headers, admin users, and a pull-through cache of `upstream` that logs in with `proxy.password`.
Traffic covers good and failed logins, bearer and refresh tokens, proxied pulls and errors. Each
secret is looked for as written and in base64 (alone, and as Basic's `user:password`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance.auth.htpasswd import hash_password, write_entries
from tests.api.client import DOCKER_MANIFEST, V2Client
from tests.observe.receiver import Receiver
from tests.proxy import servers as proxy_servers
from tests.seaweedfs import SECRET_KEY, SeaweedFS
from tests.security.leaks import Secrets, assert_no_leaks, config_check, new_secret
from tests.server import ApplianceServer, free_port

pytestmark = pytest.mark.e2e  # ~25 s: SeaweedFS and two servers; test_redaction.py is the fast set
ALICE = "alice"


@dataclass
class World:
    registry: ApplianceServer
    upstream: ApplianceServer
    receiver: Receiver
    debug_url: str
    secrets: Secrets
    bodies: list[str] = field(default_factory=list)  # error responses from both servers


def _debug_json_logs(config: dict[str, Any]) -> None:
    config["log"] = {"level": "debug", "formatter": "json", "fields": {"service": "security"}}


def _registry_config(config: dict[str, Any], found: Secrets, storage: dict[str, Any],
                     users: Path, receiver: Receiver, debug_port: int) -> None:
    """The cache's config with every secret it can hold; each one is added to `found`."""
    _debug_json_logs(config)
    config["http"]["secret"] = found.add("http.secret", new_secret("http"))
    config["http"]["debug"] = {"addr": f"127.0.0.1:{debug_port}", "prometheus": {"enabled": True}}
    config["storage"] = {"s3": storage, "delete": {"enabled": True}}
    users.parent.mkdir(parents=True)
    write_entries(str(users), {ALICE: hash_password(found.add(
        "alice password", new_secret("alicepw"), ALICE))})
    config["auth"] = {"htpasswd": {"realm": "secrets", "path": str(users)}}
    config["appliance"]["admin"] = {"users": [ALICE]}
    hook_user, hook_token = new_secret("hookuser"), new_secret("hook")
    config["notifications"] = {"endpoints": [
        {"name": "hook", "url": receiver.url, "timeout": "2s", "backoff": "100ms",
         "headers": {"Authorization": [f"Bearer {found.add('webhook bearer', hook_token)}"],
                     "X-Api-Key": [found.add("webhook api key", new_secret("apikey"))]}},
        {"name": "parked", "disabled": True,
         "url": f"http://{hook_user}:{found.add('webhook url password', new_secret('urlpw'))}"
                "@127.0.0.1:9/events"},
    ]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, seaweedfs: SeaweedFS,
          s3_bucket: str) -> Iterator[World]:
    found = Secrets()
    found.add("s3 secretkey", SECRET_KEY)
    found.add("proxy password", proxy_servers.PASSWORD, proxy_servers.USER)
    workdir = tmp_path_factory.mktemp("secrets")
    upstream = proxy_servers.token_upstream(workdir / "upstream")
    _debug_json_logs(upstream.config)
    upstream.config["http"]["secret"] = found.add("upstream http.secret", new_secret("uphttp"))
    receiver = Receiver().start()
    try:
        with proxy_servers.serving(upstream):
            key_pem = (workdir / "upstream" / "certs" / "token.key").read_text()
            found.add("token signing key", "".join(key_pem.strip().splitlines()[1:-1]))
            registry = proxy_servers.cache(workdir / "registry", upstream.url, prefix="hub/")
            debug_port = free_port()
            _registry_config(registry.config, found,
                             seaweedfs.storage_config(s3_bucket, "/secrets-test"),
                             workdir / "registry-users" / "htpasswd", receiver, debug_port)
            with proxy_servers.serving(registry):
                yield World(registry, upstream, receiver, f"http://127.0.0.1:{debug_port}",
                            found)
    finally:
        receiver.stop()


def _collect_error(world: World, response: requests.Response) -> requests.Response:
    if response.status_code >= 400:
        world.bodies.append(f"{response.status_code} {dict(response.headers)} {response.text}")
    return response


def _drive_upstream(world: World) -> str:
    """Tokens (and a refresh token) from the built-in token server; good and bad logins; bearer
    requests, good and broken. Returns a token for pushing the image the cache will pull."""
    url, found = world.upstream.url, world.secrets
    user, password = proxy_servers.USER, proxy_servers.PASSWORD
    scope = "repository:library/app:pull,push"
    got = requests.get(f"{url}/auth/token", auth=(user, password), timeout=10,
                       params={"service": "upstream-test", "scope": scope,
                               "offline_token": "true", "client_id": "security"})
    assert got.status_code == 200, got.text
    token = found.add("bearer token", got.json()["token"])
    found.add("bearer signature", token.rsplit(".", 1)[1])
    found.add("refresh token", got.json()["refresh_token"])
    refreshed = requests.post(f"{url}/auth/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": got.json()["refresh_token"],
        "service": "upstream-test", "scope": scope, "client_id": "security"})
    assert refreshed.status_code == 200, refreshed.text
    found.add("refreshed token", refreshed.json()["token"])
    wrong = found.add("wrong upstream password", new_secret("wrongup"), user)
    for response in (
        requests.get(f"{url}/auth/token", auth=(user, wrong), timeout=10,
                     params={"service": "upstream-test", "scope": scope}),
        requests.post(f"{url}/auth/token", timeout=10, data={
            "grant_type": "password", "username": user, "password": wrong,
            "service": "upstream-test", "client_id": "security"}),
        requests.post(f"{url}/auth/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": token, "service": "upstream-test"}),
        requests.get(f"{url}/v2/library/app/tags/list", timeout=10,
                     headers={"Authorization": f"Bearer {token[:-4]}AAAA"}),
        requests.get(f"{url}/v2/_catalog", timeout=10,
                     headers={"Authorization": f"Bearer {token}"}),
    ):
        assert _collect_error(world, response).status_code in (400, 401), response.text
    return token


def _drive_registry(world: World) -> None:
    """Pushes and pulls as alice, proxied pulls (the cache logs in upstream with the proxy
    password), failed logins on v2 and admin routes, and errors of several kinds."""
    url, found = world.registry.url, world.secrets
    password = found.values["alice password"]
    alice = V2Client(url, auth=(ALICE, password))
    alice.push_image("team/app", "v1", [b"secret test layer"])
    wrong = found.add("wrong password", new_secret("wrongpw"), ALICE)
    for auth in ((ALICE, wrong), ("nobody", password), None):
        for method, path in (("GET", "/v2/"), ("GET", "/v2/team/app/manifests/v1"),
                             ("POST", "/v2/team/app/blobs/uploads/"),
                             ("GET", "/admin/v1/status")):
            response = requests.request(method, url + path, auth=auth, timeout=10)
            assert _collect_error(world, response).status_code in (401, 429), response.text
    session = requests.Session()
    session.auth = (ALICE, password)
    for method, path, kwargs in (
        ("GET", "/v2/hub/library/app/manifests/v1", {"headers": {"Accept": DOCKER_MANIFEST}}),
        ("GET", "/v2/hub/library/missing/manifests/v1", {}),
        ("GET", "/v2/team/app/manifests/nope", {}),
        ("GET", "/v2/team/app/blobs/sha256:" + "0" * 64, {}),
        ("PUT", "/v2/team/app/manifests/v2", {"data": b"{not json",
                                              "headers": {"Content-Type": DOCKER_MANIFEST}}),
        ("PATCH", "/v2/team/app/blobs/uploads/bogus?_state=forged", {"data": b"x"}),
        ("GET", "/v2/INVALID/tags/list", {}),
        ("POST", "/admin/v1/copy", {"json": {"source": "nope"}}),
        ("GET", "/admin/v1/status", {}),
        ("GET", "/admin/v1/notifications", {}),
    ):
        response = session.request(method, url + path, timeout=30, **kwargs)
        assert response.status_code < 500, (path, response.text)
        world.bodies.append(response.text)  # admin views too, whatever their status
    pulled = session.get(url + "/v2/hub/library/app/manifests/v1", timeout=30,
                         headers={"Accept": DOCKER_MANIFEST})
    assert pulled.status_code == 200, pulled.text


@pytest.fixture(scope="module")
def driven(world: World) -> World:
    token = _drive_upstream(world)
    pusher = V2Client(world.upstream.url)
    pusher.session.headers["Authorization"] = f"Bearer {token}"
    pusher.push_image("library/app", "v1", [b"upstream layer"])
    _drive_registry(world)
    world.receiver.wait_for(1)
    return world


def test_secrets_stay_out_of_logs(driven: World) -> None:
    """Both servers' stdout and stderr (debug level, JSON) hold no secret in any form."""
    assert "Authorization" in driven.receiver.received[0].headers  # the header was used
    log = driven.registry.log()
    assert '"level": "debug"' in log or '"level": "info"' in log  # JSON lines were written
    assert_no_leaks(driven.secrets, [("registry log", log),
                                  ("upstream log", driven.upstream.log())])


def test_secrets_stay_out_of_responses_and_metrics(driven: World) -> None:
    """Error bodies and headers, the admin API's status and notifications views, and /metrics
    hold no secret."""
    metrics = requests.get(f"{driven.debug_url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert driven.bodies
    assert_no_leaks(driven.secrets, [("responses", "\n".join(driven.bodies)),
                                  ("/metrics", metrics.text)])


def test_config_check_redacts_everynew_secret(driven: World) -> None:
    """`config check` of both running servers' configs shows none of their secrets."""
    configs = [driven.registry.workdir / "config.yml", driven.upstream.workdir / "config.yml"]
    for path in configs:  # the secrets are really in there
        assert any(value in path.read_text() for value in driven.secrets.values.values()), path
    assert_no_leaks(driven.secrets,
                 [(f"config check {path.parent.name}", config_check(path)) for path in configs])


def test_json_log_lines_are_json(driven: World) -> None:
    """The JSON formatter writes one object per line (so the leak search saw every field)."""
    lines = [line for line in driven.registry.log().splitlines() if line.startswith("{")]
    assert lines
    for line in lines:
        json.loads(line)
