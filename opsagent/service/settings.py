"""Settings from OPSAGENT_* environment variables (boto3 reads its own AWS_* ones).

With nothing set, the agent runs on the embedded sandbox: a local moto AWS with a seeded
demo organization and a local stand-in for the AWS MCP Server.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
# Settings that were read once and are not any more: set, they stop the start with this.
RETIRED = {
    "OPSAGENT_MCP_TIMEOUT": "OPSAGENT_ACCOUNT_TIMEOUT is the one deadline of an account's "
    "work, its script included; set that instead",
}


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
    # HTTP service (`opsagent serve`). 0.0.0.0:8080 is what AgentCore Runtime connects to.
    host: str = "0.0.0.0"
    port: int = 8080
    # Request limits: a question is a sentence, not a document.
    max_question_chars: int = Field(default=2000, ge=1)
    max_body_bytes: int = Field(default=65536, ge=1024)
    # SSE comment pings keep proxies from closing a quiet stream while accounts answer.
    sse_ping_seconds: float = Field(default=15.0, gt=0)
    # Bearer-token auth on the HTTP service; off when neither a secret nor a JWKS URL is set.
    jwt_secret: SecretStr | None = None  # HS256 shared secret
    jwt_jwks_url: str | None = None  # e.g. a Cognito user pool's .well-known/jwks.json
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

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

    @property
    def uses_sandbox(self) -> bool:
        return (
            self.registry is None and self.mcp_endpoint is None and self.registry_source == "file"
        )
