"""Who is asking, and which accounts they may see.

Off by default: with neither OPSAGENT_JWT_SECRET nor OPSAGENT_JWT_JWKS_URL set, every caller
sees every account, and the caller is named by AgentCore Runtime's
X-Amzn-Bedrock-AgentCore-Runtime-User-Id header when it is set ("anonymous" otherwise).

On: every request needs `Authorization: Bearer <JWT>`, checked against the HS256 secret or
the JWKS URL's keys (RS256/ES256), plus audience and issuer when configured. `sub` names the
caller (the STS role session and the audit log); the `groups` or `cognito:groups` claim
picks the visible accounts through the registry's `groups`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import jwt

from opsagent.registry import Registry
from opsagent.service.settings import Settings

USER_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
ANONYMOUS = "anonymous"
_GROUP_CLAIMS = ("groups", "cognito:groups")


class AuthError(Exception):
    """The request carries no usable bearer token; the message says what is wrong."""


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


def _groups(claims: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for name in _GROUP_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):  # some issuers send "a b" or "a,b"
            value = value.replace(",", " ").split()
        if isinstance(value, list):
            found.extend(str(v) for v in value)
    return tuple(dict.fromkeys(found))


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.audience = settings.jwt_audience
        self.issuer = settings.jwt_issuer
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=600, timeout=10)
            if settings.jwt_jwks_url
            else None
        )

    @property
    def enabled(self) -> bool:
        return self._secret is not None or self._jwks is not None

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
            user=str(claims["sub"]), groups=_groups(claims), authenticated=True, claims=claims
        )

    async def _decode(self, token: str) -> dict[str, Any]:
        try:
            if self._jwks is not None:
                # PyJWKClient fetches over blocking urllib (then caches): keep it off the loop.
                key: Any = (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
                algorithms = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
            else:
                key, algorithms = self._secret, ["HS256"]
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the bearer token has expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError("the bearer token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("the bearer token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"the bearer token has no {exc.claim!r} claim") from None
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"no key to check the bearer token: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the bearer token is not valid: {exc}") from None
