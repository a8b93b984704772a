"""What runs before and around a route: the body checks of POST /invocations and the Boundary.

``InvocationGuard`` answers a wrong content type (415) or an oversize body (413) before
FastAPI reads the body; a refused body is still read to its end, up to DRAIN_LIMIT_BYTES, so
the client gets the answer instead of a connection reset.

``Boundary`` turns anything a request's work raises, a model, a parser or the graph,
SystemExit and KeyboardInterrupt included, into that request's JSON 500
``{"error": "internal", "message": ...}`` or, once its event stream has started, an SSE
``error`` event. The same rule holds where a request's work runs as a task of its own (the
run, the event stream: see ``runs``), since asyncio ends the whole process when a task
raises SystemExit. asyncio.CancelledError still cancels.
"""

from __future__ import annotations

import asyncio
import email.message
import json
import logging

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsagent.service.http.errors import ApiError, error_response, internal_error
from opsagent.service.http.runs import sse

log = logging.getLogger("opsagent.service")

# How much of a refused body is read (and thrown away) before the answer is sent.
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024


class Boundary:
    """The service's one boundary: whatever a request's work raises becomes that request's
    JSON 500 (``internal_error``) or, once its event stream has started, an SSE ``error``
    event and ``done``; never a plain-text 500 and never the end of the process.

    Outermost of our middleware, pure ASGI. asyncio.CancelledError is not caught: a client
    that hangs up or a shutdown still cancels.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = streaming = finished = False

        async def watched(message: Message) -> None:
            nonlocal started, streaming, finished
            if message["type"] == "http.response.start":
                started = True
                content_type = dict(message.get("headers") or []).get(b"content-type", b"")
                streaming = content_type.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException as exc:
            log.error(
                json.dumps(
                    {
                        "event": "unhandled_error",
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "error": type(exc).__name__,
                    }
                ),
                exc_info=exc,
            )
            try:
                if not started:
                    await JSONResponse(internal_error(exc), status_code=500)(scope, receive, send)
                elif streaming and not finished:
                    tail = (
                        sse("error", internal_error(exc)).encode()
                        + sse("done", {"status": "error"}).encode()
                    )
                    await send({"type": "http.response.body", "body": tail, "more_body": False})
            except Exception:  # the client is gone: nobody to tell
                pass


async def _drain(receive: Receive, limit: int = DRAIN_LIMIT_BYTES) -> bool:
    """Read the rest of a body we will not use, so the client, still sending, reads our
    answer rather than a connection reset. False when the client left or sent more than
    `limit`: the connection is then closed after the answer."""
    read = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        if not message.get("more_body"):
            return True
        read += len(message.get("body", b""))
        if read > limit:
            return False


def _untyped(content_type: str | None) -> bool:
    """No type, or the generic one for bytes: what a payload passed through untyped carries."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media in {"", "application/octet-stream"}


class InvocationGuard:
    """Content type and body size of POST /invocations, checked before FastAPI reads the body.

    Pure ASGI (not BaseHTTPMiddleware) so the request's receive channel, which tells the
    handler that the client went away, stays untouched.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/invocations":
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        content_type = headers.get("content-type")
        problem = self._content_type_problem(content_type)
        if (
            problem is None
            and headers.get("content-length", "").isdigit()
            and int(headers["content-length"]) > self.max_body_bytes
        ):
            problem = self._too_large()
        if problem is not None:
            if not await _drain(receive):
                problem.headers["connection"] = "close"
            await problem(scope, receive, send)
            return
        if _untyped(content_type):
            # InvokeAgentRuntime's contentType is optional and its payload is a blob: a
            # caller who leaves it unset still means JSON, so let FastAPI parse it as such.
            scope = {
                **scope,
                "headers": [
                    *((k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"),
                    (b"content-type", b"application/json"),
                ],
            }
        limit, seen = self.max_body_bytes, 0

        async def counted() -> Message:
            # Chunked bodies have no Content-Length: count what arrives.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    drained = not message.get("more_body") or await _drain(receive)
                    raise ApiError(
                        "body_too_large",
                        f"the body is over {limit:,} bytes; a question is at most a few sentences",
                        headers=None if drained else {"connection": "close"},
                    )
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> JSONResponse:
        return error_response(
            "body_too_large",
            f"the body is over {self.max_body_bytes:,} "
            "bytes; a question is at most a few sentences",
        )

    @staticmethod
    def _content_type_problem(value: str | None) -> JSONResponse | None:
        if _untyped(value):
            return None
        parsed = email.message.Message()
        parsed["content-type"] = value or ""
        subtype = parsed.get_content_subtype()
        if parsed.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):
            return None
        got = f"Content-Type {value!r}"
        return error_response(
            "unsupported_media_type",
            f"got {got}: send the question as JSON with Content-Type: application/json",
        )
