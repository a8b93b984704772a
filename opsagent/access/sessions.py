"""One MCP session per (account, user) to the AWS MCP Server, behind the read-only guard.

Each session is opened with ``mcp_proxy_for_aws.client.aws_iam_streamablehttp_client``,
signed (SigV4) with the account's assumed-role credentials from ``RoleCredentials``. Those
credentials refresh themselves, and the signer reads them on every request, so a session
outlives any one set of keys. On opening, the session reads the server's tool list: the
agent needs ``aws___run_script``, and an endpoint without it gets one clear error naming
the endpoint and what it offers (the managed server removed ``aws___call_aws`` on
2026-08-31; see ``script.py`` for the sources).

anyio requires a streamable-HTTP client context to be entered and exited in the same task,
so each session lives in an owner task of its own (started on first use, ended by
``aclose``); callers in any task of the same event loop (FastAPI requests, graph workers)
send requests over its streams. A session that breaks (server restarted, connection lost)
is dropped, and the next use opens a new one; a call that finds its reused session dead is
retried once on a fresh session (everything that gets this far is a read, so a retry is
safe). Every answer to a request is read and checked before the mcp client sees it
(``_checked_answer``): one that is not MCP (an HTML page, truncated JSON-RPC, a stream that
ends without the answer) fails its call at once with a message saying so, instead of leaving
the call waiting for its timeout; a connection lost half way through an answer ends the
session, so the call fails as on any lost connection.

``run_reads`` is the one way to AWS: the guard checks every read (nothing is sent, not
even AssumeRole, if one is refused), the reads go out as ONE ``aws___run_script`` call
built from the fixed template, and the per-read results come back. The model path gets
``tools``: one structured read tool over ``run_reads`` and the server's knowledge tools;
``aws___run_script`` itself is never handed to a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
import httpx
from langchain_core.tools import BaseTool, StructuredTool
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import McpError
from mcp.types import (
    CONNECTION_CLOSED,
    PARSE_ERROR,
    CallToolResult,
    ErrorData,
    Implementation,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCResponse,
)
from mcp_proxy_for_aws.client import aws_iam_streamablehttp_client
from mcp_proxy_for_aws.utils import validate_endpoint_url
from pydantic import BaseModel, Field, ValidationError

from opsagent.access.audit import audit
from opsagent.access.credentials import CentralIdentity, RoleCredentials
from opsagent.access.errors import (
    AccessError,
    AccountAccessDenied,
    AccountTimeout,
    AccountUnreachable,
    AwsCommandError,
    ReadOnlyViolation,
)
from opsagent.access.guard import check_read, sensitive_output_paths
from opsagent.access.reads import Read, ReadResult
from opsagent.access.script import (
    RUN_SCRIPT_TOOL,
    ScriptError,
    build_script,
    parse_script_result,
)
from opsagent.registry import Account

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

# AWS error codes that mean "this role may not do that": the read's status is denied.
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
        "AuthorizationErrorException",
        "NotAuthorized",
        "Forbidden",
    }
)
_SESSION_TERMINATED = 32600  # what mcp's streamable-HTTP client reports for an HTTP 404
# What a model sees of one read's answer: enough to answer from, not a megabyte.
MAX_TOOL_RESULT_CHARS = 20_000

ToolHandler = Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]]
Interceptor = Callable[[MCPToolCallRequest, ToolHandler], Awaitable[MCPToolCallResult]]

try:
    _CLIENT_INFO = Implementation(name="opsagent", version=version("opsagent"))
except PackageNotFoundError:  # running from a source tree that was never installed
    _CLIENT_INFO = Implementation(name="opsagent", version="0")


class EndpointLacksTool(AccountUnreachable):
    """The MCP endpoint answered but does not offer ``aws___run_script``. Status ``error``."""


class ReadArgs(BaseModel):
    """One AWS API read, as the model asks for it."""

    service: str = Field(description="boto3 service name, e.g. ec2, s3, rds, lambda")
    operation: str = Field(description="API operation name in PascalCase, e.g. DescribeInstances")
    region: str = Field(description="AWS region code, e.g. us-east-1")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="the operation's parameters, as boto3 takes them")


class AccountSessions:
    """The process-wide pool of MCP sessions, one per (account, user), opened on first use."""

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
    ) -> None:
        # Fail at startup, not on the first question: SigV4 over plain HTTP is only allowed
        # to loopback.
        validate_endpoint_url(mcp_endpoint)
        self.mcp_endpoint = mcp_endpoint
        self.mcp_service = mcp_service
        self.mcp_region = mcp_region
        self.call_timeout = call_timeout
        self.credentials = credentials or RoleCredentials(
            central, sts_endpoint_url=sts_endpoint_url
        )
        self._sessions: dict[tuple[str, str], _OwnedSession] = {}
        self._tools: dict[tuple[str, str], list[BaseTool]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----- the public API -----

    async def run_reads(
        self,
        account: Account,
        user: str,
        reads: Sequence[Read],
        *,
        allowed: Collection[tuple[str, str]] | None = None,
    ) -> list[ReadResult]:
        """Run the reads in the account as ONE aws___run_script call; one result per read.

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
        await asyncio.to_thread(_check_all, reads, allowed, user, account.id)
        redact = {
            (r.service, r.operation): sensitive_output_paths(r.service, r.operation)
            for read in reads for r in read.walk()
        } if allowed is not None else {}
        code = build_script(reads, redact=redact)
        request = MCPToolCallRequest(name=RUN_SCRIPT_TOOL, args={"code": code},
                                     server_name=f"aws-mcp:{account.alias}")
        started = time.monotonic()
        fields: dict[str, Any] = {}
        try:
            result = await self._execute(account, user, request)
            try:
                results = parse_script_result(result, reads, account_id=account.id)
            except ScriptError as exc:  # say which account, as every other message does
                raise ScriptError(f"{account.alias} ({account.id}): {exc}",
                                  account_id=account.id) from None
            fields = _read_outcomes(results)
            return results
        except BaseException as exc:
            fields = {"outcome": exc.status if isinstance(exc, AccessError) else "error",
                      "error": str(exc) or type(exc).__name__}
            raise
        finally:
            audit(
                "aws.script",
                level=logging.WARNING if fields.get("error") else logging.INFO,
                user=user,
                account_id=account.id,
                account_alias=account.alias,
                tool=RUN_SCRIPT_TOOL,
                reads=sorted({f"{r.service}:{r.operation}:{r.region}" for read in reads
                              for r in read.walk()}),
                elapsed_ms=int((time.monotonic() - started) * 1000),
                **fields,
            )

    async def tools(self, account: Account, user: str) -> list[BaseTool]:
        """The model path's tools for one account: ``aws_read`` (one structured read through
        the guard and the script template) and the server's knowledge tools."""
        key = self._key(account, user)
        async with self._lock(key):
            cached = self._tools.get(key)
            if cached is not None:
                return cached
        session = await self._session(account, user)
        try:
            async with asyncio.timeout(self.call_timeout):
                loaded = await load_mcp_tools(
                    session.client,
                    tool_interceptors=[
                        self._audit_interceptor(account, user),
                        self._guard_interceptor(account, user),
                        self._live_session_interceptor(account, user),
                    ],
                    server_name=f"aws-mcp:{account.alias}",
                )
        except TimeoutError:
            raise AccountTimeout(
                account.id, f"{account.alias} ({account.id}): the AWS MCP Server did not list "
                f"its tools within {self.call_timeout:g}s"
            ) from None
        except Exception as exc:
            if _is_broken_session(exc):
                await self._drop(account, user, session)
            raise _mcp_error(account, exc, endpoint=self.mcp_endpoint) from exc
        tools = [self._read_tool(account, user)]
        tools += [tool for tool in loaded if tool.name in KNOWLEDGE_TOOLS]
        self._tools[key] = tools
        return tools

    async def aclose(self) -> None:
        """Close every session (each in its owner task). The pool may be used again after."""
        sessions = list(self._sessions.values())
        self._sessions.clear()
        self._tools.clear()
        await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)

    # ----- the model path -----

    def _read_tool(self, account: Account, user: str) -> BaseTool:
        async def aws_read(service: str, operation: str, region: str,
                           params: dict[str, Any] | None = None) -> str:
            read = Read(service=service, operation=operation, region=region,
                        params=params or {})
            [result] = await self.run_reads(account, user, [read])
            if result.error is not None:
                raise AwsCommandError(
                    f"{read.label()}: {result.error.code or 'error'}: {result.error.message}",
                    result.error.code, account_id=account.id)
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

    def _audit_interceptor(self, account: Account, user: str) -> Interceptor:
        async def audited(request: MCPToolCallRequest, handler: ToolHandler) -> MCPToolCallResult:
            started = time.monotonic()
            fields: dict[str, Any] = {"outcome": "ok"}
            try:
                result = await handler(request)
                if isinstance(result, CallToolResult) and result.isError:
                    fields = {"outcome": "tool_error"}
                return result
            except BaseException as exc:
                fields = {"outcome": "refused" if isinstance(exc, ReadOnlyViolation)
                          else "error", "error": str(exc) or type(exc).__name__}
                raise
            finally:
                audit(
                    "mcp.tool",
                    level=logging.INFO if fields["outcome"] == "ok" else logging.WARNING,
                    user=user,
                    account_id=account.id,
                    account_alias=account.alias,
                    tool=request.name,
                    elapsed_ms=int((time.monotonic() - started) * 1000),
                    **fields,
                )

        return audited

    def _guard_interceptor(self, account: Account, user: str) -> Interceptor:
        async def guarded(request: MCPToolCallRequest, handler: ToolHandler) -> MCPToolCallResult:
            if request.name not in KNOWLEDGE_TOOLS:
                audit("guard.refused", level=logging.WARNING, user=user, account_id=account.id,
                      tool=request.name, reason="not a knowledge tool")
                raise ReadOnlyViolation(request.name, "is not one of the tools a model may use",
                                        shown=request.name, account_id=account.id)
            return await handler(request)

        return guarded

    def _live_session_interceptor(self, account: Account, user: str) -> Interceptor:
        # load_mcp_tools binds each tool to the session it was loaded from; routing the call
        # to the pool instead keeps the tools working after that session is reopened.
        async def routed(request: MCPToolCallRequest, handler: ToolHandler) -> MCPToolCallResult:
            return await self._execute(account, user, request)

        return routed

    # ----- sessions -----

    async def _execute(
        self, account: Account, user: str, request: MCPToolCallRequest
    ) -> CallToolResult:
        """Send one (already guarded) tool call over the account's live session."""
        where = f"{account.alias} ({account.id})"
        try:
            async with asyncio.timeout(self.call_timeout):
                for attempt in (1, 2):
                    session = await self._session(account, user)
                    if request.name == RUN_SCRIPT_TOOL and RUN_SCRIPT_TOOL not in session.tools:
                        raise EndpointLacksTool(
                            account.id,
                            f"{where}: the MCP server at {self.mcp_endpoint} does not offer "
                            f"{RUN_SCRIPT_TOOL}, which opsagent needs to read AWS (it offers: "
                            f"{', '.join(sorted(session.tools)) or 'no tools'}); point "
                            "OPSAGENT_MCP_ENDPOINT at the AWS MCP Server",
                        )
                    try:
                        return await session.call_tool(request.name, request.args)
                    except Exception as exc:
                        if not _is_broken_session(exc):
                            raise _mcp_error(account, exc, endpoint=self.mcp_endpoint) from exc
                        await self._drop(account, user, session)
                        if attempt == 2 or session.fresh:
                            raise AccountUnreachable(
                                account.id,
                                f"{where}: the connection to the AWS MCP Server was lost "
                                f"({_describe(exc)})",
                            ) from exc
                        logger.info("MCP session for %s broke (%s); reopening", where,
                                    _describe(exc))
        except TimeoutError:
            raise AccountTimeout(
                account.id, f"{where}: no answer within {self.call_timeout:g}s"
            ) from None
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def _session(self, account: Account, user: str) -> _OwnedSession:
        """The live session for (account, user), opened if needed, with fresh credentials."""
        # Credentials first: refreshing them here, in a worker thread, means the signer on
        # the event loop never has to call STS itself. Raises AccountAccessDenied & co.
        credentials = await self.credentials.get(account, user)
        key = self._key(account, user)
        async with self._lock(key):
            session = self._sessions.get(key)
            if session is not None and session.usable():
                session.fresh = False
                return session
            if session is not None:
                self._sessions.pop(key, None)
                await session.aclose()
            session = _OwnedSession(
                endpoint=self.mcp_endpoint,
                service=self.mcp_service,
                region=self.mcp_region,
                credentials=credentials,
                timeout=self.call_timeout,
                label=f"{account.alias} ({account.id}) for {user}",
            )
            await session.start(account)
            self._sessions[key] = session
            return session

    async def _drop(self, account: Account, user: str, session: _OwnedSession) -> None:
        key = self._key(account, user)
        if self._sessions.get(key) is session:
            self._sessions.pop(key, None)
        await session.aclose()

    def _key(self, account: Account, user: str) -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Sessions and locks belong to the loop that made them; a new loop (a CLI that
            # runs asyncio.run per question) starts over. The old owner tasks died with it.
            self._loop = loop
            self._sessions.clear()
            self._locks.clear()
        return (account.id, user)

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())


class _OwnedSession:
    """One MCP client session, kept open by an owner task that entered its contexts."""

    def __init__(
        self,
        *,
        endpoint: str,
        service: str,
        region: str,
        credentials: Any,
        timeout: float,
        label: str,
    ) -> None:
        self._endpoint = endpoint
        self._service = service
        self._region = region
        self._credentials = credentials
        self._timeout = timeout
        self.label = label
        self.loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[ClientSession] = self.loop.create_future()
        self._stop = asyncio.Event()
        self._ended = asyncio.Event()
        self._end_reason = "closed"
        self._task: asyncio.Task[None] | None = None
        self._client: ClientSession | None = None
        self.tools: frozenset[str] = frozenset()  # what the server's tools/list offered
        self.closed = False
        self.fresh = True  # opened for the current call; a failure now is not a stale session

    @property
    def client(self) -> ClientSession:
        if self._client is None:
            raise RuntimeError("MCP session used before it was opened")
        return self._client

    def usable(self) -> bool:
        return (
            not self.closed
            and self._task is not None
            and not self._task.done()
            and self.loop is asyncio.get_running_loop()
        )

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        """``ClientSession.call_tool``, failing fast if the session ends meanwhile.

        When the transport dies, mcp 1.x cancels the session's receive loop before it can
        fail the requests waiting on it, so a waiting call would hang until its timeout;
        racing the call against the owner's end turns that into an immediate error.
        """
        call = asyncio.ensure_future(self.client.call_tool(name, arguments))
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({call, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not call.done():
                call.cancel()
        if call.done() and not call.cancelled():
            return call.result()
        raise _SessionEnded(f"the MCP session ended: {self._end_reason}")

    async def start(self, account: Account) -> None:
        self._task = asyncio.create_task(self._own(), name=f"mcp-session {self.label}")
        try:
            # shield: a caller giving up must not cancel the owner's hand-over.
            self._client = await asyncio.shield(self._ready)
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise _mcp_error(account, exc, endpoint=self._endpoint, opening=True) from exc
        logger.info("opened MCP session %s", self.label)

    async def _own(self) -> None:
        try:
            async with aws_iam_streamablehttp_client(
                self._endpoint,
                aws_service=self._service,
                aws_region=self._region,
                credentials=self._credentials,
                timeout=self._timeout,
                httpx_client_factory=_checked_http_client,
            ) as (read_stream, write_stream, _):
                async with ClientSession(
                    read_stream,
                    write_stream,
                    read_timeout_seconds=timedelta(seconds=self._timeout),
                    client_info=_CLIENT_INFO,
                ) as client:
                    await client.initialize()
                    listed = await client.list_tools()
                    self.tools = frozenset(tool.name for tool in listed.tools)
                    if not self._ready.done():
                        self._ready.set_result(client)
                    await self._stop.wait()
        except BaseException as exc:  # the owner reports its end; it never crashes the loop
            if not self._ready.done():
                if isinstance(exc, asyncio.CancelledError):
                    self._ready.cancel()
                else:
                    self._ready.set_exception(exc)
            elif not self._stop.is_set():
                logger.warning("MCP session %s ended: %s", self.label, _describe(exc))
            self._end_reason = _describe(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.closed = True
            self._ended.set()

    async def aclose(self) -> None:
        """Ask the owner task to leave its contexts (closing the MCP session) and wait."""
        self.closed = True
        self._stop.set()
        task = self._task
        if task is None or task.done() or self.loop is not asyncio.get_running_loop():
            return
        if not self._ready.done():
            task.cancel()  # still connecting: nothing to close politely
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        except TimeoutError:
            task.cancel()
        except BaseException:  # its failure was already reported by the owner
            pass


# ----- answers the mcp client cannot route -----


def _checked_http_client(
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """mcp's own HTTP client for a session, with every answer checked (``_checked_answer``)."""
    client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
    client.event_hooks.setdefault("response", []).append(_checked_answer)
    return client


async def _checked_answer(response: httpx.Response) -> None:
    """Read a request's 200 answer and make sure it answers the request, before mcp sees it.

    mcp 1.x's streamable-HTTP client hands an answer it cannot parse (not JSON, a truncated
    JSON-RPC message, an event stream that ends without the answer, another content type)
    to the session as a bare exception that answers no request, or drops it with a debug
    line, so the call waits for its timeout and then says "timeout". Here such an answer
    becomes a JSON-RPC error for the waiting request id (as mcp-proxy-for-aws's mcp1_compat
    does for HTTP errors, which it then leaves alone): the call fails at once, saying what
    came back, and the session stays usable. A connection lost half way through the answer
    raises here, which ends the session's transport: the call fails as on a lost connection.
    """
    if response.request.method != "POST" or response.status_code != 200:
        return
    try:
        sent = json.loads(response.request.content)
    except (ValueError, httpx.RequestNotRead):
        return
    request_id = sent.get("id") if isinstance(sent, dict) else None
    if not isinstance(request_id, int | str):
        return  # a notification: nothing waits for an answer
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "text/event-stream":
        # Up to the event that answers: a server may keep the stream open after it.
        received, scanned, answered = bytearray(), 0, False
        async with contextlib.aclosing(response.aiter_bytes()) as chunks:
            async for chunk in chunks:
                received += chunk
                events, scanned = _sse_messages(received, scanned)
                if any(_answers(event, request_id) for event in events):
                    answered = True
                    break
        body = bytes(received)
        response._content = body  # what mcp's own reading of the stream will see
        await response.aclose()
    else:
        body = await response.aread()
        answered = media == "application/json" and _answers(body, request_id)
    if answered:
        return
    text = " ".join(body.decode("utf-8", "replace").split()) or "nothing"
    method = sent.get("method") or "the request"
    error = JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(
        code=PARSE_ERROR,
        message=f"the answer to {method} was not MCP ({media or 'no content type'}): "
                f"{text[:200]}"))
    response._content = JSONRPCMessage(error).model_dump_json(
        by_alias=True, exclude_none=True).encode()
    response.headers["content-type"] = "application/json"


_SSE_EVENT_ENDS = (b"\r\n\r\n", b"\n\n", b"\r\r")


def _sse_messages(received: bytearray, scanned: int) -> tuple[list[bytes], int]:
    """The data of the complete ``message`` events received after ``scanned``, and where
    the incomplete rest starts."""
    at, width = max((received.rfind(end, scanned), len(end)) for end in _SSE_EVENT_ENDS)
    if at < 0:
        return [], scanned
    complete = bytes(received[scanned:at]).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    events = []
    for block in complete.split(b"\n\n"):
        name, data = b"message", []
        for line in block.split(b"\n"):
            field, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if field == b"event":
                name = value
            elif field == b"data":
                data.append(value)
        if data and name == b"message":
            events.append(b"\n".join(data))
    return events, at + width


def _answers(raw: bytes, request_id: int | str) -> bool:
    """Whether ``raw`` is the JSON-RPC response or error for ``request_id``."""
    try:
        message = JSONRPCMessage.model_validate_json(raw).root
    except (ValidationError, ValueError):
        return False
    return isinstance(message, JSONRPCResponse | JSONRPCError) and message.id == request_id


# ----- guard and results -----


def _check_all(reads: Sequence[Read], allowed: Collection[tuple[str, str]] | None,
               user: str, account_id: str) -> None:
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


def is_denied(code: str | None) -> bool:
    """Whether an AWS error code means the role may not make this read."""
    return code in ACCESS_DENIED_CODES


class _SessionEnded(Exception):
    """The owner task of a session ended while a call was waiting on it."""


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _root(exc: BaseException) -> BaseException:
    """The exception that matters inside anyio's exception groups."""
    leaves = _leaves(exc)
    interesting = (McpError, httpx.HTTPError, OSError, TimeoutError, ValueError)
    return next((leaf for leaf in leaves if isinstance(leaf, interesting)), leaves[0])


def _describe(exc: BaseException) -> str:
    root = _root(exc)
    return str(root) or type(root).__name__


def _is_broken_session(exc: BaseException) -> bool:
    root = _root(exc)
    if isinstance(root, McpError):
        return root.error.code in (CONNECTION_CLOSED, _SESSION_TERMINATED)
    return isinstance(
        root,
        _SessionEnded | anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream,
    )


def _http_status(exc: BaseException) -> int | None:
    if isinstance(exc, McpError) and 400 <= exc.error.code < 600:
        return exc.error.code  # mcp-proxy-for-aws reports HTTP failures with the status
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    return None


def _mcp_error(
    account: Account, exc: BaseException, *, endpoint: str, opening: bool = False
) -> AccessError:
    """The typed error for a failure opening an MCP session (opening) or calling a tool."""
    where = f"{account.alias} ({account.id})"
    root = _root(exc)
    if isinstance(root, AccessError):
        return root
    status = _http_status(root)
    if status in (401, 403):
        return AccountAccessDenied(
            account.id, f"{where}: the AWS MCP Server refused the assumed role: {_describe(root)}"
        )
    if status == 408 or isinstance(root, httpx.TimeoutException | TimeoutError):
        return AccountTimeout(account.id, f"{where}: the AWS MCP Server at {endpoint} did not "
                              f"answer in time")
    if opening and isinstance(root, httpx.ConnectError | OSError):
        return AccountUnreachable(account.id, f"{where}: could not reach the AWS MCP Server at "
                                  f"{endpoint} ({_describe(root)})")
    if not opening and isinstance(root, McpError):
        return AwsCommandError(f"{where}: the AWS MCP Server failed the call: {root}",
                               account_id=account.id)
    what = f"could not open an MCP session at {endpoint}" if opening else "the MCP call failed"
    return AccountUnreachable(account.id, f"{where}: {what}: {_describe(root)}")
