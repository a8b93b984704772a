"""Reading: the scanned items of one question become a Reading.

A Reading is what the question says, before it is merged with the previous turn and
checked: resource types (ambiguous nouns settled by context, or flagged; a parent's type
that only places its children, as in "node groups of the EKS clusters", dropped), accounts
named or left out (and unknown words standing where an account goes), regions, state and
condition filters with what they modify, tags, names, ids, intent, grouping, follow-up
cues, and everything it could not understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opsagent.graph import vocabulary as V
from opsagent.graph.planner.scan import (
    ACCOUNT,
    ACCOUNT_PREPS,
    BOUNDARY_ITEM,
    ID,
    NAME,
    PROBLEM,
    TAG,
    UNKNOWN,
    UNKNOWN_ACCOUNT,
    VALUE,
    Item,
    Scanner,
    either,
    identifier_like,
)
from opsagent.graph.planner.tokens import Token, tokenize
from opsagent.graph.state import RESOURCE_TYPES, Intent, Plan
from opsagent.registry import Registry


@dataclass
class Mention:
    candidates: tuple[str, ...]  # one when the type is known
    word: str
    item: int  # index of the item
    last: int = -1  # index of its last item ("RDS servers" is two); item when one

    def __post_init__(self) -> None:
        if self.last < 0:
            self.last = self.item


@dataclass
class Filter:
    concept: str  # a STATE_MAP/CONDITION_MAP concept or a literal AWS state
    text: str
    negated: bool = False
    attached: str | None = None  # the resource type it directly modifies
    participle_after_noun: bool = False


@dataclass
class Reading:
    """What one question says, before it is merged with the previous turn and validated."""

    types: list[str] = field(default_factory=list)
    states: list[Filter] = field(default_factory=list)
    conditions: list[Filter] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    names: list[tuple[str, str]] = field(default_factory=list)  # (value, cue)
    ids: list[tuple[str, str | None]] = field(default_factory=list)
    named_accounts: list[str] = field(default_factory=list)
    excluded_accounts: list[str] = field(default_factory=list)
    all_accounts: bool = False
    other_accounts: bool = False
    regions: list[str] = field(default_factory=list)
    excluded_regions: list[str] = field(default_factory=list)
    all_regions: bool = False
    intents: set[str] = field(default_factory=set)
    groups: list[str] = field(default_factory=list)
    ungroup: bool = False
    compare: bool = False
    followup: bool = False
    anaphora: bool = False
    add: bool = False
    only: bool = False
    generic: bool = False
    want: bool = False
    mutation: str | None = None
    unknown: list[str] = field(default_factory=list)
    unknown_accounts: list[str] = field(default_factory=list)
    account_hints: dict[str, str] = field(default_factory=dict)  # "prdo": "'prod'"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def intent(self) -> Intent | None:
        if "count" in self.intents:
            return "count"
        if "describe" in self.intents:
            return "describe"
        if "list" in self.intents:
            return "list"
        return None

    def says_anything(self, besides_intent: bool = False) -> bool:
        return bool(
            self.types or self.states or self.conditions or self.tags or self.names or self.ids
            or self.named_accounts or self.excluded_accounts or self.all_accounts
            or self.other_accounts or self.regions or self.excluded_regions
            or self.all_regions or self.groups or self.ungroup
            or (self.intents and not besides_intent)
        )


def family(rtype: str) -> str:
    return rtype.split(":")[0]


def read_question(question: str, registry: Registry, previous: Plan | None,
                  ignore_changes: bool = False) -> Reading:
    """What one question says. `previous` only settles ambiguous nouns ("the clusters?");
    `ignore_changes` reads a change request as the read it implies ("delete X" -> X)."""
    scanner = Scanner(tokenize(question), registry)
    items = scanner.scan()
    reading = Reading(notes=list(scanner.notes))
    used: set[int] = set()
    reading.intents = {it.value for it in items if it.kind == V.INTENT}
    if any(it.kind == V.UNGROUP for it in items) and not reading.intents:
        reading.intents.add("count")  # "in total" asks for a number

    account_words, reasons = _account_words(items, scanner)

    # ----- change requests -----
    for k, it in enumerate(items):
        if it.kind == V.MUTATION:
            if k in account_words:
                continue  # "in the archive account": a name, read below
            used.add(id(it))
            if ignore_changes:
                continue
            if it.verb_position or not reading.intents:
                reading.mutation = reading.mutation or it.value
            else:
                reading.unknown.append(it.text)

    # ----- resource mentions -----
    mentions = _mentions(items, used, reading, scanner.t, previous)
    mention_at = {m.item: m for m in mentions}
    intent = reading.intent
    for m in mentions:
        if len(m.candidates) == 1 and m.candidates[0] not in reading.types:
            reading.types.append(m.candidates[0])
    _ids_near_mentions(items, used, mentions, reading, intent)

    # ----- everything else, left to right -----
    excluding = False  # inside "except prod, staging"
    negate_next = False
    for k, it in enumerate(items):
        if id(it) in used:
            continue
        kind = it.kind
        next_mention = _adjacent_mention(items, k, mention_at)
        if k in account_words:
            reading.unknown_accounts.append(it.text)
            near = scanner.near_words(scanner.t[it.start], accounts_only=True)
            if near and it.end - it.start == 1:
                reading.account_hints[it.text] = either(near)
            continue
        if kind == ACCOUNT:
            ids = it.value.split(",")
            if excluding or negate_next:
                reading.excluded_accounts += ids
                negate_next = False
            else:
                reading.named_accounts += ids
            continue
        if kind == V.REGION:
            if excluding or negate_next:
                reading.excluded_regions.append(it.value)
                negate_next = False
            else:
                reading.regions.append(it.value)
            continue
        if kind == V.ONLY:
            reading.only = True
        if kind in (V.FILLER, V.PREP, V.ACCOUNT_NOUN, V.REGION_NOUN, BOUNDARY_ITEM, V.ONLY):
            if excluding and kind in (V.FILLER, V.PREP, V.ACCOUNT_NOUN, V.REGION_NOUN,
                                      BOUNDARY_ITEM):
                continue
            excluding = False
            continue
        excluding = False
        if kind == V.STATE:
            reading.states.append(Filter(
                it.value, it.text, negated=negate_next or _excluded_by(items, k),
                attached=next_mention,
                participle_after_noun=("participle" in it.extra or it.value == "running")
                and _right_after_noun(items, k, mention_at),
            ))
            negate_next = False
        elif kind in (V.CONDITION, V.PUBLIC):
            if negate_next:
                reading.problems.append(f"I can't filter on 'not {it.text}'.")
            reading.conditions.append(Filter(it.value, it.text, attached=next_mention))
            negate_next = False
        elif kind == V.NEGATE:
            target = _next_meaningful(items, k)
            if target is None or target.kind not in (V.STATE, ACCOUNT, V.REGION):
                what = target.text if target is not None else ""
                reading.problems.append(f"I can't filter on 'not {what}'.".replace(" ''", ""))
            negate_next = True
        elif kind == V.EXCLUDE:
            target = _next_meaningful(items, k)
            if target is not None and target.kind in (ACCOUNT, V.REGION):
                excluding = True
            elif target is not None and target.kind == V.STATE:
                pass  # "other than running": the state reads it as negated
            elif it.text.lower() != "but":  # "but" is mostly just "but"
                following = next((x for x in items[k + 1:] if x.kind != BOUNDARY_ITEM), None)
                what = following.text if following is not None else "that"
                reading.problems.append(
                    f"I can leave out accounts, regions or states, not {what!r}."
                )
        elif kind == V.ALL_ACCOUNTS:
            reading.all_accounts = True
            if it.value == "group":
                reading.groups.append("account")
        elif kind == V.OTHER_ACCOUNTS:
            reading.other_accounts = True
        elif kind == V.ALL_REGIONS:
            reading.all_regions = True
            if it.value == "group":
                reading.groups.append("region")
        elif kind == V.GROUP:
            reading.groups.append(it.value)
        elif kind == V.INTENT and it.text.lower() in {"which", "what"} and k + 1 < len(items):
            # "which accounts have running instances?" answers per account.
            nxt = items[k + 1]
            if nxt.kind == V.ACCOUNT_NOUN:
                reading.groups.append("account")
            elif nxt.kind == V.REGION_NOUN:
                reading.groups.append("region")
        elif kind == V.UNGROUP:
            reading.ungroup = True
        elif kind == V.COMPARE:
            reading.compare = True
        elif kind == TAG:
            reading.tags[it.value] = it.extra[0]
        elif kind == NAME:
            reading.names.append((it.value, it.extra[0] if it.extra else ""))
        elif kind == ID:
            reading.ids.append((it.value, it.extra[0] if it.extra else None))
        elif kind == V.FOLLOWUP:
            reading.followup = True
        elif kind == V.ANAPHORA:
            reading.anaphora = True
        elif kind == V.ADD:
            reading.add = True
        elif kind == V.WANT:
            reading.want = True
        elif kind == V.GENERIC:
            reading.generic = True
        elif kind == V.UNSUPPORTED:
            reading.problems.append(f"I can't answer about {it.text}: it is not a resource "
                                    "type I can read.")
        elif kind == V.ATTACHED_TO:
            reading.problems.append(
                f"I can't filter by what a resource is '{it.text}'; ask by account, region, "
                "state, tag or name."
            )
        elif kind == PROBLEM:
            reading.problems.append(it.value)
        elif kind == UNKNOWN_ACCOUNT:
            reading.unknown_accounts.append(it.value)
        elif kind in (UNKNOWN, VALUE):
            reason = reasons.get(k, "")
            if reason:
                reading.problems.append(reason)
            elif reason is not None:
                reading.unknown.append(it.text)
        elif kind in (V.OWNER_CUE, V.TAG_WORD, V.NAME_WORD, V.GROUP_BY, V.SORT_BY):
            pass
        elif kind in (V.TAG_CUE, V.NAME_CUE):
            pass  # their arguments were read by the scanner
    if negate_next:
        reading.problems.append("I couldn't tell what 'not' applies to.")
    if reading.compare and not reading.groups:
        # "prod vs staging" compares accounts, "Oregon vs Ohio" regions: side by side.
        if len(set(reading.named_accounts)) > 1:
            reading.groups.append("account")
        elif len(set(reading.regions)) > 1:
            reading.groups.append("region")
        elif reading.types:
            reading.problems.append("I couldn't tell what to compare; name two accounts or "
                                    "two regions.")
    if not reading.types:
        # "describe i-0abc1234": the id's shape names the resource type.
        reading.types = list(dict.fromkeys(t for _, t in reading.ids if t is not None))

    # "I want all dev instances stopped": a wish for a change, not a question.
    if reading.want and not reading.intents and any(
        f.participle_after_noun for f in reading.states
    ):
        if ignore_changes:
            reading.states = [f for f in reading.states if not f.participle_after_noun]
        else:
            reading.mutation = reading.mutation or "change"
    return reading


def _mentions(items: list[Item], used: set[int], reading: Reading, tokens: list[Token],
              previous: Plan | None) -> list[Mention]:
    """Resource nouns, with qualifiers merged ("RDS servers") and ambiguity resolved."""
    mentions: list[Mention] = []
    k = 0
    while k < len(items):
        it = items[k]
        if it.kind not in (V.RESOURCE, V.AMBIGUOUS) or id(it) in used:
            k += 1
            continue
        candidates = (it.value,) if it.kind == V.RESOURCE else it.extra
        word = it.text
        nxt = items[k + 1] if k + 1 < len(items) else None
        if (it.kind == V.RESOURCE and "qualifier" in it.extra and nxt is not None
                and nxt.kind in (V.RESOURCE, V.AMBIGUOUS) and nxt.start == it.end
                and "qualifier" not in nxt.extra):
            # A service name before a noun decides the noun: "RDS servers", "EKS nodes".
            if nxt.kind == V.AMBIGUOUS:
                picked = tuple(c for c in nxt.extra if family(c) == family(it.value))
                candidates = picked or (it.value,)
            word = f"{it.text} {nxt.text}"
            used.add(id(nxt))
            used.add(id(it))
            mentions.append(Mention(candidates, word, k, k + 1))
            k += 2
            continue
        used.add(id(it))
        mentions.append(Mention(candidates, word, k))
        k += 1

    # Families the question (or the previous turn) talks about decide ambiguous nouns.
    hinted = {V.FAMILY_WORDS[t.norm] for t in tokens if t.norm in V.FAMILY_WORDS}
    hinted |= {V.FAMILY_WORDS[t.base] for t in tokens if t.base in V.FAMILY_WORDS}
    known = {family(m.candidates[0]) for m in mentions if items[m.item].kind == V.RESOURCE}
    earlier = {family(q.resource_type) for q in previous.queries} if previous else set()
    for m in mentions:
        ambiguous = m.candidates != (items[m.item].value,) or items[m.item].kind == V.AMBIGUOUS
        if not ambiguous:
            continue
        for families in (hinted | known, earlier):
            picked = tuple(c for c in m.candidates if family(c) in families)
            if len(picked) == 1:
                m.candidates = picked
                break
        if len(m.candidates) != 1 or items[m.item].kind == V.AMBIGUOUS and not (
            {family(c) for c in m.candidates} & (hinted | known | earlier)
        ):
            options = [RESOURCE_TYPES[c][1] for c in items[m.item].extra]
            reading.problems.append(
                f"'{m.word}' could mean {' or '.join(options)}; say which."
                if len(options) > 1 else f"Do you mean {options[0]}? Say so, to be sure."
            )
            m.candidates = ()

    _parent_modifiers(items, tokens, mentions, reading, previous)
    _scoped_mentions(items, tokens, used, mentions, reading, previous)
    return mentions


# Kinds that may stand between a place word and the noun it places ("in the prod EKS
# clusters", "of active clusters", "in the payments cluster"), or before a noun modifying
# another ("prod EKS cluster node groups").
_MODIFIERS = frozenset({
    V.FILLER, ACCOUNT, V.REGION, UNKNOWN, VALUE, ID, NAME, V.STATE, V.CONDITION, V.PUBLIC,
    TAG, V.ANAPHORA,
})
_CONJUNCTIONS = frozenset({"and", "or", "nor", ","})
# What makes parents particular: named ("the payments cluster", "cluster X") or filtered
# ("active clusters", "clusters tagged team=x").
_NAMING = frozenset({UNKNOWN, VALUE, ID, NAME})
_FILTERING = frozenset({V.STATE, V.CONDITION, V.PUBLIC, TAG})
# Between a parent noun and what describes it: "clusters that are active".
_RELATIVE_WORDS = frozenset({"that", "which", "who", "are", "is", "was", "were", "currently"})


def _scoped_mentions(items: list[Item], tokens: list[Token], used: set[int],
                     mentions: list[Mention], reading: Reading, previous: Plan | None) -> None:
    """A noun placed in, on, across or per another noun ("services in the payments cluster",
    "node groups across our EKS clusters", "volumes per instance").

    A child's parent type that names and filters no parent means every parent: only the
    child is asked for ("EKS node groups in prod (in every EKS cluster)"). Anything else
    (a particular parent, filtered parents, a count per parent, unrelated types) cannot be
    planned and says why.
    """
    for n, m in enumerate(mentions):
        if n == 0 or not m.candidates:
            continue
        subjects = {c for other in mentions[:n] for c in other.candidates}
        if not subjects or set(m.candidates) & subjects:
            continue
        lead = _place_word(items, m.item)
        if lead is None:
            continue
        lead_item = items[lead]
        if "qualifier" in items[m.item].extra and m.word == items[m.item].text and (
            {family(c) for c in m.candidates} & {family(s) for s in subjects}
        ):
            # "node groups in prod EKS": the service name is context, not a scope.
            m.candidates = ()
            continue
        used.add(id(lead_item))
        place = m.candidates[0]
        singular, plural = RESOURCE_TYPES[place]
        subject = RESOURCE_TYPES[sorted(subjects)[0]][1]
        m.candidates = ()
        if _groups_by(items, lead):
            reading.problems.append(
                f"I can group only by account or by region, not by {singular}."
            )
            continue
        children = sorted(subjects)
        if all(V.PARENT_TYPES.get(c) == place for c in children):
            problem = _particular_parents(items, tokens, lead + 1, m, children, place,
                                          reading, previous)
            if problem:
                reading.problems.append(problem)
            else:
                reading.notes.append(f"in every {singular}")
            continue
        named = any(items[k].kind in _NAMING for k in range(lead + 1, m.item)) or (
            _describing(items, m.last) in _NAMING
        )
        where = f"a particular {singular}" if named else plural
        reading.problems.append(
            f"I can't look for {subject} inside or attached to {where}; ask for {subject} "
            "by account, region, state, tag or name."
        )


def _parent_modifiers(items: list[Item], tokens: list[Token], mentions: list[Mention],
                      reading: Reading, previous: Plan | None) -> None:
    """ "EKS cluster node groups", "the prod clusters' services": a parent noun right before
    its child's noun modifies it, like "the node groups of the EKS clusters"."""
    for n, m in enumerate(mentions[:-1]):
        child = mentions[n + 1]
        if len(m.candidates) != 1 or not child.candidates or child.item != m.last + 1:
            continue
        if items[m.last].end != items[child.item].start:
            continue
        if not all(V.PARENT_TYPES.get(c) == m.candidates[0] for c in child.candidates):
            continue
        place = m.candidates[0]
        first = m.item
        while first > 0 and items[first - 1].kind in _MODIFIERS and (
            items[first - 1].text.lower() not in _CONJUNCTIONS
        ):
            first -= 1
        m.candidates = ()
        problem = _particular_parents(items, tokens, first, m, list(child.candidates),
                                      place, reading, previous, after=False)
        if problem:
            reading.problems.append(problem)
        else:
            reading.notes.append(f"in every {RESOURCE_TYPES[place][0]}")


def _place_word(items: list[Item], k: int) -> int | None:
    """The index of the word placing the noun at k in something ("in", "across", "attached
    to", "per"), looking back over its modifiers; None when nothing places it."""
    j = k - 1
    while j >= 0:
        it = items[j]
        text = it.text.lower()
        if it.kind in (V.PREP, V.ATTACHED_TO):
            return j
        if it.kind == V.FILLER and (text in V.SCOPE_WORDS or text in V.GROUP_BY_WORDS):
            return j
        if it.kind == V.FILLER and text in V.DO_WORDS and _has_after(items, k):
            return j  # "services does each cluster have"
        if text in _CONJUNCTIONS and it.kind in (V.FILLER, BOUNDARY_ITEM):
            # "in the prod and staging clusters" lists places; "instances in prod and
            # buckets" starts a new noun.
            left, right = items[j - 1] if j > 0 else None, items[j + 1]
            if left is None or not (left.kind == right.kind and left.kind in (ACCOUNT,
                                                                             V.REGION)):
                return None
            j -= 1
            continue
        if it.kind not in _MODIFIERS:
            return None
        j -= 1
    return None


def _has_after(items: list[Item], k: int) -> bool:
    """ "(how many services does each cluster) have": a have-verb later in the clause."""
    for it in items[k + 1:]:
        if it.kind == BOUNDARY_ITEM:
            return False
        if it.kind == V.FILLER and it.text.lower() in V.HAVE_WORDS:
            return True
    return False


def _groups_by(items: list[Item], lead: int) -> bool:
    """ "count services per cluster", "node groups by cluster": a grouping, not a place
    ("node groups used by the clusters" is a place)."""
    text = items[lead].text.lower()
    if items[lead].kind != V.FILLER or text not in V.GROUP_BY_WORDS:
        return False
    before = items[lead - 1] if lead > 0 else None
    return not (text == "by" and before is not None
                and before.text.lower() in V.BY_AGENT_WORDS)


def _describing(items: list[Item], k: int) -> str | None:
    """The kind of what describes the noun at k from behind ("cluster X", "clusters that
    are active"), None when nothing does."""
    j = k + 1
    while j < len(items) and items[j].kind == V.FILLER and (
        items[j].text.lower() in _RELATIVE_WORDS
    ):
        j += 1
    return items[j].kind if j < len(items) else None


def _particular_parents(items: list[Item], tokens: list[Token], start: int, m: Mention,
                        children: list[str], place: str, reading: Reading,
                        previous: Plan | None, after: bool = True) -> str | None:
    """Why the parents of children cannot be planned: named, filtered, one of them or a
    count per parent. None when the words mean every parent (their children, all of them).

    `start` is the first word before the parent noun that modifies it; `after` also looks at
    what describes it from behind ("clusters named x", "clusters that are active").
    """
    singular, plural = RESOURCE_TYPES[place]
    child = RESOURCE_TYPES[children[0]][1]
    before = items[start:m.item]
    described = _describing(items, m.last) if after else None
    words = {it.text.lower() for it in before if it.kind == V.FILLER}
    noun = tokens[items[m.last].end - 1]
    plural_noun = noun.norm != noun.base
    earlier = [q for q in previous.queries if q.resource_type == place] if previous else []
    that_one = any(it.kind == V.ANAPHORA for it in before) and not any(
        not (q.states or q.tags or q.name_contains or q.ids or q.conditions) for q in earlier
    )
    if (any(it.kind in _NAMING for it in before) or described in _NAMING or that_one
            or (words & V.ONE_PARENT_WORDS and not plural_noun)):
        return (f"I can't look for {child} inside or attached to a particular {singular}; "
                f"ask for {child} by account, region, state, tag or name (I can list the "
                f"{child} of every {singular}).")
    if any(it.kind in _FILTERING for it in before) or described in _FILTERING:
        return (f"I can't choose {child} by what their {plural} are; I can list the {child} "
                f"of every {singular}, by account, region, state, tag or name.")
    lead = items[start - 1].text.lower() if start > 0 else ""
    each = bool(words & V.EACH_PARENT_WORDS) or ("every" in words and lead == "for")
    if each and reading.intent == "count":
        return f"I can group only by account or by region, not by {singular}."
    return None


def _ids_near_mentions(items: list[Item], used: set[int], mentions: list[Mention],
                       reading: Reading, intent: Intent | None) -> None:
    """ "describe instance i-0abc", "the EKS cluster prod-main", "the prod-main cluster" """
    for m in mentions:
        if len(m.candidates) != 1:
            continue
        rtype = m.candidates[0]

        def takes(it: Item, rtype: str = rtype) -> bool:
            if it.kind == ID:
                return not it.extra or it.extra[0] == rtype
            if it.kind not in (UNKNOWN, VALUE):
                return False
            if identifier_like(it.text) or it.kind == VALUE:
                return True
            return intent == "describe" and rtype in V.NAME_IS_ID

        k = m.item + 1
        while k < len(items) and id(items[k]) not in used:
            it = items[k]
            if takes(it):
                reading.ids.append((it.text if it.kind != ID else it.value, rtype))
                used.add(id(it))
                k += 1
                continue
            if (it.kind in (V.FILLER, BOUNDARY_ITEM) and it.text.lower() in {"and", ",", "or"}
                    and k + 1 < len(items) and takes(items[k + 1]) and k > m.item + 1):
                k += 1
                continue
            break
        before = m.item - 1
        if (intent == "describe" and before >= 0 and id(items[before]) not in used
                and items[before].kind in (UNKNOWN, VALUE)
                and (identifier_like(items[before].text) or rtype in V.NAME_IS_ID)):
            reading.ids.append((items[before].text, rtype))
            used.add(id(items[before]))


def _adjacent_mention(items: list[Item], k: int, mention_at: dict[int, Mention]) -> str | None:
    """The resource type a modifier at k directly precedes ("running EC2 instances")."""
    m = mention_at.get(k + 1)
    if m is not None and len(m.candidates) == 1 and items[k + 1].start == items[k].end:
        return m.candidates[0]
    return None


def _right_after_noun(items: list[Item], k: int, mention_at: dict[int, Mention]) -> bool:
    """ "the dev instances stopped": a participle right after the noun, no "that are"."""
    j = k - 1
    while j >= 0 and items[j].kind in (ACCOUNT, V.REGION, V.PREP, V.ACCOUNT_NOUN, V.ALL_ACCOUNTS):
        j -= 1
    return j >= 0 and j in mention_at


# These walk by index, not over slices: a slice per item makes a long question quadratic.
def _next_meaningful(items: list[Item], k: int) -> Item | None:
    for j in range(k + 1, len(items)):
        if items[j].kind in (V.FILLER, V.PREP, BOUNDARY_ITEM, V.ACCOUNT_NOUN, V.ONLY):
            continue
        return items[j]
    return None


def _previous_meaningful(items: list[Item], k: int, skip: set[str]) -> Item | None:
    for j in range(k - 1, -1, -1):
        if items[j].kind in skip:
            continue
        return items[j]
    return None


def _excluded_by(items: list[Item], k: int) -> bool:
    before = _previous_meaningful(items, k, {V.FILLER, V.ONLY})
    return before is not None and before.kind == V.EXCLUDE and before.text.lower() != "but"


# ----- unknown words where an account goes -----

_DETERMINERS = frozenset({"the", "our", "my", "your", "their"})
# After a word in an account's place, these make it part of a noun phrase instead ("in web
# servers", "in foo bar", "in the frankfurt-2 region").
_NOUNISH = frozenset({
    V.RESOURCE, V.AMBIGUOUS, V.UNSUPPORTED, V.GENERIC, V.REGION_NOUN, UNKNOWN, VALUE, ID,
    V.ANAPHORA, V.NAME_WORD,
})
# Question words that sit before "account" without naming one: "in which account".
_ASKING = frozenset({"which", "what", "any", "whichever", "whatever"})


def _account_words(items: list[Item], scanner: Scanner
                   ) -> tuple[set[int], dict[int, str | None]]:
    """Which unknown words name accounts (item indices), and why some others do not.

    A word names an account beside an account noun ("the qa account", "account qa"), after
    "in"/"from" at the end of a phrase ("in uat", "in uat in Oregon"), left out of every
    account ("everywhere except uat"), or listed with accounts ("prod and uat", "prod vs
    uat", "prod, staging, uat"). Except beside an account noun, a word that is something
    else (a typo of a known word, part of a region's name, a date, "largest") never does.
    """
    slots: set[int] = set()
    reasons: dict[int, str | None] = {}  # None: nothing to say, the next word says it
    listed: list[int] = []
    for k, it in enumerate(items):
        if it.kind in (V.INTENT, V.GENERIC) or (it.kind == V.MUTATION
                                                 and not it.verb_position):
            # "in the audit account", "instances in infra", "in prod and archive": a word
            # the planner knows as a verb or as "things", in the place of a name.
            if it.text.lower() in _ASKING or len(it.text.split()) != 1:
                continue
            if _before_account_noun(items, k) or _ends_a_name(items, k):
                if _after_account_word(items, k, determiners_only=True):
                    slots.add(k)
                elif it.kind == V.INTENT and it.value == "list" and _ends_a_name(items, k):
                    listed.append(k)  # "prod and audit", not "prod and their details"
            continue
        if it.kind not in (UNKNOWN, VALUE):
            continue
        if _before_account_noun(items, k) or _after_account_noun(items, k):
            slots.add(k)
            continue
        reason = scanner.not_an_account(it) if it.kind == UNKNOWN else None
        if reason and scanner.region_goes_on(it.start):
            reasons[k] = None  # "asia (pacific)": the next word says it
        elif reason is not None:
            reasons[k] = reason
        elif _after_account_word(items, k) and _ends_a_name(items, k):
            slots.add(k)
        else:
            listed.append(k)
    grown = True
    while grown:
        grown = False
        for k in listed:
            if k not in slots and _listed_with_accounts(items, k, slots):
                slots.add(k)
                grown = True
    return slots, reasons


def _before_account_noun(items: list[Item], k: int) -> bool:
    """ "the qa account", "uat environment" """
    after = items[k + 1] if k + 1 < len(items) else None
    return after is not None and after.kind == V.ACCOUNT_NOUN and after.start == items[k].end


def _after_account_noun(items: list[Item], k: int) -> bool:
    """ "account qa", "environment uat" """
    before = _previous_meaningful(items, k, {V.FILLER})
    return (before is not None and before.kind == V.ACCOUNT_NOUN
            and before.end == items[k].start)


def _after_account_word(items: list[Item], k: int, determiners_only: bool = False) -> bool:
    """After "in", "from", "under" ("in uat"), or left out of all accounts ("every account
    except uat", "everywhere but uat")."""
    j = k - 1
    while j >= 0 and items[j].kind in (V.FILLER, V.ONLY) and (
        not determiners_only or items[j].text.lower() in _DETERMINERS
    ):
        j -= 1
    if j < 0:
        return False
    before = items[j]
    if before.kind == V.PREP:
        return before.text.lower() in ACCOUNT_PREPS
    if before.kind == V.EXCLUDE:
        return any(it.kind in (V.ALL_ACCOUNTS, V.OTHER_ACCOUNTS) for it in items[:j])
    return False


def _ends_a_name(items: list[Item], k: int) -> bool:
    """Nothing after the word makes it part of a longer noun phrase ("in web servers")."""
    for j in range(k + 1, len(items)):
        it = items[j]
        if it.kind == V.FILLER and it.text.lower() not in _CONJUNCTIONS:
            continue  # "in uat please", "in uat right now"
        return it.kind not in _NOUNISH
    return True


def _joins(it: Item) -> bool:
    """ "and", "or", ",", "vs", "as well as" between two things of a list."""
    text = it.text.lower()
    return ((it.kind in (V.FILLER, BOUNDARY_ITEM) and text in _CONJUNCTIONS)
            or it.kind == V.COMPARE or (it.kind == V.ADD and text in {"plus", "as well as"}))


def _listed_with_accounts(items: list[Item], k: int, slots: set[int]) -> bool:
    """ "prod and uat", "uat or staging", "prod, staging, uat", "prod vs uat instances" """

    def skip(j: int, step: int) -> int:
        while 0 <= j < len(items) and items[j].kind == V.FILLER and (
            items[j].text.lower() in _DETERMINERS
        ):
            j += step
        return j

    def member(j: int) -> bool:
        return 0 <= j < len(items) and (
            items[j].kind in (ACCOUNT, UNKNOWN_ACCOUNT) or j in slots
        )

    def partner(step: int) -> bool:
        j = skip(k + step, step)
        return 0 <= j < len(items) and _joins(items[j]) and member(skip(j + step, step))

    if not (partner(-1) or partner(1)):
        return False
    following = skip(k + 1, 1)
    if following >= len(items) or items[following].kind not in _NOUNISH:
        return True
    if items[following].kind in (UNKNOWN, VALUE):
        return False  # "prod and new york"
    # "prod and uat instances" lists accounts before a noun; "in prod and web servers"
    # starts a new noun after the place.
    first = k
    while True:
        j = skip(first - 1, -1)
        if j < 0 or not _joins(items[j]) or not member(skip(j - 1, -1)):
            break
        first = skip(j - 1, -1)
    before = skip(first - 1, -1)
    return before < 0 or items[before].kind != V.PREP
