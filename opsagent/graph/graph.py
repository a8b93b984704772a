"""The supervisor graph: plan → one account worker per account (in parallel) → merge.

``graph`` is the compiled graph without a checkpointer; ``build_graph(checkpointer)`` compiles
one with. The nodes are the module-level functions below; each takes the state and
LangGraph's ``Runtime[Context]``, whose ``context`` (``graph/context.py``) is the run's
dependencies and caller, passed at invoke time::

    await graph.ainvoke({"question": "..."}, config, context=Context(registry=..., ...))

Progress is emitted as custom stream events (``stream_mode="custom"``, through
``runtime.stream_writer``) so any client, the CLI, the HTTP service or LangGraph Studio,
can show the work as it happens:

    {"event": "plan", "plan": {...}} | {"event": "refusal", ...}
    {"event": "account_started", "account_id", "alias"}   (once it has its fan-out slot)
    {"event": "account_finished", "account_id", "alias", "status", "count", "elapsed_ms", "error"}

The final state carries ``answer`` (an Answer); the state is ``graph/state.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from opsagent.access import Asker
from opsagent.graph.answer import build_answer
from opsagent.graph.context import Context
from opsagent.graph.models import Plan, Refusal
from opsagent.graph.state import AgentState, Turn, WorkerInput, last_completed_plan
from opsagent.graph.worker import run_account


def _contained(node: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The node, with SystemExit, KeyboardInterrupt and the like from inside it (a model, a
    parser, a planner) raised as a RuntimeError. LangGraph runs nodes as asyncio tasks, and
    asyncio ends the whole process when a task raises those; this way the run fails as any
    failed run does. Cancellation still cancels."""

    @functools.wraps(node)  # LangGraph reads the signature through it: `runtime` is injected
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return await node(*args, **kwargs)
        except (asyncio.CancelledError, GeneratorExit, Exception):
            raise
        except BaseException as exc:
            raise RuntimeError(f"{type(exc).__name__} in {node.__name__}: {exc}") from exc

    return run


async def plan(state: AgentState, runtime: Runtime[Context]) -> dict:
    """The question (and the last completed turn's plan) → a Plan, or a Refusal."""
    ctx = runtime.context
    question = (state.get("question") or "").strip()
    outcome = await _plan_as_seen_by(ctx, question, last_completed_plan(state))
    if isinstance(outcome, Refusal):
        runtime.stream_writer({"event": "refusal", "refusal": outcome.model_dump()})
        return {"refusal": outcome, "results": None, "answer": None}
    runtime.stream_writer({"event": "plan", "plan": outcome.model_dump()})
    return {"plan": outcome, "refusal": None, "results": None, "answer": None}


async def _plan_as_seen_by(ctx: Context, question: str, last: Plan | None) -> Plan | Refusal:
    """The plan within the accounts the caller may see: the planner is given only those, so
    "all accounts" means all of theirs and no message lists another account. A question that
    only plans with the whole registry names accounts hidden from the caller: it is denied,
    saying which accounts and which groups would open them."""
    visible = ctx.visible_accounts
    if visible is None:
        return await ctx.planner(question, ctx.registry, last)
    if not visible:
        return Refusal(kind="forbidden", message=_no_access(ctx))
    outcome = await ctx.planner(question, ctx.registry.visible_part(visible), last)
    if isinstance(outcome, Refusal) and outcome.kind in ("unknown_account", "unsupported"):
        whole = await ctx.planner(question, ctx.registry, last)
        if isinstance(whole, Plan) and any(a not in visible for a in whole.accounts):
            outcome = whole
    if isinstance(outcome, Plan):
        hidden = [a for a in outcome.accounts if a not in visible]
        if hidden:
            return Refusal(
                kind="forbidden", message=_denial(ctx, hidden), accounts=outcome.accounts
            )
    return outcome


def _no_access(ctx: Context) -> str:
    why = (
        f"your groups ({', '.join(ctx.groups)}) open none"
        if ctx.groups
        else "your token names no groups"
    )
    return f"You may not query any account: {why}."


def _denial(ctx: Context, hidden: list[str]) -> str:
    """Which accounts, that the caller's groups do not include them, and which groups would."""
    names, openers = [], []
    for account_id in hidden:
        account = ctx.registry.get(account_id)
        names.append(f"{account.name} ({account.id})")
        would = ctx.registry.groups_including(account_id)
        openers.append(
            f"{account.name}: {', '.join(would)}" if would else f"{account.name}: no group yet"
        )
    it = "it" if len(hidden) == 1 else "them"
    why = (
        f"your groups ({', '.join(ctx.groups)}) do not include {it}"
        if ctx.groups
        else "your token names no groups"
    )
    return f"You may not query {', '.join(names)}: {why}. Groups that may: {'; '.join(openers)}."


def fan_out(state: AgentState) -> str | list[Send]:
    """One account worker per planned account, or straight to merge after a refusal.

    The state alone decides: LangGraph also runs this edge with no run (and no Context) when
    a thread's state is updated as the plan node (``update_state(..., as_node="plan")``)."""
    if state.get("refusal") is not None:
        return "merge"
    plan_ = state["plan"]
    assert plan_ is not None
    return [Send("account_worker", WorkerInput(account_id=a, plan=plan_)) for a in plan_.accounts]


async def account_worker(state: WorkerInput, runtime: Runtime[Context]) -> dict:
    """One account's reads for the plan; whatever goes wrong becomes its status."""
    ctx, write = runtime.context, runtime.stream_writer
    account = ctx.registry.get(state["account_id"])
    async with ctx.account_slots.hold() if ctx.account_slots else contextlib.nullcontext():
        # Started once it has its slot: its deadline starts now, not while it waited.
        write({"event": "account_started", "account_id": account.id, "alias": account.alias})
        result = await run_account(
            account,
            state["plan"],
            Asker(ctx.user, ctx.groups),  # named in the account's CloudTrail (access/identity.py)
            ctx.run_reads,
            deadline_s=ctx.account_timeout,
            freeform=ctx.freeform_worker,
            fresh=ctx.fresh,
        )
    write(
        {
            "event": "account_finished",
            "account_id": result.account_id,
            "alias": result.alias,
            "status": result.status,
            "count": result.count,
            "elapsed_ms": result.elapsed_ms,
            "error": result.error,
        }
    )
    return {"results": [result]}


async def merge(state: AgentState, runtime: Runtime[Context]) -> dict:
    """The accounts' results → one Answer, and the turn a follow-up builds on."""
    refusal = state.get("refusal")
    answer = build_answer(
        state.get("question", ""),
        None if refusal else state.get("plan"),
        refusal,
        state.get("results") or [],
        sandbox=runtime.context.sandbox,
    )
    turn: Turn = {
        "question": answer.question,
        "answer": answer.text,
        "plan": answer.plan.model_dump() if answer.plan else None,
    }
    return {"answer": answer, "turns": [turn]}


def build_graph(checkpointer: Any = None, *, context_schema: type[Context] = Context):
    """The supervisor graph, compiled with ``checkpointer`` (None: the caller's or none).

    ``context_schema`` is Context or a subclass that builds one from what a client can
    send as JSON (LangGraph Studio, ``service/studio.py``)."""
    builder = StateGraph(AgentState, context_schema=context_schema)
    builder.add_node("plan", _contained(plan))
    builder.add_node("account_worker", _contained(account_worker))
    builder.add_node("merge", _contained(merge))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["account_worker", "merge"])
    builder.add_edge("account_worker", "merge")
    builder.add_edge("merge", END)
    return builder.compile(checkpointer=checkpointer, name="opsagent")


graph = build_graph()

__all__ = ["Context", "build_graph", "graph"]
