"""Tokens and the phrase index: the first two steps of reading a question.

A question becomes tokens (lower-case words with accents stripped and contractions
expanded; quoted strings, key=value pairs, ids and region codes kept whole; punctuation as
clause boundaries), and the vocabulary becomes an index that finds, at any token, the
longest phrase starting there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from opsagent.graph import vocabulary as V

WORD, QUOTED, KV, BOUNDARY = "word", "quoted", "kv", "boundary"


@dataclass(frozen=True)
class Token:
    raw: str  # as typed: tag values and names keep their case
    norm: str  # lower-case
    base: str  # singular of norm ("instances" -> "instance"); norm when not a plural
    kind: str = WORD


_CONTRACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bcan't\b", re.I), "can not"),
    (re.compile(r"\bwon't\b", re.I), "will not"),
    (re.compile(r"\bshan't\b", re.I), "shall not"),
    (re.compile(r"n't\b", re.I), " not"),
    (re.compile(r"'re\b", re.I), " are"),
    (re.compile(r"'ve\b", re.I), " have"),
    (re.compile(r"'ll\b", re.I), " will"),
    (re.compile(r"'d\b", re.I), " would"),
    (re.compile(r"\b(i)'m\b", re.I), r"\1 am"),
    (re.compile(r"\b(let)'s\b", re.I), r"\1 us"),
    # "prod's instances", "what's running": the possessive and "is" both carry nothing here.
    (re.compile(r"(\w)'s\b", re.I), r"\1"),
    (re.compile(r"(\w)s'(?=\s|$)", re.I), r"\1s"),
]
_TOKEN_RE = re.compile(
    r'"(?P<dq>[^"]*)"'
    r"|(?<!\w)'(?P<sq>[^']*)'(?!\w)"
    r"|(?P<cidr>::/0)"
    r"|(?P<word>[\w*%#][\w\-./:=*%@+#]*)"
    r"|(?P<amp>&)"
    # Brackets are not boundaries: "US East (N. Virginia)" is one region name.
    r"|(?P<stop>[,;:!?]|\.(?=\s|$)|\s[-\u2013\u2014]+\s|[\u2013\u2014])"
)
_CIDR_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")


def tokenize(text: str) -> list[Token]:
    """Words, values and clause boundaries of a question (also used for vocabulary phrases)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = (text.replace("\u2019", "'").replace("\u2018", "'")
            .replace("\u201c", '"').replace("\u201d", '"'))
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    # "N. Virginia", "N.California": a one-letter abbreviation is a word of its own.
    text = re.sub(r"(?<![\w.])([A-Za-z])\.\s*(?=[A-Za-z])", r"\1 ", text)
    # Account ids are sometimes written in groups of four.
    text = re.sub(r"\b(\d{4})[- ](\d{4})[- ](\d{4})\b", r"\1\2\3", text)
    # "w/ tag x", "w/o": chat shorthand.
    text = re.sub(r"(?i)\bw/o\b", "without", text)
    text = re.sub(r"(?i)\bw/(?=\s|$)", "with", text)
    # "team = payments" is one tag.
    text = re.sub(r"([\w*])\s*==?\s*([\w*])", r"\1=\2", text)
    tokens: list[Token] = []
    for match in _TOKEN_RE.finditer(text):
        if match.group("dq") is not None or match.group("sq") is not None:
            raw = (match.group("dq") if match.group("dq") is not None else match.group("sq"))
            raw = raw.strip()
            if raw:
                tokens.append(Token(raw, raw.lower(), raw.lower(), QUOTED))
        elif match.group("cidr"):
            tokens.append(word_token("::/0"))
        elif match.group("word"):
            tokens.extend(_word_tokens(match.group("word")))
        elif match.group("amp"):
            tokens.append(word_token("and"))
        else:
            tokens.append(Token(match.group(0).strip(), "", "", BOUNDARY))
    return tokens


def _word_tokens(raw: str) -> list[Token]:
    ends_clause = False
    while raw and raw[-1] in ".:,":
        ends_clause = ends_clause or raw[-1] in ".:"
        raw = raw[:-1]
    raw = raw.lstrip("#")
    if not raw:
        return [Token(".", "", "", BOUNDARY)] if ends_clause else []
    lower = raw.lower()
    out: list[Token]
    if lower.startswith("non-") and len(lower) > 4:
        # "non-production", "non-running": a negation and a word.
        out = [word_token("non"), *_word_tokens(raw[4:])]
    elif (("/" in raw or "+" in raw) and not _CIDR_RE.match(raw)
          and not lower.startswith("arn:") and "*" not in raw):
        # "prod/staging", "prod+staging" list two things.
        parts = [p for p in re.split(r"[/+]", raw) if p]
        out = []
        for n, part in enumerate(parts):
            if n:
                out.append(word_token("or"))
            out.extend(_word_tokens(part))
    elif is_kv(raw):
        out = [Token(raw, lower, lower, KV)]
    else:
        out = [word_token(raw)]
    if ends_clause:
        out.append(Token(".", "", "", BOUNDARY))
    return out


def is_kv(raw: str) -> bool:
    if raw.lower().startswith("arn:"):
        return False
    for sep in ("=", ":"):
        if sep in raw:
            key, _, value = raw.partition(sep)
            if sep == ":" and (raw.count(":") > 1 or (key.isdigit() and value.isdigit())):
                return False
            return bool(key.strip("*")) and bool(value)
    return False


def kv_parts(raw: str) -> tuple[str, str]:
    sep = "=" if "=" in raw else ":"
    key, _, value = raw.partition(sep)
    return key.strip(), value.strip().strip("'\"")


def word_token(raw: str) -> Token:
    norm = raw.lower()
    return Token(raw, norm, _singular(norm))


def _singular(word: str) -> str:
    if len(word) < 3 or not word.endswith("s") or not word.replace("-", "").isalnum():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes", "uses")):
        return word[:-2]
    if word.endswith(("ss", "us", "is")):
        return word
    return word[:-1]


@dataclass
class Node:
    children: dict[str, Node] = field(default_factory=dict)
    meanings: dict[str, V.Meaning] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    length: int  # tokens consumed
    meanings: dict[str, V.Meaning]
    exact: bool  # every word matched as typed, not through its singular


class PhraseIndex:
    """Phrases -> meanings, matched longest first over tokens."""

    def __init__(self) -> None:
        self.root = Node()
        self.words: set[str] = set()  # one-word phrases, for typo matching

    def add(self, phrase: str, meaning: V.Meaning) -> None:
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
        tokens = [t for t in tokenize(phrase) if t.kind != BOUNDARY]
        found = self.match(tokens, 0)
        return found if found is not None and found.length == len(tokens) else None

    def match(self, tokens: list[Token], i: int) -> Match | None:
        best: Match | None = None

        def walk(node: Node, j: int, exact: bool) -> None:
            nonlocal best
            if node.meanings and j > i:
                length = j - i
                if (best is None or length > best.length
                        or (length == best.length and exact and not best.exact)):
                    best = Match(length, node.meanings, exact)
            if j >= len(tokens) or tokens[j].kind != WORD:
                return
            token = tokens[j]
            child = node.children.get(token.norm)
            if child is not None:
                walk(child, j + 1, exact)
            if token.base != token.norm:
                child = node.children.get(token.base)
                if child is not None:
                    walk(child, j + 1, False)

        walk(self.root, i, True)
        if best is None and i < len(tokens) and "-" in tokens[i].norm:
            # "per-account", "in-use": a hyphenated word may be a whole phrase.
            parts = [word_token(p) for p in tokens[i].raw.split("-") if p]
            whole = self.match(parts, 0) if len(parts) > 1 else None
            if whole is not None and whole.length == len(parts):
                best = Match(1, whole.meanings, whole.exact)
        return best


def _build_static_index() -> PhraseIndex:
    index = PhraseIndex()

    def add_all(kind: str, phrases: Iterable[str], value: str = "",
                extra: tuple[str, ...] = ()) -> None:
        for phrase in phrases:
            index.add(phrase, V.Meaning(kind, value or phrase, extra))

    for rtype, phrases in V.RESOURCE_WORDS.items():
        for phrase in phrases:
            extra = ("qualifier",) if phrase in V.QUALIFIERS else ()
            index.add(phrase, V.Meaning(V.RESOURCE, rtype, extra))
    for phrase, candidates in V.AMBIGUOUS_WORDS.items():
        index.add(phrase, V.Meaning(V.AMBIGUOUS, phrase, candidates))
    add_all(V.UNSUPPORTED, V.UNSUPPORTED_WORDS)
    add_all(V.GENERIC, V.GENERIC_WORDS)
    for concept, phrases in V.STATE_WORDS.items():
        for phrase in phrases:
            extra = ("participle",) if phrase in V.CHANGE_PARTICIPLES else ()
            index.add(phrase, V.Meaning(V.STATE, concept, extra))
    for concept, phrases in V.CONDITION_WORDS.items():
        add_all(V.CONDITION, phrases, concept)
    add_all(V.PUBLIC, V.PUBLIC_WORDS, "public")
    for code, names in V.REGIONS.items():
        add_all(V.REGION, (code, code.replace("-", " "), *names), code)
    for intent, phrases in V.INTENT_WORDS.items():
        add_all(V.INTENT, phrases, intent)
    add_all(V.ACCOUNT_NOUN, V.ACCOUNT_NOUNS)
    add_all(V.REGION_NOUN, V.REGION_NOUNS)
    add_all(V.GROUP_BY, V.GROUP_BY_WORDS)
    add_all(V.SORT_BY, V.SORT_BY_WORDS)
    for target, phrases in V.GROUP_WORDS.items():
        add_all(V.GROUP, phrases, target)
    add_all(V.UNGROUP, V.UNGROUP_WORDS)
    add_all(V.COMPARE, V.COMPARE_WORDS)
    add_all(V.ALL_ACCOUNTS, V.ALL_ACCOUNT_WORDS, "all")
    add_all(V.OTHER_ACCOUNTS, V.OTHER_ACCOUNT_WORDS, "other")
    add_all(V.ALL_REGIONS, V.ALL_REGION_WORDS, "all")
    add_all(V.EXCLUDE, V.EXCLUDE_WORDS)
    add_all(V.NEGATE, V.NEGATE_WORDS)
    add_all(V.ADD, V.ADD_WORDS)
    add_all(V.ONLY, V.ONLY_WORDS)
    add_all(V.FOLLOWUP, V.FOLLOWUP_WORDS)
    add_all(V.ANAPHORA, V.ANAPHORA_WORDS)
    add_all(V.MUTATION, V.MUTATION_VERBS)
    add_all(V.WANT, V.WANT_WORDS)
    add_all(V.TAG_CUE, V.TAG_CUES)
    add_all(V.TAG_WORD, V.TAG_WORDS)
    add_all(V.NAME_CUE, V.NAME_CUES)
    add_all(V.NAME_WORD, V.NAME_WORDS)
    add_all(V.OWNER_CUE, V.OWNER_CUES)
    add_all(V.PREP, V.PREPOSITIONS)
    add_all(V.ATTACHED_TO, V.ATTACHED_WORDS)
    add_all(V.FILLER, V.FILLERS)
    for states in V.TYPE_STATES.values():
        for state in states:
            # AWS's own words ("shutting-down", "CREATE_COMPLETE"), unless a word already
            # means something ("unassociated" is the Elastic IP condition).
            if index.find(state) is None:
                index.add(state, V.Meaning(V.STATE, state))
    return index


def _small_index(phrases: Iterable[str], kind: str) -> PhraseIndex:
    index = PhraseIndex()
    for phrase in phrases:
        index.add(phrase, V.Meaning(kind, phrase))
    return index


STATIC = _build_static_index()
IN_NAME_TAILS = _small_index(V.IN_NAME_TAILS, "tail")
CONNECTORS = _small_index(V.TAG_CONNECTORS, "connector")
GROUP_BY_CUES = _small_index(V.GROUP_BY_WORDS, V.GROUP_BY)
GROUP_TARGETS = PhraseIndex()
for _phrase, _target in V.GROUP_TARGETS.items():
    GROUP_TARGETS.add(_phrase, V.Meaning(V.GROUP, _target))
GROUP_ATTRIBUTES = _small_index(V.GROUP_ATTRIBUTES, "attribute")
ACCOUNT_NOUNS = _small_index(V.ACCOUNT_NOUNS, V.ACCOUNT_NOUN)
REGION_NOUNS = _small_index(V.REGION_NOUNS, V.REGION_NOUN)

# When a phrase has several meanings and is not a change verb in verb position, the first
# kind in this list wins. Fillers come last so a real meaning always beats them.
PRIORITY: tuple[str, ...] = (
    V.RESOURCE, V.AMBIGUOUS, V.UNSUPPORTED, V.REGION, V.ALL_ACCOUNTS, V.OTHER_ACCOUNTS,
    V.ALL_REGIONS, V.GROUP, V.COMPARE,
    V.UNGROUP, V.GROUP_BY, V.SORT_BY, V.STATE, V.CONDITION, V.PUBLIC, V.TAG_CUE, V.NAME_CUE,
    V.OWNER_CUE, V.ATTACHED_TO, V.INTENT, V.ACCOUNT_NOUN, V.REGION_NOUN, V.EXCLUDE, V.NEGATE,
    V.ADD, V.ONLY, V.WANT, V.FOLLOWUP, V.ANAPHORA, V.GENERIC, V.PREP, V.TAG_WORD,
    V.NAME_WORD, V.FILLER,
)
# Typo tolerance covers the words that carry meaning, never fillers.
TYPO_KINDS = frozenset({
    V.RESOURCE, V.AMBIGUOUS, V.STATE, V.CONDITION, V.INTENT, V.REGION, V.MUTATION,
    V.ACCOUNT_NOUN, V.REGION_NOUN, V.UNSUPPORTED, V.TAG_CUE, V.NAME_CUE, V.EXCLUDE,
})
