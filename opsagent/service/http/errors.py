"""What a caller can get back instead of an answer: the error codes, defined once here.

Every error body is ``{"error": code, "message": text}`` (plus ``thread_id`` and, for a
refusal, the full answer JSON under ``answer``). ``ERRORS`` below is the one table of codes
and their HTTP statuses: ``ApiError`` takes its status from it, the handlers answer with it,
`/docs` describes each route's errors from it, and the README's list of status codes is
checked against it (tests/unit/test_service_schema.py).

One boundary turns anything else a request's work raises into ``internal_error``'s 500
(see ``middleware.Boundary``); nothing but ``internal`` is ever a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsagent.service.http.schemas import ErrorResponse


@dataclass(frozen=True)
class ErrorCode:
    status: int
    code: str
    meaning: str
    # Answered by the framework's routing (no such path, wrong method), not raised by us.
    routing: bool = False


ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode(400, "invalid_json", "the body is not JSON"),
    ErrorCode(
        400, "invalid_session_id", "the session header is not 33-256 characters of [A-Za-z0-9._:@-]"
    ),
    ErrorCode(401, "unauthorized", "auth is on and the bearer token is missing or invalid"),
    ErrorCode(403, "read_only", "the question asks to change something: the agent only reads"),
    ErrorCode(403, "forbidden", "the question names accounts the caller's groups may not see"),
    ErrorCode(
        404,
        "thread_not_found",
        "no such thread: none has this id, or (with auth on) it is another user's; the two "
        "answer alike, so a thread id reveals nothing",
    ),
    ErrorCode(404, "not_found", "no such path", routing=True),
    ErrorCode(405, "method_not_allowed", "the path does not take this method", routing=True),
    ErrorCode(409, "thread_busy", "a question is already running in this thread"),
    ErrorCode(
        413,
        "body_too_large",
        "the body is over OPSAGENT_MAX_BODY_BYTES (64 KiB); a "
        "refused body is still read to its end, up to 16 MiB",
    ),
    ErrorCode(413, "question_too_long", "the question is over OPSAGENT_MAX_QUESTION_CHARS (2,000)"),
    ErrorCode(
        415,
        "unsupported_media_type",
        "the body is declared as another type (text/plain, a form...); "
        "application/json, *+json, no type or application/octet-stream are read as "
        "JSON (InvokeAgentRuntime's contentType is optional)",
    ),
    ErrorCode(
        422,
        "invalid_request",
        "no question, an empty one, one that is not text (a lone surrogate such as "
        '"\\ud800", a control character), a body that is not an object, a path '
        "parameter that is not a thread id, ...",
    ),
    ErrorCode(422, "unknown_account", "the question names an account the registry does not know"),
    ErrorCode(
        422, "unsupported", "the planner cannot read the question (the message says what works)"
    ),
    ErrorCode(500, "internal", "the service itself failed; nothing else is ever a 500"),
)
BY_CODE: dict[str, ErrorCode] = {error.code: error for error in ERRORS}
_ROUTING_CODES: dict[int, str] = {error.status: error.code for error in ERRORS if error.routing}


def status_of(code: str) -> int:
    return BY_CODE[code].status


def table() -> str:
    """ERRORS as text, for /docs."""
    width = max(len(error.code) for error in ERRORS)
    return "\n".join(
        f"    {error.status} {error.code:<{width}}  {error.meaning}" for error in ERRORS
    )


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route that can answer these codes, described from ERRORS."""
    by_status: dict[int, list[ErrorCode]] = {}
    for code in codes:
        by_status.setdefault(status_of(code), []).append(BY_CODE[code])
    return {
        status: {
            "model": ErrorResponse,
            "description": "; ".join(f"`{e.code}`: {e.meaning}" for e in found),
        }
        for status, found in sorted(by_status.items())
    }


class ApiError(HTTPException):
    """An error with a code from ERRORS (which gives its status) and a message for a person."""

    def __init__(
        self, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(status_code=status_of(code), detail=message, headers=headers)
        self.code = code
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}


def error_response(code: str, message: str) -> JSONResponse:
    """An error answered before any route runs (the middleware's 413 and 415)."""
    return JSONResponse(error_body(code, message), status_code=status_of(code))


def internal_error(exc: BaseException) -> dict[str, Any]:
    """The body of a 500 and of an SSE `error` event: what failed, in a line (a database
    error's CONTEXT lines, a validation error's field lines are joined into it)."""
    detail = " ".join(str(exc).split())
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return error_body("internal", f"the service failed: {what}")


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, ApiError):
            body = error_body(exc.code, str(exc.detail), **exc.extra)
        else:
            code = _ROUTING_CODES.get(exc.status_code, f"http_{exc.status_code}")
            body = error_body(code, str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = next(e for e in errors if e.get("type") == "json_invalid")
            reason = (detail.get("ctx") or {}).get("error", "")
            message = (
                f"the body is not valid JSON ({reason})" if reason else "the body is not valid JSON"
            )
            return JSONResponse(
                error_body("invalid_json", message), status_code=status_of("invalid_json")
            )
        return JSONResponse(
            error_body("invalid_request", _readable(errors)),
            status_code=status_of("invalid_request"),
        )
