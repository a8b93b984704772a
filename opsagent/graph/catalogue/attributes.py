"""Attributes: what a resource type reports about each resource beyond its state and tags,
and what the attribute filters, rankings, groupings and totals of a query mean on them.

A type declares its attributes (``ResourceType.attributes``); its rows carry each one's
value in ``Resource.details`` under the attribute's name, normalized here so every type
compares the same way: text as AWS spells it, numbers as numbers, booleans as booleans,
times as ISO 8601 UTC strings ("2026-11-30T08:00:00Z"), versions as text compared part by
part ("1.29" < "1.30"). A row without a value for an attribute matches no filter on it
(not even "ne"), sorts last, and counts in its group as "(none)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from opsagent.graph.models import AttributeFilter, Resource, ResourceQuery

AttributeKind = Literal["text", "number", "bool", "time", "version"]
NO_VALUE = "(none)"  # the group of rows without a value


@dataclass(frozen=True)
class Attribute:
    """One attribute of a resource type's rows."""

    name: str  # as filters, rows' details and JSON carry it: "instance_type"
    label: str  # in sentences and column headers: "instance type"
    kind: AttributeKind
    # What people call it in questions, lower-case ("type", "instance type"); the planner's.
    words: tuple[str, ...] = ()
    unit: str = ""  # of a number, in sentences: "GiB", "MB"
    # How a filter on it reads after the noun. A boolean: when true and when false
    # ("on a deprecated runtime" / "on a supported runtime"; default "that are <label>" /
    # "that are not <label>"). A time: its verb ("launched": "launched in the last 7 days").
    true_phrase: str = ""
    false_phrase: str = ""
    verb: str = ""
    # The attribute whose values explain this one in an answer: a deprecated runtime is
    # shown by its runtime ("python3.8 2, nodejs16.x 1").
    about: str = ""


# ----- normalizing what AWS returns -----


def iso_time(value: Any) -> str | None:
    """AWS's times in any of its spellings ("2026-11-30T08:00:00.000+0000" from Lambda,
    ISO with an offset or a Z, epoch seconds, a datetime) as "2026-11-30T08:00:00Z"."""
    moment = as_time(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def as_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        text = str(value).strip().replace(" ", "T", 1)
        text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)  # +0000 -> +00:00
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def version_key(value: Any) -> tuple:
    """ "14.9" < "14.10" < "15": compared part by part, numbers as numbers."""
    parts = re.findall(r"\d+|[a-z]+", str(value).lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def instance_family(instance_type: Any) -> str | None:
    """ "m5.large" -> "m5"; "db.r5.xlarge" -> "r5"."""
    if not instance_type:
        return None
    parts = str(instance_type).split(".")
    return parts[-2] if len(parts) >= 2 else None


# ----- what filters, rankings and groupings mean -----


def value_of(resource: Resource, attribute: str) -> Any:
    return resource.details.get(attribute)


def _same_text(a: Any, b: Any) -> bool:
    return str(a).lower() == str(b).lower()


def _compare(kind: AttributeKind, have: Any, want: Any) -> int | None:
    """-1, 0 or 1 for have against want in the attribute's order; None when they don't compare."""
    try:
        if kind == "number":
            a, b = float(have), float(want)
        elif kind == "time":
            ta, tb = as_time(have), as_time(want)
            if ta is None or tb is None:
                return None
            a, b = ta.timestamp(), tb.timestamp()  # type: ignore[assignment]
        elif kind == "version":
            a, b = version_key(have), version_key(want)  # type: ignore[assignment]
        else:
            a, b = str(have).lower(), str(want).lower()  # type: ignore[assignment]
    except (TypeError, ValueError):
        return None
    return (a > b) - (a < b)  # type: ignore[operator]


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in {"true", "yes", "1"}:
        return True
    if text in {"false", "no", "0"}:
        return False
    return None


def filter_holds(kind: AttributeKind, have: Any, condition: AttributeFilter, now: datetime) -> bool:
    """Whether a row's value satisfies one filter (see models.FilterOp)."""
    if have is None or have == "":
        return False
    op, want = condition.op, condition.value
    if kind == "bool":
        have_bool, want_bool = _as_bool(have), _as_bool(want)
        if have_bool is None or want_bool is None:
            return False
        return (have_bool == want_bool) if op == "eq" else (have_bool != want_bool)
    if op in ("eq", "ne"):
        wanted = want if isinstance(want, list) else [want]
        if kind in ("number", "version", "time"):
            hit = any(_compare(kind, have, w) == 0 for w in wanted)
        else:
            hit = any(_same_text(have, w) for w in wanted)
        return hit if op == "eq" else not hit
    if op == "prefix":
        wanted = want if isinstance(want, list) else [want]
        if kind == "version":  # "14" matches 14 and 14.9, not 140
            return any(version_key(have)[: len(version_key(w))] == version_key(w) for w in wanted)
        return any(str(have).lower().startswith(str(w).lower()) for w in wanted)
    if op in ("within_days", "older_than_days"):
        moment = as_time(have)
        if moment is None or isinstance(want, list | bool):
            return False
        try:
            cutoff = now - timedelta(days=float(want))
        except (TypeError, ValueError):  # not a number of days (NaN too): matches nothing
            return False
        except OverflowError:  # more days back than the calendar holds: every time is within
            return op == "within_days" and float(str(want)) > 0  # str: a huge int -> inf
        return moment >= cutoff if op == "within_days" else moment < cutoff
    if op in ("on_or_after", "before"):
        order = _compare("time", have, want)
        if order is None:
            return False
        return order >= 0 if op == "on_or_after" else order < 0
    order = _compare(kind, have, want)
    if order is None:
        return False
    return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]


def tags_hold(resource: Resource, query: ResourceQuery) -> bool:
    """Tag keys present and absent (case-insensitive), and "untagged" (no tags at all)."""
    keys = {k.lower() for k in resource.tags}
    if query.untagged and keys:
        return False
    if any(k.lower() not in keys for k in query.tag_keys):
        return False
    return not any(k.lower() in keys for k in query.missing_tags)


def sort_key(kind: AttributeKind, value: Any) -> tuple:
    """A key that sorts values of one attribute in its order, rows without one last."""
    if value is None or value == "":
        return (1, ())
    if kind == "number":
        try:
            return (0, (float(value),))
        except (TypeError, ValueError):
            return (1, ())
    if kind == "time":
        moment = as_time(value)
        return (0, (moment.timestamp(),)) if moment else (1, ())
    if kind == "version":
        return (0, version_key(value))
    return (0, (str(value).lower(),))


def group_value(value: Any) -> str:
    """The group a row's value puts it in: its text; "(none)" without one."""
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
