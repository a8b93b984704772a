"""Planning: a Reading, merged with the previous turn for a follow-up, becomes a Plan.

Here the filters are mapped per resource type (state words to the states AWS reports,
"unused" to each type's condition), accounts and regions are settled, the plan is checked,
and its summary written. Whatever cannot be planned becomes a Refusal that says what was
understood, what was not, and which questions would work.
"""

from __future__ import annotations

from opsagent.graph import vocabulary as V
from opsagent.graph.planner.reading import Filter, Reading, read_question
from opsagent.graph.state import RESOURCE_TYPES, Grouping, Intent, Plan, Refusal, ResourceQuery
from opsagent.registry import Registry


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
        unknown = list(dict.fromkeys(reading.unknown_accounts))
        names = ", ".join(repr(a) for a in unknown)
        hints = "".join(f" Did you mean {reading.account_hints[a]} for {a!r}?"
                        for a in unknown if a in reading.account_hints)
        return Refusal(kind="unknown_account", message=(
            f"I don't know the account{'s' if len(unknown) > 1 else ''} {names}.{hints} "
            f"Known accounts: {'; '.join(registry.known_names())}."
        ))
    if reading.unknown or reading.problems:
        reasons = list(dict.fromkeys(reading.problems))
        if reading.unknown:
            words = ", ".join(repr(w) for w in dict.fromkeys(reading.unknown))
            reasons.append(f"I don't know what {words} means here.")
        return _unsupported(reading, registry, reasons)
    # A follow-up: nothing to look for, a follow-up word ("what about", "too"), or a bare
    # noun with no verb and no place ("databases?"), which only makes sense after a question.
    bare = not reading.intents and not (
        reading.named_accounts or reading.all_accounts or reading.excluded_accounts
        or reading.other_accounts
        or reading.regions or reading.all_regions or reading.excluded_regions
    )
    followup = previous is not None and (
        not reading.types or reading.followup or reading.add or bare
    )
    if followup:
        assert previous is not None
        if not reading.says_anything():
            return _unsupported(reading, registry, [
                "I couldn't tell what to change from the last question."
            ])
        return _plan(reading, registry, previous)
    if not reading.types:
        if reading.generic:
            reason = "Which kind of resource? " + _supported_sentence()
        elif reading.followup or reading.anaphora or reading.add or reading.only or not (
            reading.intents and reading.says_anything(besides_intent=True)
        ):
            reason = ("That reads like a follow-up, but there is no earlier question in this "
                      "conversation to build on; ask a full question.")
        else:
            reason = "I couldn't tell which kind of resource you mean. " + _supported_sentence()
        return _unsupported(reading, registry, [reason])
    return _plan(reading, registry, None)


def read_only_refusal(question: str, registry: Registry) -> Refusal | None:
    """The read-only refusal when the question asks to change something, anywhere in it
    ("show buckets; aws ec2 terminate-instances ..."), else None. Any planner asks this
    first: a model is not trusted to notice."""
    reading = read_question(question, registry, None)
    return _read_only(question, registry, reading.mutation) if reading.mutation else None


async def rule_planner(question: str, registry: Registry, previous: Plan | None) -> Plan | Refusal:
    """plan_question in the shape the graph's planner slot takes (AgentDeps.planner)."""
    return plan_question(question, registry, previous)


def _plan(reading: Reading, registry: Registry, base: Plan | None) -> Plan | Refusal:
    problems: list[str] = []
    notes = list(reading.notes)

    # ----- resource types -----
    types = list(reading.types)
    for _, rtype in reading.ids:
        if rtype is not None and rtype not in types:
            if reading.types:
                problems.append(f"{rtype} id does not belong to "
                                f"{', '.join(RESOURCE_TYPES[t][1] for t in reading.types)}.")
            else:
                types.append(rtype)
    if base is not None:
        base_types = [q.resource_type for q in base.queries]
        if not types:
            types = base_types
        elif reading.add:
            types = list(dict.fromkeys([*base_types, *types]))
    if not types:
        return _unsupported(reading, registry, [
            "I couldn't tell which kind of resource you mean. " + _supported_sentence()
        ])
    intent: Intent = reading.intent or (base.queries[0].intent if base else "list")

    # ----- filters, per resource type -----
    for f in reading.states:
        supported = [t for t in types if _states_for(t, f) is not None]
        if not supported or (f.attached is not None and f.attached not in supported):
            rtype = f.attached or types[0]
            who = RESOURCE_TYPES[rtype][1]
            states = ", ".join(V.TYPE_STATES.get(rtype, ()))
            problems.append(
                f"{who} have no '{f.text}' state (their states: {states})." if states
                else f"{who} have no state to filter on, so not '{f.text}'."
            )
    for f in reading.conditions:
        concept = "open-to-world" if f.concept == "public" else f.concept
        mapping = V.CONDITION_MAP.get(concept, {})
        if not [t for t in types if t in mapping] or (
            f.attached is not None and f.attached not in mapping
        ):
            what = " or ".join(RESOURCE_TYPES[t][1] for t in mapping) or "nothing"
            problems.append(f"'{f.text}' is something I can check only for {what}.")
    exact_names = [v for v, cue in reading.names if cue in V.EXACT_NAME_CUES]
    names = [v for v, _ in reading.names]
    if len(set(names)) > 1:
        problems.append("I can filter on one name at a time.")
    if problems:
        return _unsupported(reading, registry, problems)

    queries: list[ResourceQuery] = []
    for rtype in types:
        same = next((q for q in base.queries if q.resource_type == rtype), None) if base else None
        ref = same or (base.queries[0] if base else None)
        query = _query(rtype, intent, reading, same, ref, notes)
        if intent == "describe" and exact_names and rtype in V.NAME_IS_ID and not query.ids:
            query.ids = exact_names[:1]
            query.name_contains = None
        queries.append(query)

    # ----- accounts -----
    workload = [a.id for a in registry.workload_accounts]
    implicit = False
    if reading.other_accounts and base is None:
        return _unsupported(reading, registry, [
            "'The other accounts' needs an earlier question to be other than."
        ])
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
        return _unsupported(reading, registry, ["Leaving those accounts out leaves none to ask."])

    # ----- regions -----
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
        start = regions or list(dict.fromkeys(
            r for a in registry.all_accounts if a.id in accounts for r in a.regions
        ))
        regions = [r for r in start if r not in set(reading.excluded_regions)]
        if not regions:
            return _unsupported(reading, registry, ["Leaving those regions out leaves none."])

    # ----- grouping -----
    groups = list(dict.fromkeys(reading.groups))
    if len(groups) > 1:
        return _unsupported(reading, registry, [
            "I can group by account or by region, not both at once."
        ])
    group_by: Grouping | None
    if groups:
        group_by = "account" if groups[0] == "account" else "region"
    elif reading.ungroup:
        group_by = None
    else:
        group_by = base.group_by if base is not None else None

    plan = Plan(accounts=accounts, regions=regions, queries=queries, group_by=group_by)
    plan.summary = _summary(plan, registry, implicit=implicit,
                            all_regions=reading.all_regions, notes=notes)
    return plan


def _query(rtype: str, intent: Intent, reading: Reading, same: ResourceQuery | None,
           ref: ResourceQuery | None, notes: list[str]) -> ResourceQuery:
    label = RESOURCE_TYPES[rtype][1]
    # States: the question's own, else the previous turn's (translated for a new type).
    states: list[str] = []
    if reading.states:
        for f in reading.states:
            states += _states_for(rtype, f) or []
    elif same is not None:
        states = list(same.states)
    elif ref is not None and ref.states:
        states = _translate_states(ref.resource_type, ref.states, rtype) or []
        if not states:
            notes.append(f"the state filter does not apply to {label}")
    states = _ordered_states(rtype, states)

    conditions: list[str] = []
    if reading.conditions:
        for f in reading.conditions:
            concept = "open-to-world" if f.concept == "public" else f.concept
            condition = V.CONDITION_MAP.get(concept, {}).get(rtype)
            if condition and condition not in conditions:
                conditions.append(condition)
    elif ref is not None:
        # Carried through the concept: "unattached volumes" -> "and EIPs?" is unassociated.
        for condition in ref.conditions:
            concept = next((c for c, m in V.CONDITION_MAP.items() if condition in m.values()), "")
            mapped = V.CONDITION_MAP.get(concept, {}).get(rtype)
            if mapped:
                conditions.append(mapped)
            else:
                notes.append(f"'{condition}' does not apply to {label}")

    tags = {**(ref.tags if ref is not None else {}), **reading.tags}
    name = reading.names[0][0] if reading.names else (ref.name_contains if ref else None)
    ids = [v for v, t in reading.ids if t in (rtype, None)]
    if not ids and same is not None and not reading.types:
        ids = list(same.ids)
    return ResourceQuery(resource_type=rtype, intent=intent, states=states, tags=tags,
                         name_contains=name, ids=ids, conditions=conditions)


def _states_for(rtype: str, f: Filter) -> list[str] | None:
    """The AWS states a filter means for a type; [] when it filters nothing ("available"
    Lambda functions); None when the type has no such state."""
    mapping = V.STATE_MAP.get(rtype, {})
    all_states = V.TYPE_STATES.get(rtype, ())
    if f.concept in mapping:
        states = list(mapping[f.concept])
    elif f.concept in all_states:
        states = [f.concept]
    elif f.concept in V.EXISTENCE_STATES and not f.negated:
        return []
    else:
        return None
    if f.negated:
        states = [s for s in all_states if s not in states]
    return states


def _translate_states(old_type: str, states: list[str], new_type: str) -> list[str] | None:
    """Carry "running EC2" to "running RDS" (available) in a follow-up, through the concept."""
    for concept, mapped in V.STATE_MAP.get(old_type, {}).items():
        if sorted(mapped) == sorted(states):
            found = V.STATE_MAP.get(new_type, {}).get(concept)
            if found:
                return list(found)
    return None


def _ordered_states(rtype: str, states: list[str]) -> list[str]:
    order = V.TYPE_STATES.get(rtype, ())
    unique = list(dict.fromkeys(states))
    return sorted(unique, key=lambda s: order.index(s) if s in order else len(order))


def _summary(plan: Plan, registry: Registry, implicit: bool, all_regions: bool,
             notes: list[str]) -> str:
    intent = plan.queries[0].intent
    lead = {"list": "list", "count": "count of", "describe": "details of"}[intent]
    described = " and ".join(_describe_query(q) for q in plan.queries)
    by_id = {a.id: a for a in registry.all_accounts}
    where = ", ".join(by_id[a].alias for a in plan.accounts)
    text = f"{lead} {described} in {where}"
    if plan.regions:
        text += f" in {', '.join(plan.regions)}"
    elif all_regions:
        text += " in every region of each account"
    if plan.group_by:
        text += f", grouped by {plan.group_by}"
    if implicit:
        notes = ["no account named, so all workload accounts", *notes]
    if notes:
        text += f" ({'; '.join(dict.fromkeys(notes))})"
    return text


def _describe_query(q: ResourceQuery) -> str:
    singular, plural = RESOURCE_TYPES[q.resource_type]
    words = [singular if len(q.ids) == 1 else plural]
    if q.ids:
        words.append(", ".join(q.ids))
    if q.conditions:
        words.append("that are " + " and ".join(V.CONDITION_LABELS.get(c, c)
                                                  for c in q.conditions))
    if q.states:
        words.append("with state " + " or ".join(q.states))
    if q.tags:
        words.append("tagged " + ", ".join(f"{k}={v}" for k, v in q.tags.items()))
    if q.name_contains:
        words.append(f"whose name contains {q.name_contains!r}")
    return " ".join(words)


def _supported_sentence() -> str:
    return "I can answer about " + ", ".join(p for _, p in RESOURCE_TYPES.values()) + "."


RDS = "rds:db-instance"


def example_questions(registry: Registry, resource_type: str | None = None) -> list[str]:
    """Questions the rule planner answers, in this registry's words (for refusals and docs)."""
    first = registry.workload_accounts[0]
    label = RESOURCE_TYPES[resource_type][1] if resource_type in RESOURCE_TYPES else None
    return [
        f"List {label or 'EC2 instances'} in {first.alias}",
        f"How many {label or 'RDS instances'} are "
        f"{'running' if 'running' in V.STATE_MAP.get(resource_type or RDS, {}) else 'there'}"
        " in each account?",
        "Show me S3 buckets across all accounts",
        f"Describe EKS clusters in account {first.id}",
    ]


def _understood(reading: Reading, registry: Registry) -> str:
    parts: list[str] = []
    if reading.intent:
        parts.append({"list": "a list", "count": "a count",
                      "describe": "details"}[reading.intent])
    parts += [RESOURCE_TYPES[t][1] for t in reading.types]
    by_id = {a.id: a for a in registry.all_accounts}
    if reading.all_accounts:
        parts.append("all accounts")
    parts += [by_id[a].alias for a in dict.fromkeys(reading.named_accounts) if a in by_id]
    parts += list(dict.fromkeys(reading.regions))
    parts += [f.text for f in reading.states + reading.conditions]
    parts += [f"{k}={v}" for k, v in reading.tags.items()]
    return f"I understood: {', '.join(parts)}." if parts else ""


def _unsupported(reading: Reading, registry: Registry, reasons: list[str]) -> Refusal:
    examples = example_questions(registry, reading.types[0] if reading.types else None)
    parts = ["I couldn't plan that question.", *reasons]
    understood = _understood(reading, registry)
    if understood:
        parts.append(understood)
    parts.append("Questions I can answer look like: "
                 + "; ".join(f'"{q}"' for q in examples) + ".")
    return Refusal(kind="unsupported", message=" ".join(parts))


def _read_only(question: str, registry: Registry, verb: str) -> Refusal:
    message = (f"opsagent is read-only: it never changes anything in any account, so it "
               f"will not {verb.lower()} anything.")
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
