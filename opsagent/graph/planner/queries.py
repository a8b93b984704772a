"""One query per resource type: the Reading's filters said in each type's own terms.

State words become the states the type reports ("running" RDS instances are "available"),
condition words its condition ("unused" volumes are "unattached", Elastic IPs
"unassociated"); in a follow-up the previous turn's filters carry over, translated for a new
type through their concept.
"""

from __future__ import annotations

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.models import Intent, ResourceQuery
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
    return ResourceQuery(
        resource_type=rtype,
        intent=intent,
        states=states,
        tags=tags,
        name_contains=name,
        ids=ids,
        conditions=conditions,
    )


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
