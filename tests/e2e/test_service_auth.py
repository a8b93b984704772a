"""The Authenticator against a real JWKS endpoint on loopback (RS256, as Cognito signs).

The HS256 path is exercised end to end over HTTP in test_service_runs.py; here the JWKS
path: keys fetched over HTTP, kid matching, issuer and audience, group claims.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from opsagent.registry import parse_registry
from opsagent.service.http.auth import ANONYMOUS, Authenticator, AuthError
from opsagent.service.settings import Settings
from tests.service_helpers import DEVELOPMENT, PRODUCTION, STAGING, demo_registry

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "key-1", "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def rs256(
    sub: str = "olivia",
    *,
    groups: object = ("prod-team",),
    key: object = KEY,
    kid: str = "key-1",
    issuer: str = ISSUER,
    audience: str = "opsagent-client",
) -> str:
    now = int(time.time())
    claims = {
        "sub": sub,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
    }
    if groups is not None:
        claims["cognito:groups"] = list(groups) if isinstance(groups, tuple) else groups
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


@pytest.fixture
def auth(jwks_url: str) -> Authenticator:
    return Authenticator(
        Settings(jwt_jwks_url=jwks_url, jwt_issuer=ISSUER, jwt_audience="opsagent-client")
    )


REGISTRY = parse_registry(
    demo_registry({"prod-team": ["production"], "operators": ["staging", "development"]})
)


async def test_a_jwks_signed_token_names_the_caller_and_their_accounts(auth: Authenticator) -> None:
    caller = await auth.caller(f"Bearer {rs256(groups=('prod-team', 'operators'))}", None)
    assert caller.user == "olivia" and caller.authenticated
    assert caller.groups == ("prod-team", "operators")
    assert caller.visible_accounts(REGISTRY) == {PRODUCTION, STAGING, DEVELOPMENT}
    only_prod = await auth.caller(f"Bearer {rs256()}", "header-is-not-identity")
    assert only_prod.user == "olivia" and only_prod.visible_accounts(REGISTRY) == {PRODUCTION}


async def test_groups_may_be_one_string(auth: Authenticator) -> None:
    caller = await auth.caller(f"Bearer {rs256(groups='prod-team operators')}", None)
    assert caller.groups == ("prod-team", "operators")


async def test_no_groups_means_no_accounts_when_the_registry_has_groups(
    auth: Authenticator,
) -> None:
    caller = await auth.caller(f"Bearer {rs256(groups=())}", None)
    assert caller.visible_accounts(REGISTRY) == set()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: rs256(key=OTHER_KEY), "not valid"),
        (lambda: rs256(kid="key-2"), "unknown signing key"),
        (lambda: rs256(issuer="https://elsewhere.example"), "issuer"),
        (lambda: rs256(audience="another-client"), "audience"),
    ],
    ids=["wrong-key", "unknown-kid", "wrong-issuer", "wrong-audience"],
)
async def test_bad_jwks_tokens_are_refused(auth: Authenticator, token: object, reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        await auth.caller(f"Bearer {token()}", None)  # type: ignore[operator]


async def test_without_a_groups_claim_setting_either_default_claim_is_needed(
    auth: Authenticator,
) -> None:
    now = int(time.time())
    plain = {"sub": "paula", "groups": ["prod-team"], "iss": ISSUER, "aud": "opsagent-client"}
    token = jwt.encode(
        {**plain, "exp": now + 300}, KEY, algorithm="RS256", headers={"kid": "key-1"}
    )
    assert (await auth.caller(f"Bearer {token}", None)).groups == ("prod-team",)
    with pytest.raises(
        AuthError, match="no 'groups' or 'cognito:groups' claim: OPSAGENT_JWT_GROUPS_CLAIM"
    ):
        await auth.caller(f"Bearer {rs256(groups=None)}", None)


HS_SECRET = "an-hs256-secret-that-is-long-enough-for-it"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: jwt.encode({"sub": "x", "exp": time.time() + 60, "groups": []}, HS_SECRET), None),
        (lambda: rs256(), r"algorithm .RS256. is not allowed here \(allowed: HS256\)"),
        (
            lambda: jwt.encode({"sub": "x", "exp": time.time() + 60}, None, algorithm="none"),
            "unsigned",
        ),
    ],
    ids=["hs256", "rs256-against-the-secret", "alg-none"],
)
async def test_the_secret_takes_hs256_only(token: object, reason: str | None) -> None:
    auth = Authenticator(Settings(jwt_secret=HS_SECRET))
    if reason is None:
        assert (await auth.caller(f"Bearer {token()}", None)).user == "x"  # type: ignore[operator]
        return
    with pytest.raises(AuthError, match=reason):
        await auth.caller(f"Bearer {token()}", None)  # type: ignore[operator]


async def test_without_auth_the_agentcore_user_header_names_the_caller() -> None:
    auth = Authenticator(Settings())
    assert not auth.enabled
    caller = await auth.caller(None, "user-from-agentcore")
    assert caller.user == "user-from-agentcore" and not caller.authenticated
    assert caller.visible_accounts(REGISTRY) is None  # every account
    assert (await auth.caller("Bearer ignored", None)).user == ANONYMOUS
