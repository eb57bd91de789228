"""auth.token and appliance.tokenserver/access/etcd: typed settings; errors name the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from appliance.config import ConfigError
from tests.unit.test_config import MINIMAL, load_text

TOKEN = textwrap.dedent("""\
    auth:
      token:
        realm: https://auth.example.com/token
        service: registry.example.com
        issuer: auth.example.com
        rootcertbundle: /etc/registry/bundle.pem
""")


def _problems(tmp_path: Path, text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    return caught.value.problems


def test_token_settings_are_typed_with_distribution_defaults(tmp_path: Path) -> None:
    """auth.token's keys become a TokenConfig; algorithms default to the RS256/ES256 family."""
    token = load_text(tmp_path, MINIMAL + TOKEN).auth.token
    assert token is not None
    assert (token.realm, token.service, token.issuer, token.rootcertbundle) == (
        "https://auth.example.com/token", "registry.example.com", "auth.example.com",
        "/etc/registry/bundle.pem")
    assert token.signingalgorithms == ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
    assert token.autoredirect is False


def test_token_missing_keys_and_bad_algorithms_are_named(tmp_path: Path) -> None:
    """Missing realm/service/issuer/rootcertbundle and `none` or HS256 are refused by key."""
    found = _problems(tmp_path, MINIMAL + "auth: {token: {signingalgorithms: [none, HS256]}}")
    assert "auth.token.realm: required" in found
    assert "auth.token.service: required" in found
    assert "auth.token.issuer: required" in found
    assert "auth.token.rootcertbundle: required (or auth.token.jwks)" in found
    assert any(p.startswith("auth.token.signingalgorithms: 'none' is not accepted") for p in found)
    assert any(p.startswith("auth.token.signingalgorithms: 'HS256'") for p in found)


def test_unknown_auth_method_is_refused(tmp_path: Path) -> None:
    """An auth method we do not implement stops the server rather than serving without auth."""
    assert _problems(tmp_path, MINIMAL + "auth: {silly: {realm: r}}") == (
        "auth.silly: not implemented; refusing to start without it "
        "(use auth.htpasswd or auth.token)",)


def test_tokenserver_defaults_key_bundle_and_issuer(tmp_path: Path) -> None:
    """The token server's key and certificate default to the certs dir; issuer to auth.token's."""
    config = load_text(tmp_path, MINIMAL + textwrap.dedent("""\
        auth: {token: {realm: https://r.example/auth/token, service: s, issuer: i}}
        appliance:
          certs: {dir: /etc/ra/certs}
          tokenserver: {path: /etc/ra/htpasswd, lifetime: 10m}
    """))
    server = config.appliance.tokenserver
    assert server is not None
    assert (server.key, server.issuer, server.lifetime) == ("/etc/ra/certs/token.key", "i", 600.0)
    assert config.auth.token is not None
    assert config.auth.token.rootcertbundle == "/etc/ra/certs/token.crt"


def test_tokenserver_needs_auth_token(tmp_path: Path) -> None:
    """appliance.tokenserver without auth.token is refused, naming both keys."""
    found = _problems(tmp_path, MINIMAL + "appliance: {tokenserver: {lifetime: 0s}}")
    assert "appliance.tokenserver.path: required" in found
    assert "appliance.tokenserver.lifetime: must be longer than zero" in found
    assert "appliance.tokenserver: needs auth.token (realm ending in /auth/token)" in found


def test_access_rules_are_typed_and_checked(tmp_path: Path) -> None:
    """Rules, groups, anonymous globs and catalog users load; bad actions and groups are named."""
    config = load_text(tmp_path, MINIMAL + textwrap.dedent("""\
        auth: {htpasswd: {realm: r, path: /p}}
        appliance:
          access:
            groups: {team-a: [alice, bob]}
            rules:
              - {repositories: ["team-a/*"], groups: [team-a], actions: [pull]}
              - {repositories: "*", users: [ci], actions: ["*"]}
            anonymous: ["public/*"]
    """))
    access = config.appliance.access
    assert access is not None
    assert access.rules[0].repositories == ("team-a/*",)
    assert access.rules[1].actions == ("*",)
    assert dict(access.groups) == {"team-a": ("alice", "bob")}
    assert access.anonymous == ("public/*",)
    assert access.catalog == ("*",)
    found = _problems(tmp_path, MINIMAL + textwrap.dedent("""\
        appliance:
          access:
            rules:
              - {repositories: ["x/*"], groups: [nobody], actions: [pull, fly]}
              - {actions: [pull]}
    """))
    assert "appliance.access.rules[0].actions: unknown action 'fly' " \
           "(known: pull, push, delete, *)" in found
    assert "appliance.access.rules[0].groups: unknown group 'nobody' " \
           "(define it in appliance.access.groups)" in found
    assert "appliance.access.rules[1].repositories: required: one or more globs like team-a/*" \
        in found
    assert "appliance.access.rules[1]: needs users or groups" in found


def test_etcd_settings_default_to_lains_key(tmp_path: Path) -> None:
    """appliance.etcd: endpoints, LAIN's key by default, optional off, a bundle required."""
    config = load_text(tmp_path, MINIMAL + textwrap.dedent("""\
        appliance:
          etcd: {endpoints: http://127.0.0.1:2379, rootcertbundle: /b.pem}
    """))
    etcd = config.appliance.etcd
    assert etcd is not None
    assert etcd.endpoints == ("http://127.0.0.1:2379",)
    assert (etcd.key, etcd.optional) == ("/lain/config/auth/registry", False)
    found = _problems(tmp_path, MINIMAL + "appliance: {etcd: {endpoints: [etcd:2379], key: x}}")
    assert "appliance.etcd.endpoints: 'etcd:2379' must be a URL like http://127.0.0.1:2379" in found
    assert "appliance.etcd.key: must start with /" in found
    assert any(p.startswith("appliance.etcd.rootcertbundle: required") for p in found)


def test_effective_config_shows_auth_and_loads_back(tmp_path: Path) -> None:
    """`config check` output holds auth.token, tokenserver, access and etcd, and loads back
    into the same config."""
    from appliance.config import redacted_yaml

    config = load_text(tmp_path, MINIMAL + textwrap.dedent("""\
        auth: {token: {realm: https://r.example/auth/token, service: s, issuer: i,
                       signingalgorithms: [ES256]}}
        appliance:
          tokenserver: {path: /etc/ra/htpasswd}
          access:
            groups: {g: [u]}
            rules: [{repositories: ["a/*"], groups: [g], actions: [pull]}]
            anonymous: ["public/*"]
          etcd: {endpoints: [http://127.0.0.1:2379], optional: true}
    """))
    shown = redacted_yaml(config)
    assert "signingalgorithms:\n    - ES256" in shown
    assert "path: /etc/ra/htpasswd" in shown
    again = load_text(tmp_path, shown)
    assert (again.auth, again.appliance.tokenserver, again.appliance.access,
            again.appliance.etcd) == (config.auth, config.appliance.tokenserver,
                                      config.appliance.access, config.appliance.etcd)
