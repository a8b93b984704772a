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
import logging
import os
from dataclasses import dataclass
from typing import Any

import boto3

from opsagent.access import AccountSessions, AccountSlots, ReadCache, RunReads
from opsagent.bridge.caller import Callers, CallerSetupError
from opsagent.registry import LiveRegistry, Registry
from opsagent.service.accounts import ConfigurationError, account_sessions, open_accounts
from opsagent.service.settings import Settings

log = logging.getLogger(__name__)

# Set by the Lambda runtime in every function's environment.
LAMBDA_MARKER = "AWS_LAMBDA_FUNCTION_NAME"


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
    accounts = await open_accounts(settings, central=central)
    try:
        sessions = account_sessions(settings, accounts, sts_endpoint=sts_endpoint_url)
    except BaseException:
        await accounts.stop_sandbox()
        raise
    service = BridgeService(
        settings=settings,
        registry_source=accounts.registry,
        sessions=sessions,
        run_reads=ReadCache(sessions.run_reads, max_age_s=settings.data_max_age),
        slots=AccountSlots(settings.max_accounts_in_flight),
        callers=callers,
        sandbox=accounts.sandbox,
    )
    try:
        await callers.start()
    except CallerSetupError as exc:
        await service.aclose()
        raise ConfigurationError(str(exc)) from None
    return service


__all__ = ["LAMBDA_MARKER", "BridgeService", "ConfigurationError", "open_service"]
