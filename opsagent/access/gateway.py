"""Reaching accounts through Amazon Bedrock AgentCore Gateway instead of our own SigV4 sessions.

Architecture option 2: the agent holds no AWS credentials for member accounts. It speaks MCP
over streamable HTTP to an AgentCore Gateway, with a bearer token; the Gateway's one target
is the bridge Lambda (``opsagent/bridge``), which assumes each account's read-only role and
runs the reads through the AWS MCP Server exactly as the direct path does. ``GatewayReads``
is the graph's ``RunReads`` over that path: one account's reads are ONE ``tools/call`` of
``<target>___query_account`` with ``{"account": id, "reads": [Read JSON...]}``, and the
bridge's per-read results come back as the same ``ReadResult``s. ``ReadCache`` wraps it as
it wraps the direct path, so questions, answers and streaming are the same.

* **The guard runs here too.** Every read passes ``check_read`` (with the catalogue's
  allow-list when the worker gives one) before anything is sent: a write attempt is refused
  in the agent and never reaches the Gateway, the Lambda or AWS. The bridge checks again.
* **Tool name.** The Gateway names a target's tools ``<target>___<tool>``
  (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-tool-naming.html).
  The target is ``OPSAGENT_GATEWAY_TARGET`` when set, else found from ``tools/list``: the
  one target offering ``query_account``.
* **Result.** The Gateway returns the Lambda's JSON payload as the text of the tool result
  (``opsagent/sandbox/gateway.py`` has the sources). The bridge answers the account's entry
  with its ``status`` and per-read ``results``; the results are taken as they are (the worker
  then judges them exactly as on the direct path), and an entry without them is its status's
  error: ``denied`` / ``timeout`` / ``error`` become ``AccountAccessDenied`` /
  ``AccountTimeout`` / ``AccountUnreachable``, the errors the worker already maps to the
  account's status. A call the bridge refuses as a whole (``{"isError": true, "error":
  {"code", "message"}}``) is ``ReadOnlyViolation`` for ``read_only``, ``AccountAccessDenied``
  for ``forbidden``, else the account's ``error``; so is a tool error of the Gateway's
  (``isError``: the Lambda failed, or the arguments did not fit the schema).
* **Bearer token: who asks, end to end.** The Gateway authorizes callers by JWT
  (``customJWTAuthorizer``). When the HTTP service has checked the caller's own token
  (``OPSAGENT_JWT_*``), that token is forwarded (``bearer_token``, set per run by
  ``Agent.stream``): the Gateway authorizes the person who asked, not the agent. Without one
  (the CLI, a service without auth), the service token ``OPSAGENT_GATEWAY_TOKEN`` is sent.
  The token goes twice: in ``Authorization`` for the Gateway, and in ``X-Opsagent-Token``,
  the header the bridge's target allow-lists for propagation (the Gateway never propagates
  ``Authorization``), from which the bridge checks it itself and takes the user and groups
  that name every AssumeRole (``opsagent/bridge/caller.py``).
* **Sessions.** One MCP session per bearer token (a forwarded token is one user's), opened
  on first use in an owner task of its own (anyio wants a streamable-HTTP client entered and
  left in one task), reused by every account and question with that token; at most
  ``max_sessions`` are kept, least recently used closed first. A call that finds its reused
  session dead is retried once on a fresh one (everything sent is a read).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Collection, Sequence
from contextvars import ContextVar
from typing import Any

from mcp.types import CallToolResult, TextContent
from mcp_proxy_for_aws.mcp1_compat import _translate_http_error_hook
from pydantic import ValidationError

from opsagent.access.audit import audited_reads
from opsagent.access.errors import (
    AccessError,
    AccountAccessDenied,
    AccountTimeout,
    AccountUnreachable,
    EndpointLacksTool,
    ReadOnlyViolation,
)
from opsagent.access.guard import check_read
from opsagent.access.identity import Asker
from opsagent.access.mcp_errors import (
    describe,
    http_status,
    is_broken_session,
    root_cause,
)
from opsagent.access.reads import Read, ReadResult
from opsagent.access.session import OwnedMcpSession, checked_http_client
from opsagent.registry import Account

logger = logging.getLogger(__name__)

QUERY_ACCOUNT = "query_account"
# The header the bridge's target allow-lists for propagation and reads the caller's JWT from
# (opsagent/bridge/caller.py): the Gateway does not propagate Authorization itself
# (https://docs.aws.amazon.com/bedrock-agentcore/latest/devguide/gateway-headers.html).
TOKEN_HEADER = "X-Opsagent-Token"
TARGET_SEPARATOR = "___"
DEFAULT_MAX_SESSIONS = 64
# A session unused this long is closed (its token has likely expired and been replaced).
DEFAULT_IDLE_SECONDS = 900.0

# The bearer token of the caller this run answers, when the service checked one: set by
# ``Agent.stream`` for the run's task (graph nodes and the read cache's tasks inherit it).
bearer_token: ContextVar[str | None] = ContextVar("opsagent_gateway_bearer_token", default=None)


class GatewayReads:
    """``RunReads`` through AgentCore Gateway: ``query_account`` per account, bearer-token MCP."""

    def __init__(
        self,
        *,
        endpoint: str,
        token: str | None = None,
        target: str | None = None,
        call_timeout: float = 60.0,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        self.endpoint = endpoint
        self._service_token = token
        self.target = target
        self.call_timeout = call_timeout
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._sessions: OrderedDict[str, _GatewaySession] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.calls = 0  # tool calls sent (tests, benchmarks)

    async def __call__(
        self,
        account: Account,
        asker: Asker,
        reads: Sequence[Read],
        *,
        allowed: Collection[tuple[str, str]] | None = None,
        fresh: bool = True,
    ) -> list[ReadResult]:
        """One result per read, as ``AccountSessions.run_reads`` answers (``fresh`` is for
        the signature ``ReadCache`` shares: this always asks). Raises ReadOnlyViolation (nothing
        sent), AccountAccessDenied, AccountTimeout or AccountUnreachable for the account."""
        if not reads:
            return []
        await asyncio.to_thread(_check_all, reads, allowed, asker.user, account.id)
        with audited_reads(
            "gateway.query_account", asker, account, reads, gateway=self.endpoint
        ) as outcome:
            result = await self._call(account, reads)
            results = _results(account, result, reads)
            outcome.update(outcome="ok", calls=sum(1 for r in results for _ in r.walk()))
            return results

    async def aclose(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._sessions)

    # ----- one call -----

    async def _call(self, account: Account, reads: Sequence[Read]) -> CallToolResult:
        where = f"{account.alias} ({account.id})"
        token = bearer_token.get() or self._service_token
        if not token:
            raise AccountUnreachable(
                account.id,
                f"{where}: no bearer token for the AgentCore Gateway: set OPSAGENT_GATEWAY_TOKEN "
                "(or turn on OPSAGENT_JWT_* auth, whose callers' tokens are forwarded)",
            )
        arguments = {
            "account": account.id,
            "reads": [read.model_dump(mode="json", exclude_defaults=True) for read in reads],
            # The agent keeps its own recent reads (ReadCache): when it asks, the bridge reads.
            "fresh": True,
        }
        try:
            async with asyncio.timeout(self.call_timeout):
                for attempt in (1, 2):
                    session = await self._session(account, token)
                    tool = self._tool(account, session)
                    session.in_use += 1
                    try:
                        self.calls += 1
                        return await session.call_tool(tool, arguments)
                    except Exception as exc:
                        if not is_broken_session(exc):
                            raise _gateway_error(account, exc, self.endpoint) from exc
                        await self._drop(token, session)
                        if attempt == 2 or session.fresh:
                            raise AccountUnreachable(
                                account.id,
                                f"{where}: the connection to the AgentCore Gateway was lost "
                                f"({describe(exc)})",
                            ) from exc
                        logger.info("Gateway session broke (%s); reopening", describe(exc))
                    finally:
                        session.in_use -= 1
                        session.last_used = time.monotonic()
        except TimeoutError:
            raise AccountTimeout(
                account.id,
                f"{where}: no answer from the AgentCore Gateway within {self.call_timeout:g}s",
            ) from None
        raise AssertionError("unreachable")

    def _tool(self, account: Account, session: _GatewaySession) -> str:
        """``<target>___query_account``: the configured target's, or the one the Gateway lists."""
        offered = sorted(session.tools)
        if self.target is not None:
            name = f"{self.target}{TARGET_SEPARATOR}{QUERY_ACCOUNT}"
            if name in session.tools:
                return name
            found = []
        else:
            found = [t for t in offered if t.endswith(f"{TARGET_SEPARATOR}{QUERY_ACCOUNT}")]
            if len(found) == 1:
                return found[0]
        wanted = (
            f"{self.target}{TARGET_SEPARATOR}{QUERY_ACCOUNT}"
            if self.target is not None
            else f"<target>{TARGET_SEPARATOR}{QUERY_ACCOUNT}"
        )
        hint = (
            "; several targets offer it: set OPSAGENT_GATEWAY_TARGET to the bridge's"
            if len(found) > 1
            else "; is the bridge Lambda a target of this Gateway?"
        )
        raise EndpointLacksTool(
            account.id,
            f"{account.alias} ({account.id}): the AgentCore Gateway at {self.endpoint} does not "
            f"offer {wanted} (it offers: {', '.join(offered) or 'no tools'}){hint}",
        )

    # ----- sessions, one per bearer token -----

    async def _session(self, account: Account, token: str) -> _GatewaySession:
        self._own_loop()
        lock = self._locks.setdefault(token, asyncio.Lock())
        async with lock:
            session = self._sessions.get(token)
            if session is not None and session.usable():
                session.fresh = False
                self._sessions.move_to_end(token)
                self._evict(keep=token)
                return session
            if session is not None:
                self._sessions.pop(token, None)
                await session.aclose()
            session = _GatewaySession(self.endpoint, token, self.call_timeout)
            await session.start(account)
            self._sessions[token] = session
            self._evict(keep=token)
            return session

    async def _drop(self, token: str, session: _GatewaySession) -> None:
        if self._sessions.get(token) is session:
            self._sessions.pop(token, None)
        await session.aclose()

    def _evict(self, keep: str) -> None:
        """Close sessions idle past ``idle_seconds``, and the least recently used ones while
        there are more than ``max_sessions``; never one with a call in flight."""
        now = time.monotonic()
        for token, session in list(self._sessions.items()):  # least recently used first
            idle = now - session.last_used > self.idle_seconds
            if not idle and len(self._sessions) <= self.max_sessions:
                break
            if token == keep or session.in_use:
                continue
            self._sessions.pop(token, None)
            lock = self._locks.get(token)
            if lock is not None and not lock.locked():
                self._locks.pop(token, None)
            asyncio.ensure_future(session.aclose())

    def _own_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (a CLI run): the old sessions died with it
            self._loop = loop
            self._sessions.clear()
            self._locks.clear()


class _GatewaySession(OwnedMcpSession):
    """One MCP session to the Gateway with one bearer token, kept open by its owner task."""

    def __init__(self, endpoint: str, token: str, timeout: float) -> None:
        super().__init__(endpoint=endpoint, timeout=timeout, label="to the AgentCore Gateway")
        self._token = token
        self.last_used = time.monotonic()

    @contextlib.asynccontextmanager
    async def transport(self) -> AsyncGenerator[tuple[Any, Any]]:
        from mcp.client.streamable_http import streamable_http_client

        http = checked_http_client(
            # Authorization for the Gateway's authorizer; the same token in the header the
            # bridge's target allow-lists, since the Gateway never propagates Authorization.
            headers={"Authorization": f"Bearer {self._token}", TOKEN_HEADER: self._token},
            timeout=_http_timeout(self._timeout),
        )
        # mcp 1.x would tear the transport down on an HTTP error (a 401 for an expired token);
        # this answers the waiting request with the status instead (mcp_proxy_for_aws does the
        # same for its SigV4 client).
        http.event_hooks.setdefault("response", []).append(_translate_http_error_hook)
        async with (
            http,
            streamable_http_client(self._endpoint, http_client=http) as (read, write, _),
        ):
            yield read, write

    def opening_error(self, account: Account, exc: BaseException) -> Exception:
        return _gateway_error(account, exc, self._endpoint, opening=True)


def _http_timeout(seconds: float) -> Any:
    import httpx

    return httpx.Timeout(seconds)


# ----- guard, errors and results -----


def _check_all(
    reads: Sequence[Read], allowed: Collection[tuple[str, str]] | None, user: str, account_id: str
) -> None:
    for read in reads:
        check_read(read, allowed=allowed, user=user, account_id=account_id)


def _gateway_error(
    account: Account, exc: BaseException, endpoint: str, *, opening: bool = False
) -> AccessError:
    """The typed error for a failure opening a session with the Gateway or calling it."""
    where = f"{account.alias} ({account.id})"
    root = root_cause(exc)
    if isinstance(root, AccessError):
        return root
    status = http_status(root)
    if status in (401, 403):
        return AccountUnreachable(
            account.id,
            f"{where}: the AgentCore Gateway at {endpoint} refused the bearer token "
            f"(HTTP {status}): {describe(root)}",
        )
    import httpx

    if status == 408 or isinstance(root, httpx.TimeoutException | TimeoutError):
        return AccountTimeout(
            account.id, f"{where}: the AgentCore Gateway at {endpoint} did not answer in time"
        )
    what = "could not open an MCP session with" if opening else "the call failed at"
    return AccountUnreachable(
        account.id, f"{where}: {what} the AgentCore Gateway at {endpoint}: {describe(root)}"
    )


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent)).strip()


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _results(account: Account, result: CallToolResult, reads: Sequence[Read]) -> list[ReadResult]:
    """The bridge's answer for the account as one ReadResult per read, or its AccessError.

    The bridge answers ``{"accounts": [{"account_id", "status", "error", "results": [...]}],
    ...}``, or ``{"isError": true, "error": {"code", "message"}}`` for a call it refused as a
    whole (``opsagent/bridge/handler.py``). Per-read results are taken whatever the account's
    status, so the worker judges them exactly as on the direct path (which reads failed, and
    whether all did); only an account without them is its status's error."""
    where = f"{account.alias} ({account.id})"
    text = _text(result)
    if result.isError:  # the Gateway's: the Lambda failed, or the arguments did not fit
        raise AccountUnreachable(
            account.id, f"{where}: the AgentCore Gateway answered an error: {_clip(text) or '?'}"
        )
    payload: Any = result.structuredContent
    if payload is None:
        try:
            payload = json.loads(text)
        except ValueError:
            raise AccountUnreachable(
                account.id, f"{where}: the bridge's answer is not JSON: {_clip(text)!r}"
            ) from None
    if not isinstance(payload, dict):
        raise AccountUnreachable(account.id, f"{where}: the bridge's answer is not an object")
    if payload.get("isError"):
        error = payload.get("error")
        if not isinstance(error, dict):
            error = {}
        raise _refusal(account, str(error.get("code") or ""), str(error.get("message") or ""))
    entries = payload.get("accounts")
    entry = next(
        (
            e
            for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, dict) and str(e.get("account_id")) == account.id
        ),
        None,
    )
    if entry is None:
        raise AccountUnreachable(
            account.id, f"{where}: the bridge's answer has no entry for the account"
        )
    nodes = entry.get("results")
    if isinstance(nodes, list) and nodes and len(nodes) == len(reads):
        try:
            return [ReadResult.model_validate(node) for node in nodes]
        except ValidationError as exc:
            raise AccountUnreachable(
                account.id, f"{where}: the bridge's read results do not parse: {exc.errors()[0]}"
            ) from None
    status = entry.get("status")
    message = str(entry.get("error") or entry.get("omitted") or "")
    if status == "denied":
        raise AccountAccessDenied(account.id, message or f"{where}: access denied")
    if status == "timeout":
        raise AccountTimeout(account.id, message or f"{where}: the bridge ran out of time")
    raise AccountUnreachable(
        account.id,
        message
        or f"{where}: the bridge answered {len(nodes) if isinstance(nodes, list) else 'no'} "
        f"read results for {len(reads)} reads",
    )


def _refusal(account: Account, code: str, message: str) -> AccessError:
    """The bridge refused the call as a whole (``code``: read_only, forbidden, unauthenticated,
    unknown_account, bad_arguments, configuration, internal)."""
    where = f"{account.alias} ({account.id})"
    if code == "read_only":  # the bridge's guard said no: nothing was sent
        refused = ReadOnlyViolation("query_account", "was refused", account_id=account.id)
        if message:  # the bridge's guard message says which read and why
            refused.message = message
            refused.args = (message,)
        return refused
    if code == "forbidden":  # the caller's token does not open this account
        return AccountAccessDenied(account.id, f"{where}: {message or 'forbidden'}")
    return AccountUnreachable(
        account.id, f"{where}: the bridge refused the call ({code}): {message}"
    )


__all__ = ["QUERY_ACCOUNT", "GatewayReads", "bearer_token"]
