"""Token verification, key ids, scopes, access rules and the login limiter, in process."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from appliance.auth.access import AccessRule, AccessRules
from appliance.auth.issuer import TokenIssuer
from appliance.auth.keys import libtrust_key_id, thumbprint
from appliance.auth.ratelimit import LoginLimiter
from appliance.auth.scope import CATALOG, Scope, parse_scope, parse_scopes
from appliance.auth.token import InvalidToken, TokenVerifier, load_trust
from tests.tokens import ISSUER, SERVICE, TestSigner, repo_access


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="module")
def verifier(signer: TestSigner, tmp_path_factory: pytest.TempPathFactory) -> TokenVerifier:
    roots, _ = load_trust(str(signer.bundle(tmp_path_factory.mktemp("b") / "bundle.pem")))
    return TokenVerifier(ISSUER, SERVICE, roots)


def test_libtrust_key_id_is_twelve_groups_of_sha256_spki() -> None:
    """The libtrust id is base32 of the first 240 bits of SHA-256(DER SPKI), 12 groups of 4."""
    signer = TestSigner()
    key = signer.ec_key.public_key()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    expected = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    kid = libtrust_key_id(key)
    assert kid.replace(":", "") == expected
    assert [len(group) for group in kid.split(":")] == [4] * 12


def test_thumbprint_matches_rfc7638_example() -> None:
    """The RFC 7638 section 3.1 example key has the thumbprint the RFC gives."""
    from appliance.auth.keys import public_key_from_jwk

    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
         "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGj"
         "QR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-b"
         "FTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
    key = public_key_from_jwk({"kty": "RSA", "n": n, "e": "AQAB"})
    assert thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("key", ["rsa", "ec"])
@pytest.mark.parametrize("kid", ["libtrust", "thumbprint", "x5c"])
def test_tokens_with_each_key_form_are_accepted(
    signer: TestSigner, verifier: TokenVerifier, key: str, kid: str
) -> None:
    """RSA and EC tokens found by libtrust kid, thumbprint kid, or an x5c chain verify."""
    claims = verifier.verify(signer.token(repo_access("team/app", "pull"), key=key, kid=kid))
    assert claims.subject == "tester"
    assert claims.allows(Scope("repository", "team/app", ("pull",)))
    assert not claims.allows(Scope("repository", "team/app", ("push",)))
    assert not claims.allows(Scope("repository", "other", ("pull",)))


def test_embedded_jwk_is_accepted_only_for_a_trusted_key(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    """An embedded jwk that is a trusted key verifies; a stranger's self-made jwk does not."""
    assert verifier.verify(signer.token([], kid="jwk", key="ec")).subject == "tester"
    from appliance.auth.keys import jwk_of

    forged = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": 2**31}, signer.stranger,
                        algorithm="ES256", headers={"jwk": jwk_of(signer.stranger.public_key())})
    with pytest.raises(InvalidToken, match="not a trusted key"):
        verifier.verify(forged)


@pytest.mark.parametrize(("changes", "message"), [
    ({"issuer": "someone-else"}, "untrusted issuer"),
    ({"audience": "another-registry"}, "another service"),
    ({"expires_in": -120}, "expired"),
    ({"not_before": 300}, "not valid yet"),
    ({"kid": "none"}, "names no signing key"),
    ({"algorithm": "RS512"}, None),  # accepted: in the default family
])
def test_claims_are_checked(
    signer: TestSigner, verifier: TokenVerifier, changes: dict[str, object], message: str | None
) -> None:
    """Wrong iss or aud, expiry beyond the leeway, nbf ahead and a missing key id are refused."""
    token = signer.token([], **changes)  # type: ignore[arg-type]
    if message is None:
        verifier.verify(token)
        return
    with pytest.raises(InvalidToken, match=message):
        verifier.verify(token)


def test_leeway_is_sixty_seconds(signer: TestSigner, verifier: TokenVerifier) -> None:
    """A token expired 30 s ago still passes; one expired 90 s ago does not."""
    verifier.verify(signer.token([], expires_in=-30))
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(signer.token([], expires_in=-90))


def test_bad_signature_unknown_key_and_algorithms_are_refused(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    """A tampered payload, a stranger's key under a trusted kid, none, HS256 and an
    algorithm outside the configured list are all refused."""
    token = signer.token(repo_access("a", "pull"))
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["access"][0]["actions"] = ["pull", "push"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(InvalidToken, match="signature"):
        verifier.verify(f"{head}.{forged}.{signature}")
    with pytest.raises(InvalidToken, match="signature"):
        verifier.verify(signer.token([], key="ec", signing_key=signer.stranger))
    unsigned = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": 2**31}, None, algorithm="none",
                          headers={"kid": libtrust_key_id(signer.rsa_key.public_key())})
    with pytest.raises(InvalidToken, match="'none' is not accepted"):
        verifier.verify(unsigned)
    hmac_token = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": 2**31}, "secret-key" * 4,
                            algorithm="HS256", headers={"kid": "x"})
    with pytest.raises(InvalidToken, match="'HS256' is not accepted"):
        verifier.verify(hmac_token)
    only_es = TokenVerifier(ISSUER, SERVICE, verifier.roots, algorithms=["ES256"])
    with pytest.raises(InvalidToken, match="'RS256' is not accepted"):
        only_es.verify(signer.token([]))
    stranger = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": 2**31}, signer.stranger,
                          algorithm="ES256",
                          headers={"kid": libtrust_key_id(signer.stranger.public_key())})
    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(stranger)


def test_x5c_chain_must_reach_a_root(signer: TestSigner, verifier: TokenVerifier) -> None:
    """A self-signed x5c certificate that no root vouches for is refused."""
    from tests.tokens import _cert

    rogue = _cert("rogue", signer.stranger, "rogue", signer.stranger, ca=False)
    der = base64.b64encode(rogue.public_bytes(serialization.Encoding.DER)).decode()
    token = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": 2**31}, signer.stranger,
                       algorithm="ES256", headers={"x5c": [der]})
    with pytest.raises(InvalidToken, match="trusted root"):
        verifier.verify(token)


def test_jwks_entries_are_trusted_by_kid(signer: TestSigner, tmp_path: Path) -> None:
    """A key listed in the jwks file verifies tokens naming its kid."""
    from appliance.auth.keys import jwk_of

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk_of(signer.stranger.public_key()), "kid": "k1"}]}))
    roots, keys = load_trust("", str(jwks))
    verifier = TokenVerifier(ISSUER, SERVICE, roots, keys)
    token = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": 2**31, "sub": "j"},
                       signer.stranger, algorithm="ES256", headers={"kid": "k1"})
    assert verifier.verify(token).subject == "j"


def test_issuer_tokens_verify_and_refresh(signer: TestSigner) -> None:
    """The built-in issuer's tokens verify against its certificate by libtrust kid; refresh
    tokens name the user and are not access tokens."""
    issuer = TokenIssuer(signer.ec_key, ISSUER, SERVICE, lifetime=60)
    verifier = TokenVerifier(ISSUER, SERVICE, [signer.ec_cert])
    issued = issuer.issue("alice", [Scope("repository", "a/b", ("pull",))])
    assert issued.expires_in == 60
    assert verifier.verify(issued.token).allows(Scope("repository", "a/b", ("pull",)))
    refresh = issuer.refresh_token("alice")
    assert issuer.refresh_subject(refresh) == "alice"
    assert issuer.refresh_subject(issued.token) is None
    with pytest.raises(InvalidToken, match="another service"):
        verifier.verify(refresh)


def test_scopes_parse_names_with_host_and_port() -> None:
    """Scopes split from the right, so `host:port/name` survives; malformed ones are dropped."""
    assert parse_scope("repository:localhost:5000/app:pull,push") == Scope(
        "repository", "localhost:5000/app", ("pull", "push"))
    assert parse_scope("registry:catalog:*") == CATALOG
    assert parse_scope("nonsense") is None
    assert parse_scopes(["repository:a:pull repository:b:push", "bad"]) == [
        Scope("repository", "a", ("pull",)), Scope("repository", "b", ("push",))]
    assert str(Scope("repository", "a/b", ("pull", "push"))) == "repository:a/b:pull,push"


def test_access_rules_grant_by_user_group_glob_and_anonymous() -> None:
    """Rules grant by user or group and glob; `*` is every action; anonymous may only pull."""
    rules = AccessRules(
        enabled=True,
        rules=(AccessRule(("team-a/*",), frozenset({"pull"}), groups=("team-a",)),
               AccessRule(("team-a/*", "tools"), frozenset({"*"}), users=("lead",))),
        groups={"team-a": ("alice",)},
        anonymous=("public/*",),
        catalog=("lead",),
    )
    assert rules.actions("alice", "team-a/app") == {"pull"}
    assert rules.actions("alice", "team-b/app") == frozenset()
    assert rules.actions("lead", "team-a/deep/app") == {"pull", "push", "delete"}
    assert rules.actions(None, "public/base") == {"pull"}
    assert rules.actions(None, "team-a/app") == frozenset()
    assert rules.granted("alice", Scope("repository", "team-a/x", ("pull", "push"))) == {"pull"}
    assert rules.allows("lead", CATALOG)
    assert not rules.allows("alice", CATALOG)
    assert AccessRules().actions("anyone", "x") == {"pull", "push", "delete"}
    assert AccessRules().allows("anyone", CATALOG)


def test_login_limiter_counts_per_user_and_address() -> None:
    """After the limit of failures a user, or an address, waits until the window moves on."""
    now = [0.0]
    limiter = LoginLimiter(max_failures=3, max_address_failures=5, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("bob", "10.0.0.1") is None
        limiter.failed("bob", "10.0.0.1")
    assert limiter.retry_after("bob", "10.0.0.2") == 60
    assert limiter.retry_after("carol", "10.0.0.2") is None
    limiter.failed("carol", "10.0.0.1")
    limiter.failed("dave", "10.0.0.1")
    assert limiter.retry_after("erin", "10.0.0.1") == 60
    now[0] = 61
    assert limiter.retry_after("bob", "10.0.0.1") is None


def test_login_limiter_waits_until_fewer_than_the_limit_remain() -> None:
    """With more failures than the limit, the wait ends when the limit-th newest one expires."""
    now = [0.0]
    limiter = LoginLimiter(max_failures=2, window=60, clock=lambda: now[0])
    for at in (0.0, 10.0, 20.0):
        now[0] = at
        limiter.failed("bob", "10.0.0.1")
    assert limiter.retry_after("bob", "10.0.0.1") == 50  # 10 + 60 - 20


def test_workers_share_one_login_budget(tmp_path: Path) -> None:
    """Two limiters on one file (two workers of `serve --workers`) count failures together."""
    path = str(tmp_path / "logins.sqlite3")
    LoginLimiter.create_store(path)
    first, second = (LoginLimiter(max_failures=4, path=path) for _ in range(2))
    for limiter in (first, second, first, second):
        assert limiter.retry_after("bob", "10.0.0.1") is None
        limiter.failed("bob", "10.0.0.1")
    wait = second.retry_after("bob", "10.0.0.9")
    assert wait is not None and 59 < wait <= 60
    assert first.retry_after("carol", "10.0.0.9") is None


def test_routes_map_to_distributions_actions() -> None:
    """GET/HEAD need pull, POST/PUT/PATCH pull and push (plus pull on a mount's source), DELETE delete,
    the catalog registry:catalog:*, and /v2/ or unknown routes only a valid credential."""
    from appliance.api.authz import required_scopes

    def scopes(handler: str | None, method: str, **args: str) -> list[str]:
        query = {k.encode(): [v.encode()] for k, v in args.items()}
        return [str(s) for s in required_scopes(handler, method, {"name": "a/b"}, query)]

    assert scopes("get_manifest", "HEAD") == ["repository:a/b:pull"]
    assert scopes("get_blob", "GET") == ["repository:a/b:pull"]
    assert scopes("put_manifest", "PUT") == ["repository:a/b:pull,push"]
    assert scopes("patch_upload", "PATCH") == ["repository:a/b:pull,push"]
    assert scopes("start_upload", "POST", mount="sha256:x", **{"from": "c/d"}) == [
        "repository:a/b:pull,push", "repository:c/d:pull"]
    assert scopes("delete_manifest", "DELETE") == ["repository:a/b:delete"]
    assert scopes("catalog", "GET") == ["registry:catalog:*"]
    assert scopes("base", "GET") == []
    assert scopes(None, "GET") == []


def test_autoredirect_points_the_realm_at_the_host_used() -> None:
    """With autoredirect the challenge's realm keeps its path but takes the request's host."""
    from twisted.web.test.requesthelper import DummyRequest

    from appliance.api.authz import TokenAuth

    verifier = TokenVerifier(ISSUER, SERVICE, [])
    request = DummyRequest([b"v2"])
    request.requestHeaders.setRawHeaders(b"host", [b"registry.internal:5000"])
    request.isSecure = lambda: False  # type: ignore[method-assign]
    fixed = TokenAuth(verifier, "https://auth.example/auth/token")
    moved = TokenAuth(verifier, "https://auth.example/auth/token", autoredirect=True)
    assert fixed.challenge(request, []).startswith('Bearer realm="https://auth.example/auth/token"')
    assert moved.challenge(request, [], "invalid_token") == (
        f'Bearer realm="http://registry.internal:5000/auth/token",service="{SERVICE}",'
        'error="invalid_token"')


def test_certs_init_token_key_writes_a_key_the_issuer_signs_with(tmp_path: Path) -> None:
    """`certs init --token-key` writes token.key (0600) and token.crt; tokens signed with the
    key verify against the certificate; a second run refuses to overwrite."""
    import stat

    from appliance.auth.issuer import load_signing_key
    from tests.unit.test_cli import cli

    made = cli("certs", "init", "--token-key", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE((tmp_path / "token.key").stat().st_mode) == 0o600
    roots, _ = load_trust(str(tmp_path / "token.crt"))
    issuer = TokenIssuer(load_signing_key(str(tmp_path / "token.key")), ISSUER, SERVICE)
    token = issuer.issue("u", [Scope("repository", "r", ("pull",))]).token
    assert TokenVerifier(ISSUER, SERVICE, roots).verify(token).subject == "u"
    again = cli("certs", "init", "--token-key", "--dir", str(tmp_path))
    assert again.returncode == 1
    assert "pass --force to replace them" in again.stderr
