"""The run context: what every node of the graph receives as ``runtime.context``.

LangGraph's ``context_schema``: the graph is compiled once (``graph/graph.py``) and each run
brings its own Context (``graph.ainvoke(state, config, context=Context(...))``): the
accounts, how to reach them and how to plan (live objects, opened by ``service/runtime.py``
or a test), and who is asking. The checkpointed state never holds any of it.

The function types it takes are defined once each, where they are implemented: ``Planner``
in ``graph/planner``, ``RunReads`` in ``access/read_cache.py``, ``FreeformWorker`` in
``graph/worker.py``.

The live fields are left out of the context's JSON schema (a LangGraph server shows and
filters a run's context by that schema); ``user``, ``groups``, ``visible_accounts``,
``account_timeout`` and ``fresh`` are what a client may send as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from opsagent.access import AccountSlots, RunReads
from opsagent.graph.planner import Planner
from opsagent.graph.worker import FreeformWorker
from opsagent.registry import Registry

DEFAULT_USER = "anonymous"
# OPSAGENT_ACCOUNT_TIMEOUT's default: the one deadline of an account's work (AssumeRole,
# session, script), from when its worker gets its slot. The real AWS MCP Server takes about
# 13-15 s for a one-call script (awslabs/mcp PR #4584): 90 s leaves room for a slow one.
DEFAULT_ACCOUNT_TIMEOUT = 90.0


@dataclass(frozen=True)
class Context:
    """One run's dependencies and caller."""

    # pydantic reads this when a LangGraph server builds the context's JSON schema.
    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    registry: Annotated[Registry, SkipJsonSchema()]
    run_reads: Annotated[RunReads, SkipJsonSchema()]
    planner: Annotated[Planner, SkipJsonSchema()]
    user: str = DEFAULT_USER
    # The caller's groups (from their token): named in denials, and carried into every
    # member account as STS session tags so its CloudTrail shows who asked.
    groups: tuple[str, ...] = ()
    # The accounts this caller may query; None: every account in the registry.
    visible_accounts: frozenset[str] | None = None
    account_timeout: float = DEFAULT_ACCOUNT_TIMEOUT
    freeform_worker: Annotated[FreeformWorker | None, SkipJsonSchema()] = None
    # Process-wide bound on accounts in flight (shared by every run); None: no bound.
    account_slots: Annotated[AccountSlots | None, SkipJsonSchema()] = None
    # Read every account again instead of reusing recent reads (OPSAGENT_DATA_MAX_AGE).
    fresh: bool = False
    # The accounts are the embedded sandbox's made-up demo: every answer says so.
    sandbox: bool = False


__all__ = ["DEFAULT_USER", "Context"]
