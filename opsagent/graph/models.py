"""The domain models every part of the agent speaks: Plan, Resource, AccountResult, Answer.

Account lives in registry/ (it is about which accounts exist) and is re-exported here.
The graph's own state (what LangGraph checkpoints per thread) is in ``graph/state.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from opsagent.registry import Account

Intent = Literal["list", "count", "describe"]
Grouping = Literal["account", "region"]
AccountStatus = Literal["ok", "denied", "error", "timeout"]
RefusalKind = Literal["unsupported", "unknown_account", "read_only", "forbidden"]
# How an attribute filter compares (catalogue/attributes.py says what each means per kind):
# eq/ne (a list value: any of), gt/gte/lt/lte (numbers, versions, times), prefix (text,
# versions: "14" matches 14.9), within_days/older_than_days (times, against the time of
# the question), on_or_after/before (times, against an ISO date).
FilterOp = Literal[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "prefix",
    "within_days",
    "older_than_days",
    "on_or_after",
    "before",
]
Ranking = Literal["most", "fewest"]


class AttributeFilter(BaseModel):
    """One condition on an attribute a resource type declares (its rows' ``details``)."""

    attribute: str  # "instance_type", "runtime", "launch_time", "storage_encrypted"
    op: FilterOp = "eq"
    value: str | int | float | bool | list[str]


class ResourceQuery(BaseModel):
    """One thing to find in every planned account and region."""

    resource_type: str
    intent: Intent = "list"
    states: list[str] = Field(default_factory=list)  # e.g. ["running"]; empty means any
    tags: dict[str, str] = Field(default_factory=dict)  # all must match
    name_contains: str | None = None
    ids: list[str] = Field(default_factory=list)  # describe these only; empty means all
    # Conditions a resource type defines for itself: "unattached", "unassociated", "open-to-world"
    conditions: list[str] = Field(default_factory=list)
    # Attribute filters, all of which must hold: instance type, runtime, age, encryption...
    filters: list[AttributeFilter] = Field(default_factory=list)
    tag_keys: list[str] = Field(default_factory=list)  # these tag keys are present (any value)
    missing_tags: list[str] = Field(default_factory=list)  # these tag keys are absent
    untagged: bool = False  # no tags at all
    # Ranking over the merged answer (every account): the `limit` first rows by `sort_by`.
    sort_by: str | None = None  # an attribute
    descending: bool = False  # largest, newest first
    limit: int | None = None
    group_by: str | None = None  # an attribute: "instances by type" counts per value
    total: str | None = None  # a numeric attribute summed: "total EBS storage"

    def asked_attributes(self) -> list[str]:
        """The attributes it filters, ranks, groups or sums on, in that order, once each:
        what its answer shows as columns."""
        names = [f.attribute for f in self.filters]
        names += [a for a in (self.sort_by, self.group_by, self.total) if a]
        return list(dict.fromkeys(names))


class Plan(BaseModel):
    """What a question asks, in terms the workers can execute."""

    accounts: list[str]  # account ids
    regions: list[str] | None = None  # None: each account's own regions from the registry
    queries: list[ResourceQuery]
    group_by: Grouping | None = None
    # "Which account has the most ...": the group (account, region, or a query's attribute
    # value) with the most or fewest rows is the answer; every group's count stays shown.
    rank: Ranking | None = None
    # How the planner read the question, shown to the user ("EC2 instances in production").
    summary: str = ""
    # A task no query can express, for a model-driven worker with the account's MCP tools
    # (model planner only; empty for the rule planner).
    freeform: str | None = None


class Refusal(BaseModel):
    """The agent will not or cannot answer; the message says why and what would work."""

    kind: RefusalKind
    message: str
    # A denial ("forbidden"): the accounts the question asked for (the audit's "asked").
    accounts: list[str] = Field(default_factory=list)


class Resource(BaseModel):
    """One row of the answer table."""

    account_id: str
    account_alias: str
    region: str
    resource_type: str
    id: str
    name: str | None = None
    state: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    details: dict = Field(default_factory=dict)


class AccountResult(BaseModel):
    """What one account worker found, or why it could not."""

    account_id: str
    alias: str
    status: AccountStatus
    rows: list[Resource] = Field(default_factory=list)
    error: str | None = None
    elapsed_ms: int = 0
    # What a model-driven worker concluded for a freeform task, in its own words.
    note: str | None = None
    # When the oldest of its data was read from AWS (UTC); earlier than the question when
    # the answer reused recent reads (OPSAGENT_DATA_MAX_AGE).
    read_at: datetime | None = None
    reused: bool = False  # some of its data came from an earlier read
    # Regions the account has not enabled (opt-in regions): reported, not a failure.
    regions_not_enabled: list[str] = Field(default_factory=list)
    # Reads sent to AWS for this question (reused recent reads not counted): for the audit.
    reads: int = 0

    @property
    def count(self) -> int:
        return len(self.rows)


class Answer(BaseModel):
    """The merged answer to one question."""

    question: str
    text: str
    plan: Plan | None = None
    refusal: Refusal | None = None
    results: list[AccountResult] = Field(default_factory=list)
    # From the embedded sandbox's made-up demo accounts, not from AWS.
    sandbox: bool = False
    # Every row in the order a ranking asked for ("the 5 largest volumes", across
    # accounts); None when no query ranks, and rows go account by account.
    ranked_rows: list[Resource] | None = None

    @property
    def resources(self) -> list[Resource]:
        if self.ranked_rows is not None:
            return self.ranked_rows
        return [row for result in self.results for row in result.rows]

    @property
    def described_types(self) -> set[str]:
        if self.plan is None:
            return set()
        return {q.resource_type for q in self.plan.queries if q.intent == "describe"}

    def shown_details(self, row: Resource) -> dict:
        """What of a row's details the answer shows (catalogue.shown_details)."""
        from opsagent.graph.catalogue import shown_details  # the catalogue imports this module

        return shown_details(row, self.plan.queries if self.plan else [])

    def to_json(self) -> dict:
        """The public JSON shape of `opsagent ask --json` and the HTTP service."""
        return {
            "question": self.question,
            "answer": self.text,
            "plan": self.plan.model_dump() if self.plan else None,
            "refusal": self.refusal.model_dump() if self.refusal else None,
            "sandbox": self.sandbox,
            "accounts": [
                {
                    "account_id": r.account_id,
                    "alias": r.alias,
                    "status": r.status,
                    "error": r.error,
                    "count": r.count,
                    "elapsed_ms": r.elapsed_ms,
                    "read_at": r.read_at.isoformat() if r.read_at else None,
                    "reused": r.reused,
                    "regions_not_enabled": r.regions_not_enabled,
                    "reads": r.reads,
                }
                for r in self.results
            ],
            # Details (engine, version, size, endpoint…) come with the rows a question asked
            # to describe, and the attributes it asked about (runtime, size...) with the rest;
            # other lists and counts stay compact.
            "resources": [self._row_json(row) for row in self.resources],
        }

    def _row_json(self, row: Resource) -> dict:
        data = row.model_dump(exclude={"details"})
        details = self.shown_details(row)
        if details:
            data["details"] = details
        return data


__all__ = [
    "Account",
    "AccountResult",
    "AccountStatus",
    "AttributeFilter",
    "FilterOp",
    "Answer",
    "Grouping",
    "Intent",
    "Plan",
    "Ranking",
    "Refusal",
    "RefusalKind",
    "Resource",
    "ResourceQuery",
]
