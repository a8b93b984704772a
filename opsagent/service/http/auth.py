"""Who is asking, and which accounts they may see.

Off by default: with none of OPSAGENT_JWT_SECRET, OPSAGENT_JWT_JWKS_URL and
OPSAGENT_JWT_DISCOVERY_URL set, every caller sees every account, and the caller is named by
AgentCore Runtime's X-Amzn-Bedrock-AgentCore-Runtime-User-Id header when it is set
("anonymous" otherwise).

On: every request needs `Authorization: Bearer <JWT>`, checked the way AgentCore Runtime's
`customJWTAuthorizer` checks it (discoveryUrl, allowedAudience, allowedClients;
https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/inbound-jwt-authorizer.html):

* keys: an OIDC discovery document (its `issuer` and `jwks_uri`), a JWKS URL, or an HS256
  secret, exactly one of them. The JWKS is read once at start (unreadable, the service does
  not start), kept, and read again when a token names a key it does not hold (the issuer
  rotated its keys), at most once per OPSAGENT_JWT_JWKS_MIN_REFRESH_SECONDS so a flood of
  made-up `kid`s cannot hammer the issuer; and once it is an hour old.
* algorithms: RS256/RS384/RS512/ES256/ES384/PS256 with a JWKS, HS256 with the secret, nothing
  else: `alg: none` and an HS256 token against a public key (key confusion) are refused. Keys
  a token carries or points to (`jwk`, `jku`, `x5u`) are never used.
* claims: `exp` and `sub` required; `exp`, `nbf` and `iat` with OPSAGENT_JWT_LEEWAY_SECONDS of
  clock skew; `iss` against the discovery document's issuer (or OPSAGENT_JWT_ISSUER); `aud`
  against OPSAGENT_JWT_ALLOWED_AUDIENCES; `client_id` against OPSAGENT_JWT_ALLOWED_CLIENTS.
  AgentCore checks allowedAudience against `aud` and allowedClients against `client_id` (the
  page above); each list that is set must match. Cognito puts the app client in an ID
  token's `aud` but in an access token's `client_id` (and gives access tokens no `aud`), so
  Cognito access tokens go with allowed clients, ID tokens with allowed audiences.

`sub` names the caller (the STS role session and the audit log); the groups claim
(OPSAGENT_JWT_GROUPS_CLAIM; unset: `groups`, or Cognito's `cognito:groups`) picks the
visible accounts through the registry's `groups`. A token without that claim is refused
with a 401 naming the claim and the setting, not let in to see nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from opsagent.registry import Registry
from opsagent.service.settings import Settings, jwt_url_problem

log = logging.getLogger("opsagent.service")

USER_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
ANONYMOUS = "anonymous"
# Unset OPSAGENT_JWT_GROUPS_CLAIM: the generic claim, then Cognito's (as before the setting).
DEFAULT_GROUP_CLAIMS = ("groups", "cognito:groups")
GROUPS_SETTING = "OPSAGENT_JWT_GROUPS_CLAIM"
# Asymmetric algorithms for a JWKS, with the key type and curve each needs.
KEY_ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
}
SECRET_ALGORITHMS = ("HS256",)
# A JWKS is read again once this old even when no token asks, so a key the issuer withdrew
# stops being accepted.
JWKS_MAX_AGE = 3600.0
FETCH_TIMEOUT = 10.0
MAX_DOCUMENT_BYTES = 1 << 20  # a discovery document or a JWKS is a few KiB


class AuthError(Exception):
    """The request carries no usable bearer token; the message says what is wrong."""


class AuthStartError(RuntimeError):
    """The token check cannot be set up (discovery document or JWKS unreadable): the service
    must not start. The message is one line naming the setting and what failed."""


@dataclass(frozen=True)
class Caller:
    user: str
    groups: tuple[str, ...] = ()
    # Verified by a token: only then do threads belong to a user and groups limit accounts.
    authenticated: bool = False
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def visible_accounts(self, registry: Registry) -> set[str] | None:
        """Account ids this caller may query; None means all (no auth configured)."""
        if not self.authenticated:
            return None
        return registry.visible_to(list(self.groups))


def _group_names(value: Any, claim: str) -> list[str]:
    if isinstance(value, str):  # some issuers send "a b" or "a,b"
        return value.replace(",", " ").split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise AuthError(f"the bearer token's {claim!r} claim is not a list of group names")


def _groups(claims: dict[str, Any], names: tuple[str, ...]) -> tuple[str, ...]:
    present = [name for name in names if name in claims]
    if not present:
        said = " or ".join(repr(name) for name in names)
        raise AuthError(
            f"the bearer token has no {said} claim: {GROUPS_SETTING} names the claim that "
            "lists the caller's groups"
        )
    found: list[str] = []
    for name in present:
        found.extend(_group_names(claims[name], name))
    return tuple(dict.fromkeys(found))


async def _fetch_json(setting: str, url: str) -> dict[str, Any]:
    """A small JSON document over HTTP(S), without blocking the event loop; AuthStartError
    naming the setting and what went wrong otherwise."""
    try:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT) as http,
            http.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise AuthStartError(
                    f"{setting}: {url} cannot be read: HTTP {response.status_code}"
                )
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise AuthStartError(f"{setting}: {url} is larger than 1 MiB")
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise AuthStartError(f"{setting}: {url} cannot be read: {reason}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise AuthStartError(f"{setting}: {url} is not JSON") from None
    if not isinstance(document, dict):
        raise AuthStartError(f"{setting}: {url} is not a JSON object")
    return document


@dataclass(frozen=True)
class _Key:
    kid: str | None
    kty: str
    crv: str | None
    alg: str | None  # the JWK's own `alg`, when it names one
    public_key: Any


def _parse_jwks(setting: str, url: str, document: dict[str, Any]) -> list[_Key]:
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise AuthStartError(f"{setting}: {url} is not a JWKS (no 'keys' list)")
    keys: list[_Key] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kty = entry.get("kty")
        # Only public keys of the asymmetric families: never an `oct` (shared secret) key,
        # never one with private parts.
        if kty not in ("RSA", "EC") or "d" in entry:
            continue
        alg = entry.get("alg")
        if alg is not None and alg not in KEY_ALGORITHMS:
            continue
        try:
            public_key = (RSAAlgorithm if kty == "RSA" else ECAlgorithm).from_jwk(entry)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        kid = entry.get("kid")
        keys.append(
            _Key(
                kid=str(kid) if kid is not None else None,
                kty=kty,
                crv=entry.get("crv"),
                alg=alg,
                public_key=public_key,
            )
        )
    if not keys:
        raise AuthStartError(
            f"{setting}: {url} holds no RSA or EC signing key this service can use"
        )
    return keys


class KeySet:
    """An issuer's JWKS, read once and kept; read again for a `kid` it does not hold, at most
    once per ``min_refresh`` seconds, and once it is ``max_age`` old.

    Not PyJWT's PyJWKClient: it reads over blocking urllib (a thread per read on an event
    loop) and reads the JWKS again for every unknown `kid` with no limit.
    """

    def __init__(
        self, setting: str, url: str, *, min_refresh: float, max_age: float = JWKS_MAX_AGE
    ) -> None:
        self.setting = setting
        self.url = url
        self.min_refresh = min_refresh
        self.max_age = max_age
        self._keys: list[_Key] = []
        self._read_at = float("-inf")  # last successful read
        self._tried_at = float("-inf")  # last attempt, successful or not
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the JWKS now (AuthStartError when it cannot be read or holds no usable key)."""
        self._tried_at = time.monotonic()
        self._keys = _parse_jwks(self.setting, self.url, await _fetch_json(self.setting, self.url))
        self._read_at = time.monotonic()

    async def _refresh(self, why: str) -> None:
        """Read again unless the last attempt was under ``min_refresh`` ago; a failed read
        keeps the keys held (logged)."""
        async with self._lock:
            if time.monotonic() - self._tried_at < self.min_refresh:
                return
            try:
                await self.load()
                log.info(json.dumps({"event": "jwks_refreshed", "reason": why}))
            except AuthStartError as exc:
                log.warning(json.dumps({"event": "jwks_refresh_failed", "message": str(exc)}))

    def _find(self, kid: str | None) -> _Key | None:
        if kid is None:  # no kid: only an issuer with one key can be meant
            return self._keys[0] if len(self._keys) == 1 else None
        return next((key for key in self._keys if key.kid == kid), None)

    async def key(self, kid: str | None) -> _Key:
        if time.monotonic() - self._read_at > self.max_age:
            await self._refresh("max_age")
        found = self._find(kid)
        if found is None:
            await self._refresh("unknown_kid")  # the issuer may have rotated its keys
            found = self._find(kid)
        if found is None:
            raise AuthError(
                "the bearer token is signed with an unknown signing key"
                if kid is not None
                else "the bearer token names no signing key (kid) and the issuer has several"
            )
        return found


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._discovery_url = (settings.jwt_discovery_url or "").strip() or None
        self._jwks_url = (settings.jwt_jwks_url or "").strip() or None
        self.issuer = settings.jwt_issuer
        # OPSAGENT_JWT_AUDIENCE is the older, one-value form of the allowed audiences.
        self.audiences: list[str] | None = settings.jwt_allowed_audiences or (
            [settings.jwt_audience] if settings.jwt_audience else None
        )
        self.clients: list[str] | None = settings.jwt_allowed_clients
        claim = (settings.jwt_groups_claim or "").strip()
        self.group_claims: tuple[str, ...] = (claim,) if claim else DEFAULT_GROUP_CLAIMS
        self.leeway = settings.jwt_leeway_seconds
        self._min_refresh = settings.jwt_jwks_min_refresh_seconds
        self._keys: KeySet | None = (
            KeySet("OPSAGENT_JWT_JWKS_URL", self._jwks_url, min_refresh=self._min_refresh)
            if self._jwks_url
            else None
        )
        self._started = False
        self._start_lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return (
            self._secret is not None
            or self._jwks_url is not None
            or self._discovery_url is not None
        )

    async def start(self) -> None:
        """Read the discovery document and the JWKS once; AuthStartError (one line: the
        setting, the URL and what failed) when either cannot be read or does not fit."""
        async with self._start_lock:
            if self._started:
                return
            try:
                if self._discovery_url:
                    await self._discover(self._discovery_url)
                if self._keys is not None:
                    await self._keys.load()
            except AuthStartError as exc:
                log.error(json.dumps({"event": "auth_start_failed", "message": str(exc)}))
                raise
            self._started = True

    async def _discover(self, url: str) -> None:
        setting = "OPSAGENT_JWT_DISCOVERY_URL"
        document = await _fetch_json(setting, url)
        issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
        if not isinstance(issuer, str) or not issuer:
            raise AuthStartError(f"{setting}: the discovery document at {url} has no 'issuer'")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise AuthStartError(f"{setting}: the discovery document at {url} has no 'jwks_uri'")
        problem = jwt_url_problem(f"{setting}: the discovery document's jwks_uri", jwks_uri)
        if problem:
            raise AuthStartError(problem)
        if self.issuer is not None and self.issuer != issuer:
            raise AuthStartError(
                f"OPSAGENT_JWT_ISSUER is {self.issuer!r} but the discovery document at {url} "
                f"names issuer {issuer!r}: unset OPSAGENT_JWT_ISSUER or fix the URL"
            )
        self.issuer = issuer
        self._keys = KeySet(f"{setting} (jwks_uri)", jwks_uri, min_refresh=self._min_refresh)

    async def caller(self, authorization: str | None, user_header: str | None) -> Caller:
        if not self.enabled:
            return Caller(user=(user_header or "").strip() or ANONYMOUS)
        if not authorization:
            raise AuthError("this service needs an Authorization: Bearer <token> header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        claims = await self._decode(token.strip())
        return Caller(
            user=str(claims["sub"]),
            groups=_groups(claims, self.group_claims),
            authenticated=True,
            claims=claims,
        )

    async def _ensure_started(self) -> None:
        if self._started:
            return
        try:  # the service starts it in its lifespan; this is for other embedders
            await self.start()
        except AuthStartError:
            raise AuthError("the service cannot check bearer tokens now") from None

    async def _key_and_algorithm(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"the bearer token is not valid: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise AuthError("the bearer token is unsigned (alg 'none'): a signed token is needed")
        allowed = SECRET_ALGORITHMS if self._secret is not None else tuple(KEY_ALGORITHMS)
        if alg not in allowed:
            raise AuthError(
                f"the bearer token's algorithm {alg[:20]!r} is not allowed here "
                f"(allowed: {', '.join(allowed)})"
            )
        if self._secret is not None:
            return self._secret, alg
        await self._ensure_started()
        assert self._keys is not None
        kid = header.get("kid")
        key = await self._keys.key(str(kid) if kid is not None else None)
        kty, crv = KEY_ALGORITHMS[alg]
        # The token's algorithm must fit the key it names: RSA for RS*/PS*, EC on the right
        # curve for ES*, and the JWK's own `alg` when it states one.
        if key.kty != kty or (crv is not None and key.crv != crv) or key.alg not in (None, alg):
            raise AuthError(
                f"the bearer token's algorithm {alg!r} is not allowed for its signing key"
            )
        return key.public_key, alg

    async def _decode(self, token: str) -> dict[str, Any]:
        key, alg = await self._key_and_algorithm(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audiences,
                issuer=self.issuer,
                options={"require": ["exp", "sub"], "verify_aud": self.audiences is not None},
                leeway=self.leeway,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the bearer token has expired") from None
        except jwt.ImmatureSignatureError as exc:
            which = "issued in the future" if "iat" in str(exc) else "its nbf is in the future"
            raise AuthError(f"the bearer token is not yet valid ({which})") from None
        except jwt.InvalidAudienceError:
            raise AuthError("the bearer token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("the bearer token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"the bearer token has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthError(
                "the bearer token is not valid: its signature does not verify"
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"the bearer token is not valid: {exc}") from None
        if self.clients is not None:
            client = claims.get("client_id")
            if client is None:
                raise AuthError(
                    "the bearer token has no 'client_id' claim: OPSAGENT_JWT_ALLOWED_CLIENTS "
                    "checks an access token's client_id (an ID token names its client in "
                    "'aud': that is OPSAGENT_JWT_ALLOWED_AUDIENCES)"
                )
            if client not in self.clients:
                raise AuthError(
                    "the bearer token's client is not allowed (its client_id is not in "
                    "OPSAGENT_JWT_ALLOWED_CLIENTS)"
                )
        return claims
