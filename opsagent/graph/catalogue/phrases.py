"""How queries about the catalogue's types are said: the one phrase for a query.

The planner's summary ("count of available RDS instances in production") and the answer's
sentences ("There are 2 available RDS instances across 3 accounts") both say a query with
``describe_query``, so what the agent says it will look for and what it says it found read
the same.
"""

from __future__ import annotations

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.catalogue.attributes import Attribute
from opsagent.graph.models import AttributeFilter, ResourceQuery

_CONDITION_LABELS: dict[str, str] = {
    condition.name: condition.label
    for declared in CATALOGUE.values()
    for condition in declared.conditions
}


def names(resource_type: str) -> tuple[str, str]:
    """(singular, plural) of a type; its id twice for a type the catalogue does not have."""
    declared = CATALOGUE.get(resource_type)
    return (declared.singular, declared.plural) if declared else (resource_type, resource_type)


def attribute_label(resource_type: str, name: str) -> str:
    declared = CATALOGUE.get(resource_type)
    attribute = declared.attribute(name) if declared else None
    return attribute.label if attribute else name.replace("_", " ")


def _quantity(attribute: Attribute | None, value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    unit = f" {attribute.unit}" if attribute is not None and attribute.unit else ""
    return f"{value}{unit}"


_COMPARISONS = {
    "gt": "over",
    "gte": "at least",
    "lt": "under",
    "lte": "at most",
    "prefix": "starting with",
    "ne": "not",
}


def describe_filter(resource_type: str, wanted: AttributeFilter) -> str:
    """'with instance type m5.large', 'launched in the last 7 days', 'not publicly
    accessible', 'with memory at least 1024 MB', 'with Kubernetes version under 1.30'."""
    declared = CATALOGUE.get(resource_type)
    attribute = declared.attribute(wanted.attribute) if declared else None
    label = attribute.label if attribute else wanted.attribute.replace("_", " ")
    value = wanted.value
    if attribute is not None and attribute.kind == "bool":
        positive = (value is True or str(value).lower() == "true") == (wanted.op == "eq")
        if positive:
            return attribute.true_phrase or f"that are {label}"
        return attribute.false_phrase or f"that are not {label}"
    verb = (attribute.verb if attribute else "") or f"with {label}"
    if wanted.op == "within_days":
        days = _quantity(None, value)
        return f"{verb} in the last {'day' if days == '1' else days + ' days'}"
    if wanted.op == "older_than_days":
        return f"{verb} over {_quantity(None, value)} days ago"
    if wanted.op == "on_or_after":
        return f"{verb} on or after {value}"
    if wanted.op == "before":
        return f"{verb} before {value}"
    shown = " or ".join(str(v) for v in value) if isinstance(value, list) else value
    comparison = _COMPARISONS.get(wanted.op)
    quantity = _quantity(attribute, shown)
    return f"with {label} {comparison} {quantity}" if comparison else f"with {label} {quantity}"


def ranking_word(query: ResourceQuery) -> str:
    """What the first rows of a ranking are: newest/oldest for a time, else largest/smallest."""
    declared = CATALOGUE.get(query.resource_type)
    attribute = declared.attribute(query.sort_by or "") if declared else None
    if attribute is not None and attribute.kind == "time":
        return "newest" if query.descending else "oldest"
    return "largest" if query.descending else "smallest"


def _ranking(query: ResourceQuery) -> str:
    """'(largest first by size)', '(the 5 largest by size)', '(oldest first by created)'."""
    label = attribute_label(query.resource_type, query.sort_by or "")
    most = ranking_word(query)
    if query.limit:
        return f"(the {query.limit} {most} by {label})"
    return f"({most} first by {label})"


def describe_query(query: ResourceQuery, count: int | None = None, *, shape: bool = True) -> str:
    """'running EC2 instances tagged team=payments', 'EKS cluster prod-main', 'EBS volumes
    that are unattached', 'CloudFormation stacks with state create_failed or ...'.

    One state reads as an adjective, several as "with state a or b". The noun agrees with
    ``count``; without one, with the ids the query names (one id: singular). ``shape``
    adds its ranking, grouping and total ("(the 5 largest by size)"); an answer leaves them
    out and says them in sentences of their own."""
    singular, plural = names(query.resource_type)
    one = count == 1 if count is not None else len(query.ids) == 1
    words = []
    if len(query.states) == 1:
        words.append(query.states[0])
    words.append(singular if one else plural)
    if query.ids:
        words.append(", ".join(query.ids))
    if query.conditions:
        words.append(
            ("that is " if one else "that are ")
            + " and ".join(_CONDITION_LABELS.get(c, c) for c in query.conditions)
        )
    if len(query.states) > 1:
        words.append("with state " + " or ".join(query.states))
    if query.tags:
        words.append("tagged " + ", ".join(f"{k}={v}" for k, v in query.tags.items()))
    if query.name_contains:
        words.append(f"whose name contains {query.name_contains!r}")
    words += [describe_filter(query.resource_type, f) for f in query.filters]
    if query.untagged:
        words.append("with no tags")
    if query.tag_keys:
        words.append("with tag " + " and ".join(query.tag_keys))
    if query.missing_tags:
        words.append("without tag " + " or ".join(query.missing_tags))
    if shape and query.sort_by:
        words.append(_ranking(query))
    if shape and query.group_by:
        words.append(f"by {attribute_label(query.resource_type, query.group_by)}")
    if shape and query.total:
        words.append(f"with their total {attribute_label(query.resource_type, query.total)}")
    return " ".join(words)
