"""One MCP session per (account, user) to the AWS MCP Server, behind the read-only guard.

Each session is opened with ``mcp_proxy_for_aws.client.aws_iam_streamablehttp_client``,
signed (SigV4) with the account's assumed-role credentials from ``RoleCredentials``. Those
credentials refresh themselves, and the signer reads them on every request, so a session
outlives any one set of keys.

anyio requires a streamable-HTTP client context to be entered and exited in the same task,
so each session lives in an owner task of its own (started on first use, ended by
``aclose``); callers in any task of the same event loop (FastAPI requests, graph workers)
send requests over its streams. A session that breaks (server restarted, connection lost)
is dropped, and the next use opens a new one; a call that finds its reused session dead is
retried once on a fresh session (every command that gets this far is a read, so a retry is
safe).

Every tool call, from ``call_aws`` or from a LangChain tool handed out by ``tools``, passes
the same interceptor chain: audit → read-only guard → the live session. The guard runs before
anything else, so a refused command makes no AWS call at all, not even AssumeRole.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
import httpx
from langchain_core.tools import BaseTool
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession
from mcp.shared.exceptions import McpError
from mcp.types import CONNECTION_CLOSED, CallToolResult, Implementation, TextContent
from mcp_proxy_for_aws.client import aws_iam_streamablehttp_client
from mcp_proxy_for_aws.utils import validate_endpoint_url

from opsagent.access.audit import audit
from opsagent.access.credentials import CentralIdentity, RoleCredentials
from opsagent.access.errors import (
    AccessError,
    AccountAccessDenied,
    AccountTimeout,
    AccountUnreachable,
    AwsCommandError,
    CommandAccessDenied,
    ReadOnlyViolation,
)
from opsagent.access.guard import check_read_only
from opsagent.registry import Account

logger = logging.getLogger(__name__)

CALL_AWS_TOOL = "aws___call_aws"
# Tools of the AWS MCP Server that cannot change anything: call_aws (guarded command by
# command) and the documentation / suggestion tools, which make no AWS API call. Any other
# tool (a script runner, a future write tool) is neither handed out nor let through.
READ_ONLY_TOOLS = frozenset(
    {
        CALL_AWS_TOOL,
        "aws___suggest_aws_commands",
        "aws___search_documentation",
        "aws___read_documentation",
        "aws___recommend",
        "aws___list_regions",
        "aws___get_regional_availability",
    }
)
_CALL_AWS_ARGS = frozenset({"cli_command", "max_results"})

# AWS error codes that mean "this role may not do that": the account's status is denied.
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
# botocore's ClientError text: "An error occurred (Code) when calling the Op operation: …"
_ERROR_CODE_RE = re.compile(r"An error occurred \(([\w.:-]+)\)")
_SESSION_TERMINATED = 32600  # what mcp's streamable-HTTP client reports for an HTTP 404

ToolHandler = Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]]
Interceptor = Callable[[MCPToolCallRequest, ToolHandler], Awaitable[MCPToolCallResult]]

try:
    _CLIENT_INFO = Implementation(name="opsagent", version=version("opsagent"))
except PackageNotFoundError:  # running from a source tree that was never installed
    _CLIENT_INFO = Implementation(name="opsagent", version="0")


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
        call_timeout: float = 30.0,
        credentials: RoleCredentials | None = None,
        call_tool_name: str = CALL_AWS_TOOL,
        read_only_tools: frozenset[str] = READ_ONLY_TOOLS,
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
        self._call_tool_name = call_tool_name
        self._read_only_tools = read_only_tools | {call_tool_name}
        self._sessions: dict[tuple[str, str], _OwnedSession] = {}
        self._tools: dict[tuple[str, str], list[BaseTool]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----- the public API -----

    async def tools(self, account: Account, user: str) -> list[BaseTool]:
        """The account's read-only MCP tools as LangChain tools, for model-driven workers.

        Each call of a tool runs audit → guard → live session: a refused command raises
        ReadOnlyViolation out of the tool and is never sent. The tools stay valid when the
        session underneath is reopened.
        """
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
        tools = [tool for tool in loaded if tool.name in self._read_only_tools]
        self._tools[key] = tools
        return tools

    async def call_aws(
        self, account: Account, user: str, cli_command: str, max_results: int | None = None
    ) -> dict[str, Any]:
        """Run one read-only AWS CLI command in the account; the parsed AWS response.

        Raises ReadOnlyViolation (nothing sent, not even AssumeRole), AccountAccessDenied
        (role refused; status denied), CommandAccessDenied (role may not run this command;
        status denied), AccountTimeout (status timeout), AccountUnreachable or
        AwsCommandError (status error).
        """
        args: dict[str, Any] = {"cli_command": cli_command}
        if max_results is not None:
            args["max_results"] = max_results
        request = MCPToolCallRequest(
            name=self._call_tool_name, args=args, server_name=f"aws-mcp:{account.alias}"
        )
        chain = self._audit_interceptor(account, user)
        guard = self._guard_interceptor(account, user)

        async def guarded(req: MCPToolCallRequest) -> MCPToolCallResult:
            return await guard(req, lambda r: self._execute(account, user, r))

        result = await chain(request, guarded)
        if not isinstance(result, CallToolResult):  # only a custom interceptor could do this
            raise AwsCommandError(f"unexpected tool result {type(result).__name__}",
                                  account_id=account.id, command=cli_command)
        return parse_call_aws_result(result, account_id=account.id, command=cli_command)

    async def aclose(self) -> None:
        """Close every session (each in its owner task). The pool may be used again after."""
        sessions = list(self._sessions.values())
        self._sessions.clear()
        self._tools.clear()
        await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)

    # ----- the interceptor chain -----

    def _audit_interceptor(self, account: Account, user: str) -> Interceptor:
        async def audited(request: MCPToolCallRequest, handler: ToolHandler) -> MCPToolCallResult:
            started = time.monotonic()
            fields: dict[str, Any] = {"outcome": "ok"}
            try:
                result = await handler(request)
                if isinstance(result, CallToolResult):
                    fields.update(_result_outcome(result))
                return result
            except AccessError as exc:
                fields = {"outcome": "refused" if isinstance(exc, ReadOnlyViolation)
                          else exc.status, "error": str(exc)}
                raise
            except BaseException as exc:
                fields = {"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
                raise
            finally:
                audit(
                    "aws.call",
                    level=logging.INFO if fields["outcome"] == "ok" else logging.WARNING,
                    user=user,
                    account_id=account.id,
                    account_alias=account.alias,
                    tool=request.name,
                    command=request.args.get("cli_command"),
                    elapsed_ms=int((time.monotonic() - started) * 1000),
                    **fields,
                )

        return audited

    def _guard_interceptor(self, account: Account, user: str) -> Interceptor:
        async def guarded(request: MCPToolCallRequest, handler: ToolHandler) -> MCPToolCallResult:
            if request.name not in self._read_only_tools:
                audit("guard.refused", level=logging.WARNING, user=user, account_id=account.id,
                      tool=request.name, reason="not a read-only tool")
                raise ReadOnlyViolation(request.name, "is not one of the read-only tools",
                                        shown=request.name, account_id=account.id)
            if request.name == self._call_tool_name:
                command = request.args.get("cli_command")
                # The tool takes one command or a list of them: each one is checked.
                commands = [command] if isinstance(command, str) else command
                extra = set(request.args) - _CALL_AWS_ARGS
                if (not isinstance(commands, list) or not commands or extra
                        or not all(isinstance(c, str) for c in commands)):
                    problem = f"unexpected arguments {sorted(extra)}" if extra else \
                        "no cli_command string"
                    audit("guard.refused", level=logging.WARNING, user=user,
                          account_id=account.id, tool=request.name, reason=problem)
                    raise ReadOnlyViolation(str(command), f"was called with {problem}",
                                            shown=request.name, account_id=account.id)
                for one in commands:
                    # The CLI's tables load from disk on first use: keep that off the loop.
                    await asyncio.to_thread(check_read_only, one, user=user,
                                            account_id=account.id)
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
            ) as (read_stream, write_stream, _):
                async with ClientSession(
                    read_stream,
                    write_stream,
                    read_timeout_seconds=timedelta(seconds=self._timeout),
                    client_info=_CLIENT_INFO,
                ) as client:
                    await client.initialize()
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


# ----- results and errors -----


def parse_call_aws_result(
    result: CallToolResult, *, account_id: str | None = None, command: str | None = None
) -> dict[str, Any]:
    """The AWS API response of a call_aws tool result, or a typed error.

    Accepts the shapes the AWS MCP Server and the AWS API MCP Server return: a
    ``CallAWSResponse`` flattened (``cli_command``, ``error``, ``status_code``,
    ``error_code``, ``pagination_token`` and the raw JSON string under ``json`` or
    ``as_json``), the older nested ``{"response": {...}}``, FastMCP's ``{"result": ...}``
    wrapper, and an error response (``detail``). When the server stopped paging early its
    pagination token is returned as ``NextToken``, as the CLI does with ``--max-items``.
    """
    text = "\n".join(c.text for c in result.content if isinstance(c, TextContent)).strip()
    if result.isError:
        raise _aws_error(text or "the AWS MCP Server reported an error", None, None,
                         account_id, command)
    payload: Any = result.structuredContent
    if payload is None:
        payload = _loads(text, account_id, command)
    if isinstance(payload, dict) and set(payload) == {"result"}:
        payload = payload["result"]
    if isinstance(payload, str):
        payload = _loads(payload, account_id, command)
    if isinstance(payload, list):  # several runs (``--region *``): one entry per run
        return {"results": [_one_of_many(item, account_id, command) for item in payload]}
    if not isinstance(payload, dict):
        raise AwsCommandError(f"unexpected call_aws response: {str(payload)[:200]}",
                              account_id=account_id, command=command)
    if isinstance(payload.get("response"), dict):  # ProgramInterpretationResponse nesting
        outer = {k: v for k, v in payload.items() if k != "response"}
        payload = {**outer, **payload["response"]}
    error = payload.get("error")
    if error is True or (error is None and payload.get("detail")):
        error = payload.get("detail") or "the AWS MCP Server reported an error"
    if error:
        raise _aws_error(str(error), payload.get("error_code"), payload.get("status_code"),
                         account_id, command)
    body = next((payload[k] for k in ("json", "as_json", "response") if k in payload), None)
    if isinstance(body, str):
        data = _loads(body, account_id, command) if body.strip() else {}
    elif isinstance(body, dict):
        data = dict(body)
    elif body is None and "cli_command" not in payload:
        data = payload  # a server that returns the AWS response itself
    else:
        data = {}
    if not isinstance(data, dict):
        data = {"result": data}
    token = payload.get("pagination_token")
    if token and "NextToken" not in data:
        data["NextToken"] = token
    return data


def _one_of_many(item: Any, account_id: str | None, command: str | None) -> dict[str, Any]:
    """One run of a multi-run answer; its failure is an entry, not the whole answer's."""
    single = CallToolResult(content=[], structuredContent=item if isinstance(item, dict) else
                            {"result": item})
    try:
        return parse_call_aws_result(single, account_id=account_id, command=command)
    except AwsCommandError as exc:
        return {"error": str(exc), "error_code": exc.error_code}


def _loads(text: str, account_id: str | None, command: str | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise AwsCommandError(f"the AWS MCP Server answered with non-JSON: {text[:200]}",
                              account_id=account_id, command=command) from None


def _aws_error(
    message: str,
    code: str | None,
    status_code: Any,
    account_id: str | None,
    command: str | None,
) -> AwsCommandError:
    found = _ERROR_CODE_RE.search(message)
    code = code or (found.group(1) if found else None)
    status = status_code if isinstance(status_code, int) else None
    denied = code in ACCESS_DENIED_CODES or status == 403
    cls = CommandAccessDenied if denied else AwsCommandError
    return cls(message, code, account_id=account_id, status_code=status, command=command)


def _result_outcome(result: CallToolResult) -> dict[str, Any]:
    """Audit fields for a tool result, from its structured part only (no body parsing)."""
    if result.isError:
        return {"outcome": "tool_error"}
    payload = result.structuredContent or {}
    if set(payload) == {"result"} and isinstance(payload["result"], dict):
        payload = payload["result"]
    if isinstance(payload.get("response"), dict):
        payload = {**payload, **payload["response"]}
    if payload.get("error") or payload.get("detail"):
        return {"outcome": "aws_error", "error_code": payload.get("error_code"),
                "status_code": payload.get("status_code")}
    return {"outcome": "ok"}


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
