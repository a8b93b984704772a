"""Reading: the scanned items of one question become a Reading.

A Reading is what the question says, before it is merged with the previous turn and
checked: resource types (ambiguous nouns settled by context, or flagged; a parent's type
that only places its children, as in "node groups of the EKS clusters", dropped), accounts
named or left out (and unknown words standing where an account goes), regions, state and
condition filters with what they modify, tags, names, ids, intent, grouping, follow-up
cues, and everything it could not understand.

The steps, in order: change requests; resource mentions (mentions.py) and the nouns that
only place others (parents.py); ids beside the mentions; every other item, left to right
(``_ItemReader``); then what the whole question settles (``_settle``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from opsagent.graph.catalogue import CATALOGUE
from opsagent.graph.models import Intent, Plan, Ranking
from opsagent.graph.planner import attribute_words
from opsagent.graph.planner.account_words import account_words
from opsagent.graph.planner.attribute_filters import Ask, types_having
from opsagent.graph.planner.items import Item, Kind, next_meaningful, previous_meaningful
from opsagent.graph.planner.mentions import (
    Mention,
    adjacent_mention,
    find_mentions,
    ids_near_mentions,
)
from opsagent.graph.planner.parents import parent_modifiers, scoped_mentions
from opsagent.graph.planner.scan import Scanner
from opsagent.graph.planner.spelling import either
from opsagent.graph.planner.tokens import tokenize
from opsagent.registry import Registry


@dataclass
class Filter:
    concept: str  # a state or condition concept, or a literal AWS state
    text: str
    negated: bool = False
    attached: str | None = None  # the resource type it directly modifies
    participle_after_noun: bool = False


@dataclass
class SortAsk:
    """ "the 5 largest", "oldest first", "sorted by size": what to rank by, which way, how many."""

    concept: str = ""  # "" until a superlative or "by size" says it
    descending: bool | None = None
    limit: int | None = None
    superlative: bool = False  # "the largest volume": one, when no count is said
    text: str = ""


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
    # Attributes (attribute_words.py): filters, tag keys, ranking, grouping, totals.
    asks: list[Ask] = field(default_factory=list)
    tag_keys: list[str] = field(default_factory=list)
    missing_tags: list[str] = field(default_factory=list)
    untagged: bool = False
    sort: SortAsk | None = None
    rank: Ranking | None = None  # "which account has the most ..."
    group_attribute: str | None = None  # an attribute's word: "type", "runtime"
    total: str | None = None  # a number attribute's word: "storage", "memory"
    attribute_nouns: list[str] = field(default_factory=list)

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
            self.types
            or self.states
            or self.conditions
            or self.tags
            or self.names
            or self.ids
            or self.named_accounts
            or self.excluded_accounts
            or self.all_accounts
            or self.other_accounts
            or self.regions
            or self.excluded_regions
            or self.all_regions
            or self.groups
            or self.ungroup
            or self.asks
            or self.tag_keys
            or self.missing_tags
            or self.untagged
            or self.sort
            or self.rank
            or self.group_attribute
            or self.total
            or (self.intents and not besides_intent)
        )


def read_question(
    question: str, registry: Registry, previous: Plan | None, ignore_changes: bool = False
) -> Reading:
    """What one question says. `previous` only settles ambiguous nouns ("the clusters?");
    `ignore_changes` reads a change request as the read it implies ("delete X" -> X)."""
    scanner = Scanner(tokenize(question), registry)
    items = scanner.scan()
    reading = Reading(notes=list(scanner.notes))
    used: set[int] = set()  # id() of the items a step has read
    reading.intents = {item.value for item in items if item.kind is Kind.INTENT}
    if any(item.kind is Kind.UNGROUP for item in items) and not reading.intents:
        reading.intents.add("count")  # "in total" asks for a number

    slots, reasons = account_words(items, scanner)
    _change_requests(items, slots, used, reading, ignore_changes)

    mentions = find_mentions(items, used, reading, scanner.tokens, previous)
    parent_modifiers(items, scanner.tokens, mentions, reading, previous)
    scoped_mentions(items, scanner.tokens, used, mentions, reading, previous)
    for mention in mentions:
        if len(mention.candidates) == 1 and mention.candidates[0] not in reading.types:
            reading.types.append(mention.candidates[0])
    ids_near_mentions(items, used, mentions, reading, reading.intent)

    _ItemReader(items, scanner, reading, mentions, slots, reasons).read(used)
    _engines(items, scanner, reading)
    _settle_attributes(items, scanner, reading, mentions, previous)
    _settle(reading, ignore_changes)
    return reading


def _change_requests(
    items: list[Item], slots: set[int], used: set[int], reading: Reading, ignore_changes: bool
) -> None:
    for index, item in enumerate(items):
        if item.kind is not Kind.MUTATION:
            continue
        if index in slots:
            continue  # "in the archive account": a name, read with the other items
        used.add(id(item))
        if ignore_changes:
            continue
        if item.verb_position or not reading.intents:
            reading.mutation = reading.mutation or item.value
        else:
            reading.unknown.append(item.text)


# Items that neither end an exclusion ("except prod, staging") nor say anything themselves.
_CONNECTING = frozenset(
    {Kind.FILLER, Kind.PREP, Kind.ACCOUNT_NOUN, Kind.REGION_NOUN, Kind.BOUNDARY}
)
# Items that only set one flag of the Reading.
_FLAGS: dict[Kind, str] = {
    Kind.OTHER_ACCOUNTS: "other_accounts",
    Kind.UNGROUP: "ungroup",
    Kind.COMPARE: "compare",
    Kind.FOLLOWUP: "followup",
    Kind.ANAPHORA: "anaphora",
    Kind.ADD: "add",
    Kind.WANT: "want",
    Kind.GENERIC: "generic",
}


class _ItemReader:
    """Every item no earlier step read, left to right, into the Reading.

    Two things carry from one item to the next: an exclusion ("except prod, staging"
    leaves out every account or region that follows, until a word of another kind) and a
    negation ("not running", "non-production") for the next state, account or region.
    """

    def __init__(
        self,
        items: list[Item],
        scanner: Scanner,
        reading: Reading,
        mentions: list[Mention],
        slots: set[int],
        reasons: dict[int, str | None],
    ) -> None:
        self.items = items
        self.scanner = scanner
        self.reading = reading
        self.mention_at = {mention.item: mention for mention in mentions}
        self.slots = slots  # unknown words where an account goes
        self.reasons = reasons  # why other unknown words are not accounts
        self.excluding = False
        self.negate_next = False
        self.readers: dict[Kind, Callable[[int, Item], None]] = {
            Kind.STATE: self.state,
            Kind.CONDITION: self.condition,
            Kind.PUBLIC: self.condition,
            Kind.NEGATE: self.negate,
            Kind.EXCLUDE: self.exclude,
            Kind.ALL_ACCOUNTS: self.all_accounts,
            Kind.ALL_REGIONS: self.all_regions,
            Kind.GROUP: self.group,
            Kind.INTENT: self.intent,
            Kind.TAG: self.tag,
            Kind.NAME: self.name,
            Kind.ID: self.resource_id,
            Kind.UNSUPPORTED: self.unsupported,
            Kind.ATTACHED_TO: self.attached_to,
            Kind.PROBLEM: self.problem,
            Kind.UNKNOWN_ACCOUNT: self.unknown_account,
            Kind.UNKNOWN: self.unknown,
            Kind.VALUE: self.unknown,
            Kind.ATTRIBUTE: self.attribute,
            Kind.ATTRIBUTE_NOUN: self.attribute_noun,
            Kind.SORT: self.sort,
            Kind.RANK: self.rank,
            Kind.GROUP_BY_ATTRIBUTE: self.group_attribute,
            Kind.TAG_KEY: self.tag_key,
            Kind.UNTAGGED: self.untagged,
        }

    def read(self, used: set[int]) -> None:
        for index, item in enumerate(self.items):
            if id(item) not in used:
                self.read_item(index, item)
        if self.negate_next:
            self.reading.problems.append("I couldn't tell what 'not' applies to.")

    def read_item(self, index: int, item: Item) -> None:
        reading = self.reading
        if index in self.slots:
            self.account_word(item)
            return
        kind = item.kind
        if kind is Kind.ACCOUNT:
            ids = item.value.split(",")
            if self.excluding or self.negate_next:
                reading.excluded_accounts += ids
                self.negate_next = False
            else:
                reading.named_accounts += ids
            return
        if kind is Kind.REGION:
            if self.excluding or self.negate_next:
                reading.excluded_regions.append(item.value)
                self.negate_next = False
            else:
                reading.regions.append(item.value)
            return
        if kind in _CONNECTING:
            return  # an exclusion goes on over "the", ",", "account"...
        self.excluding = False
        if kind is Kind.ONLY:
            reading.only = True
        elif kind in _FLAGS:
            setattr(reading, _FLAGS[kind], True)
        elif kind in self.readers:
            self.readers[kind](index, item)
        # Other kinds say nothing more: cues whose arguments the scanner read ("tagged",
        # "named", "by", "sorted by"), and resource nouns and change verbs read earlier.

    # ----- accounts and words in their place -----

    def account_word(self, item: Item) -> None:
        self.reading.unknown_accounts.append(item.text)
        near = self.scanner.near_words(self.scanner.tokens[item.start], accounts_only=True)
        if near and item.end - item.start == 1:
            self.reading.account_hints[item.text] = either(near)

    def unknown_account(self, index: int, item: Item) -> None:
        self.reading.unknown_accounts.append(item.value)

    def unknown(self, index: int, item: Item) -> None:
        reason = self.reasons.get(index, "")
        if reason:
            self.reading.problems.append(reason)
        elif reason is not None:
            self.reading.unknown.append(item.text)

    # ----- filters -----

    def state(self, index: int, item: Item) -> None:
        self.reading.states.append(
            Filter(
                item.value,
                item.text,
                negated=self.negate_next or _excluded_by(self.items, index),
                attached=adjacent_mention(self.items, index, self.mention_at),
                participle_after_noun=("participle" in item.extra or item.value == "running")
                and _right_after_noun(self.items, index, self.mention_at),
            )
        )
        self.negate_next = False

    def condition(self, index: int, item: Item) -> None:
        if self.negate_next:
            self.reading.problems.append(f"I can't filter on 'not {item.text}'.")
        self.reading.conditions.append(
            Filter(
                item.value, item.text, attached=adjacent_mention(self.items, index, self.mention_at)
            )
        )
        self.negate_next = False

    def negate(self, index: int, item: Item) -> None:
        target = next_meaningful(self.items, index)
        if target is None or target.kind not in _NEGATABLE:
            what = target.text if target is not None else ""
            self.reading.problems.append(f"I can't filter on 'not {what}'.".replace(" ''", ""))
        self.negate_next = True

    def exclude(self, index: int, item: Item) -> None:
        target = next_meaningful(self.items, index)
        if target is not None and target.kind in (Kind.ACCOUNT, Kind.REGION):
            self.excluding = True
        elif target is not None and target.kind is Kind.STATE:
            pass  # "other than running": the state reads it as negated
        elif target is not None and target.kind is Kind.ATTRIBUTE:
            self.negate_next = True  # "without encryption", "except the windows ones"
        elif item.text.lower() != "but":  # "but" is mostly just "but"
            following = next(
                (later for later in self.items[index + 1 :] if later.kind is not Kind.BOUNDARY),
                None,
            )
            what = following.text if following is not None else "that"
            self.reading.problems.append(
                f"I can leave out accounts, regions or states, not {what!r}."
            )

    def tag(self, index: int, item: Item) -> None:
        self.reading.tags[item.value] = item.extra[0]

    def name(self, index: int, item: Item) -> None:
        self.reading.names.append((item.value, item.extra[0] if item.extra else ""))

    def resource_id(self, index: int, item: Item) -> None:
        self.reading.ids.append((item.value, item.extra[0] if item.extra else None))

    # ----- accounts, regions, grouping -----

    def all_accounts(self, index: int, item: Item) -> None:
        self.reading.all_accounts = True
        if item.value == "group":
            self.reading.groups.append("account")

    def all_regions(self, index: int, item: Item) -> None:
        self.reading.all_regions = True
        if item.value == "group":
            self.reading.groups.append("region")

    def group(self, index: int, item: Item) -> None:
        self.reading.groups.append(item.value)

    def intent(self, index: int, item: Item) -> None:
        # "which accounts have running instances?" answers per account.
        if item.text.lower() not in {"which", "what"} or index + 1 >= len(self.items):
            return
        following = self.items[index + 1]
        if following.kind is Kind.ACCOUNT_NOUN:
            self.reading.groups.append("account")
        elif following.kind is Kind.REGION_NOUN:
            self.reading.groups.append("region")

    # ----- what cannot be planned -----

    def unsupported(self, index: int, item: Item) -> None:
        self.reading.problems.append(
            f"I can't answer about {item.text}: it is not a resource type I can read."
        )

    def attached_to(self, index: int, item: Item) -> None:
        self.reading.problems.append(
            f"I can't filter by what a resource is '{item.text}'; ask by account, region, "
            "state, tag or name."
        )

    def problem(self, index: int, item: Item) -> None:
        self.reading.problems.append(item.value)

    # ----- attributes -----

    def attribute(self, index: int, item: Item) -> None:
        op, value, unit = item.extra
        if self.negate_next or _excluded_by(self.items, index):
            # "not multi-AZ", "non-encrypted", "other than windows"
            if value in ("true", "false"):
                value = "false" if value == "true" else "true"
            elif op in ("eq", "ne"):
                op = "ne" if op == "eq" else "eq"
            else:
                self.reading.problems.append(f"I can't filter on 'not {item.text}'.")
        self.negate_next = False
        self.reading.asks.append(
            Ask(
                item.value,
                op,
                value,
                unit,
                item.text,
                attached=adjacent_mention(self.items, index, self.mention_at),
            )
        )

    def attribute_noun(self, index: int, item: Item) -> None:
        self.reading.attribute_nouns.append(item.value)

    def sort(self, index: int, item: Item) -> None:
        descending, limit, superlative = item.extra
        sort = self.reading.sort or SortAsk()
        sort.concept = item.value or sort.concept
        if descending:
            sort.descending = descending == "true"
        if limit:
            sort.limit = int(limit)
        sort.superlative = sort.superlative or superlative == "superlative"
        sort.text = f"{sort.text} {item.text}".strip()
        self.reading.sort = sort

    def rank(self, index: int, item: Item) -> None:
        self.reading.rank = "most" if item.value == "most" else "fewest"

    def group_attribute(self, index: int, item: Item) -> None:
        self.reading.group_attribute = item.value

    def tag_key(self, index: int, item: Item) -> None:
        if item.extra[0] == "missing" or self.negate_next:
            self.reading.missing_tags.append(item.value)
        else:
            self.reading.tag_keys.append(item.value)
        self.negate_next = False

    def untagged(self, index: int, item: Item) -> None:
        if self.negate_next:
            self.reading.problems.append("I can't filter on 'not untagged'; ask by tag key.")
        self.negate_next = False
        self.reading.untagged = True


# What "not" may apply to: "not running", "not prod", "not multi-AZ", "not tagged owner".
_NEGATABLE = frozenset(
    {Kind.STATE, Kind.ACCOUNT, Kind.REGION, Kind.ATTRIBUTE, Kind.TAG_KEY, Kind.UNTAGGED}
)
# Intent words that only ask ("which", "what"): a ranking, grouping or total counts.
_ASKING_WORDS = frozenset(
    {"which", "what", "what are", "what is", "any", "are there", "is there", "do we have"}
)
_RDS = "rds:db-instance"


def _engines(items: list[Item], scanner: Scanner, reading: Reading) -> None:
    """ "postgres databases", "Aurora PostgreSQL instances": an engine named in the noun of
    RDS instances filters on it (the longest engine phrase of the noun: "aurora postgres")."""
    spans: list[list[int]] = []  # token spans of RDS nouns, adjacent ones joined
    for item in items:
        if item.kind is not Kind.RESOURCE or item.value != _RDS:
            continue
        if spans and spans[-1][1] == item.start:
            spans[-1][1] = item.end
        else:
            spans.append([item.start, item.end])
    for start, end in spans:
        found = _longest_engine(scanner.tokens, start, end)
        if found is not None:
            op, value = attribute_words.ENGINE_WORDS[found]
            ask = Ask("engine", op, value, "", found, attached=_RDS)
            if ask not in reading.asks:
                reading.asks.append(ask)


def _longest_engine(tokens: list, start: int, end: int) -> str | None:
    """The longest engine phrase within tokens start..end."""
    best: str | None = None
    for first in range(start, end):
        for stop in range(end, first, -1):
            phrase = " ".join(token.norm for token in tokens[first:stop])
            if phrase in attribute_words.ENGINE_WORDS and (best is None or len(phrase) > len(best)):
                best = phrase
    return best


def _settle_attributes(
    items: list[Item],
    scanner: Scanner,
    reading: Reading,
    mentions: list[Mention],
    previous: Plan | None,
) -> None:
    """What the attribute items settle together: a sum ("total EBS storage"), a ranking's
    attribute ("top 10 volumes by size") and count ("the largest volume": one), the group a
    "most" ranks ("which account has the most"), and that those ask for a count."""
    texts = {item.text.lower() for item in items if item.kind is Kind.INTENT}
    said_unit = attribute_words.SIZE in reading.attribute_nouns  # "total GiB", "how many TB"
    if texts & attribute_words.TOTAL_CUES or said_unit:
        measures = [n for n in reading.attribute_nouns if n in attribute_words.MEASURE_WORDS]
        for item in items:  # "EBS storage" is a noun of volumes that also says what to sum
            last = scanner.tokens[item.end - 1] if item.kind is Kind.RESOURCE else None
            if last is not None and last.norm in attribute_words.MEASURE_WORDS:
                measures.append(last.norm)
        if said_unit:
            measures.append(attribute_words.SIZE)
        if measures:
            reading.total = measures[0]
    sort = reading.sort
    if sort is not None:
        by = reading.group_attribute
        if by and (
            not sort.concept
            or (
                sort.concept.startswith("@")
                and (
                    by in attribute_words.MEASURE_WORDS
                    or by in attribute_words.AGE_NOUNS
                    or by in attribute_words.AGE_PHRASES
                )
            )
        ):
            # "the 5 largest volumes by size", "the two smallest databases by storage": a
            # ranking's "by" says what it ranks by, not a grouping.
            sort.concept, reading.group_attribute = by, None
        if not sort.concept:
            reading.problems.append(
                f"I couldn't tell what '{sort.text}' ranks by; say it, like 'the 5 largest' "
                "or 'by size'."
            )
        if sort.descending is None:
            sort.descending = sort.limit is not None and not sort.superlative
        if sort.superlative and sort.limit is None and _singular_noun(mentions, items, scanner):
            sort.limit = 1
    if reading.rank and not reading.groups and not reading.group_attribute:
        kinds = {item.kind for item in items}
        others = [
            n
            for n in reading.attribute_nouns
            if n not in attribute_words.MEASURE_WORDS and not n.startswith("@")
        ]
        if Kind.ACCOUNT_NOUN in kinds:
            reading.groups.append("account")
        elif Kind.REGION_NOUN in kinds:
            reading.groups.append("region")
        elif others:
            reading.group_attribute = others[0]
        else:
            reading.problems.append(
                "I couldn't tell the most of what; ask which account, region or value "
                "(runtime, instance type...) has the most."
            )
    if (
        previous is None
        and not reading.types
        and (reading.rank or reading.group_attribute or reading.asks)
    ):
        # "which runtime is most common": only Lambda functions have runtimes.
        concepts = [ask.concept for ask in reading.asks] + reading.attribute_nouns
        concepts += [reading.group_attribute] if reading.group_attribute else []
        only = types_having(concepts)
        if only:
            reading.types = only
            reading.notes.append(f"only {CATALOGUE[only[0]].plural} have that")
    strong_list = any(
        item.kind is Kind.INTENT and item.value == "list" and item.text.lower() not in _ASKING_WORDS
        for item in items
    )
    if reading.rank or reading.total or (reading.group_attribute and not strong_list):
        if "describe" not in reading.intents:
            reading.intents.add("count")


def _singular_noun(mentions: list[Mention], items: list[Item], scanner: Scanner) -> bool:
    """Whether the question names its resources in the singular ("the largest volume")."""
    if not mentions:
        return False
    last = scanner.tokens[items[mentions[0].last].end - 1]
    return last.norm == last.base


def _settle(reading: Reading, ignore_changes: bool) -> None:
    """What the whole question settles: what a comparison compares, types from ids, and a
    wish for a change ("I want the dev boxes stopped")."""
    if reading.compare and not reading.groups:
        # "prod vs staging" compares accounts, "Oregon vs Ohio" regions: side by side.
        if len(set(reading.named_accounts)) > 1:
            reading.groups.append("account")
        elif len(set(reading.regions)) > 1:
            reading.groups.append("region")
        elif reading.types:
            reading.problems.append(
                "I couldn't tell what to compare; name two accounts or two regions."
            )
    if not reading.types:
        # "describe i-0abc1234": the id's shape names the resource type.
        reading.types = list(dict.fromkeys(rtype for _, rtype in reading.ids if rtype is not None))

    # "I want all dev instances stopped": a wish for a change, not a question.
    if (
        reading.want
        and not reading.intents
        and any(state.participle_after_noun for state in reading.states)
    ):
        if ignore_changes:
            reading.states = [state for state in reading.states if not state.participle_after_noun]
        else:
            reading.mutation = reading.mutation or "change"


def _right_after_noun(items: list[Item], index: int, mention_at: dict[int, Mention]) -> bool:
    """ "the dev instances stopped": a participle right after the noun, no "that are"."""
    j = index - 1
    while j >= 0 and items[j].kind in (
        Kind.ACCOUNT,
        Kind.REGION,
        Kind.PREP,
        Kind.ACCOUNT_NOUN,
        Kind.ALL_ACCOUNTS,
    ):
        j -= 1
    return j >= 0 and j in mention_at


_BEFORE_EXCLUSION = frozenset({Kind.FILLER, Kind.ONLY})


def _excluded_by(items: list[Item], index: int) -> bool:
    before = previous_meaningful(items, index, _BEFORE_EXCLUSION)
    return before is not None and before.kind is Kind.EXCLUDE and before.text.lower() != "but"
