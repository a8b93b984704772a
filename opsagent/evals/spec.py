"""The canned questions: their file shape, loading and validation.

`questions.json` (shipped inside the package) holds a list of questions. Each one is

    {"id": "ec2-prod", "question": "List all EC2 instances in the production account",
     "heldout": false, "covers": ["product", "intent:list"],
     "plan": {"accounts": ["222222222222"], "queries": [{"resource_type": "ec2:instance"}]}}

or, for a question the agent must not answer, ``"refusal": "read_only"`` (or
``unsupported``, ``unknown_account``, ``forbidden``) instead of ``"plan"``.

Optional fields: ``thread`` (questions sharing a thread run in file order on one conversation
thread: follow-ups), ``visible_accounts`` (the accounts the asker may see).

An expected plan lists every field that matters; a field left out means its default
(``regions`` null, ``group_by`` and ``rank`` null, ``intent`` "list", no states, tags, name
filter, ids, conditions, filters, tag keys, missing tags; ``untagged`` false, no
``sort_by``, ``descending`` false, no ``limit``, no query ``group_by``, no ``total``).
``filters`` is a list of ``{"attribute", "op", "value"}`` (``op`` "eq" when left out),
compared in any order; text values case-insensitively, numbers as numbers. A date value of
``on_or_after``/``before`` may be relative to the day the eval runs: ``@today``,
``@this-month`` (its first day), ``@this-year`` (January 1), ``@MM-DD`` (the latest such
day on or before today: "since October 1").

Where a question can honestly be read two ways, a field's value may be
``{"any_of": [a, b]}``; ``regions`` may be ``{"covers": [...]}`` ("every region": null, or
a list that includes at least these). ``plan`` itself may be ``{"any_of": [plan, plan]}``.
The first alternative is the canonical reading the expected answer is computed from.

Expected answers are never written here: the runner computes them from the sandbox's
ground truth (see truth.py) for the canonical expected plan.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, get_args

from opsagent.graph.catalogue import CATALOGUE, CONDITIONS, RESOURCE_TYPES
from opsagent.graph.models import FilterOp
from opsagent.registry import Registry

QUESTIONS_FILE = "questions.json"
REFUSAL_KINDS = ("unsupported", "unknown_account", "read_only", "forbidden")
PLAN_KEYS = {"accounts", "regions", "queries", "group_by", "rank"}
QUERY_KEYS = {
    "resource_type",
    "intent",
    "states",
    "tags",
    "name_contains",
    "ids",
    "conditions",
    "filters",
    "tag_keys",
    "missing_tags",
    "untagged",
    "sort_by",
    "descending",
    "limit",
    "group_by",
    "total",
}
INTENTS = ("list", "count", "describe")
GROUPINGS = ("account", "region", None)
QUERY_DEFAULTS: dict[str, Any] = {
    "intent": "list",
    "states": [],
    "tags": {},
    "name_contains": None,
    "ids": [],
    "conditions": [],
    "filters": [],
    "tag_keys": [],
    "missing_tags": [],
    "untagged": False,
    "sort_by": None,
    "descending": False,
    "limit": None,
    "group_by": None,
    "total": None,
}
PLAN_DEFAULTS: dict[str, Any] = {"regions": None, "group_by": None, "rank": None}
RANKS = ("most", "fewest", None)
DATE_OPS = ("on_or_after", "before")


def resolve_date(value: Any, today: date | None = None) -> Any:
    """A spec's relative date ("@this-month", "@10-01") as the ISO date it means today."""
    if not (isinstance(value, str) and value.startswith("@")):
        return value
    today = today or datetime.now(UTC).date()
    token = value[1:].lower()
    if token == "today":
        day = today
    elif token == "this-month":
        day = today.replace(day=1)
    elif token == "this-year":
        day = today.replace(month=1, day=1)
    else:
        month, dom = (int(part) for part in token.split("-"))
        day = date(today.year, month, dom)
        if day > today:
            day = date(today.year - 1, month, dom)
    return day.isoformat()


def resolve_filters(filters: list[dict[str, Any]], today: date | None = None) -> list[dict]:
    """A spec's filters with their op filled in and relative dates resolved."""
    resolved = []
    for item in filters:
        op = item.get("op", "eq")
        value = resolve_date(item["value"], today) if op in DATE_OPS else item["value"]
        resolved.append({"attribute": item["attribute"], "op": op, "value": value})
    return resolved


class QuestionFileError(ValueError):
    """The question file is malformed; the message names the question and the problem."""


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    heldout: bool = False
    covers: tuple[str, ...] = ()
    thread: str | None = None
    plan: Any = None  # the expected plan spec (dict or {"any_of": [...]}), or None
    refusal: str | None = None  # the expected refusal kind, or None
    visible_accounts: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expects_refusal(self) -> bool:
        return self.refusal is not None


def is_any_of(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"any_of"}


def is_covers(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"covers"}


def alternatives(value: Any) -> list[Any]:
    return list(value["any_of"]) if is_any_of(value) else [value]


def canonical(value: Any) -> Any:
    """The first reading of a spec value: what the expected answer is computed from."""
    if is_any_of(value):
        return canonical(value["any_of"][0])
    if is_covers(value):
        return list(value["covers"])
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def canonical_plan(spec: Any) -> dict[str, Any]:
    """The canonical expected plan with every default filled in."""
    plan = canonical(spec)
    full = {**PLAN_DEFAULTS, **plan}
    full["queries"] = [{**QUERY_DEFAULTS, **q} for q in plan["queries"]]
    for query in full["queries"]:
        query["filters"] = resolve_filters(query["filters"])
    return full


def default_questions_path() -> Path:
    return Path(str(resources.files("opsagent.evals").joinpath(QUESTIONS_FILE)))


def load_questions(path: str | Path | None = None) -> list[EvalQuestion]:
    path = Path(path) if path is not None else default_questions_path()
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise QuestionFileError(f"cannot read {path}: {exc}") from None
    items = raw.get("questions") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise QuestionFileError(f"{path}: expected a list of questions")
    questions = [_parse(item, index) for index, item in enumerate(items)]
    duplicates = [k for k, n in Counter(q.id for q in questions).items() if n > 1]
    if duplicates:
        raise QuestionFileError(f"duplicate question ids: {', '.join(duplicates)}")
    return questions


def _parse(item: Any, index: int) -> EvalQuestion:
    if not isinstance(item, dict):
        raise QuestionFileError(f"question #{index}: not an object")
    where = f"question {item.get('id', '#' + str(index))!r}"
    known = {
        "id",
        "question",
        "heldout",
        "covers",
        "thread",
        "plan",
        "refusal",
        "visible_accounts",
        "note",
    }
    unknown = set(item) - known
    if unknown:
        raise QuestionFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if not isinstance(item.get("id"), str) or not isinstance(item.get("question"), str):
        raise QuestionFileError(f"{where}: needs a string id and question")
    if ("plan" in item) == ("refusal" in item):
        raise QuestionFileError(f"{where}: needs exactly one of plan or refusal")
    if "refusal" in item and item["refusal"] not in REFUSAL_KINDS:
        raise QuestionFileError(f"{where}: refusal must be one of {', '.join(REFUSAL_KINDS)}")
    if "plan" in item:
        for alt in alternatives(item["plan"]):
            _check_plan_shape(alt, where)
    visible = item.get("visible_accounts")
    return EvalQuestion(
        id=item["id"],
        question=item["question"],
        heldout=bool(item.get("heldout", False)),
        covers=tuple(item.get("covers", [])),
        thread=item.get("thread"),
        plan=item.get("plan"),
        refusal=item.get("refusal"),
        visible_accounts=tuple(visible) if visible is not None else None,
        extra={"note": item["note"]} if "note" in item else {},
    )


def _check_plan_shape(plan: Any, where: str) -> None:
    if not isinstance(plan, dict):
        raise QuestionFileError(f"{where}: plan must be an object")
    unknown = set(plan) - PLAN_KEYS
    if unknown:
        raise QuestionFileError(f"{where}: unknown plan field(s) {', '.join(sorted(unknown))}")
    if "accounts" not in plan or "queries" not in plan:
        raise QuestionFileError(f"{where}: a plan needs accounts and queries")
    queries = plan["queries"]
    if not isinstance(queries, list) or not queries:
        raise QuestionFileError(f"{where}: queries must be a non-empty list")
    for query in queries:
        if not isinstance(query, dict) or "resource_type" not in query:
            raise QuestionFileError(f"{where}: every query needs a resource_type")
        unknown = set(query) - QUERY_KEYS
        if unknown:
            raise QuestionFileError(f"{where}: unknown query field(s) {', '.join(sorted(unknown))}")


def validate_questions(questions: list[EvalQuestion], registry: Registry) -> list[str]:
    """Problems with the questions against the registry and the agent's vocabulary."""
    problems: list[str] = []
    known_accounts = {e.id for e in registry.accounts}
    for q in questions:
        if q.visible_accounts is not None:
            for account in q.visible_accounts:
                if account not in known_accounts:
                    problems.append(f"{q.id}: visible account {account} is not in the registry")
        if q.plan is None:
            continue
        for plan in alternatives(q.plan):
            for value in _values(plan["accounts"]):
                for account in value:
                    if account not in known_accounts:
                        problems.append(f"{q.id}: account {account} is not in the registry")
            for value in _values(plan.get("group_by")):
                if value not in GROUPINGS:
                    problems.append(f"{q.id}: group_by {value!r} is not account/region/null")
            for value in _values(plan.get("rank")):
                if value not in RANKS:
                    problems.append(f"{q.id}: rank {value!r} is not most/fewest/null")
            for value in _values(plan.get("regions")):
                if value is not None and not all(isinstance(r, str) for r in value):
                    problems.append(f"{q.id}: regions must be a list of region codes")
            for query in plan["queries"]:
                for rtype in _values(query["resource_type"]):
                    if rtype not in RESOURCE_TYPES:
                        problems.append(f"{q.id}: unknown resource type {rtype}")
                for intent in _values(query.get("intent", "list")):
                    if intent not in INTENTS:
                        problems.append(f"{q.id}: unknown intent {intent}")
                for conditions in _values(query.get("conditions", [])):
                    for condition in conditions:
                        owner = CONDITIONS.get(condition)
                        if owner is None:
                            problems.append(f"{q.id}: unknown condition {condition}")
                        elif owner != query["resource_type"]:
                            problems.append(
                                f"{q.id}: {condition} does not apply to {query['resource_type']}"
                            )
                problems += _attribute_problems(q.id, query)
    return problems


_OPS = set(get_args(FilterOp))


def _attribute_problems(qid: str, query: dict[str, Any]) -> list[str]:
    """Attributes a query names that its type does not declare, and unknown ops."""
    problems = []
    for rtype in _values(query["resource_type"]):
        declared = CATALOGUE.get(rtype)
        if declared is None:
            continue
        known = {a.name for a in declared.attributes}
        named: list[str] = []
        for filters in _values(query.get("filters", [])):
            for item in filters:
                named.append(item.get("attribute"))
                if item.get("op", "eq") not in _OPS:
                    problems.append(f"{qid}: unknown filter op {item.get('op')!r}")
        for key in ("sort_by", "group_by", "total"):
            named += [v for v in _values(query.get(key)) if v is not None]
        for name in named:
            if name not in known:
                problems.append(f"{qid}: {rtype} has no attribute {name!r}")
    return problems


def _values(value: Any) -> list[Any]:
    """Every alternative a spec value allows (covers counts as its list)."""
    if is_covers(value):
        return [value["covers"]]
    return alternatives(value)
