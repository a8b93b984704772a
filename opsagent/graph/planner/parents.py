"""Nouns that place other nouns: "node groups of the EKS clusters", "services in the payments
cluster", "volumes per instance", "EKS cluster node groups".

A resource type that lives inside another (its catalogue ``parent``: ECS services in ECS
clusters, EKS node groups in EKS clusters) scoped by its parent's type without naming a
parent asks for the child in every parent: only the child is asked for, and the plan says
"in every EKS cluster". Naming or filtering the parents ("services in the payments cluster",
"node groups of active clusters"), a count per parent, or a noun placed in an unrelated type
cannot be planned, since a query has no parent filter, and each says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.models import Plan
from opsagent.graph.planner.items import Item, Kind
from opsagent.graph.planner.mentions import Mention, family
from opsagent.graph.planner.tokens import Token
from opsagent.graph.planner.vocabulary import (
    BY_AGENT_WORDS,
    CONJUNCTIONS,
    DO_WORDS,
    EACH_PARENT_WORDS,
    GROUP_BY_WORDS,
    HAVE_WORDS,
    ONE_PARENT_WORDS,
    SCOPE_WORDS,
)

if TYPE_CHECKING:
    from opsagent.graph.planner.reading import Reading

# Kinds that may stand between a place word and the noun it places ("in the prod EKS
# clusters", "of active clusters", "in the payments cluster"), or before a noun modifying
# another ("prod EKS cluster node groups").
_MODIFIERS = frozenset(
    {
        Kind.FILLER,
        Kind.ACCOUNT,
        Kind.REGION,
        Kind.UNKNOWN,
        Kind.VALUE,
        Kind.ID,
        Kind.NAME,
        Kind.STATE,
        Kind.CONDITION,
        Kind.PUBLIC,
        Kind.TAG,
        Kind.ANAPHORA,
    }
)
# What makes parents particular: named ("the payments cluster", "cluster X") or filtered
# ("active clusters", "clusters tagged team=x").
_NAMING = frozenset({Kind.UNKNOWN, Kind.VALUE, Kind.ID, Kind.NAME})
_FILTERING = frozenset({Kind.STATE, Kind.CONDITION, Kind.PUBLIC, Kind.TAG})
# Between a parent noun and what describes it: "clusters that are active".
_RELATIVE_WORDS = frozenset({"that", "which", "who", "are", "is", "was", "were", "currently"})


def _parent_of(resource_type: str) -> str | None:
    return CATALOGUE[resource_type].parent


def scoped_mentions(
    items: list[Item],
    tokens: list[Token],
    used: set[int],
    mentions: list[Mention],
    reading: Reading,
    previous: Plan | None,
) -> None:
    """A noun placed in, on, across or per another noun ("services in the payments cluster",
    "node groups across our EKS clusters", "volumes per instance").

    A child's parent type that names and filters no parent means every parent: only the
    child is asked for ("EKS node groups in prod (in every EKS cluster)"). Anything else
    (a particular parent, filtered parents, a count per parent, unrelated types) cannot be
    planned and says why.
    """
    for position, mention in enumerate(mentions):
        if position == 0 or not mention.candidates:
            continue
        subjects = {c for other in mentions[:position] for c in other.candidates}
        if not subjects or set(mention.candidates) & subjects:
            continue
        lead = _place_word(items, mention.item)
        if lead is None:
            continue
        noun = items[mention.item]
        if (
            "qualifier" in noun.extra
            and mention.word == noun.text
            and ({family(c) for c in mention.candidates} & {family(s) for s in subjects})
        ):
            # "node groups in prod EKS": the service name is context, not a scope.
            mention.candidates = ()
            continue
        used.add(id(items[lead]))
        place = mention.candidates[0]
        singular, plural = CATALOGUE[place].singular, CATALOGUE[place].plural
        subject = CATALOGUE[sorted(subjects)[0]].plural
        mention.candidates = ()
        if _groups_by(items, lead):
            reading.problems.append(f"I can group only by account or by region, not by {singular}.")
            continue
        children = sorted(subjects)
        if all(_parent_of(child) == place for child in children):
            problem = _particular_parents(
                items, tokens, lead + 1, mention, children, place, reading, previous
            )
            if problem:
                reading.problems.append(problem)
            else:
                reading.notes.append(f"in every {singular}")
            continue
        named = any(items[k].kind in _NAMING for k in range(lead + 1, mention.item)) or (
            _describing(items, mention.last) in _NAMING
        )
        where = f"a particular {singular}" if named else plural
        reading.problems.append(
            f"I can't look for {subject} inside or attached to {where}; ask for {subject} "
            "by account, region, state, tag or name."
        )


def parent_modifiers(
    items: list[Item],
    tokens: list[Token],
    mentions: list[Mention],
    reading: Reading,
    previous: Plan | None,
) -> None:
    """ "EKS cluster node groups", "the prod clusters' services": a parent noun right before
    its child's noun modifies it, like "the node groups of the EKS clusters"."""
    for position, parent in enumerate(mentions[:-1]):
        child = mentions[position + 1]
        if len(parent.candidates) != 1 or not child.candidates or child.item != parent.last + 1:
            continue
        if items[parent.last].end != items[child.item].start:
            continue
        if not all(_parent_of(c) == parent.candidates[0] for c in child.candidates):
            continue
        place = parent.candidates[0]
        first = parent.item
        while (
            first > 0
            and items[first - 1].kind in _MODIFIERS
            and (items[first - 1].text.lower() not in CONJUNCTIONS)
        ):
            first -= 1
        parent.candidates = ()
        problem = _particular_parents(
            items,
            tokens,
            first,
            parent,
            list(child.candidates),
            place,
            reading,
            previous,
            after=False,
        )
        if problem:
            reading.problems.append(problem)
        else:
            reading.notes.append(f"in every {CATALOGUE[place].singular}")


def _place_word(items: list[Item], index: int) -> int | None:
    """The index of the word placing the noun at index in something ("in", "across",
    "attached to", "per"), looking back over its modifiers; None when nothing places it."""
    j = index - 1
    while j >= 0:
        item = items[j]
        text = item.text.lower()
        if item.kind in (Kind.PREP, Kind.ATTACHED_TO):
            return j
        if item.kind is Kind.FILLER and (text in SCOPE_WORDS or text in GROUP_BY_WORDS):
            return j
        if item.kind is Kind.FILLER and text in DO_WORDS and _has_after(items, index):
            return j  # "services does each cluster have"
        if text in CONJUNCTIONS and item.kind in (Kind.FILLER, Kind.BOUNDARY):
            # "in the prod and staging clusters" lists places; "instances in prod and
            # buckets" starts a new noun.
            left, right = items[j - 1] if j > 0 else None, items[j + 1]
            if left is None or not (
                left.kind == right.kind and left.kind in (Kind.ACCOUNT, Kind.REGION)
            ):
                return None
            j -= 1
            continue
        if item.kind not in _MODIFIERS:
            return None
        j -= 1
    return None


def _has_after(items: list[Item], index: int) -> bool:
    """ "(how many services does each cluster) have": a have-verb later in the clause."""
    for item in items[index + 1 :]:
        if item.kind is Kind.BOUNDARY:
            return False
        if item.kind is Kind.FILLER and item.text.lower() in HAVE_WORDS:
            return True
    return False


def _groups_by(items: list[Item], lead: int) -> bool:
    """ "count services per cluster", "node groups by cluster": a grouping, not a place
    ("node groups used by the clusters" is a place)."""
    text = items[lead].text.lower()
    if items[lead].kind is not Kind.FILLER or text not in GROUP_BY_WORDS:
        return False
    before = items[lead - 1] if lead > 0 else None
    return not (text == "by" and before is not None and before.text.lower() in BY_AGENT_WORDS)


def _describing(items: list[Item], index: int) -> Kind | None:
    """The kind of what describes the noun at index from behind ("cluster X", "clusters that
    are active"), None when nothing does."""
    j = index + 1
    while (
        j < len(items)
        and items[j].kind is Kind.FILLER
        and (items[j].text.lower() in _RELATIVE_WORDS)
    ):
        j += 1
    return items[j].kind if j < len(items) else None


def _particular_parents(
    items: list[Item],
    tokens: list[Token],
    start: int,
    parent: Mention,
    children: list[str],
    place: str,
    reading: Reading,
    previous: Plan | None,
    after: bool = True,
) -> str | None:
    """Why the parents of children cannot be planned: named, filtered, one of them or a
    count per parent. None when the words mean every parent (their children, all of them).

    `start` is the first word before the parent noun that modifies it; `after` also looks at
    what describes it from behind ("clusters named x", "clusters that are active").
    """
    singular, plural = CATALOGUE[place].singular, CATALOGUE[place].plural
    child = CATALOGUE[children[0]].plural
    before = items[start : parent.item]
    described = _describing(items, parent.last) if after else None
    words = {item.text.lower() for item in before if item.kind is Kind.FILLER}
    noun = tokens[items[parent.last].end - 1]
    plural_noun = noun.norm != noun.base
    earlier = [q for q in previous.queries if q.resource_type == place] if previous else []
    that_one = any(item.kind is Kind.ANAPHORA for item in before) and not any(
        not (q.states or q.tags or q.name_contains or q.ids or q.conditions) for q in earlier
    )
    if (
        any(item.kind in _NAMING for item in before)
        or described in _NAMING
        or that_one
        or (words & ONE_PARENT_WORDS and not plural_noun)
    ):
        return (
            f"I can't look for {child} inside or attached to a particular {singular}; "
            f"ask for {child} by account, region, state, tag or name (I can list the "
            f"{child} of every {singular})."
        )
    if any(item.kind in _FILTERING for item in before) or described in _FILTERING:
        return (
            f"I can't choose {child} by what their {plural} are; I can list the {child} "
            f"of every {singular}, by account, region, state, tag or name."
        )
    lead = items[start - 1].text.lower() if start > 0 else ""
    each = bool(words & EACH_PARENT_WORDS) or ("every" in words and lead == "for")
    if each and reading.intent == "count":
        return f"I can group only by account or by region, not by {singular}."
    return None
