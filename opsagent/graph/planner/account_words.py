"""Unknown words where an account goes: "in uat", "the qa account", "prod and uat".

Such a word is an account the registry does not know, and gets a refusal naming the known
accounts, unless it is something else: a typo of a known word, part of a region's name, a
date, "largest" (then the refusal says that instead).
"""

from __future__ import annotations

from opsagent.graph.planner.items import Item, Kind, previous_meaningful
from opsagent.graph.planner.scan import Scanner
from opsagent.graph.planner.vocabulary import CONJUNCTIONS

# Prepositions after which an unknown word stands where an account name goes ("in uat").
_ACCOUNT_PREPS = frozenset({"in", "from", "within", "inside", "under"})
_DETERMINERS = frozenset({"the", "our", "my", "your", "their"})
# After a word in an account's place, these make it part of a noun phrase instead ("in web
# servers", "in foo bar", "in the frankfurt-2 region").
_NOUNISH = frozenset(
    {
        Kind.RESOURCE,
        Kind.AMBIGUOUS,
        Kind.UNSUPPORTED,
        Kind.GENERIC,
        Kind.REGION_NOUN,
        Kind.UNKNOWN,
        Kind.VALUE,
        Kind.ID,
        Kind.ANAPHORA,
        Kind.NAME_WORD,
    }
)
# Question words that sit before "account" without naming one: "in which account".
_ASKING = frozenset({"which", "what", "any", "whichever", "whatever"})
_FILLERS_ONLY = frozenset({Kind.FILLER})


def account_words(items: list[Item], scanner: Scanner) -> tuple[set[int], dict[int, str | None]]:
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
    for index, item in enumerate(items):
        if item.kind in (Kind.INTENT, Kind.GENERIC) or (
            item.kind is Kind.MUTATION and not item.verb_position
        ):
            # "in the audit account", "instances in infra", "in prod and archive": a word
            # the planner knows as a verb or as "things", in the place of a name.
            if item.text.lower() in _ASKING or len(item.text.split()) != 1:
                continue
            if _before_account_noun(items, index) or _ends_a_name(items, index):
                if _after_account_word(items, index, determiners_only=True):
                    slots.add(index)
                elif (
                    item.kind is Kind.INTENT and item.value == "list" and _ends_a_name(items, index)
                ):
                    listed.append(index)  # "prod and audit", not "prod and their details"
            continue
        if item.kind not in (Kind.UNKNOWN, Kind.VALUE):
            continue
        if _before_account_noun(items, index) or _after_account_noun(items, index):
            slots.add(index)
            continue
        reason = scanner.not_an_account(item) if item.kind is Kind.UNKNOWN else None
        if reason and scanner.region_goes_on(item.start):
            reasons[index] = None  # "asia (pacific)": the next word says it
        elif reason is not None:
            reasons[index] = reason
        elif _after_account_word(items, index) and _ends_a_name(items, index):
            slots.add(index)
        else:
            listed.append(index)
    grown = True
    while grown:
        grown = False
        for index in listed:
            if index not in slots and _listed_with_accounts(items, index, slots):
                slots.add(index)
                grown = True
    return slots, reasons


def _before_account_noun(items: list[Item], index: int) -> bool:
    """ "the qa account", "uat environment" """
    after = items[index + 1] if index + 1 < len(items) else None
    return after is not None and after.kind is Kind.ACCOUNT_NOUN and after.start == items[index].end


def _after_account_noun(items: list[Item], index: int) -> bool:
    """ "account qa", "environment uat" """
    before = previous_meaningful(items, index, _FILLERS_ONLY)
    return (
        before is not None and before.kind is Kind.ACCOUNT_NOUN and before.end == items[index].start
    )


def _after_account_word(items: list[Item], index: int, determiners_only: bool = False) -> bool:
    """After "in", "from", "under" ("in uat"), or left out of all accounts ("every account
    except uat", "everywhere but uat")."""
    j = index - 1
    while (
        j >= 0
        and items[j].kind in (Kind.FILLER, Kind.ONLY)
        and (not determiners_only or items[j].text.lower() in _DETERMINERS)
    ):
        j -= 1
    if j < 0:
        return False
    before = items[j]
    if before.kind is Kind.PREP:
        return before.text.lower() in _ACCOUNT_PREPS
    if before.kind is Kind.EXCLUDE:
        return any(item.kind in (Kind.ALL_ACCOUNTS, Kind.OTHER_ACCOUNTS) for item in items[:j])
    return False


def _ends_a_name(items: list[Item], index: int) -> bool:
    """Nothing after the word makes it part of a longer noun phrase ("in web servers")."""
    for j in range(index + 1, len(items)):
        item = items[j]
        if item.kind is Kind.FILLER and item.text.lower() not in CONJUNCTIONS:
            continue  # "in uat please", "in uat right now"
        return item.kind not in _NOUNISH
    return True


def _joins(item: Item) -> bool:
    """ "and", "or", ",", "vs", "as well as" between two things of a list."""
    text = item.text.lower()
    return (
        (item.kind in (Kind.FILLER, Kind.BOUNDARY) and text in CONJUNCTIONS)
        or item.kind is Kind.COMPARE
        or (item.kind is Kind.ADD and text in {"plus", "as well as"})
    )


def _listed_with_accounts(items: list[Item], index: int, slots: set[int]) -> bool:
    """ "prod and uat", "uat or staging", "prod, staging, uat", "prod vs uat instances" """

    def skip(j: int, step: int) -> int:
        while (
            0 <= j < len(items)
            and items[j].kind is Kind.FILLER
            and (items[j].text.lower() in _DETERMINERS)
        ):
            j += step
        return j

    def member(j: int) -> bool:
        return 0 <= j < len(items) and (
            items[j].kind in (Kind.ACCOUNT, Kind.UNKNOWN_ACCOUNT) or j in slots
        )

    def partner(step: int) -> bool:
        j = skip(index + step, step)
        return 0 <= j < len(items) and _joins(items[j]) and member(skip(j + step, step))

    if not (partner(-1) or partner(1)):
        return False
    following = skip(index + 1, 1)
    if following >= len(items) or items[following].kind not in _NOUNISH:
        return True
    if items[following].kind in (Kind.UNKNOWN, Kind.VALUE):
        return False  # "prod and new york"
    # "prod and uat instances" lists accounts before a noun; "in prod and web servers"
    # starts a new noun after the place.
    first = index
    while True:
        j = skip(first - 1, -1)
        if j < 0 or not _joins(items[j]) or not member(skip(j - 1, -1)):
            break
        first = skip(j - 1, -1)
    before = skip(first - 1, -1)
    return before < 0 or items[before].kind is not Kind.PREP
