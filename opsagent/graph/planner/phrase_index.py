"""The phrase index: the vocabulary (and the catalogue's words) as a tree of words that finds,
at any token of a question, the longest phrase starting there and what it means."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from opsagent.graph.catalogue import CATALOGUE, TYPE_STATES
from opsagent.graph.planner import attribute_words, vocabulary
from opsagent.graph.planner.items import Kind, Meaning
from opsagent.graph.planner.tokens import BOUNDARY, WORD, Token, tokenize, word_token


@dataclass
class Node:
    children: dict[str, Node] = field(default_factory=dict)
    meanings: dict[Kind, Meaning] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    length: int  # tokens consumed
    meanings: dict[Kind, Meaning]
    exact: bool  # every word matched as typed, not through its singular


class PhraseIndex:
    """Phrases -> meanings, matched longest first over tokens."""

    def __init__(self) -> None:
        self.root = Node()
        self.words: set[str] = set()  # one-word phrases, for typo matching

    def add(self, phrase: str, meaning: Meaning) -> None:
        # Vocabulary phrases are written normalized already, so splitting on spaces gives
        # the words the tokenizer would (and keeps importing fast).
        words = phrase.lower().split()
        if not words:
            return
        node = self.root
        for word in words:
            node = node.children.setdefault(word, Node())
        # The first meaning given for a kind wins, so table order decides.
        node.meanings.setdefault(meaning.kind, meaning)
        if len(words) == 1:
            self.words.add(words[0])

    def find(self, phrase: str) -> Match | None:
        """The meanings of exactly this phrase, if it is in the index."""
        tokens = [token for token in tokenize(phrase) if token.kind != BOUNDARY]
        found = self.match(tokens, 0)
        return found if found is not None and found.length == len(tokens) else None

    def match(self, tokens: list[Token], start: int) -> Match | None:
        best: Match | None = None

        def walk(node: Node, position: int, exact: bool) -> None:
            nonlocal best
            if node.meanings and position > start:
                length = position - start
                if (
                    best is None
                    or length > best.length
                    or (length == best.length and exact and not best.exact)
                ):
                    best = Match(length, node.meanings, exact)
            if position >= len(tokens) or tokens[position].kind != WORD:
                return
            token = tokens[position]
            child = node.children.get(token.norm)
            if child is not None:
                walk(child, position + 1, exact)
            if token.base != token.norm:
                child = node.children.get(token.base)
                if child is not None:
                    walk(child, position + 1, False)

        walk(self.root, start, True)
        if best is None and start < len(tokens) and "-" in tokens[start].norm:
            # "per-account", "in-use": a hyphenated word may be a whole phrase.
            parts = [word_token(part) for part in tokens[start].raw.split("-") if part]
            whole = self.match(parts, 0) if len(parts) > 1 else None
            if whole is not None and whole.length == len(parts):
                best = Match(1, whole.meanings, whole.exact)
        return best


def _build_static_index() -> PhraseIndex:
    index = PhraseIndex()

    def add_all(
        kind: Kind, phrases: Iterable[str], value: str = "", extra: tuple[str, ...] = ()
    ) -> None:
        for phrase in phrases:
            index.add(phrase, Meaning(kind, value or phrase, extra))

    for type_id, declared in CATALOGUE.items():
        for phrase in declared.words:
            extra = ("qualifier",) if phrase in declared.qualifiers else ()
            index.add(phrase, Meaning(Kind.RESOURCE, type_id, extra))
    for phrase, candidates in vocabulary.AMBIGUOUS_WORDS.items():
        index.add(phrase, Meaning(Kind.AMBIGUOUS, phrase, candidates))
    add_all(Kind.UNSUPPORTED, vocabulary.UNSUPPORTED_WORDS)
    add_all(Kind.GENERIC, vocabulary.GENERIC_WORDS)
    for concept, phrases in vocabulary.STATE_WORDS.items():
        for phrase in phrases:
            extra = ("participle",) if phrase in vocabulary.CHANGE_PARTICIPLES else ()
            index.add(phrase, Meaning(Kind.STATE, concept, extra))
    for concept, phrases in vocabulary.CONDITION_WORDS.items():
        add_all(Kind.CONDITION, phrases, concept)
    add_all(Kind.PUBLIC, vocabulary.PUBLIC_WORDS, "public")
    _add_attribute_words(index)
    for code, names in vocabulary.REGIONS.items():
        add_all(Kind.REGION, (code, code.replace("-", " "), *names), code)
    for intent, phrases in vocabulary.INTENT_WORDS.items():
        add_all(Kind.INTENT, phrases, intent)
    add_all(Kind.ACCOUNT_NOUN, vocabulary.ACCOUNT_NOUNS)
    add_all(Kind.REGION_NOUN, vocabulary.REGION_NOUNS)
    add_all(Kind.GROUP_BY, vocabulary.GROUP_BY_WORDS)
    add_all(Kind.SORT_BY, vocabulary.SORT_BY_WORDS)
    for target, phrases in vocabulary.GROUP_WORDS.items():
        add_all(Kind.GROUP, phrases, target)
    add_all(Kind.UNGROUP, vocabulary.UNGROUP_WORDS)
    add_all(Kind.COMPARE, vocabulary.COMPARE_WORDS)
    add_all(Kind.ALL_ACCOUNTS, vocabulary.ALL_ACCOUNT_WORDS, "all")
    add_all(Kind.OTHER_ACCOUNTS, vocabulary.OTHER_ACCOUNT_WORDS, "other")
    add_all(Kind.ALL_REGIONS, vocabulary.ALL_REGION_WORDS, "all")
    add_all(Kind.EXCLUDE, vocabulary.EXCLUDE_WORDS)
    add_all(Kind.NEGATE, vocabulary.NEGATE_WORDS)
    add_all(Kind.ADD, vocabulary.ADD_WORDS)
    add_all(Kind.ONLY, vocabulary.ONLY_WORDS)
    add_all(Kind.FOLLOWUP, vocabulary.FOLLOWUP_WORDS)
    add_all(Kind.ANAPHORA, vocabulary.ANAPHORA_WORDS)
    add_all(Kind.MUTATION, vocabulary.MUTATION_VERBS)
    add_all(Kind.WANT, vocabulary.WANT_WORDS)
    add_all(Kind.TAG_CUE, vocabulary.TAG_CUES)
    add_all(Kind.TAG_WORD, vocabulary.TAG_WORDS)
    add_all(Kind.NAME_CUE, vocabulary.NAME_CUES)
    add_all(Kind.NAME_WORD, vocabulary.NAME_WORDS)
    add_all(Kind.OWNER_CUE, vocabulary.OWNER_CUES)
    add_all(Kind.PREP, vocabulary.PREPOSITIONS)
    add_all(Kind.ATTACHED_TO, vocabulary.ATTACHED_WORDS)
    add_all(Kind.FILLER, vocabulary.FILLERS)
    for states in TYPE_STATES.values():
        for state in states:
            # AWS's own words ("shutting-down", "CREATE_COMPLETE"), unless a word already
            # means something ("unassociated" is the Elastic IP condition).
            if index.find(state) is None:
                index.add(state, Meaning(Kind.STATE, state))
    return index


def _add_attribute_words(index: PhraseIndex) -> None:
    """Flags, values, attribute nouns, superlatives and rank words (attribute_words.py).
    Synonyms first: the first meaning given for a kind wins ("single-az" is multi-AZ false)."""
    words = attribute_words
    for phrase, (concept, truth) in words.FLAG_SYNONYMS.items():
        index.add(phrase, Meaning(Kind.ATTRIBUTE, concept, ("eq", str(truth).lower(), "")))
    for phrase in words.FLAG_WORDS:
        index.add(phrase, Meaning(Kind.ATTRIBUTE, phrase, ("eq", "true", "")))
    for phrase, (concept, op, value) in words.VALUE_WORDS.items():
        index.add(phrase, Meaning(Kind.ATTRIBUTE, concept, (op, value, "")))
    for phrase in words.NOUN_WORDS:
        index.add(phrase, Meaning(Kind.ATTRIBUTE_NOUN, phrase))
    for phrase in words.AGE_PHRASES:
        index.add(phrase, Meaning(Kind.ATTRIBUTE_NOUN, phrase))
    for phrase, (concept, descending) in words.SUPERLATIVES.items():
        index.add(phrase, Meaning(Kind.SORT, concept, (str(descending).lower(), "", "superlative")))
    for phrase, descending in words.DIRECTIONS.items():
        index.add(phrase, Meaning(Kind.SORT, "", (str(descending).lower(), "", "")))
    for phrase, rank in words.RANK_WORDS.items():
        index.add(phrase, Meaning(Kind.RANK, rank))
    for phrase in words.UNTAGGED_WORDS:
        index.add(phrase, Meaning(Kind.UNTAGGED))


def _small_index(phrases: Iterable[str], kind: Kind) -> PhraseIndex:
    index = PhraseIndex()
    for phrase in phrases:
        index.add(phrase, Meaning(kind, phrase))
    return index


def _group_targets() -> PhraseIndex:
    index = PhraseIndex()
    for phrase, target in vocabulary.GROUP_TARGETS.items():
        index.add(phrase, Meaning(Kind.GROUP, target))
    return index


STATIC = _build_static_index()
IN_NAME_TAILS = _small_index(vocabulary.IN_NAME_TAILS, Kind.NAME_TAIL)
CONNECTORS = _small_index(vocabulary.TAG_CONNECTORS, Kind.TAG_CONNECTOR)
GROUP_BY_CUES = _small_index(vocabulary.GROUP_BY_WORDS, Kind.GROUP_BY)
GROUP_TARGETS = _group_targets()
GROUP_ATTRIBUTES = _small_index(vocabulary.GROUP_ATTRIBUTES, Kind.GROUP_ATTRIBUTE)
ACCOUNT_NOUNS = _small_index(vocabulary.ACCOUNT_NOUNS, Kind.ACCOUNT_NOUN)
REGION_NOUNS = _small_index(vocabulary.REGION_NOUNS, Kind.REGION_NOUN)

# When a phrase has several meanings and is not a change verb in verb position, the first
# kind in this list wins. Fillers come last so a real meaning always beats them.
PRIORITY: tuple[Kind, ...] = (
    Kind.RESOURCE,
    Kind.AMBIGUOUS,
    Kind.UNSUPPORTED,
    Kind.REGION,
    Kind.ALL_ACCOUNTS,
    Kind.OTHER_ACCOUNTS,
    Kind.ALL_REGIONS,
    Kind.GROUP,
    Kind.COMPARE,
    Kind.UNGROUP,
    Kind.GROUP_BY,
    Kind.SORT_BY,
    Kind.STATE,
    Kind.CONDITION,
    Kind.PUBLIC,
    Kind.UNTAGGED,
    Kind.ATTRIBUTE,
    Kind.SORT,
    Kind.RANK,
    Kind.ATTRIBUTE_NOUN,
    Kind.TAG_CUE,
    Kind.NAME_CUE,
    Kind.OWNER_CUE,
    Kind.ATTACHED_TO,
    Kind.INTENT,
    Kind.ACCOUNT_NOUN,
    Kind.REGION_NOUN,
    Kind.EXCLUDE,
    Kind.NEGATE,
    Kind.ADD,
    Kind.ONLY,
    Kind.WANT,
    Kind.FOLLOWUP,
    Kind.ANAPHORA,
    Kind.GENERIC,
    Kind.PREP,
    Kind.TAG_WORD,
    Kind.NAME_WORD,
    Kind.FILLER,
)
# Typo tolerance covers the words that carry meaning, never fillers.
TYPO_KINDS = frozenset(
    {
        Kind.RESOURCE,
        Kind.AMBIGUOUS,
        Kind.STATE,
        Kind.CONDITION,
        Kind.INTENT,
        Kind.REGION,
        Kind.MUTATION,
        Kind.ACCOUNT_NOUN,
        Kind.REGION_NOUN,
        Kind.UNSUPPORTED,
        Kind.TAG_CUE,
        Kind.NAME_CUE,
        Kind.EXCLUDE,
        Kind.ATTRIBUTE,
        Kind.SORT,
    }
)
