"""Wiring: settings -> registry, central identity, MCP sessions, fan-out slots, token checks.

The same parts as the agent's ``service/runtime.py`` (``open_agent``), without the graph: the
registry (a file, or AWS Organizations kept fresh), ``AccountSessions`` over the central
identity, a ``ReadCache`` in front of its ``run_reads``, ``AccountSlots`` bounding the accounts
in flight, and the caller check. With nothing configured it starts the embedded sandbox, the
same code path with other endpoints and credentials. Opened once per process and kept: Lambda
reuses the process, and with it the sessions, credentials and recent reads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import NoCredentialsError

from opsagent.access import AccountSessions, AccountSlots, ReadCache, RunReads
from opsagent.bridge.caller import Callers, CallerSetupError
from opsagent.registry import LiveRegistry, Registry, discover_registry, load_registry
from opsagent.service.settings import AWS_MCP_ENDPOINT, Settings

log = logging.getLogger(__name__)

# Set by the Lambda runtime in every function's environment.
LAMBDA_MARKER = "AWS_LAMBDA_FUNCTION_NAME"


class ConfigurationError(ValueError):
    """The settings do not describe a usable bridge; the message says what to change."""


@dataclass
class BridgeService:
    settings: Settings
    registry_source: Registry | LiveRegistry
    sessions: AccountSessions
    run_reads: RunReads
    slots: AccountSlots
    callers: Callers
    sandbox: Any = None

    async def registry(self) -> Registry:
        """The accounts now (a live registry starts a due rediscovery, never waits for it)."""
        source = self.registry_source
        if isinstance(source, LiveRegistry):
            return await source.current()
        return source

    async def aclose(self) -> None:
        if isinstance(self.registry_source, LiveRegistry):
            await self.registry_source.aclose()
        await self.sessions.aclose()
        self.sessions.credentials.close()
        if self.sandbox is not None:
            await asyncio.to_thread(self.sandbox.stop)


def _sandbox_parts(settings: Settings) -> tuple[Any, Registry, boto3.Session, str, str]:
    from opsagent.sandbox import start_sandbox  # moto: only when the sandbox is the AWS

    sandbox = start_sandbox(script_latency_ms=settings.sandbox_script_latency_ms)
    return (
        sandbox,
        load_registry(sandbox.registry_path),
        sandbox.central_session(),
        sandbox.aws_endpoint,
        sandbox.mcp_endpoint,
    )


async def open_service(
    settings: Settings,
    *,
    central: boto3.Session | None = None,
    sts_endpoint_url: str | None = None,
) -> BridgeService:
    """Everything a call needs, opened; ConfigurationError says what to set when it cannot be.

    ``central`` and ``sts_endpoint_url``: the central identity and STS endpoint, for a bridge
    in a process whose environment is not the Lambda's (a local Gateway stand-in); by default
    boto3 finds both as it always does (the execution role, ``AWS_ENDPOINT_URL_STS``)."""
    if settings.uses_sandbox and os.environ.get(LAMBDA_MARKER) and not settings.allow_sandbox:
        raise ConfigurationError(
            "refusing to answer from the embedded sandbox's made-up accounts in a deployed "
            "Lambda: set OPSAGENT_REGISTRY (or OPSAGENT_REGISTRY_SOURCE=organizations) and "
            "OPSAGENT_MCP_ENDPOINT, or OPSAGENT_ALLOW_SANDBOX=true to show the demo on purpose"
        )
    callers = Callers(settings)
    sandbox = None
    sts_endpoint = sts_endpoint_url
    registry: Registry | LiveRegistry
    if settings.uses_sandbox:
        sandbox, registry, central, sts_endpoint, mcp_endpoint = await asyncio.to_thread(
            _sandbox_parts, settings
        )
    else:
        central = central or boto3.Session()  # the Lambda's execution role, as boto3 finds it
        if settings.registry_source == "organizations":
            registry = LiveRegistry(
                functools.partial(
                    discover_registry, central, default_regions=settings.registry_regions
                ),
                settings.registry_refresh_seconds,
            )
            await registry.current()  # the first discovery: its failure is the call's
        elif settings.registry is None:
            raise ConfigurationError(
                "an MCP endpoint was given without a registry: set OPSAGENT_REGISTRY to the "
                "account registry file, or OPSAGENT_REGISTRY_SOURCE=organizations"
            )
        else:
            registry = load_registry(settings.registry)
        mcp_endpoint = settings.mcp_endpoint or AWS_MCP_ENDPOINT
    try:
        sessions = AccountSessions(
            mcp_endpoint=mcp_endpoint,
            central=central,
            sts_endpoint_url=sts_endpoint,
            mcp_service=settings.mcp_service,
            mcp_region=settings.mcp_region,
            call_timeout=settings.account_timeout,
            max_sessions=settings.max_sessions,
            idle_seconds=settings.session_idle_seconds,
        )
    except (ValueError, NoCredentialsError) as exc:
        if sandbox is not None:
            await asyncio.to_thread(sandbox.stop)
        if isinstance(exc, NoCredentialsError):
            raise ConfigurationError(
                "no AWS credentials for the central identity: the Lambda's execution role, or "
                "AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        raise ConfigurationError(f"MCP endpoint: {exc}") from None
    service = BridgeService(
        settings=settings,
        registry_source=registry,
        sessions=sessions,
        run_reads=ReadCache(sessions.run_reads, max_age_s=settings.data_max_age),
        slots=AccountSlots(settings.max_accounts_in_flight),
        callers=callers,
        sandbox=sandbox,
    )
    try:
        await callers.start()
    except CallerSetupError as exc:
        await service.aclose()
        raise ConfigurationError(str(exc)) from None
    return service


__all__ = ["LAMBDA_MARKER", "BridgeService", "ConfigurationError", "open_service"]
