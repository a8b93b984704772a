"""The web page: GET / and its few static files, shipped in the package (``page/``).

No build step and no framework: ``index.html``, ``page.js`` and ``page.css`` are served as
they are. The page talks to the same ``POST /invocations`` as any client (SSE read from a
streaming fetch, with the caller's bearer token when auth is on), so it sees exactly what
the caller may see. These routes are public (the page holds no data) and are left out of
the OpenAPI schema: the API contract is unchanged.

Every response here carries a Content-Security-Policy that allows scripts, styles and
connections from this origin only (no inline script, no ``eval``, no plugins, no framing)
and ``X-Content-Type-Options: nosniff``. The page itself writes AWS data only as text.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from opsagent.service.http.errors import ApiError

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Small files, read again on every load: a new version shows after a restart.
    "Cache-Control": "no-cache",
}
# The page's files and their types: nothing else under page/ is ever served.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}

router = APIRouter(include_in_schema=False)


@cache
def _read(name: str) -> bytes:
    return (files("opsagent.service.http") / "page" / name).read_bytes()


def _asset(name: str) -> Response:
    return Response(_read(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


@router.get("/")
def index() -> Response:
    """The page: ask, watch each account answer, read the table."""
    return _asset("index.html")


@router.get("/page/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS or name == "index.html":
        raise ApiError("not_found", "Not Found", headers=SECURITY_HEADERS)
    return _asset(name)
