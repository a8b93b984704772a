"""How queries about the catalogue's types are said: the one phrase for a query.

The planner's summary ("count of available RDS instances in production") and the answer's
sentences ("There are 2 available RDS instances across 3 accounts") both say a query with
``describe_query``, so what the agent says it will look for and what it says it found read
the same.
"""

from __future__ import annotations

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.models import ResourceQuery

_CONDITION_LABELS: dict[str, str] = {
    condition.name: condition.label
    for declared in CATALOGUE.values()
    for condition in declared.conditions
}


def names(resource_type: str) -> tuple[str, str]:
    """(singular, plural) of a type; its id twice for a type the catalogue does not have."""
    declared = CATALOGUE.get(resource_type)
    return (declared.singular, declared.plural) if declared else (resource_type, resource_type)


def describe_query(query: ResourceQuery, count: int | None = None) -> str:
    """'running EC2 instances tagged team=payments', 'EKS cluster prod-main', 'EBS volumes
    that are unattached', 'CloudFormation stacks with state create_failed or ...'.

    One state reads as an adjective, several as "with state a or b". The noun agrees with
    ``count``; without one, with the ids the query names (one id: singular)."""
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
    return " ".join(words)
