"""Planning: a Reading, merged with the previous turn for a follow-up, becomes a Plan.

Here the resource types are settled, the filters checked against each type and said in its
terms (queries.py), accounts, regions and grouping settled, and the plan's summary written.
Whatever cannot be planned becomes a Refusal that says what was understood, what was not,
and which questions would work (refusals.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.catalogue.phrases import describe_query
from opsagent.graph.models import Grouping, Intent, Plan, Refusal, ResourceQuery
from opsagent.graph.planner.attribute_filters import Ask, ask_problems, attribute_for, missing
from opsagent.graph.planner.queries import conditions_meant, query_for, states_for
from opsagent.graph.planner.reading import Reading, read_question
from opsagent.graph.planner.refusals import supported_sentence, unknown_accounts, unsupported
from opsagent.graph.planner.vocabulary import EXACT_NAME_CUES
from opsagent.registry import Registry

# What the graph's planner slot takes (Context.planner): (question, registry, the previous
# turn's plan) -> Plan | Refusal. The rule planner below fits, and so does a model planner.
Planner = Callable[[str, Registry, Plan | None], Awaitable[Plan | Refusal]]


def plan_question(
    question: str, registry: Registry, previous: Plan | None = None
) -> Plan | Refusal:
    """Plan a question (a follow-up when `previous` is the last turn's plan), or refuse.

    Refusals: "read_only" for a request to change anything, "unknown_account" for an
    account the registry does not know, "unsupported" for anything it cannot read
    (the message says what it understood and gives questions that would work).
    """
    reading = read_question(question, registry, previous)
    if reading.mutation:
        return _read_only(question, registry, reading.mutation)
    # "zorp blarg in florb": with nothing else understood, a word in an account's place
    # is one more word the planner cannot read, not an account the user named.
    if reading.unknown and not (reading.types or reading.intents or reading.ids):
        reading.unknown += reading.unknown_accounts
        reading.unknown_accounts = []
    if reading.unknown_accounts:
        return unknown_accounts(reading, registry)
    if reading.unknown or reading.problems:
        reasons = list(dict.fromkeys(reading.problems))
        if reading.unknown:
            words = ", ".join(repr(w) for w in dict.fromkeys(reading.unknown))
            reasons.append(f"I don't know what {words} means here.")
        return unsupported(reading, registry, reasons)
    # A follow-up: nothing to look for, a follow-up word ("what about", "too"), or a bare
    # noun with no verb and no place ("databases?"), which only makes sense after a question.
    bare = not reading.intents and not (
        reading.named_accounts
        or reading.all_accounts
        or reading.excluded_accounts
        or reading.other_accounts
        or reading.regions
        or reading.all_regions
        or reading.excluded_regions
    )
    followup = previous is not None and (
        not reading.types or reading.followup or reading.add or bare
    )
    if followup:
        assert previous is not None
        if not reading.says_anything():
            return unsupported(
                reading, registry, ["I couldn't tell what to change from the last question."]
            )
        return _plan(reading, registry, previous)
    if not reading.types:
        if reading.generic:
            reason = "Which kind of resource? " + supported_sentence()
        elif (
            reading.followup
            or reading.anaphora
            or reading.add
            or reading.only
            or not (reading.intents and reading.says_anything(besides_intent=True))
        ):
            reason = (
                "That reads like a follow-up, but there is no earlier question in this "
                "conversation to build on; ask a full question."
            )
        else:
            reason = "I couldn't tell which kind of resource you mean. " + supported_sentence()
        return unsupported(reading, registry, [reason])
    return _plan(reading, registry, None)


def read_only_refusal(question: str, registry: Registry) -> Refusal | None:
    """The read-only refusal when the question asks to change something, anywhere in it
    ("show buckets; aws ec2 terminate-instances ..."), else None. Any planner asks this
    first: a model is not trusted to notice."""
    reading = read_question(question, registry, None)
    return _read_only(question, registry, reading.mutation) if reading.mutation else None


async def rule_planner(question: str, registry: Registry, previous: Plan | None) -> Plan | Refusal:
    """plan_question in the shape the graph's planner slot takes (Context.planner)."""
    return plan_question(question, registry, previous)


class _Unplannable(Exception):
    """Why a Reading cannot be planned; _plan says it in a Refusal."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(*reasons)
        self.reasons = reasons


def _plan(reading: Reading, registry: Registry, base: Plan | None) -> Plan | Refusal:
    """The Plan a Reading asks for, merged with the previous turn's plan (`base`) for a
    follow-up, or the Refusal that says why it cannot be planned."""
    notes = list(reading.notes)
    try:
        types = _resource_types(reading, base)
        queries = _queries(reading, types, base, notes)
        accounts, implicit = _accounts(reading, registry, base)
        regions = _regions(reading, registry, base, accounts)
        group_by = _grouping(reading, base)
    except _Unplannable as unplannable:
        return unsupported(reading, registry, unplannable.reasons)
    rank = reading.rank or (base.rank if base is not None else None)
    plan = Plan(accounts=accounts, regions=regions, queries=queries, group_by=group_by, rank=rank)
    plan.summary = _summary(
        plan, registry, implicit=implicit, all_regions=reading.all_regions, notes=notes
    )
    return plan


def _resource_types(reading: Reading, base: Plan | None) -> list[str]:
    """The question's types (or its ids' types), else the previous turn's; with "too",
    both. Every filter must fit them."""
    problems: list[str] = []
    types = list(reading.types)
    for _, rtype in reading.ids:
        if rtype is not None and rtype not in types:
            if reading.types:
                problems.append(
                    f"{rtype} id does not belong to "
                    f"{', '.join(CATALOGUE[known].plural for known in reading.types)}."
                )
            else:
                types.append(rtype)
    if base is not None:
        base_types = [q.resource_type for q in base.queries]
        if not types:
            types = base_types
        elif reading.add:
            types = list(dict.fromkeys([*base_types, *types]))
    if not types:
        raise _Unplannable(
            ["I couldn't tell which kind of resource you mean. " + supported_sentence()]
        )
    _conditions_as_attributes(reading, types)
    problems += _filter_problems(reading, types)
    problems += _attribute_problems(reading, types)
    if problems:
        raise _Unplannable(problems)
    return types


def _filter_problems(reading: Reading, types: list[str]) -> list[str]:
    """States and conditions these types do not have, and more than one name."""
    problems: list[str] = []
    for state in reading.states:
        supported = [rtype for rtype in types if states_for(rtype, state) is not None]
        if not supported or (state.attached is not None and state.attached not in supported):
            declared = CATALOGUE[state.attached or types[0]]
            states = ", ".join(declared.states)
            problems.append(
                f"{declared.plural} have no '{state.text}' state (their states: {states})."
                if states
                else f"{declared.plural} have no state to filter on, so not '{state.text}'."
            )
    for condition in reading.conditions:
        mapping = conditions_meant(condition)
        if not [rtype for rtype in types if rtype in mapping] or (
            condition.attached is not None and condition.attached not in mapping
        ):
            what = " or ".join(CATALOGUE[rtype].plural for rtype in mapping) or "nothing"
            problems.append(f"'{condition.text}' is something I can check only for {what}.")
    if len({value for value, _ in reading.names}) > 1:
        problems.append("I can filter on one name at a time.")
    return problems


def _conditions_as_attributes(reading: Reading, types: list[str]) -> None:
    """ "publicly accessible databases": a condition word of security groups is, for a type
    without that condition but with the attribute, a filter on the attribute."""
    for condition in list(reading.conditions):
        if condition.concept not in ("public", "open-to-world"):
            continue
        if any(rtype in conditions_meant(condition) for rtype in types):
            continue
        if any(attribute_for(rtype, "public") is not None for rtype in types):
            reading.conditions.remove(condition)
            reading.asks.append(Ask("public", "eq", "true", "", condition.text, condition.attached))


def _attribute_problems(reading: Reading, types: list[str]) -> list[str]:
    """Attribute filters, rankings, groupings and totals these types cannot answer."""
    problems = ask_problems(types, reading.asks)
    for rtype in types:
        sort = reading.sort
        if sort is not None and sort.concept:
            if attribute_for(rtype, sort.concept) is None:
                problems.append(missing(rtype, sort.text, "rank"))
        if reading.group_attribute:
            grouped = attribute_for(rtype, reading.group_attribute)
            if grouped is None or grouped.kind in ("time", "number"):
                problems.append(missing(rtype, reading.group_attribute, "group"))
        if reading.total:
            summed = attribute_for(rtype, reading.total)
            if summed is None or summed.kind != "number":
                problems.append(missing(rtype, reading.total, "total"))
    if reading.rank and reading.sort is not None:
        problems.append("I can rank groups or rows, not both in one question.")
    return problems


def _queries(
    reading: Reading, types: list[str], base: Plan | None, notes: list[str]
) -> list[ResourceQuery]:
    intent: Intent = reading.intent or (base.queries[0].intent if base else "list")
    exact_names = [value for value, cue in reading.names if cue in EXACT_NAME_CUES]
    queries: list[ResourceQuery] = []
    for rtype in types:
        same = next((q for q in base.queries if q.resource_type == rtype), None) if base else None
        ref = same or (base.queries[0] if base else None)
        query = query_for(rtype, intent, reading, same, ref, notes)
        if intent == "describe" and exact_names and CATALOGUE[rtype].name_is_id and not query.ids:
            query.ids = exact_names[:1]
            query.name_contains = None
        queries.append(query)
    return queries


def _accounts(reading: Reading, registry: Registry, base: Plan | None) -> tuple[list[str], bool]:
    """The accounts to ask, in registry order, and whether none was named (so all workload
    accounts)."""
    workload = [a.id for a in registry.workload_accounts]
    implicit = False
    if reading.other_accounts and base is None:
        raise _Unplannable(["'The other accounts' needs an earlier question to be other than."])
    if reading.other_accounts and base is not None:
        chosen = [a for a in workload if a not in base.accounts] + reading.named_accounts
    elif reading.all_accounts or reading.named_accounts:
        chosen = (workload if reading.all_accounts else []) + reading.named_accounts
        if base is not None and reading.add:
            chosen = base.accounts + chosen
    elif base is not None:
        chosen = list(base.accounts)
    else:
        chosen = list(workload)
        implicit = not reading.excluded_accounts
    chosen = [a for a in chosen if a not in set(reading.excluded_accounts)]
    order = [a.id for a in registry.all_accounts]
    accounts = sorted(set(chosen), key=order.index)
    if not accounts:
        raise _Unplannable(["Leaving those accounts out leaves none to ask."])
    return accounts, implicit


def _regions(
    reading: Reading, registry: Registry, base: Plan | None, accounts: list[str]
) -> list[str] | None:
    """The regions to ask; None for each account's own regions."""
    regions: list[str] | None
    if reading.all_regions:
        regions = None
    elif reading.regions:
        regions = list(dict.fromkeys(reading.regions))
        if base is not None and reading.add and base.regions:
            regions = list(dict.fromkeys([*base.regions, *regions]))
    else:
        regions = list(base.regions) if base is not None and base.regions else None
    if reading.excluded_regions:
        start = regions or list(
            dict.fromkeys(r for a in registry.all_accounts if a.id in accounts for r in a.regions)
        )
        regions = [r for r in start if r not in set(reading.excluded_regions)]
        if not regions:
            raise _Unplannable(["Leaving those regions out leaves none."])
    return regions


def _grouping(reading: Reading, base: Plan | None) -> Grouping | None:
    groups = list(dict.fromkeys(reading.groups))
    if len(groups) > 1:
        raise _Unplannable(["I can group by account or by region, not both at once."])
    if groups:
        return "account" if groups[0] == "account" else "region"
    if reading.ungroup:
        return None
    return base.group_by if base is not None else None


def _summary(
    plan: Plan, registry: Registry, implicit: bool, all_regions: bool, notes: list[str]
) -> str:
    intent = plan.queries[0].intent
    lead = {"list": "list", "count": "count of", "describe": "details of"}[intent]
    described = " and ".join(describe_query(q) for q in plan.queries)
    by_id = {a.id: a for a in registry.all_accounts}
    where = ", ".join(by_id[a].alias for a in plan.accounts)
    text = f"{lead} {described} in {where}"
    if plan.regions:
        text += f" in {', '.join(plan.regions)}"
    elif all_regions:
        text += " in every region of each account"
    if plan.group_by:
        text += f", grouped by {plan.group_by}"
    if plan.rank:
        groups: str = plan.group_by or next(
            (_attribute_label(q.resource_type, q.group_by) for q in plan.queries if q.group_by),
            "group",
        )
        text += f", the {groups} with the {plan.rank} first"
    if implicit:
        notes = ["no account named, so all workload accounts", *notes]
    if notes:
        text += f" ({'; '.join(dict.fromkeys(notes))})"
    return text


def _attribute_label(resource_type: str, name: str | None) -> str:
    declared = CATALOGUE[resource_type]
    attribute = declared.attribute(name or "")
    return attribute.label if attribute is not None else (name or "group")


def _read_only(question: str, registry: Registry, verb: str) -> Refusal:
    message = (
        f"opsagent is read-only: it never changes anything in any account, so it "
        f"will not {verb.lower()} anything."
    )
    # Offer the read the request implies: "terminate the staging instances" -> list them.
    reading = read_question(question, registry, None, ignore_changes=True)
    if reading.types and not (reading.unknown or reading.problems or reading.unknown_accounts):
        reading.intents = {"list"}
        plan = _plan(reading, registry, None)
        if isinstance(plan, Plan):
            message += f" I can show you what is there: {plan.summary}."
    else:
        message += " I can list, count and describe resources instead."
    return Refusal(kind="read_only", message=message)
