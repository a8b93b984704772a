"""Whether a query's attribute fields make sense for its type: one check for every planner
(the model's structured output, the bridge's arguments; the rule planner builds only what
passes it), so a wrong attribute is a clear refusal, never a silently empty answer."""

from __future__ import annotations

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.catalogue.attributes import as_time
from opsagent.graph.models import AttributeFilter, Plan, ResourceQuery

# Which ops each kind of attribute takes.
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "text": ("eq", "ne", "prefix"),
    "version": ("eq", "ne", "gt", "gte", "lt", "lte", "prefix"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte"),
    "bool": ("eq", "ne"),
    "time": ("within_days", "older_than_days", "on_or_after", "before"),
}


def _value_problem(kind: str, wanted: AttributeFilter) -> str | None:
    value = wanted.value
    values = value if isinstance(value, list) else [value]
    if kind == "bool" and not (isinstance(value, bool) or str(value).lower() in ("true", "false")):
        return "true or false"
    if kind == "number" or wanted.op in ("within_days", "older_than_days"):
        try:
            numbers = [float(v) for v in values if not isinstance(v, bool)]
        except (TypeError, ValueError):
            return "a number"
        if len(numbers) != len(values) or (
            wanted.op in ("within_days", "older_than_days") and any(n <= 0 for n in numbers)
        ):
            return "a positive number of days" if kind == "time" else "a number"
    if wanted.op in ("on_or_after", "before") and (
        isinstance(value, list | bool) or as_time(value) is None
    ):
        return "a date (YYYY-MM-DD)"
    return None


def query_problems(query: ResourceQuery) -> list[str]:
    """What is wrong with a query's attribute fields, in words a user can act on."""
    declared = CATALOGUE.get(query.resource_type)
    if declared is None:
        return [f"unknown resource type {query.resource_type!r}"]
    known = ", ".join(a.name for a in declared.attributes) or "none"
    problems = []

    def unknown(name: str) -> str:
        return f"{declared.plural} have no attribute {name!r} (theirs: {known})"

    for wanted in query.filters:
        attribute = declared.attribute(wanted.attribute)
        if attribute is None:
            problems.append(unknown(wanted.attribute))
            continue
        if wanted.op not in OPS_BY_KIND[attribute.kind]:
            ops = ", ".join(OPS_BY_KIND[attribute.kind])
            problems.append(f"{attribute.label} ({attribute.kind}) takes {ops}, not {wanted.op}")
            continue
        expected = _value_problem(attribute.kind, wanted)
        if expected:
            problems.append(f"{attribute.label} {wanted.op} needs {expected}, not {wanted.value!r}")
    for name in (query.sort_by, query.group_by):
        if name and declared.attribute(name) is None:
            problems.append(unknown(name))
    ranked_on = declared.attribute(query.sort_by) if query.sort_by else None
    if ranked_on is not None and ranked_on.kind == "bool":
        problems.append(f"{ranked_on.label} is yes or no: nothing to rank by")
    if query.total:
        attribute = declared.attribute(query.total)
        if attribute is None:
            problems.append(unknown(query.total))
        elif attribute.kind != "number":
            problems.append(f"{attribute.label} is not a number, so it has no total")
    if query.limit is not None and (query.limit <= 0 or not query.sort_by):
        problems.append("a limit needs a positive number and an attribute to rank by (sort_by)")
    if query.untagged and (query.tag_keys or query.tags):
        problems.append("a resource cannot be untagged and have tags")
    overlap = {k.lower() for k in query.tag_keys} & {k.lower() for k in query.missing_tags}
    if overlap:
        problems.append(f"a tag cannot be both present and missing: {', '.join(sorted(overlap))}")
    return problems


def plan_problems(plan: Plan) -> list[str]:
    """Every query's problems, and a ranking of groups without groups."""
    problems = [p for q in plan.queries for p in query_problems(q)]
    if plan.rank and not plan.group_by and not any(q.group_by for q in plan.queries):
        problems.append("'most' or 'fewest' needs groups: by account, region or an attribute")
    return problems
