"""The bridge Lambda behind the sandbox's AgentCore Gateway stand-in: what `--via gateway`
runs locally (agent → Gateway stand-in → this bridge, in-process → AWS MCP Server stand-in →
moto).

The stand-in (``opsagent/sandbox/gateway.py``) hosts whatever Lambda it is given, as the real
Gateway invokes whatever function its target names; this module gives it the bridge, pointed
at a running sandbox like a Lambda at real AWS, and stops it with the sandbox.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from opsagent.bridge.handler import Bridge
from opsagent.sandbox import Sandbox
from opsagent.sandbox.gateway import GatewayStandIn, JwtAuthorizer, LambdaInstance


def start_gateway(
    sandbox: Sandbox,
    *,
    secret: str | None = None,
    authorizer: JwtAuthorizer | None = None,
    bridge_settings: Mapping[str, Any] | None = None,
    **options: Any,
) -> GatewayStandIn:
    """Start a Gateway stand-in whose target is the bridge Lambda, in-process, pointed at
    ``sandbox``'s moto and AWS MCP Server stand-in.

    Tokens: ``authorizer``, or HS256 with ``secret`` (a fresh random one when neither is given:
    ``gateway.authorizer.secret``, for ``mint_token``). Unless ``bridge_settings`` say
    otherwise, the bridge checks the same tokens itself (an HS256 secret's), so it knows who
    asks from the token the agent forwards. ``bridge_settings`` are the bridge's settings
    (``BridgeSettings`` fields: ``registry`` for another registry file, ``jwt_*``...);
    ``options`` go to GatewayStandIn.
    """
    if authorizer is None:
        secret = secret or secrets.token_urlsafe(32)
        authorizer = JwtAuthorizer(secret=secret)
    fields = dict(bridge_settings or {})
    if authorizer.secret is not None and not any(k.startswith("jwt_") for k in fields):
        fields["jwt_secret"] = authorizer.secret
        if authorizer.allowed_audiences:
            fields["jwt_allowed_audiences"] = list(authorizer.allowed_audiences)
        if authorizer.allowed_clients:
            fields["jwt_allowed_clients"] = list(authorizer.allowed_clients)
        if authorizer.issuer:
            fields["jwt_issuer"] = authorizer.issuer
    gateway = GatewayStandIn(bridge_factory(sandbox, **fields), authorizer=authorizer, **options)
    sandbox.stop_with(gateway.start())
    return gateway


# The agent's own settings that must not reach an in-process bridge from the environment:
# it is pointed at the sandbox explicitly, and is never itself "via gateway".
_BRIDGE_PINNED: dict[str, Any] = {
    "via": "direct",
    "gateway_url": None,
    "gateway_token": None,
    "gateway_target": None,
    "registry_source": "file",
}
# Token settings, all given explicitly (None when unused), so that none leaks in from the
# environment and contradicts the ones given.
_JWT_FIELDS = (
    "jwt_secret",
    "jwt_jwks_url",
    "jwt_discovery_url",
    "jwt_allowed_audiences",
    "jwt_allowed_clients",
    "jwt_audience",
    "jwt_issuer",
    "jwt_groups_claim",
)


def bridge_factory(sandbox: Sandbox, **settings: Any) -> Callable[[], LambdaInstance]:
    """Bridge instances, one per emulated Lambda environment, each pointed at ``sandbox`` as
    a Lambda is at real AWS (``Bridge.on_sandbox``); ``settings`` are BridgeSettings fields."""
    fields = {**_BRIDGE_PINNED, **dict.fromkeys(_JWT_FIELDS), **settings}

    def make() -> LambdaInstance:
        return Bridge.on_sandbox(sandbox, **fields)

    return make
