"""LAIN's etcd key switches token auth on and off at runtime, with a real etcd (v2 API)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.client import V2Client
from tests.api.conftest import running
from tests.etcd import Etcd
from tests.server import ApplianceServer, base_config, free_port
from tests.tokens import ISSUER, SERVICE, TestSigner, repo_access

KEY = "/lain/config/auth/registry"
LAIN_VALUE = json.dumps({"realm": "http://console.lain.test/api/v1/authorize/registry/",
                         "issuer": ISSUER, "service": SERVICE})


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    server = Etcd(tmp_path_factory.mktemp("etcd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


def _with_etcd(endpoint: str, signer: TestSigner, **extra: Any) -> Callable[[dict[str, Any], Path],
                                                                              None]:
    def edit(config: dict[str, Any], workdir: Path) -> None:
        config["appliance"] = {"etcd": {"endpoints": [endpoint],
                                        "rootcertbundle": str(signer.bundle(workdir / "b.pem")),
                                        **extra}}
    return edit


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_lain_key_turns_token_auth_on_and_off_without_restart(
    tmp_path_factory: pytest.TempPathFactory, etcd: Etcd, signer: TestSigner
) -> None:
    """No key: open registry (with a warning). `etcdctl set` LAIN's JSON: bearer challenge with
    its realm and service, tokens accepted. `etcdctl rm`: open again. No restart."""
    with running(tmp_path_factory, "lain", _with_etcd(etcd.endpoint, signer)) as server:
        anonymous = V2Client(server.url)
        assert anonymous.request("GET", "/v2/").status_code == 200
        assert f"etcd key {KEY} is absent" in server.log()

        etcd.etcdctl("set", KEY, LAIN_VALUE)
        _wait_for(lambda: anonymous.request("GET", "/v2/").status_code == 401)
        challenge = anonymous.request("GET", "/v2/lain/app/tags/list").headers["WWW-Authenticate"]
        assert challenge == ('Bearer realm="http://console.lain.test/api/v1/authorize/registry/",'
                             f'service="{SERVICE}",scope="repository:lain/app:pull"')
        authorized = V2Client(server.url)
        authorized.session.headers["Authorization"] = "Bearer " + signer.token(
            repo_access("lain/app", "pull", "push"))
        authorized.push_image("lain/app", "v1", [b"lain layer"])

        etcd.etcdctl("rm", KEY)
        _wait_for(lambda: anonymous.request("GET", "/v2/").status_code == 200)
        assert anonymous.request("GET", "/v2/lain/app/tags/list").json()["tags"] == ["v1"]


def test_key_present_at_start_is_applied(
    tmp_path_factory: pytest.TempPathFactory, etcd: Etcd, signer: TestSigner
) -> None:
    """A key already set when the server starts turns token auth on from the first request;
    a new value (another service) applies at once."""
    etcd.etcdctl("set", KEY, LAIN_VALUE)
    try:
        with running(tmp_path_factory, "lain-start", _with_etcd(etcd.endpoint, signer)) as server:
            anonymous = V2Client(server.url)
            assert anonymous.request("GET", "/v2/").status_code == 401
            etcd.etcdctl("set", KEY, json.dumps({"realm": "http://r/", "issuer": ISSUER,
                                                 "service": "other"}))
            _wait_for(lambda: 'service="other"' in anonymous.request(
                "GET", "/v2/").headers.get("WWW-Authenticate", ""))
    finally:
        etcd.etcdctl("rm", KEY)


def test_unreachable_etcd_stops_start_unless_optional(
    tmp_path_factory: pytest.TempPathFactory, signer: TestSigner
) -> None:
    """etcd down: the server refuses to start with a clear error; with `optional: true` it
    starts on the config file's auth and says so."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    workdir = tmp_path_factory.mktemp("lain-down")
    config = base_config(workdir)
    _with_etcd(nowhere, signer)(config, workdir)
    with pytest.raises(RuntimeError) as caught:
        ApplianceServer(workdir, config).start()
    assert f"appliance.etcd: cannot read {KEY} from {nowhere}" in str(caught.value)
    assert "appliance.etcd.optional: true" in str(caught.value)

    with running(tmp_path_factory, "lain-optional",
                 _with_etcd(nowhere, signer, optional=True)) as server:
        assert requests.get(f"{server.url}/v2/", timeout=5).status_code == 200
        assert "starting with the config file's auth" in server.log()


def test_unusable_value_at_start_is_a_clear_error(
    tmp_path_factory: pytest.TempPathFactory, etcd: Etcd, signer: TestSigner
) -> None:
    """A key that is not LAIN's JSON stops the start (even with optional), naming the key."""
    etcd.etcdctl("set", KEY, '{"realm": "http://r/"}')
    try:
        workdir = tmp_path_factory.mktemp("lain-bad")
        config = base_config(workdir)
        _with_etcd(etcd.endpoint, signer, optional=True)(config, workdir)
        with pytest.raises(RuntimeError) as caught:
            ApplianceServer(workdir, config).start()
        assert f"appliance.etcd: {KEY} holds an unusable value: the value lacks issuer, " \
               "service" in str(caught.value)
    finally:
        etcd.etcdctl("rm", KEY)
