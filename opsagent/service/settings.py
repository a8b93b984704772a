"""Settings from OPSAGENT_* environment variables (boto3 reads its own AWS_* ones).

With nothing set, the agent runs on the embedded sandbox: a local moto AWS with a seeded
demo organization and a local stand-in for the AWS MCP Server.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from opsagent.access.pool import DEFAULT_IDLE_SECONDS, DEFAULT_MAX_SESSIONS
from opsagent.graph.context import DEFAULT_ACCOUNT_TIMEOUT
from opsagent.registry import DEFAULT_REGIONS, is_region

# The managed AWS MCP Server; see README "Pointing it at real accounts".
AWS_MCP_ENDPOINT = "https://aws-mcp.us-east-1.api.aws/mcp"
# Measured (benchmarks/org_scale.py, 500 accounts x 2 regions, each script held to 15 s as
# on the real server; warm question): 64 in flight 122 s, 256 37 s, 512 28 s. 512 answers
# 500 accounts in one round and keeps sockets (one per account in flight, plus STS's) well
# under a 1,024-descriptor limit. README "Organization scale".
DEFAULT_ACCOUNTS_IN_FLIGHT = 512
DEFAULT_DATA_MAX_AGE = 300.0
# HS256 keys: at least the hash's 256 bits.
MIN_JWT_SECRET_BYTES = 32
# What AgentCore's customJWTAuthorizer takes as discoveryUrl ends so (pattern
# ^.+/\.well-known/openid-configuration$, https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/inbound-jwt-authorizer.html).
OIDC_DISCOVERY_SUFFIX = "/.well-known/openid-configuration"


def jwt_url_problem(setting: str, url: str) -> str | None:
    """Why signing keys may not be read from this URL, or None: HTTPS, or plain HTTP only to
    loopback (keys read over plain HTTP from elsewhere could be anyone's)."""
    import ipaddress
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                return None
        except ValueError:
            pass
        return f"{setting} {url} is plain HTTP to another host: signing keys need HTTPS"
    return f"{setting} {url!r} is not an https:// URL"


# Settings that were read once and are not any more: set, they stop the start with this.
RETIRED = {
    "OPSAGENT_MCP_TIMEOUT": "OPSAGENT_ACCOUNT_TIMEOUT is the one deadline of an account's "
    "work, its script included; set that instead",
}


def _is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[] ")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "anonymous"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSAGENT_", extra="ignore")

    # Accounts: a registry file. None means the sandbox's demo organization, unless the
    # source is "organizations": then AWS Organizations (the central identity must be the
    # management account or a delegated administrator), rediscovered every
    # registry_refresh_seconds with the last good registry kept if a refresh fails.
    registry: Path | None = None
    registry_source: Literal["file", "organizations"] = "file"
    registry_refresh_seconds: float = Field(default=3600.0, gt=0)
    # The regions a discovered registry asks in (a file names its own).
    registry_regions: list[str] = Field(default_factory=lambda: list(DEFAULT_REGIONS))
    # The AWS MCP Server. None (with no registry) means the sandbox's local stand-in.
    mcp_endpoint: str | None = None
    mcp_service: str = "aws-mcp"
    mcp_region: str = "us-east-1"
    # Who asks, when no authenticated caller is known (CLI): names the STS role session.
    user: str = Field(default_factory=_default_user)
    # Each script on the embedded sandbox's stand-in takes at least this long, to show the real
    # server's shape (about 15000) in a demo or a benchmark; 0 answers at once.
    sandbox_script_latency_ms: int = Field(default=0, ge=0, le=600_000)
    # ----- scale: the one timeout, the fan-out, the session pool, reuse of recent reads -----
    # THE timeout: an account's whole work (AssumeRole, MCP session, its script), counted
    # from when its worker gets a fan-out slot. Every wait inside is bounded by it.
    account_timeout: float = Field(default=DEFAULT_ACCOUNT_TIMEOUT, gt=0)
    # Accounts in flight at once across all questions (measured: see DEFAULT_ACCOUNTS_IN_FLIGHT).
    max_accounts_in_flight: int = Field(default=DEFAULT_ACCOUNTS_IN_FLIGHT, ge=1, le=10_000)
    # MCP sessions kept open (one per account and caller), and how long an unused one stays.
    max_sessions: int = Field(default=DEFAULT_MAX_SESSIONS, ge=1)
    session_idle_seconds: float = Field(default=DEFAULT_IDLE_SECONDS, gt=0)
    # Reads younger than this are reused by the next question (follow-ups that narrow or
    # regroup); 0 reads every time. A request's "fresh" reads again regardless.
    data_max_age: float = Field(default=DEFAULT_DATA_MAX_AGE, ge=0)
    # Conversation checkpoints: sqlite:///path, postgresql://..., dynamodb://table, memory://
    checkpoint_url: str = "sqlite:///.opsagent/checkpoints.sqlite"
    # A Bedrock model for planning (bedrock:<model id>); None means the rule planner.
    model: str | None = None
    # ----- how accounts are reached: "direct" (our own SigV4 session to the AWS MCP Server
    # per account) or "gateway" (MCP with a bearer token to an AgentCore Gateway whose target
    # is the bridge Lambda; opsagent/access/gateway.py). OPSAGENT_GATEWAY_URL set means
    # "gateway"; on the embedded sandbox, "gateway" starts a local Gateway stand-in in front
    # of the bridge (opsagent/sandbox/gateway.py).
    via: Literal["direct", "gateway"] = "direct"
    # https://<gateway id>.gateway.bedrock-agentcore.<region>.amazonaws.com/mcp
    gateway_url: str | None = None
    # The bearer token sent to the Gateway when no caller's own token is forwarded (the CLI,
    # a service without OPSAGENT_JWT_* auth). With auth on, each caller's checked token is
    # forwarded instead, so the Gateway authorizes the person who asked.
    gateway_token: SecretStr | None = None
    # The bridge's target name on the Gateway (its tools are <target>___query_account...);
    # unset: the one target the Gateway lists with a query_account tool.
    gateway_target: str | None = None
    # HTTP service (`opsagent serve`). Loopback unless told: the container image sets
    # OPSAGENT_HOST=0.0.0.0, where AgentCore Runtime connects (port 8080, HTTP protocol
    # contract: https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/runtime-http-protocol-contract.html).
    host: str = "127.0.0.1"
    port: int = 8080
    # A service listening beyond loopback (deployed, or shared on a network) refuses to
    # answer from the embedded sandbox's made-up accounts unless this says it may.
    allow_sandbox: bool = False
    # Where the audit trail goes (one JSON line per question and per AWS script): "stdout",
    # "stderr", "off", or a file path. Unset: stdout for `opsagent serve`, off for the CLI.
    audit_log: str | None = None
    # Request limits: a question is a sentence, not a document.
    max_question_chars: int = Field(default=2000, ge=1)
    max_body_bytes: int = Field(default=65536, ge=1024)
    # SSE comment pings keep proxies from closing a quiet stream while accounts answer.
    sse_ping_seconds: float = Field(default=15.0, gt=0)
    # Bearer-token auth on the HTTP service (opsagent/service/http/auth.py), as AgentCore
    # Runtime's customJWTAuthorizer checks tokens; off when none of the secret, the JWKS URL
    # and the discovery URL is set, and exactly one of them may be.
    jwt_secret: SecretStr | None = None  # HS256 shared secret
    jwt_jwks_url: str | None = None  # e.g. a Cognito user pool's .well-known/jwks.json
    # The issuer's .well-known/openid-configuration: its `issuer` and `jwks_uri` (AgentCore's
    # discoveryUrl).
    jwt_discovery_url: str | None = None
    # AgentCore's allowedAudience (the token's `aud`) and allowedClients (an access token's
    # `client_id`): a JSON list or comma-separated. A JWKS or discovery URL needs one of them.
    jwt_allowed_audiences: Annotated[list[str] | None, NoDecode] = None
    jwt_allowed_clients: Annotated[list[str] | None, NoDecode] = None
    jwt_audience: str | None = None  # the older one-value form of jwt_allowed_audiences
    jwt_issuer: str | None = None  # with a discovery URL, its issuer (must agree if set)
    # The claim listing the caller's groups (`cognito:groups`, `roles`, ...); unset: `groups`,
    # or Cognito's `cognito:groups`. A token without it is refused (401 naming it).
    jwt_groups_claim: str | None = None
    # Clock skew allowed on exp, nbf and iat.
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # A token naming a key the JWKS does not hold reads it again (key rotation), at most once
    # per this many seconds.
    jwt_jwks_min_refresh_seconds: float = Field(default=60.0, ge=1, le=3600)

    @field_validator("jwt_allowed_audiences", "jwt_allowed_clients", mode="before")
    @classmethod
    def _jwt_list(cls, value: Any) -> Any:
        """A JSON list, or comma-separated values: OPSAGENT_JWT_ALLOWED_CLIENTS=abc,def."""
        if isinstance(value, str):
            import json

            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):  # "a, b" is ["a", "b"]: a stray space must not refuse all
            return [v.strip() if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _no_retired_settings(self) -> Settings:
        for name, instead in RETIRED.items():
            if os.environ.get(name) is not None:
                raise ValueError(f"{name} is no longer read: {instead}")
        # A misconfiguration must never switch authentication off: a secret or JWKS URL that
        # is set but empty, or an HS256 secret shorter than the hash (RFC 7518 section 3.2:
        # "a key of the same size as the hash output ... or larger MUST be used";
        # https://www.rfc-editor.org/rfc/rfc7518#section-3.2), stops the start.
        if self.jwt_secret is not None:
            secret = self.jwt_secret.get_secret_value()
            if not secret.strip():
                raise ValueError(
                    "OPSAGENT_JWT_SECRET is set but empty: give the HS256 secret, or unset it "
                    "to run without authentication"
                )
            if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
                raise ValueError(
                    f"OPSAGENT_JWT_SECRET is {len(secret.encode())} bytes; HS256 needs at least "
                    f"{MIN_JWT_SECRET_BYTES} (RFC 7518 section 3.2)"
                )
        if self.jwt_jwks_url is not None and not self.jwt_jwks_url.strip():
            raise ValueError(
                "OPSAGENT_JWT_JWKS_URL is set but empty: give the JWKS URL, or unset it"
            )
        self._check_jwt()
        self._check_gateway()
        if self.registry_source == "organizations" and self.registry is not None:
            raise ValueError(
                "OPSAGENT_REGISTRY names a file but OPSAGENT_REGISTRY_SOURCE is organizations: "
                "set one of them"
            )
        for region in self.registry_regions:
            if not is_region(region):
                raise ValueError(
                    f"OPSAGENT_REGISTRY_REGIONS: {region!r} is not an AWS region code "
                    "(like us-east-1)"
                )
        if self.max_sessions < self.max_accounts_in_flight:
            raise ValueError(
                f"OPSAGENT_MAX_SESSIONS ({self.max_sessions}) must be at least "
                f"OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT ({self.max_accounts_in_flight}): every "
                "account in flight holds a session"
            )
        return self

    def _check_gateway(self) -> None:
        """The Gateway settings: a URL means "gateway"; a token only over HTTPS (or to
        loopback); "gateway" off the sandbox needs the URL."""
        if self.gateway_url is not None:
            url = self.gateway_url.strip()
            if not url:
                raise ValueError("OPSAGENT_GATEWAY_URL is set but empty: give the URL, or unset it")
            if "via" in self.model_fields_set and self.via == "direct":
                raise ValueError(
                    "OPSAGENT_VIA=direct but OPSAGENT_GATEWAY_URL is set: unset one of them"
                )
            self.via = "gateway"
            if problem := jwt_url_problem("OPSAGENT_GATEWAY_URL", url):
                # A bearer token over plain HTTP to another host could be read on the way.
                raise ValueError(problem.replace("signing keys need", "a bearer token needs"))
        if self.gateway_token is not None and not self.gateway_token.get_secret_value().strip():
            raise ValueError("OPSAGENT_GATEWAY_TOKEN is set but empty: give the token, or unset it")
        if self.gateway_target is not None and (
            not self.gateway_target.strip() or "___" in self.gateway_target
        ):
            raise ValueError(
                "OPSAGENT_GATEWAY_TARGET must be the Gateway target's name (no '___'), or unset"
            )
        if self.via == "gateway" and self.gateway_url is None and not self.uses_sandbox:
            raise ValueError(
                "OPSAGENT_VIA=gateway needs OPSAGENT_GATEWAY_URL (the AgentCore Gateway's MCP "
                "endpoint); only the embedded sandbox starts a local Gateway of its own"
            )

    @property
    def listens_beyond_loopback(self) -> bool:
        return not _is_loopback(self.host)

    def exposure_problem(self) -> str | None:
        """Why this service must not start where it listens, or None. A container deployed
        without its registry would otherwise serve the sandbox's fake inventory to real
        users."""
        if self.uses_sandbox and self.listens_beyond_loopback and not self.allow_sandbox:
            return (
                f"refusing to serve the embedded sandbox's made-up accounts on {self.host}, "
                "beyond loopback: set OPSAGENT_REGISTRY (or OPSAGENT_REGISTRY_SOURCE="
                "organizations) and OPSAGENT_MCP_ENDPOINT for real accounts, listen on "
                "127.0.0.1, or set OPSAGENT_ALLOW_SANDBOX=true to show the demo on purpose"
            )
        return None

    def _check_jwt(self) -> None:
        """The rest of the token settings: each one set means a check, so one that is set but
        empty, or set with no key to check tokens by, stops the start (never silently off);
        two sources of keys are ambiguous and stop it too."""
        sources = [
            name
            for name, value in (
                ("OPSAGENT_JWT_SECRET", self.jwt_secret),
                ("OPSAGENT_JWT_JWKS_URL", self.jwt_jwks_url),
                ("OPSAGENT_JWT_DISCOVERY_URL", self.jwt_discovery_url),
            )
            if value is not None
        ]
        if len(sources) > 1:
            raise ValueError(
                f"{' and '.join(sources)} are set together: set one of them (a discovery "
                "URL names its JWKS itself)"
            )
        texts = (
            ("OPSAGENT_JWT_DISCOVERY_URL", self.jwt_discovery_url),
            ("OPSAGENT_JWT_AUDIENCE", self.jwt_audience),
            ("OPSAGENT_JWT_ISSUER", self.jwt_issuer),
            ("OPSAGENT_JWT_GROUPS_CLAIM", self.jwt_groups_claim),
        )
        for name, text in texts:
            if text is not None and not text.strip():
                raise ValueError(f"{name} is set but empty: give a value, or unset it")
        lists = (
            ("OPSAGENT_JWT_ALLOWED_AUDIENCES", self.jwt_allowed_audiences),
            ("OPSAGENT_JWT_ALLOWED_CLIENTS", self.jwt_allowed_clients),
        )
        for name, values in lists:
            if values is not None and (not values or any(not v.strip() for v in values)):
                raise ValueError(
                    f"{name} is set but empty, or has an empty item: list the allowed "
                    "values, or unset it"
                )
        if self.jwt_audience is not None and self.jwt_allowed_audiences is not None:
            raise ValueError(
                "OPSAGENT_JWT_AUDIENCE and OPSAGENT_JWT_ALLOWED_AUDIENCES are both set: "
                "OPSAGENT_JWT_AUDIENCE is the older one-value form, keep only "
                "OPSAGENT_JWT_ALLOWED_AUDIENCES"
            )
        if self.jwt_discovery_url is not None:
            if not self.jwt_discovery_url.strip().endswith(OIDC_DISCOVERY_SUFFIX):
                raise ValueError(
                    f"OPSAGENT_JWT_DISCOVERY_URL must end with {OIDC_DISCOVERY_SUFFIX} (the "
                    "issuer's OIDC discovery document, as AgentCore's discoveryUrl)"
                )
            if problem := jwt_url_problem("OPSAGENT_JWT_DISCOVERY_URL", self.jwt_discovery_url):
                raise ValueError(problem)
        if self.jwt_jwks_url is not None:
            if problem := jwt_url_problem("OPSAGENT_JWT_JWKS_URL", self.jwt_jwks_url):
                raise ValueError(problem)
        checks = [name for name, value in (*texts[1:], *lists) if value is not None]
        if not sources and checks:
            raise ValueError(
                f"{checks[0]} is set but no token is checked: set OPSAGENT_JWT_DISCOVERY_URL "
                f"(or OPSAGENT_JWT_JWKS_URL, OPSAGENT_JWT_SECRET) too, or unset {checks[0]}"
            )
        if (self.jwt_jwks_url or self.jwt_discovery_url) and not (
            self.jwt_allowed_audiences or self.jwt_audience or self.jwt_allowed_clients
        ):
            raise ValueError(
                f"{sources[0]} needs OPSAGENT_JWT_ALLOWED_AUDIENCES or "
                "OPSAGENT_JWT_ALLOWED_CLIENTS: without either, a token its issuer made for "
                "any other application would be let in"
            )

    @property
    def uses_sandbox(self) -> bool:
        return (
            self.registry is None
            and self.mcp_endpoint is None
            and self.gateway_url is None
            and self.registry_source == "file"
        )
