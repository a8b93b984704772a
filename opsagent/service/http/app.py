"""The HTTP service: Amazon Bedrock AgentCore Runtime's HTTP contract over FastAPI.

    POST /invocations        ask a question; JSON answer, or SSE with Accept: text/event-stream
    GET  /ping               {"status": "Healthy" | "HealthyBusy", "time_of_last_update": int}
    GET  /threads/{id}       the conversation's turns
    GET  /                   the web page (page.py; static files, not part of the API)

The agent (registry, sandbox or real accounts, MCP sessions, the compiled graph) and the
checkpointer are opened once, in the lifespan, and shared by every request.

What a caller can get wrong comes back as {"error": code, "message": text}, refusals with
the full answer JSON under "answer" as well; the codes and their statuses are the table in
``opsagent.service.http.errors`` (ERRORS), printed below on /docs. Anything a request's
work raises is a 500 ``internal`` (``middleware.Boundary``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from opsagent.service.checkpoints import open_checkpointer
from opsagent.service.http import errors
from opsagent.service.http.auth import Authenticator
from opsagent.service.http.middleware import Boundary, InvocationGuard
from opsagent.service.http.page import router as page_router
from opsagent.service.http.routes import Service, router
from opsagent.service.http.runs import RunTracker
from opsagent.service.runtime import open_agent
from opsagent.service.settings import Settings

log = logging.getLogger("opsagent.service")
NO_AUTH = (
    "listening beyond loopback without OPSAGENT_JWT_*: every caller sees every account, and "
    "anyone who sends a thread id (and any X-Amzn-Bedrock-AgentCore-Runtime-User-Id) can "
    "read or continue that thread"
)


def create_app(settings: Settings | None = None, *, planner: Any = None) -> FastAPI:
    """The service. `planner` replaces the configured one (tests; see open_agent)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        problem = settings.exposure_problem()
        if problem:  # `opsagent serve` says so before it starts; any other launcher, here
            raise RuntimeError(problem)
        tracker = RunTracker()
        auth = Authenticator(settings)
        await auth.start()  # discovery document and JWKS, read once: unreadable, no start
        async with (
            open_checkpointer(settings.checkpoint_url) as checkpointer,
            open_agent(settings, checkpointer=checkpointer, planner=planner) as agent,
        ):
            app.state.service = Service(agent, settings, tracker, auth)
            log.info(
                json.dumps(
                    {
                        "event": "service_started",
                        "host": settings.host,
                        "port": settings.port,
                        "sandbox": settings.uses_sandbox,
                        "checkpoints": settings.checkpoint_url.split("?")[0],
                    }
                )
            )
            if settings.listens_beyond_loopback and not app.state.service.auth.enabled:
                log.warning(json.dumps({"event": "no_authentication", "message": NO_AUTH}))
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
        description=f"{__doc__}\nError codes:\n\n{errors.table()}\n",
        lifespan=lifespan,
    )
    app.add_middleware(InvocationGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(Boundary)  # added last: outermost of ours
    errors.install_error_handlers(app)
    app.include_router(router)
    app.include_router(page_router)  # GET /: the web page (page.py), not in the API schema
    return app
