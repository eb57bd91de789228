"""Wiring for authorization: the gate (open, htpasswd + rules, or tokens), the built-in token
server's endpoint, and LAIN's etcd key switching token auth on and off at runtime."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from appliance.api.authz import Gate, TokenAuth
from appliance.api.basicauth import Run
from appliance.api.tokenserver import TokenEndpoint
from appliance.auth.access import rules_from_config
from appliance.auth.basic import HtpasswdAuthenticator
from appliance.auth.issuer import TokenIssuer, load_signing_key
from appliance.auth.ratelimit import LoginLimiter
from appliance.auth.token import DEFAULT_ALGORITHMS, TokenVerifier, load_trust
from appliance.config import Config
from appliance.config.model import TokenConfig
from appliance.etcd import EtcdError, EtcdWatcher, LainAuth

__all__ = ["build_gate", "start_etcd", "token_endpoint"]

log = Logger()


def token_auth(token: TokenConfig) -> TokenAuth:
    """Read the trusted certificates and keys now, so a bad file stops the server at start."""
    roots, jwks = load_trust(token.rootcertbundle, token.jwks)
    verifier = TokenVerifier(token.issuer, token.service, roots, jwks, token.signingalgorithms)
    return TokenAuth(verifier, token.realm, token.autoredirect)


def build_gate(config: Config, authenticator: HtpasswdAuthenticator | None) -> Gate:
    token = token_auth(config.auth.token) if config.auth.token is not None else None
    return Gate(authenticator, rules_from_config(config.appliance.access), token)


def token_endpoint(config: Config, gate: Gate, run: Run,
                   limiter: LoginLimiter | None = None) -> TokenEndpoint | None:
    """`/auth/token` when `appliance.tokenserver` is configured."""
    server, token = config.appliance.tokenserver, config.auth.token
    if server is None or token is None:
        return None
    issuer = TokenIssuer(load_signing_key(server.key), server.issuer, token.service,
                         server.lifetime)
    users = HtpasswdAuthenticator(server.htpasswd, token.realm, limiter=limiter)
    return TokenEndpoint(issuer, users, gate.rules, run)


async def start_etcd(config: Config, gate: Gate, reactor: Any) -> EtcdWatcher | None:
    """Read LAIN's key now and watch it; the file's auth applies while the key is absent."""
    etcd = config.appliance.etcd
    if etcd is None:
        return None
    file_token = gate.token
    bundle = etcd.rootcertbundle or (config.auth.token.rootcertbundle if config.auth.token else "")
    algorithms = config.auth.token.signingalgorithms if config.auth.token else DEFAULT_ALGORITHMS
    roots, _ = load_trust(bundle)

    def apply(value: LainAuth | None) -> None:
        if value is None:
            gate.token = file_token
            log.warn("etcd key {key} is absent: LAIN token auth is off ({mode})", key=etcd.key,
                     mode="auth.token from the config" if file_token else
                     "htpasswd" if gate.authenticator else "no authentication")
            return
        verifier = TokenVerifier(value.issuer, value.service, roots, None, algorithms)
        gate.token = TokenAuth(verifier, value.realm)
        log.info("etcd key {key}: token auth on (realm {realm}, service {service}, "
                 "issuer {issuer})", key=etcd.key, realm=value.realm, service=value.service,
                 issuer=value.issuer)

    watcher = EtcdWatcher(etcd, reactor, apply)
    try:
        apply(await watcher.read())
    except ValueError as error:  # reachable, but not LAIN's JSON: never guess, not even optional
        raise ValueError(f"appliance.etcd: {etcd.key} holds an unusable value: {error} "
                         '(expected {"realm": ..., "issuer": ..., "service": ...})') from None
    except EtcdError as error:
        where = ", ".join(etcd.endpoints)
        if not etcd.optional:
            raise ValueError(f"appliance.etcd: cannot read {etcd.key} from {where}: {error} "
                             "(set appliance.etcd.optional: true to start with the config "
                             "file's auth instead)") from None
        log.warn("appliance.etcd: cannot read {key} from {where}: {error}; starting with the "
                 "config file's auth and watching for the key", key=etcd.key, where=where,
                 error=error)
    Deferred.fromCoroutine(watcher.watch())
    reactor.addSystemEventTrigger("before", "shutdown", watcher.stop)
    return watcher
