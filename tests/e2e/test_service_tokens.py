"""Bearer tokens checked as AgentCore Runtime's customJWTAuthorizer checks them, end to end.

Two real token issuers on loopback, each in front of a real `opsagent serve` process that
answers from the session's sandbox accounts through a registry with groups:

* moto's Cognito user pools (a moto server process): AdminInitiateAuth gives RS256-signed ID
  and access tokens, and moto serves the pool's `/.well-known/jwks.json` and
  `/.well-known/openid-configuration`. What it cannot do: rotate keys (one fixed key, kid
  "dummy", whose private half ships with moto), mint expired or not-yet-valid tokens, or
  put anything but `cognito:groups` in a token.
* so, for the rest, a small OIDC issuer here (PyJWT + cryptography over http.server): a
  discovery document naming itself as issuer, a JWKS whose keys can be added and withdrawn,
  and a count of every JWKS read, to see the service's refresh and its rate limit.

Every test asserts what a caller sees: the status and the message.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

from tests.service_helpers import (
    OPSAGENT,
    PRODUCTION,
    STAGING,
    ServiceProcess,
    bearer,
    clean_env,
    demo_registry,
    free_port,
    moto_server,
)

GROUPS = {"prod-team": ["production"], "operators": ["all"]}
AUDIENCE = "opsagent"
CLIENT = "opsagent-cli"
REFRESH_SECONDS = 5.0  # OPSAGENT_JWT_JWKS_MIN_REFRESH_SECONDS of the local issuer's service
IN_PRODUCTION = "Show me S3 buckets in production"
IN_STAGING = "List EC2 instances in staging"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


class Issuer:
    """An OIDC issuer on 127.0.0.1: discovery document, JWKS with keys that rotate, tokens."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}  # kid -> private key, every key ever made
        self.published: list[str] = []  # kids in the JWKS now
        self.signing_kid = ""
        self.jwks_reads: list[float] = []  # time.monotonic() of each JWKS read
        self.documents: dict[str, tuple[int, bytes]] = {}  # path -> (status, body) overrides
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, body = issuer.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.discovery_url = f"{self.url}/.well-known/openid-configuration"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.rotate("key-1")
        self.add("ec-1", ec.generate_private_key(ec.SECP256R1()), sign_with=False)

    def answer(self, path: str) -> tuple[int, bytes]:
        if path in self.documents:
            return self.documents[path]
        if path == "/.well-known/openid-configuration":
            document = {
                "issuer": self.url,
                "jwks_uri": f"{self.url}/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }
            return 200, json.dumps(document).encode()
        if path == "/jwks.json":
            with self._lock:
                self.jwks_reads.append(time.monotonic())
                keys = [self._jwk(kid) for kid in self.published]
            return 200, json.dumps({"keys": keys}).encode()
        return 404, b'{"message": "not found"}'

    def _jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        if isinstance(key, rsa.RSAPrivateKey):
            jwk, alg = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "RS256"
        else:
            jwk, alg = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "ES256"
        return {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def add(self, kid: str, key: Any = None, *, sign_with: bool = True) -> None:
        """Publish another key (a new RSA key by default), and sign with it from now on."""
        with self._lock:
            self.keys[kid] = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.published.append(kid)
            if sign_with:
                self.signing_kid = kid

    def rotate(self, kid: str) -> None:
        """A new RSA signing key; the RSA keys published before it are withdrawn."""
        with self._lock:
            self.published = [k for k in self.published if k.startswith("ec-")]
        self.add(kid)

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "sub": "olivia",
            "iss": self.url,
            "aud": AUDIENCE,
            "client_id": CLIENT,
            "roles": ["prod-team"],
            "iat": now,
            "exp": now + 300,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, *, kid: str | None = None, alg: str | None = None, **changes: Any) -> str:
        kid = kid or self.signing_kid
        key = self.keys[kid]
        alg = alg or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(self.claims(**changes), key, algorithm=alg, headers={"kid": kid})

    def public_pem(self, kid: str) -> bytes:
        return (
            self.keys[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def last_read(self) -> float:
        with self._lock:
            return self.jwks_reads[-1]

    def reads(self) -> int:
        with self._lock:
            return len(self.jwks_reads)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def unsigned(claims: dict[str, Any]) -> str:
    """`alg: none`: no signature at all."""
    return _segments({"alg": "none", "typ": "JWT"}, claims) + "."


def hs256_with_public_key(claims: dict[str, Any], kid: str, public_pem: bytes) -> str:
    """The key-confusion attack: HS256 "signed" with the issuer's public key as the secret."""
    signing_input = _segments({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def service_env(external_env: dict[str, str], workdir: Path, mcp: str, **jwt_env: str) -> dict:
    registry = workdir / "registry.json"
    registry.write_text(json.dumps(demo_registry(GROUPS)))
    return {
        **external_env,
        "OPSAGENT_REGISTRY": str(registry),
        "OPSAGENT_MCP_ENDPOINT": mcp,
        "OPSAGENT_CHECKPOINT_URL": "memory://",
        **jwt_env,
    }


async def post(client: httpx.AsyncClient, question: str, token: str) -> httpx.Response:
    return await client.post("/invocations", json={"prompt": question}, headers=bearer(token))


def assert_401(response: httpx.Response, *says: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "unauthorized"
    for words in says:
        assert words in body["message"], body["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def assert_answered_from(response: httpx.Response, accounts: set[str]) -> None:
    assert response.status_code == 200, response.text
    assert {a["account_id"] for a in response.json()["accounts"]} == accounts


# ------------------------------------------------------------------ the local OIDC issuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    local = Issuer()
    yield local
    local.close()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
    sandbox: Any,
    external_env: dict[str, str],
    issuer: Issuer,
) -> Iterator[ServiceProcess]:
    workdir = tmp_path_factory.mktemp("tokens")
    env = service_env(
        external_env,
        workdir,
        sandbox.mcp_endpoint,
        OPSAGENT_JWT_DISCOVERY_URL=issuer.discovery_url,
        OPSAGENT_JWT_ALLOWED_AUDIENCES=f"{AUDIENCE},another-api",
        OPSAGENT_JWT_ALLOWED_CLIENTS=json.dumps([CLIENT]),
        OPSAGENT_JWT_GROUPS_CLAIM="roles",
        OPSAGENT_JWT_LEEWAY_SECONDS="30",
        OPSAGENT_JWT_JWKS_MIN_REFRESH_SECONDS=str(REFRESH_SECONDS),
    )
    with ServiceProcess(env, workdir) as proc:
        yield proc


@pytest.fixture
async def client(service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
        yield http


async def test_a_token_from_the_discovered_issuer_answers_from_the_callers_accounts(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    assert_answered_from(await post(client, IN_PRODUCTION, issuer.token()), {PRODUCTION})
    # The `roles` claim (OPSAGENT_JWT_GROUPS_CLAIM) decides: prod-team may not see staging.
    refused = await post(client, IN_STAGING, issuer.token())
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert STAGING in refused.json()["message"]
    operator = issuer.token(roles=["operators"], sub="oscar")
    assert_answered_from(await post(client, IN_STAGING, operator), {STAGING})
    # ES256 from the same JWKS, and an audience that is one of several, in a list.
    es256 = issuer.token(kid="ec-1", aud=["another-api", "elsewhere"])
    assert_answered_from(await post(client, IN_PRODUCTION, es256), {PRODUCTION})


async def test_clock_skew_within_the_leeway_is_allowed(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    now = int(time.time())
    late = issuer.token(exp=now - 10, iat=now - 310)  # expired 10 s ago; leeway 30 s
    assert_answered_from(await post(client, IN_PRODUCTION, late), {PRODUCTION})
    early = issuer.token(nbf=now + 10)  # valid in 10 s
    assert_answered_from(await post(client, IN_PRODUCTION, early), {PRODUCTION})


BAD_TOKENS = {
    "expired": (
        lambda i: i.token(exp=int(time.time()) - 120, iat=int(time.time()) - 600),
        ["has expired"],
    ),
    "not-yet-valid": (lambda i: i.token(nbf=int(time.time()) + 600), ["not yet valid", "nbf"]),
    "issued-in-the-future": (
        lambda i: i.token(iat=int(time.time()) + 600, exp=int(time.time()) + 900),
        ["not yet valid", "issued in the future"],
    ),
    "wrong-issuer": (lambda i: i.token(iss="https://idp.example.com"), ["another issuer"]),
    "wrong-audience": (lambda i: i.token(aud="someone-elses-api"), ["another audience"]),
    "no-audience": (lambda i: i.token(aud=None), ["no 'aud' claim"]),
    "wrong-client": (
        lambda i: i.token(client_id="some-other-app"),
        ["client is not allowed", "OPSAGENT_JWT_ALLOWED_CLIENTS"],
    ),
    "no-client-id": (
        lambda i: i.token(client_id=None),
        ["no 'client_id' claim", "OPSAGENT_JWT_ALLOWED_AUDIENCES"],
    ),
    "no-sub": (lambda i: i.token(sub=None), ["no 'sub' claim"]),
    "alg-none": (lambda i: unsigned(i.claims()), ["unsigned", "alg 'none'"]),
    "hs256-against-rs256-key": (
        lambda i: hs256_with_public_key(i.claims(), i.signing_kid, i.public_pem(i.signing_kid)),
        ["algorithm 'HS256' is not allowed"],
    ),
    "es256-header-on-rsa-key": (
        lambda i: _segments({"alg": "ES256", "kid": i.signing_kid}, i.claims()) + ".c2ln",
        ["algorithm 'ES256' is not allowed for its signing key"],
    ),
    "another-key-same-kid": (
        lambda i: jwt.encode(
            i.claims(),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": i.signing_kid},
        ),
        ["not valid", "signature does not verify"],
    ),
    "garbage": (lambda i: "not-a-jwt", ["not valid"]),
}


@pytest.mark.parametrize(("make", "says"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_a_bad_token_is_401_saying_what_is_wrong(
    client: httpx.AsyncClient, issuer: Issuer, make: Any, says: list[str]
) -> None:
    response = await post(client, IN_PRODUCTION, make(issuer))
    assert_401(response, *says)
    assert "PRIVATE" not in response.text and "BEGIN" not in response.text  # no key material


async def test_a_token_without_the_groups_claim_is_401_naming_claim_and_setting(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    # `groups` is not the claim this service reads (OPSAGENT_JWT_GROUPS_CLAIM=roles).
    token = issuer.token(roles=None, groups=["prod-team"])
    assert_401(
        await post(client, IN_PRODUCTION, token), "no 'roles' claim", "OPSAGENT_JWT_GROUPS_CLAIM"
    )
    assert_401(
        await post(client, IN_PRODUCTION, issuer.token(roles={"a": 1})),
        "'roles' claim is not a list of group names",
    )
    # Present and empty: a caller in no group, who sees no account.
    nothing = await post(client, IN_PRODUCTION, issuer.token(roles=[]))
    assert nothing.status_code == 403 and nothing.json()["error"] == "forbidden"


async def test_an_unknown_kid_reads_the_jwks_again_at_a_limited_rate(
    client: httpx.AsyncClient, issuer: Issuer
) -> None:
    def forged() -> str:  # a kid the issuer never published, signed by a key of its own
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(
            issuer.claims(), key, algorithm="RS256", headers={"kid": uuid.uuid4().hex}
        )

    tokens = [forged() for _ in range(20)]
    # Out of the rate limit's window since the service's last read (its start).
    await asyncio.sleep(max(0.0, issuer.last_read() + REFRESH_SECONDS + 0.5 - time.monotonic()))

    # The issuer rotates: a new signing key, the old one withdrawn. Its first token names a
    # kid the service has not seen: it reads the JWKS once, and lets the token in.
    issuer.rotate("key-2")
    before = issuer.reads()
    assert_answered_from(await post(client, IN_PRODUCTION, issuer.token()), {PRODUCTION})
    assert issuer.reads() == before + 1
    refreshed_at = issuer.last_read()

    # A flood of made-up kids: every one refused, and no further read inside the window.
    started = time.monotonic()
    flood = await asyncio.gather(*(post(client, IN_PRODUCTION, t) for t in tokens))
    elapsed = time.monotonic() - started
    for response in flood:
        assert_401(response, "unknown signing key")
    assert issuer.reads() - (before + 1) <= int(elapsed // REFRESH_SECONDS)

    # The withdrawn key is not accepted any more.
    assert_401(await post(client, IN_PRODUCTION, issuer.token(kid="key-1")), "unknown signing key")

    # Another rotation inside the window waits for it: refused now, let in once it passed.
    issuer.rotate("key-3")
    if time.monotonic() - refreshed_at < REFRESH_SECONDS - 1:
        assert_401(await post(client, IN_PRODUCTION, issuer.token()), "unknown signing key")
    await asyncio.sleep(max(0.0, refreshed_at + REFRESH_SECONDS + 0.5 - time.monotonic()))
    reads = issuer.reads()
    assert_answered_from(await post(client, IN_PRODUCTION, issuer.token()), {PRODUCTION})
    assert issuer.reads() == reads + 1


# ------------------------------------------------------------- moto's Cognito user pools


@pytest.fixture(scope="module")
def cognito() -> Iterator[dict[str, str]]:
    """A user pool in a moto server process: its discovery URL, app client and tokens."""
    with moto_server() as endpoint:
        idp = boto3.client(
            "cognito-idp",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        pool = idp.create_user_pool(PoolName="opsagent-users")["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool,
            ClientName="opsagent",
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        idp.create_group(UserPoolId=pool, GroupName="prod-team")
        tokens: dict[str, str] = {}
        for user, groups in (("paula", ["prod-team"]), ("nobody", [])):
            password = f"Correct-Horse-{uuid.uuid4().hex[:8]}-1"
            idp.admin_create_user(UserPoolId=pool, Username=user, MessageAction="SUPPRESS")
            idp.admin_set_user_password(
                UserPoolId=pool, Username=user, Password=password, Permanent=True
            )
            for group in groups:
                idp.admin_add_user_to_group(UserPoolId=pool, Username=user, GroupName=group)
            result = idp.admin_initiate_auth(
                UserPoolId=pool,
                ClientId=client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": user, "PASSWORD": password},
            )["AuthenticationResult"]
            tokens[f"{user}_access"] = result["AccessToken"]
            tokens[f"{user}_id"] = result["IdToken"]
        yield {
            "discovery_url": f"{endpoint}/{pool}/.well-known/openid-configuration",
            "client_id": client_id,
            **tokens,
        }


@pytest.fixture(scope="module")
def cognito_service(
    tmp_path_factory: pytest.TempPathFactory,
    sandbox: Any,
    external_env: dict[str, str],
    cognito: dict[str, str],
) -> Iterator[ServiceProcess]:
    workdir = tmp_path_factory.mktemp("cognito")
    env = service_env(
        external_env,
        workdir,
        sandbox.mcp_endpoint,
        # As an AgentCore Runtime authorizer for a Cognito pool: discoveryUrl + allowedClients.
        OPSAGENT_JWT_DISCOVERY_URL=cognito["discovery_url"],
        OPSAGENT_JWT_ALLOWED_CLIENTS=cognito["client_id"],
        OPSAGENT_JWT_GROUPS_CLAIM="cognito:groups",
    )
    with ServiceProcess(env, workdir) as proc:
        yield proc


@pytest.fixture
async def cognito_client(cognito_service: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cognito_service.url, timeout=60) as http:
        yield http


async def test_a_cognito_access_token_and_its_cognito_groups_claim(
    cognito_client: httpx.AsyncClient, cognito: dict[str, str]
) -> None:
    access = cognito["paula_access"]
    assert_answered_from(await post(cognito_client, IN_PRODUCTION, access), {PRODUCTION})
    refused = await post(cognito_client, IN_STAGING, access)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    # Cognito leaves `cognito:groups` out for a user in no group: a 401 that says so.
    assert_401(
        await post(cognito_client, IN_PRODUCTION, cognito["nobody_access"]),
        "no 'cognito:groups' claim",
        "OPSAGENT_JWT_GROUPS_CLAIM",
    )


async def test_a_cognito_id_token_carries_no_client_id_for_allowed_clients(
    cognito_client: httpx.AsyncClient, cognito: dict[str, str]
) -> None:
    # An ID token names its app client in `aud`, not `client_id` (AgentCore's allowedClients
    # checks `client_id`): refused, and the message says which setting fits it.
    assert_401(
        await post(cognito_client, IN_PRODUCTION, cognito["paula_id"]),
        "no 'client_id' claim",
        "OPSAGENT_JWT_ALLOWED_AUDIENCES",
    )


# ------------------------------------------------------- settings that must stop the start


def _serve(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`opsagent serve` that is expected to stop by itself."""
    return subprocess.run(
        [OPSAGENT, "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env=clean_env(OPSAGENT_CHECKPOINT_URL="memory://", **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _dead_url(path: str) -> str:
    return f"http://127.0.0.1:{free_port()}{path}"  # nothing listens there


UNREADABLE = {
    "discovery-unreachable": (
        lambda i: {"OPSAGENT_JWT_DISCOVERY_URL": _dead_url("/.well-known/openid-configuration")},
        "OPSAGENT_JWT_DISCOVERY_URL: http://127.0.0.1:",
    ),
    "discovery-404": (
        lambda i: {"OPSAGENT_JWT_DISCOVERY_URL": f"{i.url}/gone/.well-known/openid-configuration"},
        "/gone/.well-known/openid-configuration cannot be read: HTTP 404",
    ),
    "discovery-without-jwks-uri": (
        lambda i: {"OPSAGENT_JWT_DISCOVERY_URL": f"{i.url}/bare/.well-known/openid-configuration"},
        "has no 'jwks_uri'",
    ),
    "jwks-uri-unreachable": (
        lambda i: {
            "OPSAGENT_JWT_DISCOVERY_URL": f"{i.url}/dangling/.well-known/openid-configuration"
        },
        "OPSAGENT_JWT_DISCOVERY_URL (jwks_uri): http://127.0.0.1:",
    ),
    "jwks-url-unreachable": (
        lambda i: {"OPSAGENT_JWT_JWKS_URL": _dead_url("/.well-known/jwks.json")},
        "OPSAGENT_JWT_JWKS_URL: http://127.0.0.1:",
    ),
}


@pytest.mark.parametrize(("make", "says"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_keys_that_cannot_be_read_at_start_stop_the_service(
    issuer: Issuer, tmp_path: Path, make: Any, says: str
) -> None:
    issuer.documents["/bare/.well-known/openid-configuration"] = (
        200,
        json.dumps({"issuer": issuer.url}).encode(),
    )
    issuer.documents["/dangling/.well-known/openid-configuration"] = (
        200,
        json.dumps({"issuer": issuer.url, "jwks_uri": _dead_url("/jwks.json")}).encode(),
    )
    done = _serve({**make(issuer), "OPSAGENT_JWT_ALLOWED_AUDIENCES": AUDIENCE}, tmp_path)
    assert done.returncode != 0, done.stderr
    # One log line says what is wrong (then uvicorn's traceback and its refusal to start).
    failed = [line for line in done.stderr.splitlines() if "auth_start_failed" in line]
    assert len(failed) == 1, done.stderr
    assert says in failed[0], failed[0]
    assert "Application startup failed" in done.stderr


SETTINGS_REFUSED = {
    "discovery-and-jwks": (
        {
            "OPSAGENT_JWT_DISCOVERY_URL": "https://idp.example.com/.well-known/openid-configuration",
            "OPSAGENT_JWT_JWKS_URL": "https://idp.example.com/jwks.json",
            "OPSAGENT_JWT_ALLOWED_AUDIENCES": AUDIENCE,
        },
        "OPSAGENT_JWT_JWKS_URL and OPSAGENT_JWT_DISCOVERY_URL are set together: set one of them",
    ),
    "secret-and-discovery": (
        {
            "OPSAGENT_JWT_SECRET": "s" * 40,
            "OPSAGENT_JWT_DISCOVERY_URL": "https://idp.example.com/.well-known/openid-configuration",
            "OPSAGENT_JWT_ALLOWED_AUDIENCES": AUDIENCE,
        },
        "OPSAGENT_JWT_SECRET and OPSAGENT_JWT_DISCOVERY_URL are set together",
    ),
    "discovery-without-audience-or-client": (
        {"OPSAGENT_JWT_DISCOVERY_URL": "https://idp.example.com/.well-known/openid-configuration"},
        "OPSAGENT_JWT_DISCOVERY_URL needs OPSAGENT_JWT_ALLOWED_AUDIENCES or "
        "OPSAGENT_JWT_ALLOWED_CLIENTS",
    ),
    "discovery-not-a-discovery-document": (
        {
            "OPSAGENT_JWT_DISCOVERY_URL": "https://idp.example.com/jwks.json",
            "OPSAGENT_JWT_ALLOWED_CLIENTS": CLIENT,
        },
        "OPSAGENT_JWT_DISCOVERY_URL must end with /.well-known/openid-configuration",
    ),
    "discovery-over-plain-http": (
        {
            "OPSAGENT_JWT_DISCOVERY_URL": "http://idp.example.com/.well-known/openid-configuration",
            "OPSAGENT_JWT_ALLOWED_CLIENTS": CLIENT,
        },
        "is plain HTTP to another host: signing keys need HTTPS",
    ),
    "allowed-clients-without-keys": (
        {"OPSAGENT_JWT_ALLOWED_CLIENTS": CLIENT},
        "OPSAGENT_JWT_ALLOWED_CLIENTS is set but no token is checked",
    ),
    "empty-allowed-audiences": (
        {
            "OPSAGENT_JWT_DISCOVERY_URL": "https://idp.example.com/.well-known/openid-configuration",
            "OPSAGENT_JWT_ALLOWED_AUDIENCES": "",
        },
        "OPSAGENT_JWT_ALLOWED_AUDIENCES is set but empty",
    ),
    "audience-and-allowed-audiences": (
        {
            "OPSAGENT_JWT_SECRET": "s" * 40,
            "OPSAGENT_JWT_AUDIENCE": AUDIENCE,
            "OPSAGENT_JWT_ALLOWED_AUDIENCES": AUDIENCE,
        },
        "OPSAGENT_JWT_AUDIENCE is the older one-value form, keep only "
        "OPSAGENT_JWT_ALLOWED_AUDIENCES",
    ),
    "leeway-out-of-bounds": (
        {"OPSAGENT_JWT_LEEWAY_SECONDS": "3600"},
        "OPSAGENT_JWT_LEEWAY_SECONDS",
    ),
}


@pytest.mark.parametrize(("env", "says"), SETTINGS_REFUSED.values(), ids=SETTINGS_REFUSED.keys())
def test_ambiguous_or_weakening_settings_stop_the_start_in_one_line(
    env: dict[str, str], says: str
) -> None:
    from opsagent.service.cli import app

    # `opsagent serve` in this process: the settings stop it before anything listens.
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("OPSAGENT_")}
    result = CliRunner().invoke(app, ["serve"], env={**unset, **env})
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: invalid settings"), result.output
    assert says in result.output and result.output.count("\n") == 1, result.output
