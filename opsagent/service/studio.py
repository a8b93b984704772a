"""LangGraph Studio's entry point: `langgraph dev` serves the supervisor graph from here.

langgraph.json names `graph` (the factory) and `app` (a route-less app whose lifespan starts
the agent with the server and stops it when the server stops), both by module path. The
graph is compiled WITHOUT a checkpointer: the LangGraph server attaches its own to every
run. Our checkpointer belongs to `opsagent serve` only.

The server's checkpointer uses langgraph-api's serializer, which cannot be given a msgpack
allow-list, so it logs "Deserializing unregistered type opsagent.graph.state.Plan" once per
type per process; the values still round-trip. (LANGGRAPH_STRICT_MSGPACK=true is not a fix:
the dev server then hands the graph plain dicts and follow-ups fail.)

The agent (sandbox, MCP sessions, graph) is opened once per server process, on the first
call or at startup, whichever comes first, and shared by every run: the server calls the
factory for each run and each state read, and a sandbox per call would be seconds each.
With no OPSAGENT_* settings it runs on the embedded sandbox, as `opsagent serve` does.

    LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=1 langgraph dev
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from starlette.applications import Starlette

from opsagent.service.runtime import Agent, open_agent
from opsagent.service.settings import Settings


class _Shared:
    """The process's one agent, opened on first use and closed by the app's lifespan."""

    def __init__(self) -> None:
        self.agent: Agent | None = None
        self._stack: AsyncExitStack | None = None
        self._lock: asyncio.Lock | None = None

    async def get(self) -> Agent:
        if self._lock is None:  # created inside the server's loop, not at import
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.agent is None:
                stack = AsyncExitStack()
                try:
                    self.agent = await stack.enter_async_context(
                        open_agent(Settings(), checkpointer=None)
                    )
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack = stack
            return self.agent

    async def close(self) -> None:
        stack, self._stack, self.agent = self._stack, None, None
        if stack is not None:
            await stack.aclose()


_shared = _Shared()


def _holder() -> _Shared:
    # langgraph may load this file by path, as a second module object next to the imported
    # one; both must share one agent, so the holder always comes from the imported module.
    import opsagent.service.studio as canonical

    return canonical._shared


async def graph(config: RunnableConfig) -> Any:
    """The graph factory langgraph.json points at: the shared agent's uncheckpointed graph."""
    return (await _holder().get()).graph


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    await _holder().get()  # start the sandbox with the server, not on the first click
    try:
        yield
    finally:
        await _holder().close()


# Mounted by langgraph.json's "http.app": no routes, only the lifespan.
app = Starlette(lifespan=_lifespan)
