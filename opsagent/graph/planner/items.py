"""What the scanner finds in a question: items, each of a kind, and a phrase's meaning.

A phrase of the vocabulary means something of a ``Kind`` ("instances" is a RESOURCE, "in" a
PREP); the scanner turns the question into ``Item``s of those kinds, plus kinds it finds
from a word's shape or from the registry (an ACCOUNT, an ID, a TAG, an UNKNOWN word).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class Kind(enum.Enum):
    """What a phrase means, and so what an item found in a question is."""

    # ----- phrases of the vocabulary -----
    RESOURCE = "resource"  # value: resource type; extra: ("qualifier",) for a service name
    AMBIGUOUS = "ambiguous"  # value: the word; extra: the candidate resource types
    UNSUPPORTED = "unsupported"  # value: a label for a resource type the agent cannot read
    GENERIC = "generic"  # "resources", "everything": no resource type named
    STATE = "state"  # value: a state concept or a literal AWS state
    CONDITION = "condition"  # value: a condition concept ("unused")
    PUBLIC = "public"  # "public": open-to-world for security groups, unsupported elsewhere
    INTENT = "intent"  # value: list | count | describe
    GROUP = "group"  # value: account | region
    GROUP_BY = "group-by"  # "by", "grouped by", "per": followed by what to group on
    SORT_BY = "sort-by"  # "sorted by": the planner cannot sort
    UNGROUP = "ungroup"  # "in total", "overall": one figure, no grouping
    COMPARE = "compare"  # "prod vs staging": side by side, so grouped by what is compared
    ACCOUNT_NOUN = "account-noun"  # "account", "environment"
    REGION_NOUN = "region-noun"  # "region"
    ALL_ACCOUNTS = "all-accounts"  # value: "" or "group" (each account = all and grouped)
    OTHER_ACCOUNTS = "other-accounts"  # "the other accounts": those the last turn did not ask
    ALL_REGIONS = "all-regions"  # value: "" or "group"
    REGION = "region"  # value: region code
    EXCLUDE = "exclude"  # "except", "excluding", "other than"
    NEGATE = "negate"  # "not", "non"
    ADD = "add"  # "also", "too": add to the previous turn rather than replace
    ONLY = "only"  # "only", "just"
    FOLLOWUP = "followup"  # "what about", "and" at the start of a question
    ANAPHORA = "anaphora"  # "them", "those", "the ones"
    MUTATION = "mutation"  # value: the verb; a request to change something
    TAG_CUE = "tag-cue"  # "tagged", "with tag": a tag filter follows
    TAG_WORD = "tag-word"  # "tag": a tag filter follows only if a key=value does
    NAME_CUE = "name-cue"  # "named", "whose name contains": a name filter follows
    NAME_WORD = "name-word"  # "name": a name filter follows only if a name-like value does
    OWNER_CUE = "owner-cue"  # "owned by", "belonging to": a team follows
    PREP = "prep"  # in, of, on, from, ...: where a resource or account reference sits
    ATTACHED_TO = "attached-to"  # "attached to": one resource scoped by another
    WANT = "want"  # "I want ... stopped" is a request, not a question
    FILLER = "filler"  # words that carry no meaning for the plan
    # Phrases of the small indexes that read one pattern ("in the name", "team is x").
    NAME_TAIL = "name-tail"
    TAG_CONNECTOR = "tag-connector"
    GROUP_ATTRIBUTE = "group-attribute"

    # ----- attributes: what a type reports beyond state and tags (attribute_words.py) -----
    # value: a concept (an attribute's word or name, or a stand-in such as "@age");
    # extra: (op, value as said, unit): "windows", "over 100 GB", "in the last 7 days".
    ATTRIBUTE = "attribute"
    ATTRIBUTE_NOUN = "attribute-noun"  # "runtime", "memory": what to group, rank or sum by
    # value: a concept, or "" when only a count or a direction was said; extra:
    # (descending "true"/"false"/"", limit or "", "superlative" when said as one).
    SORT = "sort"
    RANK = "rank"  # value: most | fewest ("which account has the most ...")
    GROUP_BY_ATTRIBUTE = "group-by-attribute"  # value: an attribute word ("by type")
    TAG_KEY = "tag-key"  # value: the key; extra: ("present",) or ("missing",)
    UNTAGGED = "untagged"

    # ----- found by the scanner, from a word's shape or the registry -----
    ACCOUNT = "account"  # value: comma-separated ids
    ID = "id"  # value: the id; extra: (resource type,) when the id's shape says it
    TAG = "tag"  # value: key; extra: (value,)
    NAME = "name"  # value: the name part; extra: (cue,)
    VALUE = "value"  # a quoted string or a name-like word no table knows
    UNKNOWN = "unknown"
    UNKNOWN_ACCOUNT = "unknown-account"
    PROBLEM = "problem"  # value: a sentence saying what cannot be done
    BOUNDARY = "boundary"  # the end of a clause

    # Members are singletons compared by identity, so they hash by identity too (Enum's
    # own hash is written in Python, and the phrase index looks kinds up in every step).
    __hash__ = object.__hash__


class Meaning(NamedTuple):
    """What a phrase of the vocabulary means."""

    kind: Kind
    value: str = ""
    extra: tuple[str, ...] = ()


@dataclass
class Item:
    """One thing the scanner found: a kind and a value, and where in the tokens it stands."""

    kind: Kind
    value: str = ""
    extra: tuple[str, ...] = ()
    start: int = 0  # token span
    end: int = 0
    text: str = ""  # the words as typed
    verb_position: bool = False


# ----- walking items -----
# These walk by index, not over slices: a slice per item makes a long question quadratic.


_SKIPPED_AFTER = frozenset({Kind.FILLER, Kind.PREP, Kind.BOUNDARY, Kind.ACCOUNT_NOUN, Kind.ONLY})


def next_meaningful(items: list[Item], index: int) -> Item | None:
    """The first item after index that is not a filler, preposition, boundary or noun."""
    for following in range(index + 1, len(items)):
        if items[following].kind in _SKIPPED_AFTER:
            continue
        return items[following]
    return None


def previous_meaningful(items: list[Item], index: int, skip: frozenset[Kind]) -> Item | None:
    """The last item before index whose kind is not in skip."""
    for before in range(index - 1, -1, -1):
        if items[before].kind in skip:
            continue
        return items[before]
    return None
