"""LangGraph Studio's entry point: `langgraph dev` serves the supervisor graph from here.

langgraph.json names `graph` (the factory) and `app` (a route-less app whose lifespan starts
the agent with the server and stops it when the server stops), both by module path. The
graph is compiled WITHOUT a checkpointer: the LangGraph server attaches its own to every
run. Our checkpointer belongs to `opsagent serve` only.

The graph's nodes take their dependencies from the run's Context (graph/context.py), but
Studio can only send a run's context as JSON. So Studio's graph is the same graph compiled
with `context_schema=StudioContext`: LangGraph builds the run's context from that JSON
(`StudioContext(**json)`, after filtering it by the schema, which shows only `user`,
`visible_accounts`, `account_timeout` and `fresh`) and StudioContext fills in the live parts from
the process's shared agent: its registry, MCP sessions and planner, on the sandbox.

The server's checkpointer uses langgraph-api's serializer, which cannot be given a msgpack
allow-list, so it logs "Deserializing unregistered type opsagent.graph.models.Plan" once per
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
import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from starlette.applications import Starlette

from opsagent.graph.context import Context
from opsagent.graph.graph import build_graph
from opsagent.service.runtime import Agent, open_agent
from opsagent.service.settings import Settings


class StudioContext(Context):
    """A Studio run's Context, from what Studio sends as JSON (all optional) and the shared
    agent's live parts. A Context subclass, so LangGraph coerces a run's JSON context with
    it and the nodes get a Context; keys outside the schema are ignored."""

    def __init__(
        self,
        user: str | None = None,
        visible_accounts: list[str] | None = None,
        account_timeout: float | None = None,
        fresh: bool | None = None,
        **_ignored: Any,
    ) -> None:
        agent = _holder().agent
        if agent is None:
            raise RuntimeError("the Studio agent is not open: the graph factory opens it")
        context = agent.context(
            user, set(visible_accounts) if visible_accounts is not None else None
        )
        fields = {f.name: getattr(context, f.name) for f in dataclasses.fields(Context)}
        if account_timeout is not None:
            fields["account_timeout"] = float(account_timeout)
        if fresh is not None:
            fields["fresh"] = bool(fresh)
        Context.__init__(self, **fields)


class _Shared:
    """The process's one agent, opened on first use and closed by the app's lifespan."""

    def __init__(self) -> None:
        self.agent: Agent | None = None
        self.graph: Any = None  # the agent's graph, with StudioContext as its context schema
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
                self.graph = build_graph(context_schema=StudioContext)
            return self.agent

    async def close(self) -> None:
        stack, self._stack, self.agent, self.graph = self._stack, None, None, None
        if stack is not None:
            await stack.aclose()


_shared = _Shared()


def _holder() -> _Shared:
    # langgraph may load this file by path, as a second module object next to the imported
    # one; both must share one agent, so the holder always comes from the imported module.
    import opsagent.service.studio as canonical

    return canonical._shared


async def graph(config: RunnableConfig) -> Any:
    """The graph factory langgraph.json points at: the uncheckpointed graph whose runs get a
    StudioContext on the shared agent."""
    holder = _holder()
    await holder.get()
    return holder.graph


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    await _holder().get()  # start the sandbox with the server, not on the first click
    try:
        yield
    finally:
        await _holder().close()


# Mounted by langgraph.json's "http.app": no routes, only the lifespan.
app = Starlette(lifespan=_lifespan)
