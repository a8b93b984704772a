"""The bridge's settings: the agent's own (``opsagent/service/settings.py``), read from the same
``OPSAGENT_*`` environment variables wherever they mean the same thing.

The bridge reads: ``OPSAGENT_REGISTRY`` / ``OPSAGENT_REGISTRY_SOURCE`` (and the discovery's
``OPSAGENT_REGISTRY_REGIONS``, ``OPSAGENT_REGISTRY_REFRESH_SECONDS``), ``OPSAGENT_MCP_ENDPOINT``
(``OPSAGENT_MCP_SERVICE``, ``OPSAGENT_MCP_REGION``), ``OPSAGENT_ACCOUNT_TIMEOUT``,
``OPSAGENT_MAX_ACCOUNTS_IN_FLIGHT``, ``OPSAGENT_MAX_SESSIONS``,
``OPSAGENT_SESSION_IDLE_SECONDS``, ``OPSAGENT_DATA_MAX_AGE``, the ``OPSAGENT_JWT_*`` token
settings, ``OPSAGENT_USER`` (the service identity when no token is checked),
``OPSAGENT_AUDIT_LOG``, ``OPSAGENT_ALLOW_SANDBOX`` and ``OPSAGENT_SANDBOX_SCRIPT_LATENCY_MS``.
boto3 reads its own ``AWS_*`` variables (the Lambda's execution role is the central identity).
With none of the registry and endpoint settings, the bridge runs on the embedded sandbox as
the agent does, and refuses to inside a deployed Lambda unless ``OPSAGENT_ALLOW_SANDBOX``.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from opsagent.service.settings import Settings

# Who asks when no token is checked (OPSAGENT_USER unset): the bridge itself, named in every
# member account's CloudTrail as the role session opsagent-opsagent-bridge.
SERVICE_USER = "opsagent-bridge"


class BridgeSettings(Settings):
    """``Settings`` with the bridge's defaults."""

    model_config = SettingsConfigDict(env_prefix="OPSAGENT_", extra="ignore")

    # The service identity: not the login name of whatever runs the Lambda.
    user: str = SERVICE_USER


__all__ = ["SERVICE_USER", "BridgeSettings"]
