"""The routes: POST /invocations, GET /ping, GET /threads/{id}, and who is asking.

Thread id: the X-Amzn-Bedrock-AgentCore-Runtime-Session-Id header (AgentCore's session is the
conversation), else the body's `thread_id`, else a new UUID. It comes back in the JSON body
(`thread_id`), in the X-Opsagent-Thread-Id header and as the first SSE event.

The errors each route can answer are listed by code; their statuses and meanings are
``errors.ERRORS``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from opsagent.graph.models import Answer
from opsagent.service.http import errors
from opsagent.service.http.auth import USER_HEADER, Authenticator, AuthError, Caller
from opsagent.service.http.errors import ApiError, internal_error
from opsagent.service.http.runs import (
    GraphRun,
    RunStream,
    RunTracker,
    events,
    log_run,
    until_disconnect,
)
from opsagent.service.http.schemas import (
    SESSION_HEADER,
    SSE_DESCRIPTION,
    THREAD_HEADER,
    THREAD_ID_PATTERN,
    InvocationRequest,
    InvocationResponse,
    PingResponse,
    ThreadResponse,
    TurnOut,
)
from opsagent.service.runtime import Agent
from opsagent.service.settings import Settings

_THREAD_ID_RE = re.compile(THREAD_ID_PATTERN)

router = APIRouter()


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
    user_id: Annotated[
        str | None, Header(alias=USER_HEADER, description="AgentCore's caller, when set.")
    ] = None,
) -> Caller:
    service = _service(request)
    try:
        return await service.auth.caller(request.headers.get("authorization"), user_id)
    except AuthError as exc:
        raise ApiError(
            "unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


def _checked_token(request: Request, caller: Caller) -> str | None:
    """The bearer token the service verified for this caller; None when auth is off (an
    unchecked token is never passed on)."""
    if not caller.authenticated:
        return None
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _wants_stream(accept: str | None) -> bool:
    for part in (accept or "").split(","):
        media, _, params = part.strip().partition(";")
        if media.strip().lower() == "text/event-stream" and "q=0" not in params.replace(" ", ""):
            return True
    return False


def _thread_id(session_id: str | None, body_thread: str | None) -> str:
    if session_id is not None:
        if not 33 <= len(session_id) <= 256 or not _THREAD_ID_RE.match(session_id):
            raise ApiError(
                "invalid_session_id",
                f"{SESSION_HEADER} must be 33 to 256 characters of letters, digits "
                "and ._:@- (AgentCore's runtimeSessionId)",
            )
        return session_id
    return body_thread or str(uuid.uuid4())


def _no_thread(thread_id: str) -> ApiError:
    return ApiError("thread_not_found", f"no conversation with thread id {thread_id}")


async def _check_owner(service: Service, thread_id: str, caller: Caller) -> None:
    """With auth on, a thread belongs to whoever asked its first question; to anyone else it
    does not exist (404 as for an unknown id, so thread ids cannot be probed)."""
    if not caller.authenticated:
        return
    state = await service.agent.graph.aget_state({"configurable": {"thread_id": thread_id}})
    owner = (state.metadata or {}).get("user") if state.values else None
    if owner is not None and owner != caller.user:
        raise _no_thread(thread_id)


def _refusal_error(answer: Answer, thread_id: str) -> ApiError:
    assert answer.refusal is not None
    # Every refusal kind is a code of errors.ERRORS (tests/unit/test_service_schema.py).
    return ApiError(
        answer.refusal.kind,
        answer.refusal.message,
        thread_id=thread_id,
        answer=answer.to_json(),
        headers={THREAD_HEADER: thread_id},
    )


def _run_failed(exc: BaseException, thread_id: str) -> ApiError:
    body = internal_error(exc)
    return ApiError(
        body["error"], body["message"], thread_id=thread_id, headers={THREAD_HEADER: thread_id}
    )


@router.get("/ping", response_model=PingResponse, tags=["AgentCore Runtime"])
async def ping(request: Request) -> PingResponse:
    """Health for AgentCore Runtime: HealthyBusy while any question is in flight."""
    tracker = _service(request).tracker
    return PingResponse(status=tracker.status, time_of_last_update=tracker.changed_at)


@router.post(
    "/invocations",
    tags=["AgentCore Runtime"],
    response_model=None,
    responses={
        200: {
            "model": InvocationResponse,
            "description": "The answer (JSON), or the run as Server-Sent Events.",
            "content": {
                "text/event-stream": {"schema": {"type": "string", "description": SSE_DESCRIPTION}}
            },
            "headers": {
                THREAD_HEADER: {
                    "schema": {"type": "string"},
                    "description": "The conversation's thread id.",
                }
            },
        },
        **errors.responses(
            "invalid_json",
            "invalid_session_id",
            "unauthorized",
            "read_only",
            "forbidden",
            "thread_not_found",
            "thread_busy",
            "body_too_large",
            "question_too_long",
            "unsupported_media_type",
            "invalid_request",
            "unknown_account",
            "unsupported",
            "internal",
        ),
    },
)
async def invocations(
    request: Request,
    body: InvocationRequest,
    caller: Annotated[Caller, Depends(_caller)],
    session_id: Annotated[
        str | None,
        Header(
            alias=SESSION_HEADER,
            description="AgentCore Runtime session (33-256 chars): the thread id.",
        ),
    ] = None,
    accept: Annotated[
        str | None, Header(description="text/event-stream for Server-Sent Events.")
    ] = None,
) -> Response:
    """Answer one question across the accounts: JSON, or SSE while the work happens."""
    service = _service(request)
    settings = service.settings
    question = body.text
    if len(question) > settings.max_question_chars:
        raise ApiError(
            "question_too_long",
            f"the question is {len(question):,} characters; the limit is "
            f"{settings.max_question_chars:,}",
        )
    thread_id = _thread_id(session_id, body.thread_id)
    await _check_owner(service, thread_id, caller)
    service.tracker.claim(thread_id)
    config = service.agent.config(
        thread_id=thread_id,
        user=caller.user,
        visible_accounts=caller.visible_accounts(service.agent.registry),
        groups=caller.groups,
        fresh=body.fresh,
        # Over an AgentCore Gateway, the caller's own (checked) token is what it is sent.
        bearer_token=_checked_token(request, caller),
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
        first = await until_disconnect(request, run.next() if stream else run.outcome())
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
            return RunStream(
                run,
                events(run, thread_id, caller, first),
                headers=headers,
                ping=settings.sse_ping_seconds,
            )
        # JSON: first is already the outcome (answer).
        log_run(run, thread_id, caller, value)
        return JSONResponse({"thread_id": thread_id, **value.to_json()}, headers=headers)
    finally:
        if not handed_over:
            await run.cancel()


@router.get(
    "/threads/{thread_id}",
    response_model=ThreadResponse,
    tags=["Threads"],
    responses=errors.responses("unauthorized", "thread_not_found", "invalid_request"),
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
        raise _no_thread(thread_id)
    await _check_owner(service, thread_id, caller)
    return ThreadResponse(thread_id=thread_id, turns=[TurnOut.model_validate(t) for t in turns])
