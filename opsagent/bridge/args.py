"""The tools' arguments, validated: what ``tools.json`` publishes, checked before anything runs.

A query is a plan (resource types of the agent's catalogue with the agent's filters: the
``ResourceQuery`` of ``graph/models.py``) or reads as data (``access.Read`` values, which the
read-only guard checks). Never a CLI string and never code. Every model refuses fields it does
not know, so a misspelt filter is an error, not a filter silently dropped.

``ArgumentError`` carries one readable message (``field: what is wrong``), never a traceback.
"""

from __future__ import annotations

from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opsagent.access import Read
from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.catalogue.checks import query_problems
from opsagent.graph.models import ResourceQuery
from opsagent.registry import is_region

# Bounds on one call: a plan is a handful of queries, reads a handful of operations.
MAX_QUERIES = 20
MAX_READS = 50
MAX_REGIONS = 40
MAX_ACCOUNT_REFERENCES = 1000
_SHOWN_ERRORS = 5

M = TypeVar("M", bound=BaseModel)


class ArgumentError(ValueError):
    """The tool's arguments are not usable; the message says what to change."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryArg(ResourceQuery):
    """One resource query of a plan: a catalogue type and the agent's filters.

    ``states`` may name the type's own states (``available`` for RDS) or the agent's state
    words for it (``running``: RDS available, EC2 running, Lambda/ECS/EKS active…)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _known(self) -> Self:
        kind = CATALOGUE.get(self.resource_type)
        if kind is None:
            raise ValueError(
                f"unknown resource_type {self.resource_type!r}; known: {', '.join(CATALOGUE)}"
            )
        states: list[str] = []
        for state in self.states:
            word = state.strip().lower()
            if word in kind.states:
                states.append(word)
            elif word in kind.state_concepts:
                states.extend(kind.state_concepts[word])
            elif not kind.states:
                raise ValueError(f"{self.resource_type} has no states to filter by")
            else:
                words = sorted({*kind.states, *kind.state_concepts})
                raise ValueError(
                    f"{self.resource_type} has no state {state!r}; known: {', '.join(words)}"
                )
        self.states = list(dict.fromkeys(states))
        names = {condition.name for condition in kind.conditions}
        for condition in self.conditions:
            if condition not in names:
                known = ", ".join(sorted(names)) or "none"
                raise ValueError(
                    f"{self.resource_type} has no condition {condition!r}; known: {known}"
                )
        problems = query_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def query(self) -> ResourceQuery:
        return ResourceQuery.model_validate(self.model_dump())


class PlanArg(_Strict):
    """What to find in every account: queries, in the given regions or each account's own."""

    queries: list[QueryArg] = Field(min_length=1, max_length=MAX_QUERIES)
    regions: list[str] | None = Field(default=None, min_length=1, max_length=MAX_REGIONS)

    @field_validator("regions")
    @classmethod
    def _regions(cls, regions: list[str] | None) -> list[str] | None:
        for region in regions or []:
            if not is_region(region):
                raise ValueError(f"{region!r} is not an AWS region code (like us-east-1)")
        return list(dict.fromkeys(regions)) if regions else None


class _Query(_Strict):
    plan: PlanArg | None = None
    reads: list[Read] | None = Field(default=None, min_length=1, max_length=MAX_READS)
    # Read every account again instead of reusing reads younger than OPSAGENT_DATA_MAX_AGE.
    fresh: bool = False

    @model_validator(mode="after")
    def _plan_or_reads(self) -> Self:
        if (self.plan is None) == (self.reads is None):
            raise ValueError("give either plan or reads (exactly one of them)")
        return self


class ListAccountsArgs(_Strict):
    pass


class QueryAccountArgs(_Query):
    account: str = Field(min_length=1, max_length=256)


class QueryAccountsArgs(_Query):
    accounts: list[str] = Field(min_length=1, max_length=MAX_ACCOUNT_REFERENCES)

    @field_validator("accounts")
    @classmethod
    def _references(cls, accounts: list[str]) -> list[str]:
        if any(not ref.strip() for ref in accounts):
            raise ValueError("an account reference is empty")
        return accounts


def parse(model: type[M], event: Any) -> M:
    """The event as the tool's arguments, or ArgumentError saying what is wrong."""
    if not isinstance(event, dict):
        raise ArgumentError(
            f"the tool's arguments must be a JSON object, not {type(event).__name__}"
        )
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        raise ArgumentError(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """``plan.queries.0.resource_type: Field required; …`` (the first few, then how many more)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:_SHOWN_ERRORS]:
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "not a field of this tool"
        parts.append(f"{where}: {message}")
    more = exc.error_count() - _SHOWN_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


__all__ = [
    "MAX_ACCOUNT_REFERENCES",
    "MAX_QUERIES",
    "MAX_READS",
    "ArgumentError",
    "ListAccountsArgs",
    "PlanArg",
    "QueryAccountArgs",
    "QueryAccountsArgs",
    "QueryArg",
    "describe",
    "parse",
]
