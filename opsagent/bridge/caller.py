"""Who asks: the user and groups the bridge attributes every AssumeRole to and limits accounts by.

Two modes, chosen by the same settings as the agent's HTTP service (``service/http/auth.py``):

* **Tokens checked** (any of ``OPSAGENT_JWT_SECRET``, ``OPSAGENT_JWT_JWKS_URL``,
  ``OPSAGENT_JWT_DISCOVERY_URL`` set): every call must carry the caller's JWT in a header the
  Gateway propagates to the Lambda (``handler.py`` says which and why), and the bridge checks
  it itself with the agent's own ``Authenticator``: signature against the issuer's keys,
  algorithm, ``exp``/``nbf``/``iat``, ``iss``, ``aud``/``client_id``, and the groups claim.
  ``sub`` is the user, the groups claim the groups; the registry's ``groups`` limit the
  accounts. A call without a token, or with one that does not verify, is refused: it never
  falls back to the service identity.
* **No token checked** (none of them set): the bridge is one service identity,
  ``OPSAGENT_USER`` (default ``opsagent-bridge``), with no groups, seeing every account, as
  the agent's service does with authentication off. Headers that claim a caller are ignored,
  never believed; the audit record says when a token came along unchecked.

Either way the caller becomes an ``Asker`` (``access/identity.py``): the role session name,
SourceIdentity and session tags of every AssumeRole name them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsagent.access import Asker
from opsagent.registry import Registry
from opsagent.service.settings import Settings

if TYPE_CHECKING:
    from opsagent.service.http.auth import Authenticator

# Where the Gateway puts the request headers it propagates to a Lambda target.
PROPAGATED_HEADERS_KEY = "bedrockAgentCorePropagatedHeaders"
# The caller's bearer token: the Authorization header itself (when a REQUEST interceptor
# forwards it) or a copy in a header of our own, allow-listed for propagation on the target.
AUTHORIZATION_HEADER = "Authorization"
TOKEN_HEADER = "X-Opsagent-Token"


class CallerError(Exception):
    """The call does not say verifiably who asks; the message says what is wrong."""


class CallerSetupError(Exception):
    """Tokens cannot be checked now (discovery document or JWKS unreadable)."""


@dataclass(frozen=True)
class Caller:
    user: str
    groups: tuple[str, ...] = ()
    # From a token the bridge checked; only then do the registry's groups limit accounts.
    verified: bool = False
    # A token came along although none is checked (audit only: it is not believed).
    token_ignored: bool = False

    @property
    def asker(self) -> Asker:
        return Asker(self.user, self.groups)

    def visible_accounts(self, registry: Registry) -> set[str] | None:
        """Account ids this caller may query; None means every account."""
        if not self.verified:
            return None
        return registry.visible_to(list(self.groups))

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "groups": list(self.groups), "verified": self.verified}


def propagated_headers(custom: Mapping[str, Any]) -> dict[str, str]:
    """The propagated request headers, names lower-cased (HTTP header names are
    case-insensitive, and the Gateway may deliver them lower-cased). The map may arrive as an
    object or as a JSON string. Two spellings of one name with different values: CallerError."""
    raw = custom.get(PROPAGATED_HEADERS_KEY)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise CallerError(f"{PROPAGATED_HEADERS_KEY} is not a JSON object") from None
    if not isinstance(raw, Mapping):
        return {}
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        key = name.lower()
        if key in headers and headers[key] != value:
            raise CallerError(f"the {name} header is propagated twice with different values")
        headers[key] = value
    return headers


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The caller's token from Authorization (``Bearer <jwt>``) or X-Opsagent-Token (the JWT,
    with or without ``Bearer``); both present: they must be the same token."""
    found: set[str] = set()
    authorization = headers.get(AUTHORIZATION_HEADER.lower())
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise CallerError("the propagated Authorization header must be 'Bearer <token>'")
        found.add(token.strip())
    own = headers.get(TOKEN_HEADER.lower())
    if own is not None:
        text = own.strip()
        if text[:7].lower() == "bearer ":
            text = text[7:].strip()
        if not text:
            raise CallerError(f"the propagated {TOKEN_HEADER} header is empty")
        found.add(text)
    if len(found) > 1:
        raise CallerError(
            f"the propagated {AUTHORIZATION_HEADER} and {TOKEN_HEADER} headers carry "
            "different tokens"
        )
    return next(iter(found), None)


class Callers:
    """Turns a call's propagated headers into its Caller, as the settings say."""

    def __init__(self, settings: Settings) -> None:
        self.service_user = settings.user
        self._auth: Authenticator | None = None
        if settings.jwt_secret or settings.jwt_jwks_url or settings.jwt_discovery_url:
            # Imported only when tokens are checked: PyJWT and the key handling.
            from opsagent.service.http.auth import Authenticator

            self._auth = Authenticator(settings)

    @property
    def verifies(self) -> bool:
        return self._auth is not None

    async def start(self) -> None:
        """Read the issuer's discovery document and keys once (CallerSetupError if they
        cannot be read); nothing to do when no token is checked."""
        if self._auth is None:
            return
        from opsagent.service.http.auth import AuthStartError

        try:
            await self._auth.start()
        except AuthStartError as exc:
            raise CallerSetupError(str(exc)) from None

    async def caller(self, custom: Mapping[str, Any]) -> Caller:
        """The caller of one invocation from its client context's custom fields."""
        headers = propagated_headers(custom)
        token = bearer_token(headers)
        if self._auth is None:
            return Caller(user=self.service_user, token_ignored=token is not None)
        if token is None:
            raise CallerError(
                "this bridge checks the caller's token, and the call carries none: the Gateway "
                f"must propagate the caller's JWT in the {TOKEN_HEADER} header (allow-list it "
                "in the target's metadataConfiguration.allowedRequestHeaders) or in "
                f"{AUTHORIZATION_HEADER} (forwarded by a REQUEST interceptor)"
            )
        from opsagent.service.http.auth import AuthError

        try:
            checked = await self._auth.caller(f"Bearer {token}", None)
        except AuthError as exc:
            raise CallerError(str(exc)) from None
        return Caller(user=checked.user, groups=tuple(checked.groups), verified=True)


__all__ = [
    "AUTHORIZATION_HEADER",
    "PROPAGATED_HEADERS_KEY",
    "TOKEN_HEADER",
    "Caller",
    "CallerError",
    "CallerSetupError",
    "Callers",
    "bearer_token",
    "propagated_headers",
]
