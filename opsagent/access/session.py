"""One MCP session to the AWS MCP Server, kept open by a task of its own.

Each session is opened with ``mcp_proxy_for_aws.client.aws_iam_streamablehttp_client``,
signed (SigV4) with the account's assumed-role credentials from ``RoleCredentials``. Those
credentials refresh themselves, and the signer reads them on every request, so a session
outlives any one set of keys. On opening, the session reads the server's tool list: the
agent needs ``aws___run_script``, and the pool (``pool.py``) gives an endpoint without it
one clear error naming the endpoint and what it offers (the managed server removed
``aws___call_aws`` on 2026-08-31; see ``script.py`` for the sources).

anyio requires a streamable-HTTP client context to be entered and exited in the same task,
so each session lives in an owner task of its own (started on first use, ended by
``aclose``); callers in any task of the same event loop (FastAPI requests, graph workers)
send requests over its streams. Every answer to a request is read and checked before the
mcp client sees it (``_checked_answer``): one that is not MCP (an HTML page, truncated
JSON-RPC, a stream that ends without the answer) fails its call at once with a message
saying so, instead of leaving the call waiting for its timeout; a connection lost half way
through an answer ends the session, so the call fails as on any lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any, cast

import httpx
from mcp import ClientSession
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import (
    PARSE_ERROR,
    CallToolResult,
    ErrorData,
    Implementation,
    JSONRPCError,
    JSONRPCMessage,
)
from mcp_proxy_for_aws.client import aws_iam_streamablehttp_client

from opsagent.access.mcp_errors import SessionEnded, describe, mcp_error
from opsagent.registry import Account

logger = logging.getLogger(__name__)

try:
    CLIENT_INFO = Implementation(name="opsagent", version=version("opsagent"))
except PackageNotFoundError:  # running from a source tree that was never installed
    CLIENT_INFO = Implementation(name="opsagent", version="0")


class OwnedMcpSession:
    """One MCP client session, kept open by an owner task that entered its contexts.

    The transport is the subclass's (``transport``: SigV4 to the AWS MCP Server here, a bearer
    token to AgentCore Gateway in ``gateway.py``), and so is the error a failed opening
    becomes (``opening_error``); keeping the session open, failing calls fast when it ends,
    and closing it are the same for both."""

    def __init__(self, *, endpoint: str, timeout: float, label: str) -> None:
        self._endpoint = endpoint
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
        self.in_use = 0  # calls in flight over it: the pool never evicts a busy session
        self.last_used = 0.0  # time.monotonic() of its last use

    def transport(self) -> contextlib.AbstractAsyncContextManager[tuple[Any, Any]]:
        """The (read stream, write stream) of the MCP connection, entered by the owner task."""
        raise NotImplementedError

    def opening_error(self, account: Account, exc: BaseException) -> Exception:
        """What a failure to open the session means for the account."""
        raise NotImplementedError

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
        raise SessionEnded(f"the MCP session ended: {self._end_reason}")

    async def start(self, account: Account) -> None:
        self._task = asyncio.create_task(self._own(), name=f"mcp-session {self.label}")
        try:
            # shield: a caller giving up must not cancel the owner's hand-over.
            self._client = await asyncio.shield(self._ready)
        except BaseException as exc:
            await self.aclose()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise self.opening_error(account, exc) from exc
        logger.info("opened MCP session %s", self.label)

    async def _own(self) -> None:
        try:
            async with (
                self.transport() as (read_stream, write_stream),
                ClientSession(
                    read_stream,
                    write_stream,
                    read_timeout_seconds=timedelta(seconds=self._timeout),
                    client_info=CLIENT_INFO,
                ) as client,
            ):
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
                logger.warning("MCP session %s ended: %s", self.label, describe(exc))
            self._end_reason = describe(exc)
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


class OwnedSession(OwnedMcpSession):
    """An MCP session to the AWS MCP Server, signed (SigV4) with an account's credentials."""

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
        super().__init__(endpoint=endpoint, timeout=timeout, label=label)
        self._service = service
        self._region = region
        self._credentials = credentials

    @contextlib.asynccontextmanager
    async def transport(self) -> AsyncGenerator[tuple[Any, Any]]:
        async with aws_iam_streamablehttp_client(
            self._endpoint,
            aws_service=self._service,
            aws_region=self._region,
            credentials=self._credentials,
            timeout=self._timeout,
            httpx_client_factory=checked_http_client,
        ) as (read_stream, write_stream, _):
            yield read_stream, write_stream

    def opening_error(self, account: Account, exc: BaseException) -> Exception:
        return mcp_error(account, exc, endpoint=self._endpoint, opening=True)


# ----- answers the mcp client cannot route -----


def checked_http_client(
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
        # aiter_bytes is an async generator (typed as an iterator), so it can be closed.
        chunks_of = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
        async with contextlib.aclosing(chunks_of) as chunks:
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
    error = JSONRPCError(
        jsonrpc="2.0",
        id=request_id,
        error=ErrorData(
            code=PARSE_ERROR,
            message=f"the answer to {method} was not MCP ({media or 'no content type'}): "
            f"{text[:200]}",
        ),
    )
    response._content = (
        JSONRPCMessage(error).model_dump_json(by_alias=True, exclude_none=True).encode()
    )
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
    """Whether ``raw`` is the JSON-RPC response or error for ``request_id``: the shape of
    JSON-RPC 2.0's response object (https://www.jsonrpc.org/specification#response_object).
    A structural check with the C JSON parser, not mcp's models: mcp validates the same
    message again right after, and validating a script's answer twice cost about 0.4 ms
    per account (benchmarks/org_scale.py at 500 accounts)."""
    try:
        message = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return False
    if message.get("id") != request_id or type(message.get("id")) is not type(request_id):
        return False
    if "result" in message:
        return "error" not in message and isinstance(message["result"], dict)
    error = message.get("error")
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), int)
        and isinstance(error.get("message"), str)
    )
