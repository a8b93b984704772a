"""The supervisor graph: plan → one account worker per account (in parallel) → merge.

Progress is emitted as custom stream events (``stream_mode="custom"``) so any client, the
CLI, the HTTP service or LangGraph Studio, can show the work as it happens:

    {"event": "plan", "plan": {...}} | {"event": "refusal", ...}
    {"event": "account_started", "account_id", "alias"}
    {"event": "account_finished", "account_id", "alias", "status", "count", "elapsed_ms", "error"}

The final state carries ``answer`` (an Answer). State is checkpointed per thread, so a
follow-up question sees the plan of the last turn that completed: a turn counts once
``merge`` has recorded it in ``turns``, so a run that died half way (a crash after its
accounts answered) is not what "how many?" builds on.
"""

from __future__ import annotations

import asyncio
import functools
import operator
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from opsagent.graph.answer import build_answer
from opsagent.graph.planner import Planner
from opsagent.graph.state import AccountResult, Answer, Plan, Refusal
from opsagent.graph.worker import FreeformWorker, RunReads, run_account
from opsagent.registry import Registry

DEFAULT_USER = "anonymous"


@dataclass
class AgentDeps:
    """What the graph needs from outside: the accounts, how to reach them, how to plan."""

    registry: Registry
    run_reads: RunReads
    planner: Planner
    account_timeout: float = 60.0
    freeform_worker: FreeformWorker | None = None


def _results(current: list[AccountResult], update: list[AccountResult] | None):
    """Workers append; a new question (update None) starts from an empty list."""
    if update is None:
        return []
    return [*current, *update]


class Turn(TypedDict):
    question: str
    answer: str
    plan: dict | None


class AgentState(TypedDict, total=False):
    question: str
    plan: Plan | None  # the plan of the question in flight; follow-ups build on `turns`
    refusal: Refusal | None
    results: Annotated[list[AccountResult], _results]
    answer: Answer | None
    turns: Annotated[list[Turn], operator.add]


class WorkerInput(TypedDict):
    account_id: str
    plan: Plan
    user: str


def _user(config: RunnableConfig) -> str:
    return str(config.get("configurable", {}).get("user") or DEFAULT_USER)


def _visible(config: RunnableConfig) -> set[str] | None:
    visible = config.get("configurable", {}).get("visible_accounts")
    return set(visible) if visible is not None else None


def last_completed_plan(state: AgentState) -> Plan | None:
    """What a follow-up builds on: the plan of the last turn that completed with one.

    Never `state["plan"]`: the plan node writes that before the accounts are queried, so
    after a run that died half way it is the unanswered question's plan. A refused turn
    has no plan; the turn before it is what a follow-up still means.
    """
    for turn in reversed(state.get("turns") or []):
        if turn.get("plan"):
            return Plan.model_validate(turn["plan"])
    return None


def _contained(node: Callable[..., Awaitable[dict]]) -> Callable[..., Awaitable[dict]]:
    """The node, with SystemExit, KeyboardInterrupt and the like from inside it (a model, a
    parser, a planner) raised as a RuntimeError. LangGraph runs nodes as asyncio tasks, and
    asyncio ends the whole process when a task raises those; this way the run fails as any
    failed run does. Cancellation still cancels."""

    @functools.wraps(node)
    async def run(*args: Any, **kwargs: Any) -> dict:
        try:
            return await node(*args, **kwargs)
        except (asyncio.CancelledError, GeneratorExit, Exception):
            raise
        except BaseException as exc:
            raise RuntimeError(f"{type(exc).__name__} in {node.__name__}: {exc}") from exc

    return run


def build_graph(deps: AgentDeps, checkpointer: Any = None):
    registry = deps.registry

    async def plan(state: AgentState, config: RunnableConfig) -> dict:
        write = get_stream_writer()
        question = (state.get("question") or "").strip()
        outcome = await deps.planner(question, registry, last_completed_plan(state))
        if isinstance(outcome, Plan):
            visible = _visible(config)
            hidden = [a for a in outcome.accounts if visible is not None and a not in visible]
            if hidden:
                outcome = Refusal(
                    kind="forbidden",
                    message="You may not query account(s) " + ", ".join(hidden) + ".",
                )
        if isinstance(outcome, Refusal):
            write({"event": "refusal", "refusal": outcome.model_dump()})
            return {"refusal": outcome, "results": None, "answer": None}
        write({"event": "plan", "plan": outcome.model_dump()})
        return {"plan": outcome, "refusal": None, "results": None, "answer": None}

    def fan_out(state: AgentState, config: RunnableConfig):
        if state.get("refusal") is not None:
            return "merge"
        plan_ = state["plan"]
        return [
            Send("account_worker", {"account_id": a, "plan": plan_, "user": _user(config)})
            for a in plan_.accounts
        ]

    async def account_worker(state: WorkerInput) -> dict:
        write = get_stream_writer()
        account = registry.get(state["account_id"])
        write({"event": "account_started", "account_id": account.id, "alias": account.alias})
        result = await run_account(
            account, state["plan"], state["user"], deps.run_reads,
            deadline_s=deps.account_timeout, freeform=deps.freeform_worker,
        )
        write({
            "event": "account_finished",
            "account_id": result.account_id,
            "alias": result.alias,
            "status": result.status,
            "count": result.count,
            "elapsed_ms": result.elapsed_ms,
            "error": result.error,
        })
        return {"results": [result]}

    async def merge(state: AgentState) -> dict:
        refusal = state.get("refusal")
        answer = build_answer(
            state.get("question", ""),
            None if refusal else state.get("plan"),
            refusal,
            state.get("results") or [],
        )
        turn: Turn = {
            "question": answer.question,
            "answer": answer.text,
            "plan": answer.plan.model_dump() if answer.plan else None,
        }
        return {"answer": answer, "turns": [turn]}

    graph = StateGraph(AgentState)
    graph.add_node("plan", _contained(plan))
    graph.add_node("account_worker", _contained(account_worker))
    graph.add_node("merge", _contained(merge))
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["account_worker", "merge"])
    graph.add_edge("account_worker", "merge")
    graph.add_edge("merge", END)
    return graph.compile(checkpointer=checkpointer, name="opsagent")
