"""MCP and HTTP failures of a session, mapped to the typed errors of ``errors.py``.

anyio wraps what went wrong in exception groups, mcp reports HTTP failures as ``McpError``
with the status as its code, and httpx has its own family: ``mcp_error`` finds the failure
that matters (``_root``) and says, as an ``AccessError``, whether the account refused us,
did not answer in time, could not be reached, or failed the call. ``is_broken_session``
tells a dead session (connection closed, session terminated, owner task ended) from a
failed call, so the pool can drop it and retry once on a fresh one.
"""

from __future__ import annotations

import anyio
import httpx
from mcp.shared.exceptions import McpError
from mcp.types import CONNECTION_CLOSED

from opsagent.access.errors import (
    AccessError,
    AccountAccessDenied,
    AccountTimeout,
    AccountUnreachable,
    AwsCommandError,
)
from opsagent.registry import Account

_SESSION_TERMINATED = 32600  # what mcp's streamable-HTTP client reports for an HTTP 404


class SessionEnded(Exception):
    """The owner task of a session ended while a call was waiting on it."""


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def root_cause(exc: BaseException) -> BaseException:
    """The exception that matters inside anyio's exception groups."""
    leaves = _leaves(exc)
    interesting = (McpError, httpx.HTTPError, OSError, TimeoutError, ValueError)
    return next((leaf for leaf in leaves if isinstance(leaf, interesting)), leaves[0])


def describe(exc: BaseException) -> str:
    root = root_cause(exc)
    return str(root) or type(root).__name__


def is_broken_session(exc: BaseException) -> bool:
    root = root_cause(exc)
    if isinstance(root, McpError):
        return root.error.code in (CONNECTION_CLOSED, _SESSION_TERMINATED)
    return isinstance(
        root,
        SessionEnded | anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream,
    )


def http_status(exc: BaseException) -> int | None:
    if isinstance(exc, McpError) and 400 <= exc.error.code < 600:
        return exc.error.code  # mcp-proxy-for-aws reports HTTP failures with the status
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    return None


def mcp_error(
    account: Account, exc: BaseException, *, endpoint: str, opening: bool = False
) -> AccessError:
    """The typed error for a failure opening an MCP session (opening) or calling a tool."""
    where = f"{account.alias} ({account.id})"
    root = root_cause(exc)
    if isinstance(root, AccessError):
        return root
    status = http_status(root)
    if status in (401, 403):
        return AccountAccessDenied(
            account.id, f"{where}: the AWS MCP Server refused the assumed role: {describe(root)}"
        )
    if status == 408 or isinstance(root, httpx.TimeoutException | TimeoutError):
        return AccountTimeout(
            account.id, f"{where}: the AWS MCP Server at {endpoint} did not answer in time"
        )
    if opening and isinstance(root, httpx.ConnectError | OSError):
        return AccountUnreachable(
            account.id,
            f"{where}: could not reach the AWS MCP Server at {endpoint} ({describe(root)})",
        )
    if not opening and isinstance(root, McpError):
        return AwsCommandError(
            f"{where}: the AWS MCP Server failed the call: {root}", account_id=account.id
        )
    what = f"could not open an MCP session at {endpoint}" if opening else "the MCP call failed"
    return AccountUnreachable(account.id, f"{where}: {what}: {describe(root)}")
