"""The auth parts of the config: `auth.htpasswd`, `auth.token`, and `appliance.tokenserver`,
`appliance.access`, `appliance.etcd`. Kept apart from build.py so each stays readable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from types import MappingProxyType
from urllib.parse import urlsplit

from .model import (
    AccessConfig,
    AccessRuleConfig,
    AuthConfig,
    Config,
    EtcdConfig,
    HtpasswdConfig,
    TokenConfig,
    TokenServerConfig,
)
from .reader import Section

SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
                      "PS256", "PS384", "PS512", "EdDSA")
ACTIONS = ("pull", "push", "delete", "*")


def auth(section: Section) -> AuthConfig:
    methods = section.keys()
    if len(methods) > 1:
        section.problem("", f"only one auth method may be configured, got {', '.join(methods)}")
    for method in methods:
        if method not in ("htpasswd", "token"):
            # Refuse rather than serve without the authentication the admin asked for.
            section.problem(method, "not implemented; refusing to start without it "
                                    "(use auth.htpasswd or auth.token)")
    if "htpasswd" in methods:
        htpasswd = section.section("htpasswd")
        return AuthConfig(HtpasswdConfig(htpasswd.required("realm"), htpasswd.required("path")))
    if "token" in methods:
        return AuthConfig(token=token(section.section("token")))
    return AuthConfig()


def token(section: Section) -> TokenConfig:
    realm = section.required("realm")
    if realm and urlsplit(realm).scheme not in ("http", "https"):
        section.problem("realm", "must be a URL like https://auth.example.com/token")
    return TokenConfig(
        realm=realm,
        service=section.required("service"),
        issuer=section.required("issuer"),
        rootcertbundle=section.string("rootcertbundle", ""),
        jwks=section.string("jwks", ""),
        signingalgorithms=algorithms(section, "signingalgorithms") or TokenConfig.signingalgorithms,
        autoredirect=section.boolean("autoredirect", False),
    )


def algorithms(section: Section, key: str) -> tuple[str, ...]:
    given = section.strings(key)
    for name in given:
        if name not in SIGNING_ALGORITHMS:
            section.problem(key, f"{name!r} is not accepted; use some of "
                                 f"{', '.join(SIGNING_ALGORITHMS)} (never none or HS*)")
    return tuple(name for name in given if name in SIGNING_ALGORITHMS)


def tokenserver(section: Section, certs_dir: str) -> TokenServerConfig | None:
    if not section.keys():
        return None
    lifetime = section.duration("lifetime", TokenServerConfig.lifetime)
    if lifetime <= 0:
        section.problem("lifetime", "must be longer than zero")
    return TokenServerConfig(
        htpasswd=section.required("path"),
        key=section.string("key", f"{certs_dir.rstrip('/')}/token.key"),
        issuer=section.string("issuer", ""),
        lifetime=lifetime,
    )


def access(section: Section) -> AccessConfig | None:
    if not section.keys():
        return None
    groups = section.section("groups")
    rules = []
    for rule in section.sections("rules"):
        repositories = rule.strings("repositories")
        if not repositories:
            rule.problem("repositories", "required: one or more globs like team-a/*")
        actions = rule.strings("actions")
        if not actions:
            rule.problem("actions", "required: some of pull, push, delete, *")
        for action in actions:
            if action not in ACTIONS:
                rule.problem("actions", f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
        users, members = rule.strings("users"), rule.strings("groups")
        if not users and not members:
            rule.problem("", "needs users or groups")
        rules.append(AccessRuleConfig(repositories, actions, users, members))
    config = AccessConfig(
        rules=tuple(rules),
        groups=MappingProxyType({name: groups.strings(name)
                                 for name in groups.keys()}),  # noqa: SIM118
        anonymous=section.strings("anonymous"),
        catalog=section.strings("catalog") if section.has("catalog") else AccessConfig.catalog,
    )
    return config


def etcd(section: Section) -> EtcdConfig | None:
    if not section.keys():
        return None
    endpoints = section.strings("endpoints")
    if not endpoints:
        section.problem("endpoints", "required, like http://127.0.0.1:2379")
    for endpoint in endpoints:
        if urlsplit(endpoint).scheme not in ("http", "https"):
            section.problem("endpoints", f"{endpoint!r} must be a URL like http://127.0.0.1:2379")
    key = section.string("key", EtcdConfig.key)
    if not key.startswith("/"):
        section.problem("key", "must start with /")
    return EtcdConfig(
        endpoints=endpoints,
        key=key,
        optional=section.boolean("optional", False),
        rootcertbundle=section.string("rootcertbundle", ""),
    )


def check(config: Config, problem: Callable[[str, str], None]) -> Config:
    """Cross-section rules; returns the config with defaults that depend on other sections."""
    token_config, server = config.auth.token, config.appliance.tokenserver
    access_config = config.appliance.access
    if server is not None:
        if token_config is None:
            problem("appliance.tokenserver", "needs auth.token (realm ending in /auth/token)")
        else:
            if not token_config.rootcertbundle and not token_config.jwks:
                cert = server.key.rsplit("/", 1)[0] + "/token.crt"
                token_config = replace(token_config, rootcertbundle=cert)
            server = replace(server, issuer=server.issuer or token_config.issuer)
    elif token_config is not None and not token_config.rootcertbundle and not token_config.jwks:
        problem("auth.token.rootcertbundle", "required (or auth.token.jwks)")
    if access_config is not None:
        for i, rule in enumerate(access_config.rules):
            for group in rule.groups:
                if group not in access_config.groups:
                    problem(f"appliance.access.rules[{i}].groups",
                            f"unknown group {group!r} (define it in appliance.access.groups)")
        if token_config is not None and server is None:
            problem("appliance.access", "applies to htpasswd users and the built-in token server; "
                                        "with an external token server its tokens decide")
    etcd_config = config.appliance.etcd
    if etcd_config is not None and not etcd_config.rootcertbundle and (
            token_config is None or not token_config.rootcertbundle):
        problem("appliance.etcd.rootcertbundle",
                "required (the certificate bundle of LAIN's token server), "
                "unless auth.token.rootcertbundle is set")
    return replace(config, auth=replace(config.auth, token=token_config),
                   appliance=replace(config.appliance, tokenserver=server))


def auth_tree(config: Config) -> dict[str, object]:
    """`auth:` as YAML-ready data, for `config check` (loads back into the same config)."""
    htpasswd, token_config = config.auth.htpasswd, config.auth.token
    if htpasswd is not None:
        return {"htpasswd": {"realm": htpasswd.realm, "path": htpasswd.path}}
    if token_config is not None:
        tree = asdict(token_config)
        tree["signingalgorithms"] = list(token_config.signingalgorithms)
        return {"token": tree}
    return {}


def appliance_auth_tree(config: Config, duration: Callable[[float], str]) -> dict[str, object]:
    """`appliance.tokenserver`, `.access` and `.etcd` as YAML-ready data, when configured."""
    tree: dict[str, object] = {}
    server, rules, etcd_config = (config.appliance.tokenserver, config.appliance.access,
                                  config.appliance.etcd)
    if server is not None:
        tree["tokenserver"] = {"path": server.htpasswd, "key": server.key,
                               "issuer": server.issuer, "lifetime": duration(server.lifetime)}
    if rules is not None:
        tree["access"] = {
            "groups": {name: list(users) for name, users in rules.groups.items()},
            "rules": [{"repositories": list(r.repositories), "users": list(r.users),
                       "groups": list(r.groups), "actions": list(r.actions)} for r in rules.rules],
            "anonymous": list(rules.anonymous),
            "catalog": list(rules.catalog),
        }
    if etcd_config is not None:
        tree["etcd"] = {**asdict(etcd_config), "endpoints": list(etcd_config.endpoints)}
    return tree
