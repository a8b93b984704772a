"""The state of scanning one question, and the helpers every part of the scanner uses.

The scanner (scan.py) is this state plus three readers, each a section of its own module:
word shapes (shapes.py), patterns of several words and the arguments of cues
(patterns.py), typos and words that are not account names (spelling.py).
"""

from __future__ import annotations

import re

from opsagent.graph.planner.items import Item, Kind, Meaning
from opsagent.graph.planner.phrase_index import STATIC, Match, PhraseIndex
from opsagent.graph.planner.tokens import BOUNDARY, QUOTED, WORD, Token
from opsagent.graph.planner.vocabulary import (
    ACCOUNT_ID_RE,
    ID_SHAPES,
    IRREGULAR_CHANGE_PAST,
    MUTATION_VERBS,
    RELATIVE_PRONOUNS,
    RELATIVE_SUBJECTS,
    REPORTING_SUBJECTS,
    VERB_LEADS,
    VERB_TRIGGERS,
)
from opsagent.registry import Registry

_IDENTIFIER_RE = re.compile(r"[\d\-_.:*]")
_CHANGE_VERBS = frozenset(MUTATION_VERBS)
_ONE_WORD_CHANGE_VERBS = frozenset(verb for verb in MUTATION_VERBS if " " not in verb)
_REFERRING_NOUNS = frozenset({"ones", "one", "those", "what", "everything", "anything", "stuff"})


class ScanState:
    """The tokens of one question, the items found so far, and how to add one."""

    def __init__(self, tokens: list[Token], registry: Registry) -> None:
        self.tokens = tokens
        self.account_words = registry.reference_words()  # word -> account ids
        self.account_index = PhraseIndex()
        for word, ids in self.account_words.items():
            self.account_index.add(word, Meaning(Kind.ACCOUNT, ",".join(ids)))
        self.items: list[Item] = []
        self.notes: list[str] = []

    def step(self, i: int) -> int:
        """Read the item at token i; the index of the token after it (scan.py)."""
        raise NotImplementedError

    def emit(
        self,
        kind: Kind,
        i: int,
        j: int,
        value: str = "",
        extra: tuple[str, ...] = (),
        verb_position: bool = False,
    ) -> int:
        """Add an item for tokens i..j; j, where the scan goes on."""
        text = " ".join(token.raw for token in self.tokens[i:j])
        self.items.append(Item(kind, value, extra, i, j, text, verb_position))
        return j

    def match(self, i: int) -> Match | None:
        """The longest phrase at i, of the vocabulary or of the registry's account words."""
        static = STATIC.match(self.tokens, i)
        account = self.account_index.match(self.tokens, i)
        if account is None:
            return static
        if (
            static is None
            or account.length > static.length
            or (account.length == static.length and (account.exact or not static.exact))
        ):
            return account
        return static

    def known(self, i: int) -> bool:
        """Whether the token at i starts something the vocabulary or registry knows."""
        return self.match(i) is not None

    def value_like(self, i: int) -> bool:
        """A word that can be a tag value, a name or a key: not a boundary, not known."""
        if i >= len(self.tokens):
            return False
        token = self.tokens[i]
        if token.kind == QUOTED:
            return True
        return token.kind == WORD and not self.known(i) and not special_shape(token.norm)

    def at_start(self) -> bool:
        return all(item.kind is Kind.BOUNDARY for item in self.items)

    def previous(self) -> Item | None:
        for item in reversed(self.items):
            if not (item.kind is Kind.FILLER and item.text.lower() in {"the", "a", "an", "our"}):
                return item
        return None

    def verb_position(self, i: int) -> bool:
        """Whether a verb at i is an imperative or a request ("please stop", "can you stop")."""
        before = self.tokens[i - 1] if i > 0 else None
        if before is not None and before.kind == WORD and before.norm in VERB_TRIGGERS:
            return True
        j = i - 1
        while j >= 0 and self.tokens[j].kind != BOUNDARY:
            if self.tokens[j].norm not in VERB_LEADS:
                return False
            j -= 1
        return True

    def reports_a_change(self, i: int) -> bool:
        """Whether a change verb at i says what was done, not what to do: in a relative
        clause ("instances that nobody put an owner tag on", "the ones we set up"), after a
        subject no imperative has ("someone deleted") or a perfect ("have we allocated")."""
        j = i - 1
        subjects: set[str] = set()
        while j >= 0 and self.tokens[j].kind == WORD and self.tokens[j].norm in RELATIVE_SUBJECTS:
            subjects.add(self.tokens[j].norm)
            j -= 1
        if subjects & REPORTING_SUBJECTS:
            return True
        if subjects and j >= 0 and self.tokens[j].kind == WORD:
            # "the stacks we set up", "the ones they deleted": a noun, then its clause.
            if self.tokens[j].norm in _REFERRING_NOUNS:
                return True
            found = STATIC.match(self.tokens, j)
            if found is not None and Kind.RESOURCE in found.meanings:
                return True
        return (
            j > 0
            and self.tokens[j].kind == WORD
            and self.tokens[j].norm in RELATIVE_PRONOUNS
            and self.tokens[j - 1].kind != BOUNDARY
        )

    def change_participle(self, i: int) -> tuple[str, int] | None:
        """A past participle or gerund of a change verb at i ("allocated", "configuring",
        "spun up"): the verb and where the phrase ends."""
        token = self.tokens[i]
        if token.kind != WORD:
            return None
        norm = token.norm
        bases: list[str] = []
        if norm in IRREGULAR_CHANGE_PAST:
            bases.append(IRREGULAR_CHANGE_PAST[norm])
        if norm.endswith("ied"):
            bases.append(norm[:-3] + "y")
        if norm.endswith("ed"):
            bases += [norm[:-2], norm[:-1], norm[:-3]]
        if norm.endswith("ing"):
            bases += [norm[:-3], norm[:-3] + "e", norm[:-4]]
        for base in bases:
            if len(base) < 2:
                continue
            if i + 1 < len(self.tokens) and self.tokens[i + 1].kind == WORD:
                phrase = f"{base} {self.tokens[i + 1].norm}"
                if phrase in _CHANGE_VERBS:
                    return phrase, i + 2
            if base in _ONE_WORD_CHANGE_VERBS and base != norm:
                return base, i + 1
        return None

    def skip(self, j: int, words: set[str] | frozenset[str]) -> int:
        """The first token from j that is not one of these words."""
        while j < len(self.tokens) and self.tokens[j].kind == WORD and self.tokens[j].norm in words:
            j += 1
        return j


def special_shape(norm: str) -> bool:
    """An account id, a resource id or an ARN: never a tag value, name or key."""
    return bool(
        ACCOUNT_ID_RE.fullmatch(norm)
        or any(p.match(norm) for p, _ in ID_SHAPES)
        or norm.startswith("arn:")
    )


def identifier_like(raw: str) -> bool:
    return bool(_IDENTIFIER_RE.search(raw))


def clean_name(raw: str) -> str:
    return raw.strip().strip("'\"").strip("*%").strip() or raw
