"""Reading: the scanned items of one question become a Reading.

A Reading is what the question says, before it is merged with the previous turn and
checked: resource types (ambiguous nouns settled by context, or flagged), accounts named or
left out, regions, state and condition filters with what they modify, tags, names, ids,
intent, grouping, follow-up cues, and everything it could not understand.
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

    # ----- change requests -----
    for it in items:
        if it.kind == V.MUTATION:
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
            if _names_an_account(items, k):
                reading.unknown_accounts.append(it.text)
            else:
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

    # A noun after "in"/"of"/"attached to" with another noun before it scopes that noun to
    # one resource ("services in the payments cluster"), which a plan cannot express.
    for n, m in enumerate(mentions):
        if n == 0 or not m.candidates:
            continue
        before = _previous_meaningful(items, m.item, skip={V.FILLER, ACCOUNT, VALUE, UNKNOWN})
        subjects = {c for other in mentions[:n] for c in other.candidates}
        if (before is not None and before.kind in (V.PREP, V.ATTACHED_TO)
                and subjects and not set(m.candidates) & subjects):
            if "qualifier" in items[m.item].extra and m.word == items[m.item].text and (
                {family(c) for c in m.candidates} & {family(s) for s in subjects}
            ):
                # "node groups in prod EKS": the service name is context, not a scope.
                m.candidates = ()
                continue
            subject = RESOURCE_TYPES[sorted(subjects)[0]][1]
            reading.problems.append(
                f"I can't look for {subject} inside or attached to a particular "
                f"{RESOURCE_TYPES[m.candidates[0]][0]}; ask for {subject} by account, region, "
                "state, tag or name."
            )
            m.candidates = ()
    return mentions


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


def _next_meaningful(items: list[Item], k: int) -> Item | None:
    for it in items[k + 1:]:
        if it.kind in (V.FILLER, V.PREP, BOUNDARY_ITEM, V.ACCOUNT_NOUN, V.ONLY):
            continue
        return it
    return None


def _previous_meaningful(items: list[Item], k: int, skip: set[str]) -> Item | None:
    for it in reversed(items[:k]):
        if it.kind in skip:
            continue
        return it
    return None


def _excluded_by(items: list[Item], k: int) -> bool:
    before = _previous_meaningful(items, k, {V.FILLER, V.ONLY})
    return before is not None and before.kind == V.EXCLUDE and before.text.lower() != "but"


def _names_an_account(items: list[Item], k: int) -> bool:
    """An unknown word where an account goes: "the qa account", "account foo", "in uat"."""
    after = items[k + 1] if k + 1 < len(items) else None
    before = _previous_meaningful(items, k, {V.FILLER})
    if after is not None and after.kind == V.ACCOUNT_NOUN:
        return True
    if before is not None and before.kind == V.ACCOUNT_NOUN and before.end == items[k].start:
        return True
    if before is not None and before.kind == V.PREP and before.text.lower() in ACCOUNT_PREPS:
        return (after is None or after.kind == BOUNDARY_ITEM
                or (after.kind in (V.FILLER,) and after.text.lower() in {"and", "or"}))
    return False
