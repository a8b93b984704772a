"""The graph's state: what LangGraph carries between nodes and checkpoints per thread.

A follow-up question sees the plan of the last turn that completed: a turn counts once
``merge`` has recorded it in ``turns``, so a run that died half way (a crash after its
accounts answered) is not what "how many?" builds on.

The domain models (Plan, Answer, ...) live in ``graph/models.py``. They are imported here
under their own names on purpose: threads checkpointed before the move hold them under the
module path ``opsagent.graph.state``, and LangGraph's serializer revives a stored model by
importing that module and taking the class by name (see ``service/checkpoints.py``, whose
allow-list names both paths). Keep these imports while such threads may exist.
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from opsagent.graph.models import (  # noqa: F401 (the compatibility path, see above)
    Account,
    AccountResult,
    AccountStatus,
    Answer,
    Grouping,
    Intent,
    Plan,
    Refusal,
    RefusalKind,
    Resource,
    ResourceQuery,
)


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
    """What the fan-out Sends each account worker (checkpointed with the pending writes)."""

    account_id: str
    plan: Plan


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


__all__ = ["AgentState", "Turn", "WorkerInput", "last_completed_plan"]
