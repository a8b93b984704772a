"""The HTTP service, by job (see app.py's docstring for the contract):

    app.py         create_app (the lifespan, middleware, handlers, routes)
    routes.py      POST /invocations, GET /ping, GET /threads/{id}; who is asking
    schemas.py     request and response bodies; the answer's derived from the domain models
    errors.py      ERRORS, the one table of error codes and statuses; ApiError; the handlers
    middleware.py  body type and size checks before a route; the Boundary (anything -> 500)
    runs.py        a question's run as a task, the tracker behind /ping, its SSE events
    auth.py        bearer tokens and the AgentCore user header -> Caller
    page.py        GET /: the web page (its files in page/), outside the API schema

Nothing outside this package imports it at module level: the CLI's `serve` imports it when
it runs, so the wiring (runtime.py), settings and the CLI never load FastAPI. ``create_app``
is loaded on first use (PEP 562), so importing ``auth`` alone (the bridge Lambda checks the
same tokens, ``opsagent/bridge``) loads neither FastAPI nor the graph.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsagent.service.http.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from opsagent.service.http.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["create_app"]
