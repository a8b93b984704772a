"""The process-wide pool of MCP sessions to the AWS MCP Server, one per (account, asker),
behind the read-only guard.

The asker (``identity.Asker``) is the user AND their groups: a session is signed with
credentials whose session tags name both, so two callers, or one user with other groups
(another token), never share a session.

Sessions (``session.py``) are opened on first use. A session that breaks (server restarted,
connection lost) is dropped, and the next use opens a new one; a call that finds its reused
session dead is retried once on a fresh session (everything that gets this far is a read,
so a retry is safe). Failures become the typed errors of ``errors.py`` (``mcp_errors.py``).

``run_reads`` is the one way to AWS: the guard checks every read (nothing is sent, not
even AssumeRole, if one is refused), the reads go out as ONE ``aws___run_script`` call
built from the fixed template, and the per-read results come back. The model path gets
``tools``: one structured read tool over ``run_reads`` and the server's knowledge tools;
``aws___run_script`` itself is never handed to a model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mcp.types import CallToolResult
from mcp_proxy_for_aws.utils import validate_endpoint_url
from pydantic import BaseModel, Field

from opsagent.access.audit import audit, audited_reads
from opsagent.access.credentials import CentralIdentity, RoleCredentials
from opsagent.access.errors import (
    AccountTimeout,
    AccountUnreachable,
    AwsCommandError,
    EndpointLacksTool,
    ReadOnlyViolation,
)
from opsagent.access.guard import check_read, sensitive_output_paths
from opsagent.access.identity import Asker
from opsagent.access.mcp_errors import describe, is_broken_session, mcp_error
from opsagent.access.reads import Read, ReadResult
from opsagent.access.script import (
    RUN_SCRIPT_TOOL,
    ScriptError,
    build_script,
    parse_script_result,
)
from opsagent.access.session import OwnedSession
from opsagent.registry import Account

if TYPE_CHECKING:
    # The model path's types. LangChain is imported where that path runs (``tools``), so
    # ``run_reads`` alone (the bridge Lambda) loads none of it.
    from langchain_core.tools import BaseTool
    from langchain_mcp_adapters.interceptors import (
        MCPToolCallRequest,
        MCPToolCallResult,
        ToolCallInterceptor,
    )

logger = logging.getLogger(__name__)

# Tools of the AWS MCP Server a model may use directly: they answer from documentation and
# region data and make no AWS API call. aws___run_script runs code and aws___get_presigned_url
# grants access to objects: neither is ever handed out.
KNOWLEDGE_TOOLS = frozenset(
    {
        "aws___search_documentation",
        "aws___read_documentation",
        "aws___retrieve_skill",
        "aws___list_regions",
        "aws___get_regional_availability",
    }
)
READ_TOOL_NAME = "aws_read"
# What a model sees of one read's answer: enough to answer from, not a megabyte.
MAX_TOOL_RESULT_CHARS = 20_000
# The pool's bounds (OPSAGENT_MAX_SESSIONS, OPSAGENT_SESSION_IDLE_SECONDS): a session holds
# about 1 MB and a connection, and one is opened per (account, asker).
DEFAULT_MAX_SESSIONS = 1000
DEFAULT_IDLE_SECONDS = 900.0

ToolHandler = Callable[["MCPToolCallRequest"], Awaitable["MCPToolCallResult"]]
# A session's key: (account id, asker). Never the user alone: see the module's docstring.
_Key = tuple[str, Asker]


class ReadArgs(BaseModel):
    """One AWS API read, as the model asks for it."""

    service: str = Field(description="boto3 service name, e.g. ec2, s3, rds, lambda")
    operation: str = Field(description="API operation name in PascalCase, e.g. DescribeInstances")
    region: str = Field(description="AWS region code, e.g. us-east-1")
    params: dict[str, Any] = Field(
        default_factory=dict, description="the operation's parameters, as boto3 takes them"
    )


class AccountSessions:
    """The process-wide pool of MCP sessions, one per (account, asker), opened on first use."""

    def __init__(
        self,
        *,
        mcp_endpoint: str,
        central: CentralIdentity,
        sts_endpoint_url: str | None = None,
        mcp_service: str = "aws-mcp",
        mcp_region: str = "us-east-1",
        call_timeout: float = 60.0,
        credentials: RoleCredentials | None = None,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        # Fail at startup, not on the first question: SigV4 over plain HTTP is only allowed
        # to loopback.
        validate_endpoint_url(mcp_endpoint)
        self.mcp_endpoint = mcp_endpoint
        self.mcp_service = mcp_service
        self.mcp_region = mcp_region
        self.call_timeout = call_timeout
        self.credentials = (
            credentials
            if credentials is not None
            else RoleCredentials(central, sts_endpoint_url=sts_endpoint_url)
        )
        if max_sessions < 1 or idle_seconds <= 0:
            raise ValueError("the session pool needs room for one session and an idle time > 0")
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        # Least recently used first: eviction takes from the front.
        self._sessions: OrderedDict[_Key, OwnedSession] = OrderedDict()
        self._tools: dict[_Key, list[BaseTool]] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.evicted = 0  # sessions closed for idleness or room, since start

    # ----- the public API -----

    async def run_reads(
        self,
        account: Account,
        asker: Asker,
        reads: Sequence[Read],
        *,
        allowed: Collection[tuple[str, str]] | None = None,
        fresh: bool = True,
    ) -> list[ReadResult]:
        """Run the reads in the account as ONE aws___run_script call; one result per read.

        Always reads (``fresh`` is for the signature ``read_cache.ReadCache`` shares).

        Every read (fan-outs included) passes the guard first: a refused one raises
        ReadOnlyViolation and nothing is sent, not even AssumeRole. ``allowed`` is the
        resource catalogue's allow-list; without it (the model path) only reads whose answer
        carries no secret pass. A read that AWS refuses or fails is a result with an error,
        not an exception. Raises AccountAccessDenied (role refused; status denied),
        AccountTimeout, AccountUnreachable / EndpointLacksTool, or ScriptError (the script
        failed as a whole) for the account.
        """
        if not reads:
            return []
        # The guard loads service models on first use: keep that off the event loop.
        await asyncio.to_thread(_check_all, reads, allowed, asker.user, account.id)
        redact = (
            {
                (r.service, r.operation): sensitive_output_paths(r.service, r.operation)
                for read in reads
                for r in read.walk()
            }
            if allowed is not None
            else {}
        )
        code = build_script(reads, redact=redact)
        with audited_reads("aws.script", asker, account, reads, tool=RUN_SCRIPT_TOOL) as outcome:
            result = await self._execute(account, asker, RUN_SCRIPT_TOOL, {"code": code})
            try:
                results = parse_script_result(result, reads, account_id=account.id)
                read_at = datetime.now(UTC)
                for read_result in results:
                    read_result.read_at = read_at
            except ScriptError as exc:  # say which account, as every other message does
                raise ScriptError(
                    f"{account.alias} ({account.id}): {exc}", account_id=account.id
                ) from None
            outcome.update(_read_outcomes(results))
            return results

    async def tools(self, account: Account, asker: Asker) -> list[BaseTool]:
        """The model path's tools for one account: ``aws_read`` (one structured read through
        the guard and the script template) and the server's knowledge tools."""
        key = self._key(account, asker)
        async with self._lock(key):
            cached = self._tools.get(key)
            if cached is not None:
                return cached
        from langchain_mcp_adapters.tools import load_mcp_tools

        session = await self._session(account, asker)
        session.in_use += 1
        try:
            async with asyncio.timeout(self.call_timeout):
                loaded = await load_mcp_tools(
                    session.client,
                    tool_interceptors=[
                        self._audit_interceptor(account, asker),
                        self._guard_interceptor(account, asker),
                        self._live_session_interceptor(account, asker),
                    ],
                    server_name=f"aws-mcp:{account.alias}",
                )
        except TimeoutError:
            raise AccountTimeout(
                account.id,
                f"{account.alias} ({account.id}): the AWS MCP Server did not list "
                f"its tools within {self.call_timeout:g}s",
            ) from None
        except Exception as exc:
            if is_broken_session(exc):
                await self._drop(account, asker, session)
            raise mcp_error(account, exc, endpoint=self.mcp_endpoint) from exc
        finally:
            session.in_use -= 1
        tools = [self._read_tool(account, asker)]
        tools += [tool for tool in loaded if tool.name in KNOWLEDGE_TOOLS]
        self._tools[key] = tools
        return tools

    async def aclose(self) -> None:
        """Close every session (each in its owner task). The pool may be used again after."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        sessions = list(self._sessions.values())
        self._sessions.clear()
        self._tools.clear()
        closing = [*self._closing]
        await asyncio.gather(*(s.aclose() for s in sessions), *closing, return_exceptions=True)

    def __len__(self) -> int:
        """Sessions open now."""
        return len(self._sessions)

    # ----- the model path -----

    def _read_tool(self, account: Account, asker: Asker) -> BaseTool:
        from langchain_core.tools import StructuredTool

        async def aws_read(
            service: str, operation: str, region: str, params: dict[str, Any] | None = None
        ) -> str:
            read = Read(service=service, operation=operation, region=region, params=params or {})
            [result] = await self.run_reads(account, asker, [read])
            if result.error is not None:
                raise AwsCommandError(
                    f"{read.label()}: {result.error.code or 'error'}: {result.error.message}",
                    result.error.code,
                    account_id=account.id,
                )
            text = json.dumps(result.result, default=str)
            if len(text) > MAX_TOOL_RESULT_CHARS:
                text = text[:MAX_TOOL_RESULT_CHARS] + " [truncated]"
            return text + (" [more pages exist]" if result.truncated else "")

        return StructuredTool.from_function(
            coroutine=aws_read,
            name=READ_TOOL_NAME,
            description=(
                f"Run one read-only AWS API call in account {account.alias} ({account.id}): "
                "service (boto3 name), operation (PascalCase API name), region, params. "
                "Writes and reads that return secrets are refused."
            ),
            args_schema=ReadArgs,
        )

    def _audit_interceptor(self, account: Account, asker: Asker) -> ToolCallInterceptor:
        async def audited(request: MCPToolCallRequest, handler: ToolHandler) -> MCPToolCallResult:
            started = time.monotonic()
            fields: dict[str, Any] = {"outcome": "ok"}
            try:
                result = await handler(request)
                if isinstance(result, CallToolResult) and result.isError:
                    fields = {"outcome": "tool_error"}
                return result
            except BaseException as exc:
                fields = {
                    "outcome": "refused" if isinstance(exc, ReadOnlyViolation) else "error",
                    "error": str(exc) or type(exc).__name__,
                }
                raise
            finally:
                audit(
                    "mcp.tool",
                    level=logging.INFO if fields["outcome"] == "ok" else logging.WARNING,
                    **asker.audit_fields(),
                    account_id=account.id,
                    account_alias=account.alias,
                    tool=request.name,
                    elapsed_ms=int((time.monotonic() - started) * 1000),
                    **fields,
                )

        return audited

    def _guard_interceptor(self, account: Account, asker: Asker) -> ToolCallInterceptor:
        async def guarded(request: MCPToolCallRequest, handler: ToolHandler) -> MCPToolCallResult:
            if request.name not in KNOWLEDGE_TOOLS:
                audit(
                    "guard.refused",
                    level=logging.WARNING,
                    **asker.audit_fields(),
                    account_id=account.id,
                    tool=request.name,
                    reason="not a knowledge tool",
                )
                raise ReadOnlyViolation(
                    request.name,
                    "is not one of the tools a model may use",
                    shown=request.name,
                    account_id=account.id,
                )
            return await handler(request)

        return guarded

    def _live_session_interceptor(self, account: Account, asker: Asker) -> ToolCallInterceptor:
        # load_mcp_tools binds each tool to the session it was loaded from; routing the call
        # to the pool instead keeps the tools working after that session is reopened.
        async def routed(request: MCPToolCallRequest, handler: ToolHandler) -> MCPToolCallResult:
            return await self._execute(account, asker, request.name, request.args)

        return routed

    # ----- sessions -----

    async def _execute(
        self, account: Account, asker: Asker, name: str, args: dict[str, Any]
    ) -> CallToolResult:
        """Send one (already guarded) tool call over the account's live session."""
        where = f"{account.alias} ({account.id})"
        try:
            async with asyncio.timeout(self.call_timeout):
                for attempt in (1, 2):
                    session = await self._session(account, asker)
                    if name == RUN_SCRIPT_TOOL and RUN_SCRIPT_TOOL not in session.tools:
                        raise EndpointLacksTool(
                            account.id,
                            f"{where}: the MCP server at {self.mcp_endpoint} does not offer "
                            f"{RUN_SCRIPT_TOOL}, which opsagent needs to read AWS (it offers: "
                            f"{', '.join(sorted(session.tools)) or 'no tools'}); point "
                            "OPSAGENT_MCP_ENDPOINT at the AWS MCP Server",
                        )
                    session.in_use += 1
                    try:
                        return await session.call_tool(name, args)
                    except Exception as exc:
                        if not is_broken_session(exc):
                            raise mcp_error(account, exc, endpoint=self.mcp_endpoint) from exc
                        await self._drop(account, asker, session)
                        if attempt == 2 or session.fresh:
                            raise AccountUnreachable(
                                account.id,
                                f"{where}: the connection to the AWS MCP Server was lost "
                                f"({describe(exc)})",
                            ) from exc
                        logger.info(
                            "MCP session for %s broke (%s); reopening", where, describe(exc)
                        )
                    finally:
                        session.in_use -= 1
                        session.last_used = time.monotonic()
        except TimeoutError:
            raise AccountTimeout(
                account.id, f"{where}: no answer within {self.call_timeout:g}s"
            ) from None
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def _session(self, account: Account, asker: Asker) -> OwnedSession:
        """The live session for (account, asker), opened if needed, with fresh credentials."""
        # Credentials first: refreshing them here, in a worker thread, means the signer on
        # the event loop never has to call STS itself. Raises AccountAccessDenied & co.
        credentials = await self.credentials.get(account, asker)
        key = self._key(account, asker)
        async with self._lock(key):
            session = self._sessions.get(key)
            if session is not None and session.usable():
                session.fresh = False
                self._touch(key, session)
                return session
            if session is not None:
                self._sessions.pop(key, None)
                await session.aclose()
            session = OwnedSession(
                endpoint=self.mcp_endpoint,
                service=self.mcp_service,
                region=self.mcp_region,
                credentials=credentials,
                timeout=self.call_timeout,
                label=f"{account.alias} ({account.id}) for {asker.user}",
            )
            await session.start(account)
            self._sessions[key] = session
            self._touch(key, session)
            self._evict(keep=key)
            return session

    async def _drop(self, account: Account, asker: Asker, session: OwnedSession) -> None:
        key = self._key(account, asker)
        if self._sessions.get(key) is session:
            self._sessions.pop(key, None)
        await session.aclose()

    # ----- the pool's size: a cap, and idle sessions closed -----

    def _touch(self, key: _Key, session: OwnedSession) -> None:
        session.last_used = time.monotonic()
        self._sessions.move_to_end(key)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="mcp-session-sweeper")

    def _evict(self, keep: _Key | None = None) -> None:
        """Close sessions idle past ``idle_seconds``, and the least recently used ones while
        the pool is over ``max_sessions``; a session with a call in flight is never closed
        (the fan-out limit keeps those below the cap)."""
        now = time.monotonic()
        for key, session in list(self._sessions.items()):  # least recently used first
            idle = now - session.last_used > self.idle_seconds
            if not idle and len(self._sessions) <= self.max_sessions:
                break  # the rest were used more recently still
            if session.in_use or key == keep:
                continue
            self._forget(key, session)

    def _forget(self, key: _Key, session: OwnedSession) -> None:
        self._sessions.pop(key, None)
        self._tools.pop(key, None)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            self._locks.pop(key, None)
        self.credentials.forget(*key)
        self.evicted += 1
        # Closing waits for the owner task to leave its contexts: not on the caller's time.
        task = asyncio.create_task(session.aclose(), name=f"close {session.label}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _sweep(self) -> None:
        """Close idle sessions even when no question comes to do it."""
        while self._sessions:
            await asyncio.sleep(min(self.idle_seconds / 2, 60.0))
            self._evict()

    def _key(self, account: Account, asker: Asker) -> _Key:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Sessions and locks belong to the loop that made them; a new loop (a CLI that
            # runs asyncio.run per question) starts over. The old owner tasks died with it.
            self._loop = loop
            self._sessions.clear()
            self._tools.clear()
            self._locks.clear()
            self._closing.clear()
            self._sweeper = None
        return (account.id, asker)

    def _lock(self, key: _Key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())


# ----- guard and results -----


def _check_all(
    reads: Sequence[Read], allowed: Collection[tuple[str, str]] | None, user: str, account_id: str
) -> None:
    for read in reads:
        check_read(read, allowed=allowed, user=user, account_id=account_id)


def _read_outcomes(results: Sequence[ReadResult]) -> dict[str, Any]:
    """Audit fields for a script's results: calls made and errors by code."""
    nodes = [node for result in results for node in result.walk()]
    errors = Counter((node.error.code or "error") for node in nodes if node.error is not None)
    fields: dict[str, Any] = {"outcome": "ok", "calls": len(nodes)}
    if errors:
        fields.update(outcome="read_errors", error_codes=dict(errors))
    return fields
