"""`proxy` (Distribution's pull-through cache keys) and `appliance.proxy.prefix`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from appliance.config import ConfigError, load, redacted_yaml
from tests.unit.test_config import MINIMAL, PATHS, load_text


def test_proxy_defaults_and_prefix(tmp_path: Path) -> None:
    """remoteurl with Distribution's 168h ttl; the prefix gets its trailing slash."""
    config = load_text(tmp_path, MINIMAL + textwrap.dedent("""\
        proxy: {remoteurl: "https://registry-1.docker.io/", username: u, password: p}
        appliance: {proxy: {prefix: hub}}
    """))
    assert config.proxy is not None
    assert (config.proxy.remoteurl, config.proxy.ttl, config.proxy.prefix) == (
        "https://registry-1.docker.io", 168 * 3600.0, "hub/")
    assert "proxy" not in config.ignored


def test_no_proxy_section_means_no_cache(tmp_path: Path) -> None:
    """Without `proxy`, the registry is a plain private registry."""
    assert load_text(tmp_path, MINIMAL).proxy is None


def test_proxy_ttl_and_env_override(tmp_path: Path) -> None:
    """ttl is a Go duration; REGISTRY_PROXY_* overrides apply like every other key."""
    path = tmp_path / "config.yml"
    path.write_text(MINIMAL + "proxy: {remoteurl: 'http://127.0.0.1:5001', ttl: 2s}\n")
    config = load(str(path), {"REGISTRY_PROXY_REMOTEURL": "https://mirror.example"}, paths=PATHS)
    assert config.proxy is not None
    assert (config.proxy.remoteurl, config.proxy.ttl, config.proxy.prefix) == (
        "https://mirror.example", 2.0, "")


@pytest.mark.parametrize(("text", "problem"), [
    ("proxy: {username: u, password: p}", "proxy.remoteurl: required"),
    ("proxy: {remoteurl: 'ftp://x'}", "proxy.remoteurl: must be an http or https URL"),
    ("proxy: {remoteurl: 'https://x', username: u}",
     "proxy.password: username and password go together"),
    ("proxy: {remoteurl: 'https://x', ttl: soon}", "proxy.ttl: must be a duration"),
    ("proxy: {remoteurl: 'https://x', ttl: 0s}", "proxy.ttl: must be longer than zero"),
    ("proxy: {remoteurl: 'https://x'}\nappliance: {proxy: {prefix: 'Hub!'}}",
     "appliance.proxy.prefix: must be repository name components"),
    ("appliance: {proxy: {prefix: hub}}",
     "proxy: appliance.proxy.prefix is set but proxy.remoteurl is not"),
    ("proxy: {remoteurl: 'https://x'}\nappliance: {proxy: {prefx: hub}}",
     "appliance.proxy.prefx: unknown key"),
])
def test_proxy_problems_name_the_key(tmp_path: Path, text: str, problem: str) -> None:
    """Each mistake is reported against its key."""
    with pytest.raises(ConfigError) as raised:
        load_text(tmp_path, MINIMAL + text + "\n")
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_proxy_password_is_redacted(tmp_path: Path) -> None:
    """`config check` output hides proxy.password, shows the rest, and loads back the same."""
    config = load_text(tmp_path, MINIMAL + textwrap.dedent("""\
        proxy: {remoteurl: "https://upstream.example", username: bob, password: hunter2, ttl: 2h}
        appliance: {proxy: {prefix: mirror/hub/}}
    """))
    text = redacted_yaml(config)
    assert "hunter2" not in text
    tree = yaml.safe_load(text)
    assert tree["proxy"] == {"remoteurl": "https://upstream.example", "username": "bob",
                             "password": "<redacted>", "ttl": "2h"}
    assert tree["appliance"]["proxy"] == {"prefix": "mirror/hub/"}
    again = load_text(tmp_path, text.replace("<redacted>", "hunter2"))
    assert again.proxy == config.proxy
