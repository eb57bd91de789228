"""`config check` shows no secret of any section, nor one inside a URL (the fast set; the live
servers' logs, responses and /metrics are searched in test_secrets_in_logs.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.config.redact import REDACTED, redacted_url
from tests.security.leaks import Secrets, assert_no_leaks, config_check, new_secret
from tests.server import EXECUTABLE


def _common(found: Secrets, htpasswd: Path) -> dict[str, Any]:
    """Every section that may hold a secret, except storage."""
    htpasswd.write_text("")
    return {
        "version": "0.1",
        "http": {"addr": "127.0.0.1:5000", "secret": found.add("http.secret", new_secret("h"))},
        "auth": {"htpasswd": {"realm": "r", "path": str(htpasswd)}},
        "proxy": {"remoteurl": "https://mirror.example.com", "username": "bot",
                  "password": found.add("proxy password", new_secret("p"))},
        "notifications": {"endpoints": [{
            "name": "hook", "url": f"https://hook:{found.add('hook url', new_secret('w'))}"
                                   "@hooks.example.com/events",
            "headers": {
                "Authorization": [f"Bearer {found.add('hook bearer', new_secret('b'))}"],
                "X-Api-Key": [found.add("hook api key", new_secret("k"))],
                "Cookie": [f"session={found.add('hook cookie', new_secret('c'))}"],
                "X-Auth-Token": [found.add("hook token", new_secret("t"))]}}]},
        "health": {"http": [{"uri": "https://status.example.com/", "headers": {
            "Authorization": [f"Basic {found.add('health auth', new_secret('a'))}"]}}]},
    }


STORAGES = {
    "s3": lambda found: {"s3": {
        "region": "us-east-1", "bucket": "images", "regionendpoint": "http://127.0.0.1:1",
        "accesskey": found.add("s3 accesskey", new_secret("AK")),
        "secretkey": found.add("s3 secretkey", new_secret("SK")),
        "sessiontoken": found.add("s3 sessiontoken", new_secret("ST"))}},
    "swift": lambda found: {"swift": {
        "authurl": "http://127.0.0.1:1/auth/v1.0", "username": "test:tester",
        "password": found.add("swift password", new_secret("SW")), "container": "images",
        "secretkey": found.add("swift tempurl key", new_secret("TK"))}},
}


@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_config_check_shows_no_secret(tmp_path: Path, storage: str) -> None:
    """Passwords, keys, tokens, webhook and health-check headers (Authorization, API keys,
    cookies) and passwords inside URLs are all `<redacted>` in `config check`."""
    found = Secrets()
    config = _common(found, tmp_path / "htpasswd")
    config["storage"] = STORAGES[storage](found)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    shown = config_check(path)
    assert REDACTED in shown
    assert "https://hook:<redacted>@hooks.example.com/events" in shown  # the rest stays
    assert_no_leaks(found, [("config check", shown)])


def test_proxy_remoteurl_with_credentials_is_refused(tmp_path: Path) -> None:
    """`proxy.remoteurl` is shown in logs and error messages, so credentials in it are refused
    (naming the key, without echoing the password); they belong in username/password."""
    password = new_secret("pw")
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"version": "0.1", "proxy": {
        "remoteurl": f"https://bot:{password}@mirror.example.com"}}))
    result = subprocess.run([*EXECUTABLE, "config", "check", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "proxy.remoteurl: must not hold credentials" in result.stdout + result.stderr
    assert password not in result.stdout + result.stderr


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:pw@host:5000/path?q=1", f"https://user:{REDACTED}@host:5000/path?q=1"),
    ("http://user:p%40ss@[::1]:80/", f"http://user:{REDACTED}@[::1]:80/"),
    ("https://user@host/", "https://user@host/"),
    ("https://host/a@b", "https://host/a@b"),
    ("not a url @ all", "not a url @ all"),
    ("http://[bad@", "http://[bad@"),
])
def test_redacted_url(url: str, shown: str) -> None:
    """Only the password part of a URL's userinfo is replaced; other text is left alone."""
    assert redacted_url(url) == shown
