"""The HTTP service: Amazon Bedrock AgentCore Runtime's HTTP contract over FastAPI.

    POST /invocations        ask a question; JSON answer, or SSE with Accept: text/event-stream
    GET  /ping               {"status": "Healthy" | "HealthyBusy", "time_of_last_update": int}
    GET  /threads/{id}       the conversation's turns

The agent (registry, sandbox or real accounts, MCP sessions, the compiled graph) and the
checkpointer are opened once, in the lifespan, and shared by every request.

Thread id: the X-Amzn-Bedrock-AgentCore-Runtime-Session-Id header (AgentCore's session is the
conversation), else the body's `thread_id`, else a new UUID. It comes back in the JSON body
(`thread_id`), in the X-Opsagent-Thread-Id header and as the first SSE event.

Status codes for what a caller can get wrong (body always {"error": code, "message": text}):

    400 invalid_json          the body is not JSON
    400 invalid_session_id    the session header is not 33-256 characters of [A-Za-z0-9._:@-]
    401 unauthorized          auth is on and the bearer token is missing or invalid
    403 read_only             the question asks to change something: the agent only reads
    403 forbidden             the question names accounts the caller's groups may not see
    403 thread_forbidden      the thread belongs to another authenticated user
    404 thread_not_found      GET /threads/{id} of a thread with no turns
    409 thread_busy           a question is already running in this thread
    413 body_too_large        the body is over OPSAGENT_MAX_BODY_BYTES (64 KiB)
    413 question_too_long     the question is over OPSAGENT_MAX_QUESTION_CHARS (2,000)
    415 unsupported_media_type  the body is declared as another type (text/plain, a form...);
                              application/json, *+json, no type or application/octet-stream
                              are read as JSON (InvokeAgentRuntime's contentType is optional)
    422 invalid_request       no question, an empty one, one that is not text (a lone
                              surrogate such as "\\ud800", a control character), a body that
                              is not an object, ...
    422 unknown_account       the question names an account the registry does not know
    422 unsupported           the planner cannot read the question (the message says what works)
    500 internal              the service itself failed; nothing else is ever a 500

Refusals (403/422 from the planner) carry the full answer JSON under "answer" as well.

Bodies refused before they are read (413, 415) are still read to their end, up to
DRAIN_LIMIT_BYTES, so the client gets the answer instead of a connection reset.

One boundary turns anything a request's work raises, a model, a parser or the graph,
SystemExit and KeyboardInterrupt included, into that request's JSON 500
``{"error": "internal", "message": ...}`` or, once its event stream has started, an SSE
``error`` event: ``Boundary`` around every request, and the same rule where a request's work
runs as a task of its own (the run, the event stream; the graph's nodes are contained by
the graph), since asyncio ends the whole process when a task raises SystemExit.
asyncio.CancelledError still cancels.
"""

from __future__ import annotations

import asyncio
import email.message
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsagent.graph.state import Answer, Plan, Refusal
from opsagent.service.auth import USER_HEADER, Authenticator, AuthError, Caller
from opsagent.service.checkpoints import open_checkpointer
from opsagent.service.questions import question_problem
from opsagent.service.runtime import Agent, open_agent
from opsagent.service.settings import Settings

log = logging.getLogger("opsagent.service")

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
THREAD_HEADER = "X-Opsagent-Thread-Id"
# Thread ids end up in SQL rows and DynamoDB keys ("CHECKPOINT_<id>", "<id>#<ns>#..."): no '#'.
THREAD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
_THREAD_ID_RE = re.compile(THREAD_ID_PATTERN)

REFUSAL_STATUS = {"read_only": 403, "forbidden": 403, "unknown_account": 422, "unsupported": 422}
# How much of a refused body is read (and thrown away) before the answer is sent.
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024

T = TypeVar("T")


# ----------------------------------------------------------------------------- the schema


class InvocationRequest(BaseModel):
    """What AgentCore passes through from the caller: a question and, optionally, a thread."""

    # AgentCore forwards the caller's payload as is; keys we do not know are not an error.
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"prompt": "Show me S3 buckets across all accounts"}]},
    )

    prompt: str | None = Field(
        default=None, description="The question (AgentCore's usual key). Up to 2,000 characters."
    )
    question: str | None = Field(default=None, description="The question, if `prompt` is unset.")
    thread_id: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=THREAD_ID_PATTERN,
        description="Continue this conversation. Ignored when the AgentCore session header is "
                    "set; a new thread is started when neither is given.",
    )

    @model_validator(mode="after")
    def _one_question(self) -> InvocationRequest:
        prompt, question = (self.prompt or "").strip(), (self.question or "").strip()
        if prompt and question and prompt != question:
            raise ValueError("send the question as either 'prompt' or 'question', not both")
        if not (prompt or question):
            raise ValueError(
                "the question is missing or empty: send {\"prompt\": \"your question\"}"
            )
        problem = question_problem(prompt or question)
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def text(self) -> str:
        return (self.prompt or "").strip() or (self.question or "").strip()


class AccountOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str
    alias: str
    status: Literal["ok", "denied", "error", "timeout"]
    error: str | None
    count: int
    elapsed_ms: int


class ResourceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str
    account_alias: str
    region: str
    resource_type: str
    id: str
    name: str | None
    state: str | None
    tags: dict[str, str]


class AnswerOut(BaseModel):
    """The merged answer: the same JSON as `opsagent ask --json`."""

    model_config = ConfigDict(extra="forbid")
    question: str
    answer: str = Field(description="The answer in a sentence or a few.")
    plan: Plan | None
    refusal: Refusal | None
    accounts: list[AccountOut] = Field(description="Per account: status, count, time, error.")
    resources: list[ResourceOut]


class InvocationResponse(AnswerOut):
    thread_id: str


class PingResponse(BaseModel):
    status: Literal["Healthy", "HealthyBusy"] = Field(
        description="HealthyBusy while any question is being answered."
    )
    time_of_last_update: int = Field(
        description="Unix seconds of the last change of status (not of this ping)."
    )


class TurnOut(BaseModel):
    question: str
    answer: str
    plan: Plan | None


class ThreadResponse(BaseModel):
    thread_id: str
    turns: list[TurnOut]


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable code, e.g. question_too_long.")
    message: str = Field(description="What went wrong and what to send instead.")
    thread_id: str | None = None
    answer: AnswerOut | None = Field(default=None, description="For refusals: the answer JSON.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Body not JSON, or a malformed session header.",
        401: "Auth is on and the bearer token is missing or invalid.",
        403: "Read-only refusal, an account the caller may not see, or another user's thread.",
        409: "A question is already running in this thread.",
        413: "Body or question over the size limit.",
        415: "Body declared as a type other than JSON (text/plain, a form, ...).",
        422: "No question, one that is not text, an unknown account, or a question the "
             "planner cannot read.",
        500: 'The service failed: {"error": "internal", "message": ...}.',
    }.items()
}

SSE_DESCRIPTION = """With `Accept: text/event-stream`, Server-Sent Events while the work happens:

* `thread` `{"thread_id"}`: first, always
* `plan`: the Plan (accounts, regions, queries, summary) as soon as it exists
* `account_started` `{"account_id", "alias"}`, one per account
* `account_finished` `{"account_id", "alias", "status", "count", "elapsed_ms", "error"}`
* `answer`: the answer JSON (as `opsagent ask --json`)
* `error` `{"error", "message"}`: only if the run itself failed
* `done` `{"thread_id", "status": "ok" | "refused" | "error"}`: last, always

Comment lines (`: ping`) keep a quiet stream open. Closing the connection cancels the run.
Errors found before the run starts (bad input, refusals) are answered as JSON with a 4xx."""


# ----------------------------------------------------------------------------- errors


class ApiError(HTTPException):
    """A 4xx/5xx with a stable code and a message for a person."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.extra = extra


def _error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}


def _http_code(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed"}.get(status, f"http_{status}")


def _readable(errors: list[Any]) -> str:
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "header", "path", "query")]
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "missing" and not loc:
            msg = 'the body is empty: send a JSON object such as {"prompt": "your question"}'
        elif err.get("type") in {"model_attributes_type", "dict_type"} and not loc:
            msg = 'the body must be a JSON object such as {"prompt": "your question"}'
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return "; ".join(parts) or "the request is not valid"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, ApiError):
            body = _error_body(exc.code, str(exc.detail), **exc.extra)
        else:
            body = _error_body(_http_code(exc.status_code), str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid")
            reason = (detail.get("ctx") or {}).get("error", "")
            message = f"the body is not valid JSON ({reason})" if reason else \
                "the body is not valid JSON"
            return JSONResponse(_error_body("invalid_json", message), status_code=400)
        return JSONResponse(_error_body("invalid_request", _readable(errors)), status_code=422)


def internal_error(exc: BaseException) -> dict[str, Any]:
    """The body of a 500 and of an SSE `error` event: what failed, in a line (a database
    error's CONTEXT lines, a validation error's field lines are joined into it)."""
    detail = " ".join(str(exc).split())
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return _error_body("internal", f"the service failed: {what}")


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
            log.error(json.dumps({"event": "unhandled_error", "method": scope.get("method"),
                                  "path": scope.get("path"), "error": type(exc).__name__}),
                      exc_info=exc)
            try:
                if not started:
                    await JSONResponse(internal_error(exc), status_code=500)(
                        scope, receive, send)
                elif streaming and not finished:
                    tail = _sse("error", internal_error(exc)).encode() + _sse(
                        "done", {"status": "error"}).encode()
                    await send({"type": "http.response.body", "body": tail,
                                "more_body": False})
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
        if scope["type"] != "http" or scope["method"] != "POST" or \
                scope["path"] != "/invocations":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        content_type = headers.get("content-type")
        problem = self._content_type_problem(content_type)
        if problem is None and headers.get("content-length", "").isdigit() and \
                int(headers["content-length"]) > self.max_body_bytes:
            problem = self._too_large()
        if problem is not None:
            if not await _drain(receive):
                problem.headers["connection"] = "close"
            await problem(scope, receive, send)
            return
        if _untyped(content_type):
            # InvokeAgentRuntime's contentType is optional and its payload is a blob: a
            # caller who leaves it unset still means JSON, so let FastAPI parse it as such.
            scope = {**scope, "headers": [
                *((k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"),
                (b"content-type", b"application/json"),
            ]}
        limit, seen = self.max_body_bytes, 0

        async def counted() -> Message:
            # Chunked bodies have no Content-Length: count what arrives.
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    drained = not message.get("more_body") or await _drain(receive)
                    raise ApiError(413, "body_too_large",
                                   f"the body is over {limit:,} bytes; a question is at most a "
                                   "few sentences",
                                   headers=None if drained else {"connection": "close"})
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            _error_body("body_too_large", f"the body is over {self.max_body_bytes:,} bytes; "
                        "a question is at most a few sentences"),
            status_code=413,
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
        return JSONResponse(
            _error_body("unsupported_media_type",
                        f"got {got}: send the question as JSON with "
                        "Content-Type: application/json"),
            status_code=415,
        )


# ----------------------------------------------------------------------------- runs


class RunTracker:
    """The runs in flight: /ping's status, one run per thread, cancellation on shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._threads: set[str] = set()
        # AgentCore reads this as "when the status last changed", never "now" (a timestamp
        # that moves on every ping would keep an idle session alive until MaxLifetime).
        self.changed_at = int(time.time())

    @property
    def status(self) -> Literal["Healthy", "HealthyBusy"]:
        return "HealthyBusy" if self._tasks else "Healthy"

    def claim(self, thread_id: str) -> None:
        if thread_id in self._threads:
            raise ApiError(409, "thread_busy",
                           "a question is already running in this thread; wait for its answer "
                           "or ask in another thread", thread_id=thread_id,
                           headers={THREAD_HEADER: thread_id})
        self._threads.add(thread_id)

    def release(self, thread_id: str) -> None:
        self._threads.discard(thread_id)

    def track(self, task: asyncio.Task[None], thread_id: str) -> None:
        if not self._tasks:
            self.changed_at = int(time.time())
        self._tasks.add(task)

        def finished(_: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._threads.discard(thread_id)
            if not self._tasks:
                self.changed_at = int(time.time())

        task.add_done_callback(finished)

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


RunItem = tuple[Literal["event", "answer", "error"], Any]


class GraphRun:
    """One question's graph run as a task that feeds a queue, so the HTTP side can stop it.

    The task, not the response, owns the work: whatever happens to the connection, the
    run's end (normal, failed or cancelled) frees the thread and updates /ping.
    """

    def __init__(self, agent: Agent, question: str, config: dict[str, Any],
                 tracker: RunTracker, thread_id: str) -> None:
        self.queue: asyncio.Queue[RunItem] = asyncio.Queue()
        self.started = time.monotonic()
        self.task = asyncio.create_task(self._run(agent, question, config),
                                        name=f"opsagent run {thread_id}")
        tracker.track(self.task, thread_id)

    async def _run(self, agent: Agent, question: str, config: dict[str, Any]) -> None:
        try:  # the task's own boundary: asyncio ends the process for SystemExit in a task
            async for item in agent.stream(question, config):
                self.queue.put_nowait(("answer", item) if isinstance(item, Answer)
                                      else ("event", item))
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except BaseException as exc:  # one failed run must not take the service with it
            log.error(json.dumps({"event": "run_failed", "question": question,
                                  "thread_id": config["configurable"]["thread_id"],
                                  "error": f"{type(exc).__name__}: {exc}"}), exc_info=exc)
            self.queue.put_nowait(("error", exc))

    async def next(self) -> RunItem:
        return await self.queue.get()

    async def outcome(self) -> RunItem:
        """Skip progress events: the answer, or the error."""
        while True:
            item = await self.next()
            if item[0] != "event":
                return item

    async def cancel(self) -> None:
        if not self.task.done():
            self.task.cancel()
        await asyncio.wait([self.task])


async def _until_disconnect(request: Request, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None if the client hangs up first (work is then cancelled)."""

    async def hung_up() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(hung_up())
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (job, watch):
            if not task.done():
                task.cancel()
        await asyncio.wait({job, watch})
    return job.result() if not job.cancelled() else None


class RunStream(EventSourceResponse):
    """An SSE response that cancels its run whenever the response ends, however it ends."""

    def __init__(self, run: GraphRun, content: AsyncIterator[ServerSentEvent],
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # After a normal end the task is already done; after a disconnect this stops it.
            await self.run.cancel()


def _sse(event: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(event=event, data=json.dumps(data, default=str))


async def _events(run: GraphRun, thread_id: str, caller: Caller,
                  first: RunItem) -> AsyncIterator[ServerSentEvent]:
    yield _sse("thread", {"thread_id": thread_id})
    try:
        async for event in _run_events(run, thread_id, caller, first):
            yield event
    except (asyncio.CancelledError, GeneratorExit):
        raise
    except BaseException as exc:  # runs in sse-starlette's task: SystemExit would end us
        log.error(json.dumps({"event": "stream_failed", "thread_id": thread_id,
                              "error": type(exc).__name__}), exc_info=exc)
        yield _sse("error", internal_error(exc))
        yield _sse("done", {"thread_id": thread_id, "status": "error"})


async def _run_events(run: GraphRun, thread_id: str, caller: Caller,
                      first: RunItem) -> AsyncIterator[ServerSentEvent]:
    kind, value = first
    while True:
        if kind == "event":
            name = str(value.get("event", "progress"))
            if name == "plan":
                yield _sse("plan", value.get("plan"))
            else:
                yield _sse(name, {k: v for k, v in value.items() if k != "event"})
        elif kind == "answer":
            _log_run(run, thread_id, caller, value)
            yield _sse("answer", value.to_json())
            status = "refused" if value.refusal else "ok"
            yield _sse("done", {"thread_id": thread_id, "status": status})
            return
        else:
            yield _sse("error", internal_error(value))
            yield _sse("done", {"thread_id": thread_id, "status": "error"})
            return
        kind, value = await run.next()


# ----------------------------------------------------------------------------- the app


@dataclass
class Service:
    agent: Agent
    settings: Settings
    tracker: RunTracker
    auth: Authenticator


def _service(request: Request) -> Service:
    return request.app.state.service


_bearer = HTTPBearer(auto_error=False, description="Only when OPSAGENT_JWT_* auth is set.")


async def _caller(
    request: Request,
    # Declared for /docs' "Authorize" button; the raw header is parsed below for better errors.
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    user_id: Annotated[str | None, Header(alias=USER_HEADER,
                                          description="AgentCore's caller, when set.")] = None,
) -> Caller:
    service = _service(request)
    try:
        return await service.auth.caller(request.headers.get("authorization"), user_id)
    except AuthError as exc:
        raise ApiError(401, "unauthorized", str(exc),
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


def _wants_stream(accept: str | None) -> bool:
    for part in (accept or "").split(","):
        media, _, params = part.strip().partition(";")
        if media.strip().lower() == "text/event-stream" and "q=0" not in params.replace(" ", ""):
            return True
    return False


def _thread_id(session_id: str | None, body_thread: str | None) -> str:
    if session_id is not None:
        if not 33 <= len(session_id) <= 256 or not _THREAD_ID_RE.match(session_id):
            raise ApiError(400, "invalid_session_id",
                           f"{SESSION_HEADER} must be 33 to 256 characters of letters, digits "
                           "and ._:@- (AgentCore's runtimeSessionId)")
        return session_id
    return body_thread or str(uuid.uuid4())


async def _check_owner(service: Service, thread_id: str, caller: Caller) -> None:
    """With auth on, a thread belongs to whoever asked its first question."""
    if not caller.authenticated:
        return
    state = await service.agent.graph.aget_state({"configurable": {"thread_id": thread_id}})
    owner = (state.metadata or {}).get("user") if state.values else None
    if owner is not None and owner != caller.user:
        raise ApiError(403, "thread_forbidden", "this thread belongs to another user",
                       thread_id=thread_id)


def _refusal_error(answer: Answer, thread_id: str) -> ApiError:
    assert answer.refusal is not None
    return ApiError(REFUSAL_STATUS.get(answer.refusal.kind, 422), answer.refusal.kind,
                    answer.refusal.message, thread_id=thread_id, answer=answer.to_json(),
                    headers={THREAD_HEADER: thread_id})


def _run_failed(exc: BaseException, thread_id: str) -> ApiError:
    body = internal_error(exc)
    return ApiError(500, body["error"], body["message"], thread_id=thread_id,
                    headers={THREAD_HEADER: thread_id})


def create_app(settings: Settings | None = None, *, planner: Any = None) -> FastAPI:
    """The service. `planner` replaces the configured one (tests; see open_agent)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracker = RunTracker()
        async with open_checkpointer(settings.checkpoint_url) as checkpointer, \
                open_agent(settings, checkpointer=checkpointer, planner=planner) as agent:
            app.state.service = Service(agent, settings, tracker, Authenticator(settings))
            log.info(json.dumps({"event": "service_started", "host": settings.host,
                                 "port": settings.port, "sandbox": settings.uses_sandbox,
                                 "checkpoints": settings.checkpoint_url.split("?")[0]}))
            try:
                yield
            finally:
                # No run outlives the service: stop them before the sessions close.
                await tracker.cancel_all()
        log.info(json.dumps({"event": "service_stopped"}))

    app = FastAPI(
        title="opsagent",
        version="0.1.0",
        summary="Read-only multi-account AWS operations agent.",
        description=__doc__,
        lifespan=lifespan,
    )
    app.add_middleware(InvocationGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(Boundary)  # added last: outermost of ours
    _install_error_handlers(app)

    @app.get("/ping", response_model=PingResponse, tags=["AgentCore Runtime"])
    async def ping(request: Request) -> PingResponse:
        """Health for AgentCore Runtime: HealthyBusy while any question is in flight."""
        tracker = _service(request).tracker
        return PingResponse(status=tracker.status, time_of_last_update=tracker.changed_at)

    @app.post(
        "/invocations",
        tags=["AgentCore Runtime"],
        response_model=None,
        responses={
            200: {
                "model": InvocationResponse,
                "description": "The answer (JSON), or the run as Server-Sent Events.",
                "content": {"text/event-stream": {
                    "schema": {"type": "string", "description": SSE_DESCRIPTION}}},
                "headers": {THREAD_HEADER: {"schema": {"type": "string"},
                                            "description": "The conversation's thread id."}},
            },
            **_ERRORS,
        },
    )
    async def invocations(
        request: Request,
        body: InvocationRequest,
        caller: Annotated[Caller, Depends(_caller)],
        session_id: Annotated[str | None, Header(
            alias=SESSION_HEADER, description="AgentCore Runtime session (33-256 chars): the "
                                              "thread id.")] = None,
        accept: Annotated[str | None, Header(
            description="text/event-stream for Server-Sent Events.")] = None,
    ) -> Response:
        """Answer one question across the accounts: JSON, or SSE while the work happens."""
        service = _service(request)
        question = body.text
        if len(question) > settings.max_question_chars:
            raise ApiError(413, "question_too_long",
                           f"the question is {len(question):,} characters; the limit is "
                           f"{settings.max_question_chars:,}")
        thread_id = _thread_id(session_id, body.thread_id)
        await _check_owner(service, thread_id, caller)
        service.tracker.claim(thread_id)
        config = service.agent.config(
            thread_id=thread_id, user=caller.user,
            visible_accounts=caller.visible_accounts(service.agent.registry),
        )
        config["metadata"] = {"user": caller.user}
        try:
            run = GraphRun(service.agent, question, config, service.tracker, thread_id)
        except BaseException:
            service.tracker.release(thread_id)
            raise
        stream = _wants_stream(accept)
        handed_over = False
        try:
            first = await _until_disconnect(request, run.next() if stream else run.outcome())
            if first is None:  # the caller left during planning: nobody will read a reply
                return Response(status_code=499)
            if first[0] == "event" and first[1].get("event") == "refusal":
                first = await run.outcome()
            kind, value = first
            if kind == "error":
                raise _run_failed(value, thread_id)
            if kind == "answer" and value.refusal is not None:
                raise _refusal_error(value, thread_id)
            headers = {THREAD_HEADER: thread_id}
            if stream:
                handed_over = True
                return RunStream(run, _events(run, thread_id, caller, first), headers=headers,
                                 ping=settings.sse_ping_seconds)
            # JSON: first is already the outcome (answer).
            _log_run(run, thread_id, caller, value)
            return JSONResponse({"thread_id": thread_id, **value.to_json()}, headers=headers)
        finally:
            if not handed_over:
                await run.cancel()

    @app.get(
        "/threads/{thread_id}",
        response_model=ThreadResponse,
        tags=["Threads"],
        responses={401: _ERRORS[401], 403: _ERRORS[403],
                   404: {"model": ErrorResponse, "description": "No such thread."},
                   422: {"model": ErrorResponse, "description": "Not a thread id."}},
    )
    async def thread(
        request: Request,
        thread_id: Annotated[str, Path(max_length=256, pattern=THREAD_ID_PATTERN)],
        caller: Annotated[Caller, Depends(_caller)],
    ) -> ThreadResponse:
        """The conversation's turns, oldest first: question, answer text, plan."""
        service = _service(request)
        state = await service.agent.graph.aget_state({"configurable": {"thread_id": thread_id}})
        turns = (state.values or {}).get("turns") or []
        if not turns:
            raise ApiError(404, "thread_not_found", f"no conversation with thread id {thread_id}")
        await _check_owner(service, thread_id, caller)
        return ThreadResponse(thread_id=thread_id,
                              turns=[TurnOut.model_validate(t) for t in turns])

    return app


def _log_run(run: GraphRun, thread_id: str, caller: Caller, answer: Answer) -> None:
    log.info(json.dumps({
        "event": "answered", "thread_id": thread_id, "user": caller.user,
        "accounts": len(answer.results), "refusal": answer.refusal.kind if answer.refusal else None,
        "elapsed_ms": int((time.monotonic() - run.started) * 1000),
    }))


def log_config() -> dict[str, Any]:
    """uvicorn's logging plus ours: opsagent.* records (audit, runs) are JSON lines on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = json.loads(json.dumps(LOGGING_CONFIG))  # a deep copy; uvicorn's stays as it is
    config["formatters"]["json_lines"] = {"format": "%(message)s"}
    config["handlers"]["opsagent"] = {"formatter": "json_lines", "class": "logging.StreamHandler",
                                      "stream": "ext://sys.stderr"}
    config["loggers"]["opsagent"] = {"handlers": ["opsagent"], "level": "INFO",
                                     "propagate": False}
    return config
