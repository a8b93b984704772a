"""One query per resource type: the Reading's filters said in each type's own terms.

State words become the states the type reports ("running" RDS instances are "available"),
condition words its condition ("unused" volumes are "unattached", Elastic IPs
"unassociated"); in a follow-up the previous turn's filters carry over, translated for a new
type through their concept.
"""

from __future__ import annotations

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.models import AttributeFilter, Intent, ResourceQuery
from opsagent.graph.planner.attribute_filters import attribute_for, filters_for
from opsagent.graph.planner.reading import Filter, Reading
from opsagent.graph.planner.vocabulary import CONDITIONS_BY_CONCEPT, EXISTENCE_STATES


def query_for(
    rtype: str,
    intent: Intent,
    reading: Reading,
    same: ResourceQuery | None,
    ref: ResourceQuery | None,
    notes: list[str],
) -> ResourceQuery:
    """The query for one type. `same` is the previous turn's query of this type, `ref` the
    one to carry filters over from (that one, else the previous turn's first)."""
    label = CATALOGUE[rtype].plural
    # States: the question's own, else the previous turn's (translated for a new type).
    states: list[str] = []
    if reading.states:
        for state in reading.states:
            states += states_for(rtype, state) or []
    elif same is not None:
        states = list(same.states)
    elif ref is not None and ref.states:
        states = _translate_states(ref.resource_type, ref.states, rtype) or []
        if not states:
            notes.append(f"the state filter does not apply to {label}")
    states = _ordered_states(rtype, states)

    conditions: list[str] = []
    if reading.conditions:
        for condition_filter in reading.conditions:
            condition = conditions_meant(condition_filter).get(rtype)
            if condition and condition not in conditions:
                conditions.append(condition)
    elif ref is not None:
        # Carried through the concept: "unattached volumes" -> "and EIPs?" is unassociated.
        for condition in ref.conditions:
            concept = next(
                (
                    c
                    for c, by_type in CONDITIONS_BY_CONCEPT.items()
                    if condition in by_type.values()
                ),
                "",
            )
            mapped = CONDITIONS_BY_CONCEPT.get(concept, {}).get(rtype)
            if mapped:
                conditions.append(mapped)
            else:
                notes.append(f"'{condition}' does not apply to {label}")

    tags = {**(ref.tags if ref is not None else {}), **reading.tags}
    name = reading.names[0][0] if reading.names else (ref.name_contains if ref else None)
    ids = [value for value, id_type in reading.ids if id_type in (rtype, None)]
    if not ids and same is not None and not reading.types:
        ids = list(same.ids)
    query = ResourceQuery(
        resource_type=rtype,
        intent=intent,
        states=states,
        tags=tags,
        name_contains=name,
        ids=ids,
        conditions=conditions,
    )
    _attributes(query, reading, ref, notes)
    return query


def _attributes(
    query: ResourceQuery, reading: Reading, ref: ResourceQuery | None, notes: list[str]
) -> None:
    """The attribute filters, tag keys, ranking, grouping and total of a query: the
    question's own, over the previous turn's carried to this type (a new filter on an
    attribute replaces the old one on it)."""
    rtype = query.resource_type
    label = CATALOGUE[rtype].plural
    asked = filters_for(rtype, reading.asks)
    carried: list[AttributeFilter] = []
    for old in ref.filters if ref is not None else []:
        name = _carried_attribute(ref, old.attribute, rtype) if ref is not None else None
        if name is None and ref is not None:
            said = CATALOGUE[ref.resource_type].attribute(old.attribute)
            what = said.label if said is not None else old.attribute
            notes.append(f"the {what} filter does not apply to {label}")
        elif name not in {f.attribute for f in asked}:
            carried.append(old.model_copy(update={"attribute": name}))
    query.filters = carried + asked

    query.tag_keys = list(dict.fromkeys([*(ref.tag_keys if ref else []), *reading.tag_keys]))
    query.missing_tags = list(
        dict.fromkeys([*(ref.missing_tags if ref else []), *reading.missing_tags])
    )
    query.untagged = reading.untagged or bool(ref and ref.untagged)

    sort = reading.sort
    if sort is not None and sort.concept:
        attribute = attribute_for(rtype, sort.concept)
        query.sort_by = attribute.name if attribute else None
        query.descending = bool(sort.descending)
        query.limit = sort.limit
    elif ref is not None and ref.sort_by:
        query.sort_by = _carried_attribute(ref, ref.sort_by, rtype)
        query.descending, query.limit = ref.descending, ref.limit
        if sort is not None and sort.limit is not None:  # "and the top 3?"
            query.limit = sort.limit
    if reading.group_attribute:
        grouped = attribute_for(rtype, reading.group_attribute)
        query.group_by = grouped.name if grouped else None
    elif ref is not None and ref.group_by and not (reading.ungroup or reading.groups):
        query.group_by = _carried_attribute(ref, ref.group_by, rtype)
    if reading.total:
        summed = attribute_for(rtype, reading.total)
        query.total = summed.name if summed else None
    elif ref is not None and ref.total:
        query.total = _carried_attribute(ref, ref.total, rtype)


def _carried_attribute(ref: ResourceQuery, name: str, rtype: str) -> str | None:
    """An attribute of the previous turn's type for a new type: the same name, or its age
    attribute for the other's (launch time -> created); None when it has neither."""
    if ref.resource_type == rtype:
        return name
    old, new = CATALOGUE[ref.resource_type], CATALOGUE[rtype]
    if name == old.age_attribute:
        return new.age_attribute
    # The same name, else the new type's attribute called that ("encrypted" volumes ->
    # databases' storage_encrypted).
    found = new.attribute(name) or attribute_for(rtype, name)
    return found.name if found is not None else None


def conditions_meant(condition: Filter) -> dict[str, str]:
    """{resource type: its condition} for a condition filter ("public" is open-to-world)."""
    concept = "open-to-world" if condition.concept == "public" else condition.concept
    return CONDITIONS_BY_CONCEPT.get(concept, {})


def states_for(rtype: str, state: Filter) -> list[str] | None:
    """The AWS states a filter means for a type; [] when it filters nothing ("available"
    Lambda functions); None when the type has no such state."""
    declared = CATALOGUE[rtype]
    if state.concept in declared.state_concepts:
        states = list(declared.state_concepts[state.concept])
    elif state.concept in declared.states:
        states = [state.concept]
    elif state.concept in EXISTENCE_STATES and not state.negated:
        return []
    else:
        return None
    if state.negated:
        states = [s for s in declared.states if s not in states]
    return states


def _translate_states(old_type: str, states: list[str], new_type: str) -> list[str] | None:
    """Carry "running EC2" to "running RDS" (available) in a follow-up, through the concept."""
    for concept, mapped in CATALOGUE[old_type].state_concepts.items():
        if sorted(mapped) == sorted(states):
            found = CATALOGUE[new_type].state_concepts.get(concept)
            if found:
                return list(found)
    return None


def _ordered_states(rtype: str, states: list[str]) -> list[str]:
    order = CATALOGUE[rtype].states
    unique = list(dict.fromkeys(states))
    return sorted(unique, key=lambda s: order.index(s) if s in order else len(order))
