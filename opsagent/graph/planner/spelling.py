"""Words the vocabulary does not know as typed: typos of words it knows ("instnaces"), words
one letter from an account name ("prdo"), and unknown words that are not account names
(part of a region's name, an availability zone, an AWS id, a number or date, "largest")."""

from __future__ import annotations

import functools
import re

from opsagent.graph.planner.items import Item, Kind
from opsagent.graph.planner.phrase_index import STATIC, TYPO_KINDS, Node
from opsagent.graph.planner.scan_state import ScanState
from opsagent.graph.planner.tokens import WORD, Token
from opsagent.graph.planner.vocabulary import AWS_ID_RE, AZ_RE, NOT_ACCOUNT_WORDS

# Numbers, dates and durations: "2023", "2024-01-31", "30d", "12/31".
_NUMBER_RE = re.compile(r"^\d+([./:-]\d+)*[a-z]{0,4}$")


class SpellingScanner(ScanState):
    # ----- words that are not account names -----

    def not_an_account(self, item: Item) -> str | None:
        """Why an unknown word is something other than an account name, or None.

        A typo of a word the planner knows ("dve"), part of a region's name ("Europe",
        "us east"), an availability zone, an AWS id, a number or date, or a word that never
        names an account ("January", "largest"). The reason is a sentence for the refusal,
        or "" when "I don't know what X means" says it well enough.
        """
        if item.end - item.start != 1:
            return None
        token = self.tokens[item.start]
        if token.kind != WORD:
            return None
        norm = token.norm
        if AZ_RE.match(norm):
            return (
                f"{token.raw!r} is an availability zone; I can narrow to a region "
                f"({norm[:-1]}), not to a zone."
            )
        if (
            norm in NOT_ACCOUNT_WORDS
            or token.base in NOT_ACCOUNT_WORDS
            or AWS_ID_RE.match(norm)
            or _NUMBER_RE.match(norm)
        ):
            return ""
        region = self.region_fragment(item.start)
        if region is not None:
            return region
        near = self.near_words(token)
        if near:
            return f"I don't know the word {token.raw!r}; did you mean {either(near)}?"
        return None

    def region_fragment(self, i: int) -> str | None:
        """ "Europe", "us east", "eu-west": the start of region names, naming none alone."""
        found = self._region_start(i)
        if found is None:
            return None
        back, codes = found
        said = " ".join(token.raw for token in self.tokens[i - back : i + 1])
        more = f" and {len(codes) - 6} more" if len(codes) > 6 else ""
        return f"{said!r} names no single region; say which: {', '.join(codes[:6])}{more}."

    def region_goes_on(self, i: int) -> bool:
        """Whether the word after i goes on with the region name the words up to i start
        ("asia" in "asia pacific"), so that word speaks for both."""
        found = self._region_start(i + 1) if i + 1 < len(self.tokens) else None
        return found is not None and found[0] > 0

    def _region_start(self, i: int) -> tuple[int, list[str]] | None:
        """How many words before i start a region name with it, and the regions it may be."""
        tokens = self.tokens
        if tokens[i].kind != WORD:
            return None
        parts = [part for part in tokens[i].norm.split("-") if part]
        for back in range(4):
            if i - back < 0 or any(token.kind != WORD for token in tokens[i - back : i]):
                break
            node: Node | None = STATIC.root
            for word in [token.norm for token in tokens[i - back : i]] + parts:
                node = node.children.get(word) if node is not None else None
            codes = sorted(_values_below(node, Kind.REGION)) if node is not None else []
            if codes:
                return back, codes
        return None

    def near_words(self, token: Token, accounts_only: bool = False) -> list[str]:
        """Known words one letter away from this one ("prod" for "prdo"), at most three.

        Words of five letters or more are corrected by typo() when one word is that close;
        this only suggests. Shorter words are compared with account names (and four-letter
        ones with region names) only: short words are too close to too many others ("labs"
        and "alb", "root" and "boot", "uat" and "uae").
        """
        word = token.norm
        if not word.isalpha() or len(word) < 3:
            return []
        pool: set[str] | frozenset[str] = self.account_index.words
        if not accounts_only and len(word) > 3:
            pool = pool | (_region_words() if len(word) < 5 else _typo_words())
        return sorted(
            known
            for known in pool
            if len(known) >= 3
            and known.isalpha()
            and (_one_edit(word, known) or _one_edit(token.base, known))
        )[:3]

    # ----- typos -----

    def typo(self, i: int) -> int | None:
        """Read a word of five letters or more one letter from exactly one known word as
        that word ("instnaces"), and say so in the plan's notes."""
        token = self.tokens[i]
        if token.kind != WORD or len(token.norm) < 5 or not token.norm.isalpha():
            return None
        candidates = {
            word
            for word in _typo_words() | self.account_index.words
            if len(word) >= 5 and (_one_edit(token.norm, word) or _one_edit(token.base, word))
        }
        if len(candidates) != 1:
            return None
        word = candidates.pop()
        self.tokens[i] = Token(token.raw, word, word)
        self.notes.append(f"read {token.raw!r} as {word!r}")
        return self.step(i)


@functools.cache
def _one_word_phrases(kinds: frozenset[Kind]) -> frozenset[str]:
    """The one-word phrases of the vocabulary that mean something of these kinds."""
    return frozenset(
        word for word, node in STATIC.root.children.items() if kinds & set(node.meanings)
    )


def _typo_words() -> frozenset[str]:
    """The words typo tolerance corrects to: meaningful words, never fillers."""
    return _one_word_phrases(TYPO_KINDS)


def _region_words() -> frozenset[str]:
    return _one_word_phrases(frozenset({Kind.REGION}))


def _one_edit(a: str, b: str) -> bool:
    """Damerau distance exactly one: one letter added, dropped, changed or two swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [n for n in range(len(a)) if a[n] != b[n]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    n = 0
    while n < len(short) and short[n] == long_[n]:
        n += 1
    return short[n:] == long_[n + 1 :]


def either(words: list[str]) -> str:
    """ "'prd' or 'prod'" """
    return " or ".join(repr(word) for word in words)


def _values_below(node: Node, kind: Kind) -> set[str]:
    """The values of every phrase of this kind that continues from a node of the index."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if kind in current.meanings:
            found.add(current.meanings[kind].value)
        stack.extend(current.children.values())
    return found
