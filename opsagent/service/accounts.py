"""Which accounts, and how to reach them, from the settings: what the agent (``runtime.py``)
and the bridge Lambda (``opsagent/bridge/service.py``) both open before anything is asked.

Light on purpose: the bridge imports it, and a Lambda's cold start should not pay for the
graph, LangChain or FastAPI. With nothing configured it is the embedded sandbox (its
registry, its central identity, its moto and AWS MCP Server stand-in); otherwise the registry
file or AWS Organizations, boto3's central identity, and the managed AWS MCP Server unless
an endpoint is given.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import NoCredentialsError

from opsagent.access import AccountSessions
from opsagent.registry import LiveRegistry, Registry, discover_registry, load_registry
from opsagent.service.settings import AWS_MCP_ENDPOINT, Settings


class ConfigurationError(ValueError):
    """The settings do not describe a usable setup; the message says what to change."""


@dataclass
class Accounts:
    """The accounts and the way to them. ``sandbox`` is the embedded one when it is the AWS
    (its owner stops it); ``sts_endpoint`` None means boto3's own."""

    registry: Registry | LiveRegistry
    central: boto3.Session
    mcp_endpoint: str
    sts_endpoint: str | None = None
    sandbox: Any = None

    async def stop_sandbox(self) -> None:
        if self.sandbox is not None:
            await asyncio.to_thread(self.sandbox.stop)


def _sandbox_accounts(settings: Settings) -> Accounts:
    from opsagent.sandbox import start_sandbox  # moto: only when the sandbox is the AWS

    sandbox = start_sandbox(script_latency_ms=settings.sandbox_script_latency_ms)
    return Accounts(
        registry=load_registry(sandbox.registry_path),
        central=sandbox.central_session(),
        mcp_endpoint=sandbox.mcp_endpoint,
        sts_endpoint=sandbox.aws_endpoint,
        sandbox=sandbox,
    )


async def open_accounts(
    settings: Settings, *, central: boto3.Session | None = None, given: str = "an MCP endpoint"
) -> Accounts:
    """The accounts for these settings. ``central``: the central identity when the process's
    own environment is not it (a bridge behind the sandbox's Gateway stand-in); ``given``
    names what was configured without a registry, for the message."""
    if settings.uses_sandbox:
        return await asyncio.to_thread(_sandbox_accounts, settings)
    # boto3 finds the central identity and any AWS_ENDPOINT_URL as it always does.
    central = central or boto3.Session()
    registry: Registry | LiveRegistry
    if settings.registry_source == "organizations":
        registry = LiveRegistry(
            functools.partial(
                discover_registry, central, default_regions=settings.registry_regions
            ),
            settings.registry_refresh_seconds,
        )
        await registry.current()  # the first discovery: its failure stops the start
    elif settings.registry is None:
        raise ConfigurationError(
            f"{given} was given without a registry: set OPSAGENT_REGISTRY (or --registry) to "
            "the account registry file, or OPSAGENT_REGISTRY_SOURCE=organizations to discover it"
        )
    else:
        registry = load_registry(settings.registry)
    return Accounts(registry, central, settings.mcp_endpoint or AWS_MCP_ENDPOINT)


def account_sessions(
    settings: Settings, accounts: Accounts, *, sts_endpoint: str | None = None
) -> AccountSessions:
    """The pool of SigV4 MCP sessions to the accounts; ConfigurationError when the central
    identity has no credentials or the endpoint is one mcp-proxy-for-aws will not sign for
    (plain HTTP off loopback). ``sts_endpoint`` overrides the accounts' own."""
    try:
        return AccountSessions(
            mcp_endpoint=accounts.mcp_endpoint,
            central=accounts.central,
            sts_endpoint_url=sts_endpoint or accounts.sts_endpoint,
            mcp_service=settings.mcp_service,
            mcp_region=settings.mcp_region,
            # No call outlives its account's deadline; the deadline itself is the worker's.
            call_timeout=settings.account_timeout,
            max_sessions=settings.max_sessions,
            idle_seconds=settings.session_idle_seconds,
        )
    except NoCredentialsError:
        raise ConfigurationError(
            "no AWS credentials for the central identity: set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY as for the AWS CLI (in a Lambda: its "
            "execution role)"
        ) from None
    except ValueError as exc:
        raise ConfigurationError(f"MCP endpoint: {exc}") from None


__all__ = ["Accounts", "ConfigurationError", "account_sessions", "open_accounts"]
