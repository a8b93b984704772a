"""What a question asks of the merged rows of every account: the top N by an attribute,
counts per group (account, region or an attribute's value), totals, the group with the most.

The workers filter in each account; only here, with every account's rows together, can
"the 5 largest volumes" or "which account has the most" be answered. Ties are broken by
(account id, region, id), so the same data always gives the same answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.catalogue.attributes import group_value, number, sort_key
from opsagent.graph.models import AccountResult, Plan, Ranking, Resource, ResourceQuery


def _tie_break(row: Resource) -> tuple[str, str, str]:
    return (row.account_id, row.region, row.id)


def ranked(query: ResourceQuery, rows: list[Resource]) -> list[Resource]:
    """Rows in the query's order (``sort_by``, ``descending``), rows without a value last."""
    if not query.sort_by:
        return rows
    declared = CATALOGUE[query.resource_type]
    attribute = declared.attribute(query.sort_by)
    kind = attribute.kind if attribute else "text"
    by_tie = sorted(rows, key=_tie_break)
    with_value = [r for r in by_tie if sort_key(kind, r.details.get(query.sort_by))[0] == 0]
    without = [r for r in by_tie if sort_key(kind, r.details.get(query.sort_by))[0] != 0]
    # A stable sort keeps the tie-break order among equal values, reversed or not.
    with_value.sort(
        key=lambda r: sort_key(kind, r.details.get(query.sort_by)), reverse=query.descending
    )
    return with_value + without


def apply_rankings(plan: Plan, results: list[AccountResult]) -> list[Resource] | None:
    """Keep each ranked query's first ``limit`` rows over every account (trimming each
    account's rows to them), and return every row in answer order when any query ranks;
    None when none does (the accounts' own order stands)."""
    ranking = [q for q in plan.queries if q.sort_by]
    if not ranking:
        return None
    ordered: list[Resource] = []
    for query in plan.queries:
        rows = [row for r in results for row in r.rows if row.resource_type == query.resource_type]
        rows = ranked(query, rows)
        if query.limit is not None:
            kept = {id(row) for row in rows[: query.limit]}
            for result in results:
                result.rows = [
                    row
                    for row in result.rows
                    if row.resource_type != query.resource_type or id(row) in kept
                ]
            rows = rows[: query.limit]
        ordered.extend(rows)
    return ordered


def counts_by(rows: list[Resource], attribute: str) -> Counter[str]:
    """Rows per value of an attribute ("(none)" for rows without one)."""
    return Counter(group_value(row.details.get(attribute)) for row in rows)


def group_weights(
    plan: Plan, query: ResourceQuery, rows: list[Resource], answered: list[AccountResult]
) -> dict[str, float]:
    """Each group's rows, or their total when the query sums ("the most storage"): groups
    by the query's attribute, else by region, else by account (every account that
    answered, those with none included)."""

    def weight(group: list[Resource]) -> float:
        return summed(query, group) if query.total else len(group)

    if query.group_by:
        return {
            key: weight([r for r in rows if group_value(r.details.get(query.group_by)) == key])
            for key in counts_by(rows, query.group_by)
        }
    if plan.group_by == "region":
        return {
            key: weight([r for r in rows if r.region == key])
            for key in sorted({r.region for r in rows})
        }
    return {a.alias: weight([r for r in rows if r.account_id == a.account_id]) for a in answered}


def in_order(counts: Counter[str]) -> list[str]:
    """Groups, most rows first, then by name."""
    return sorted(counts, key=lambda key: (-counts[key], key))


@dataclass(frozen=True)
class Leaders:
    """The group(s) with the most (or fewest) rows."""

    names: list[str]
    count: float  # rows, or the total of the summed attribute


def leaders(counts: dict[str, float], rank: Ranking) -> Leaders | None:
    """Every group tied for the most (or the fewest) rows; None without groups."""
    if not counts:
        return None
    best = max(counts.values()) if rank == "most" else min(counts.values())
    return Leaders([name for name, n in counts.items() if n == best], best)


def summed(query: ResourceQuery, rows: list[Resource]) -> float:
    """The sum of the query's ``total`` attribute over rows (rows without one add nothing)."""
    assert query.total is not None
    return sum(number(row.details.get(query.total)) for row in rows)
