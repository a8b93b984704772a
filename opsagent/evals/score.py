"""Comparing what the agent did with what was expected.

Every function returns a list of problems in plain words; an empty list means right. A
score is 1 for no problems and 0 otherwise: a plan is either the question's meaning or not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from opsagent.evals.spec import (
    PLAN_DEFAULTS,
    QUERY_DEFAULTS,
    alternatives,
    is_any_of,
    is_covers,
    resolve_filters,
)
from opsagent.graph.models import Answer, Plan, Refusal, ResourceQuery

RowKey = tuple[str, str, str]  # (account id, resource type, resource id)
MAX_LISTED = 6  # rows named in one problem message


# ----- plans -----


def _norm_list(value: Any) -> list[str]:
    return sorted({str(v).strip().lower() for v in value or []})


def _norm_tags(value: Any) -> dict[str, str]:
    return {str(k).strip().lower(): str(v).strip().lower() for k, v in (value or {}).items()}


def _norm_name(value: Any) -> str | None:
    text = str(value).strip().strip("'\"").lower() if value is not None else ""
    return text or None


def _norm_regions(value: Any) -> list[str] | None:
    return None if value is None else _norm_list(value)


def _norm_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return tuple(sorted(_norm_value(v) for v in value))
    text = str(value).strip().lower()
    try:
        return float(text)
    except ValueError:
        return text


def _norm_filters(value: Any) -> list[tuple]:
    items = [dict(item) for item in value or []]
    return sorted(
        (
            (str(f["attribute"]), str(f["op"]), _norm_value(f["value"]))
            for f in resolve_filters(items)
        ),
        key=repr,
    )


def _same(value: Any) -> Any:
    return value


_QUERY_FIELDS = {
    "resource_type": lambda v: v,
    "intent": lambda v: v,
    "states": _norm_list,
    "tags": _norm_tags,
    "name_contains": _norm_name,
    "ids": _norm_list,
    "conditions": _norm_list,
    "filters": _norm_filters,
    "tag_keys": _norm_list,
    "missing_tags": _norm_list,
    "untagged": bool,
    "sort_by": _same,
    "descending": bool,
    "limit": _same,
    "group_by": _same,
    "total": _same,
}


def _field_matches(spec: Any, got: Any, norm) -> bool:
    if is_any_of(spec):
        return any(_field_matches(alt, got, norm) for alt in spec["any_of"])
    if is_covers(spec):
        return got is None or set(_norm_list(spec["covers"])) <= set(norm(got) or [])
    return norm(spec) == norm(got)


def _show(value: Any) -> str:
    if is_any_of(value):
        return " or ".join(_show(v) for v in value["any_of"])
    if is_covers(value):
        return f"null or a list covering {value['covers']}"
    return repr(value)


def query_problems(spec: dict[str, Any], got: ResourceQuery) -> list[str]:
    data = got.model_dump()
    problems = []
    for name, norm in _QUERY_FIELDS.items():
        want = spec.get(name, QUERY_DEFAULTS.get(name))
        if not _field_matches(want, data.get(name), norm):
            problems.append(
                f"{spec['resource_type']}: {name} expected {_show(want)}, got {data.get(name)!r}"
            )
    return problems


def _queries_problems(specs: list[dict[str, Any]], got: list[ResourceQuery]) -> list[str]:
    problems: list[str] = []
    remaining = list(got)
    for spec in specs:
        candidates = [
            q
            for q in remaining
            if _field_matches(spec["resource_type"], q.resource_type, lambda v: v)
        ]
        if not candidates:
            problems.append(f"no {_show(spec['resource_type'])} query")
            continue
        # The candidate with the fewest differences is the one the planner meant.
        best = min(candidates, key=lambda q: len(query_problems(spec, q)))
        problems.extend(query_problems(spec, best))
        remaining.remove(best)
    problems.extend(f"unexpected {q.resource_type} query" for q in remaining)
    return problems


def _single_plan_problems(spec: dict[str, Any], plan: Plan) -> list[str]:
    problems: list[str] = []
    if not _field_matches(spec["accounts"], plan.accounts, _norm_list):
        problems.append(f"accounts expected {_show(spec['accounts'])}, got {plan.accounts!r}")
    regions = spec.get("regions", PLAN_DEFAULTS["regions"])
    if not _field_matches(regions, plan.regions, _norm_regions):
        problems.append(f"regions expected {_show(regions)}, got {plan.regions!r}")
    group_by = spec.get("group_by", PLAN_DEFAULTS["group_by"])
    if not _field_matches(group_by, plan.group_by, lambda v: v):
        problems.append(f"group_by expected {_show(group_by)}, got {plan.group_by!r}")
    rank = spec.get("rank", PLAN_DEFAULTS["rank"])
    if not _field_matches(rank, plan.rank, lambda v: v):
        problems.append(f"rank expected {_show(rank)}, got {plan.rank!r}")
    problems.extend(_queries_problems(spec["queries"], plan.queries))
    if plan.freeform:
        problems.append(f"unexpected freeform task {plan.freeform!r}")
    return problems


def plan_problems(spec: Any, plan: Plan | None, refusal: Refusal | None = None) -> list[str]:
    """How the agent's plan differs from the expected plan spec (empty: it is right)."""
    if plan is None:
        if refusal is not None:
            return [f"refused ({refusal.kind}): {refusal.message}"]
        return ["no plan"]
    found = [_single_plan_problems(alt, plan) for alt in alternatives(spec)]
    if any(not problems for problems in found):
        return []
    return min(found, key=len)


def plan_score(spec: Any, plan: Plan | None, refusal: Refusal | None = None) -> int:
    return 0 if plan_problems(spec, plan, refusal) else 1


# ----- answers -----


@dataclass
class ExpectedAnswer:
    """What the right answer holds: its rows and how many each planned account has."""

    rows: Counter[RowKey] = field(default_factory=Counter)
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, accounts: list[str], rows: list[RowKey]) -> ExpectedAnswer:
        counts = dict.fromkeys(accounts, 0)
        for account, _, _ in rows:
            counts[account] = counts.get(account, 0) + 1
        return cls(rows=Counter(rows), counts=counts)


def _listed(keys: list[RowKey]) -> str:
    shown = ", ".join(f"{a}/{t}/{i}" for a, t, i in sorted(keys)[:MAX_LISTED])
    more = len(keys) - MAX_LISTED
    return shown + (f" (+{more} more)" if more > 0 else "")


def answer_problems(expected: ExpectedAnswer, answer: Answer | None) -> list[str]:
    """How the agent's rows and per-account counts differ from the expected ones."""
    if answer is None:
        return ["no answer"]
    if answer.refusal is not None:
        return [f"refused ({answer.refusal.kind}): {answer.refusal.message}"]
    problems = []
    for result in answer.results:
        if result.status != "ok":
            problems.append(f"account {result.account_id} {result.status}: {result.error}")
    got_rows: Counter[RowKey] = Counter(
        (r.account_id, r.resource_type, r.id) for r in answer.resources
    )
    missing = list((expected.rows - got_rows).elements())
    extra = list((got_rows - expected.rows).elements())
    if missing:
        problems.append(f"missing {len(missing)} row(s): {_listed(missing)}")
    if extra:
        problems.append(f"unexpected {len(extra)} row(s): {_listed(extra)}")
    got_counts = {r.account_id: r.count for r in answer.results}
    if got_counts != expected.counts:
        problems.append(f"counts per account expected {expected.counts}, got {got_counts}")
    return problems


def answer_score(expected: ExpectedAnswer, answer: Answer | None) -> int:
    return 0 if answer_problems(expected, answer) else 1


# ----- refusals -----


def refusal_problems(kind: str, answer: Answer | None) -> list[str]:
    """Whether the agent refused with the expected kind, without querying any account."""
    if answer is None:
        return ["no answer"]
    if answer.refusal is None:
        what = answer.plan.summary if answer.plan and answer.plan.summary else answer.text
        return [f"answered instead of refusing ({kind}): {what}"]
    problems = []
    if answer.refusal.kind != kind:
        problems.append(
            f"refused as {answer.refusal.kind}, expected {kind}: {answer.refusal.message}"
        )
    if answer.results:
        problems.append("accounts were queried for a refused question")
    if not answer.refusal.message.strip():
        problems.append("the refusal has no message")
    return problems


def refusal_score(kind: str, answer: Answer | None) -> int:
    return 0 if refusal_problems(kind, answer) else 1
