"""Settings from OPSAGENT_* environment variables (boto3 reads its own AWS_* ones).

With nothing set, the agent runs on the embedded sandbox: a local moto AWS with a seeded
demo organization and a local stand-in for the AWS MCP Server.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The managed AWS MCP Server; see README "Pointing it at real accounts".
AWS_MCP_ENDPOINT = "https://aws-mcp.us-east-1.api.aws/mcp"


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "anonymous"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSAGENT_", extra="ignore")

    # Accounts: a registry file. None means the sandbox's demo organization.
    registry: Path | None = None
    # The AWS MCP Server. None (with no registry) means the sandbox's local stand-in.
    mcp_endpoint: str | None = None
    mcp_service: str = "aws-mcp"
    mcp_region: str = "us-east-1"
    # Who asks, when no authenticated caller is known (CLI): names the STS role session.
    user: str = Field(default_factory=_default_user)
    # The real AWS MCP Server takes about 13–15 s for a one-call script (awslabs/mcp PR
    # #4584), so a run_script call gets a minute and an account, which may wait for its
    # credentials and a session first, a minute and a half.
    mcp_timeout: float = Field(default=60.0, gt=0)
    # Each script on the embedded sandbox's stand-in takes at least this long, to show the real
    # server's shape (about 15000) in a demo or a benchmark; 0 answers at once.
    sandbox_script_latency_ms: int = Field(default=0, ge=0, le=600_000)
    account_timeout: float = Field(default=90.0, gt=0)
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

    @property
    def uses_sandbox(self) -> bool:
        return self.registry is None and self.mcp_endpoint is None
