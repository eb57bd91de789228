"""Fuzz the built-in token server (`/auth/token`, docker's GET and the OAuth2 POST form) and the
bearer-token check on /v2/: hostile scopes, grants, credentials and forged or broken tokens."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from appliance.auth.htpasswd import hash_password, write_entries
from appliance.tls.tokenkey import init_token_key
from tests.api.conftest import running

from . import strategies as fz
from .conftest import FilesAround, Fuzzed, after_the_run, fuzz_settings
from .wire import Tally, head

SERVICE = "fuzz-registry"
USER = ("writer", "writer-pw")
ACCESS = {"rules": [{"repositories": ["*"], "users": ["writer"], "actions": ["*"]}],
          "anonymous": ["public/*"]}

scopes = st.one_of(
    st.builds(lambda kind, name, actions: f"{kind}:{name}:{actions}",
              st.sampled_from(["repository", "registry", "repository(plugin)", "", "x"]),
              fz.names,
              st.sampled_from(["pull", "push", "pull,push", "*", "delete", "", "pull,,x"])),
    st.text(max_size=60),
)
credentials = st.sampled_from([
    "Basic " + base64.b64encode(b"writer:writer-pw").decode(),
    "Basic " + base64.b64encode(b"writer:writer-pw").decode(),
    "Basic " + base64.b64encode(b"writer:nope").decode(),
    "Basic " + base64.b64encode("ünïcode:pw".encode()).decode(),
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic ===", "Basic", "Negotiate abc", "",
])


def _segment(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


jose_headers = st.fixed_dictionaries(
    {"alg": st.sampled_from(["none", "HS256", "RS256", "ES256", "", "rs256"]),
     "kid": st.text(max_size=20)},
    optional={"x5c": fz.json_values, "jwk": fz.json_values})
tokens = st.one_of(
    st.text(max_size=80),
    st.builds(lambda h, p, s: f"{h}.{p}.{s}",
              st.one_of(jose_headers.map(_segment), st.text(max_size=20)),
              st.one_of(fz.json_values.map(_segment), st.text(max_size=40)),
              st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", max_size=90)),
    st.just("a." * 3000),
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    def edit(config: dict[str, Any], workdir: Path) -> None:
        htpasswd = workdir / "htpasswd"
        write_entries(str(htpasswd), {USER[0]: hash_password(USER[1])})
        init_token_key(workdir / "certs")
        port = config["http"]["addr"].rsplit(":", 1)[1]
        config["auth"] = {"token": {"realm": f"http://127.0.0.1:{port}/auth/token",
                                    "service": SERVICE, "issuer": "fuzz-issuer"}}
        config["appliance"] = {"certs": {"dir": str(workdir / "certs")},
                               "tokenserver": {"path": str(htpasswd), "lifetime": "2m"},
                               "access": ACCESS}

    with running(tmp_path_factory, "fuzz-token", edit) as server:
        files = FilesAround(server).snapshot()
        yield Fuzzed(server, files)


@fuzz_settings(max_examples=120)
@given(asked=st.lists(scopes, max_size=3), service=st.just(SERVICE) | st.text(max_size=20),
       extra=st.dictionaries(st.sampled_from(["account", "offline_token", "client_id"]),
                             st.text(max_size=30), max_size=3),
       authorization=credentials)
def test_token_get(target: Fuzzed, tally: Tally, asked: list[str], service: str,
                   extra: dict[str, str], authorization: str) -> None:
    """docker's GET flow with hostile scopes, services and credentials: never a 5xx."""
    query = urlencode([("service", service), *[("scope", s) for s in asked], *extra.items()])
    headers = {"Connection": "close", **({"Authorization": authorization} if authorization else {})}
    target.send(tally, "token_get", head("GET", f"/auth/token?{query}".encode(), headers, 0))


@fuzz_settings(max_examples=120)
@given(form=st.dictionaries(
    st.sampled_from(["grant_type", "username", "password", "refresh_token", "scope", "service",
                     "client_id", "access_type"]),
    st.one_of(st.sampled_from(["password", "refresh_token", "writer", "writer-pw", "offline",
                               SERVICE]), scopes, tokens), max_size=6),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json", "",
                                  "multipart/form-data; boundary=x"]),
    raw=st.one_of(st.none(), st.binary(max_size=120)))
def test_token_post(target: Fuzzed, tally: Tally, form: dict[str, str], content_type: str,
                    raw: bytes | None) -> None:
    """The OAuth2 POST form with missing, wrong and junk fields (or a junk body): never a 5xx."""
    body = raw if raw is not None else urlencode(form).encode()
    headers = {"Connection": "close", **({"Content-Type": content_type} if content_type else {})}
    target.send(tally, "token_post", head("POST", b"/auth/token", headers, len(body)) + body)


@fuzz_settings(max_examples=120)
@given(token=tokens, path=st.sampled_from(["/v2/", "/v2/_catalog", "/v2/public/x/tags/list",
                                           "/v2/a/b/manifests/latest", "/v2/a/blobs/uploads/"]),
       scheme=st.sampled_from(["Bearer", "bearer", "Bearer  ", "Basic"]))
def test_forged_and_broken_bearer_tokens(target: Fuzzed, tally: Tally, token: str, path: str,
                                         scheme: str) -> None:
    """Broken, unsigned (`alg: none`), HMAC and oversized tokens on /v2/: 401, never a 5xx."""
    method = "POST" if path.endswith("uploads/") else "GET"
    headers = {"Connection": "close", "Authorization": f"{scheme} {token}"}
    answer = target.send(tally, "v2_bearer", head(method, path.encode(), headers, 0))
    assert answer.status in (400, 401, 404), answer  # 404: anonymous pull of an unknown public/x


def test_after_the_run(target: Fuzzed, tally: Tally) -> None:
    """No 5xx, nothing outside the root, and the token server still issues working tokens."""
    after_the_run(target.server, tally, target.files)
    issued = requests.get(f"{target.server.url}/auth/token", auth=USER, timeout=10,
                          params={"service": SERVICE, "scope": "repository:a/b:pull"})
    assert issued.status_code == 200
    catalog = requests.get(f"{target.server.url}/v2/a/b/tags/list", timeout=10,
                           headers={"Authorization": f"Bearer {issued.json()['token']}"})
    assert catalog.status_code == 404  # authorised; the repository does not exist
