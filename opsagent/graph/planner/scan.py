"""Scanning: tokens become items (a resource noun, an account, a state, a tag, ...).

At each token the longest phrase of the vocabulary or of the registry's account words wins.
Cues take the words after them as their value ("named web", "tagged team=payments");
a few patterns read several words at once ("in each account", "with web in the name",
"owned by team payments"); a change verb is a change request only in verb position
("stop the dev boxes"), while the same word as a participle is a state ("stopped").

The Scanner is the scan itself (this module) over the state every part shares
(scan_state.py) and three readers: word shapes (shapes.py), patterns and cue arguments
(patterns.py), typos and words that are not account names (spelling.py).
"""

from __future__ import annotations

from opsagent.graph.planner.attribute_patterns import AttributeScanner
from opsagent.graph.planner.items import Item, Kind
from opsagent.graph.planner.patterns import PatternScanner
from opsagent.graph.planner.phrase_index import GROUP_ATTRIBUTES, PRIORITY, STATIC, Match
from opsagent.graph.planner.scan_state import identifier_like
from opsagent.graph.planner.shapes import ShapeScanner
from opsagent.graph.planner.spelling import SpellingScanner
from opsagent.graph.planner.tokens import BOUNDARY, KV, QUOTED, WORD
from opsagent.graph.planner.vocabulary import ACCOUNT_ID_RE, FOLLOWUP_AT_START, WHERE_LEADS


class Scanner(AttributeScanner, ShapeScanner, PatternScanner, SpellingScanner):
    """Reads the tokens of one question left to right into items."""

    def scan(self) -> list[Item]:
        i = 0
        while i < len(self.tokens):
            i = self.step(i)
        return self.items

    def step(self, i: int) -> int:
        token = self.tokens[i]
        if token.kind == BOUNDARY:
            return self.emit(Kind.BOUNDARY, i, i + 1)
        if token.kind in (WORD, KV):
            j = self.operation(i)
            if j is not None:
                return j
        if token.kind == KV:
            return self.key_value(i)
        if token.kind == QUOTED:
            ids = self.account_words.get(" ".join(token.norm.split()))
            if ids:
                return self.emit(Kind.ACCOUNT, i, i + 1, ",".join(ids))
            return self.emit(Kind.VALUE, i, i + 1, token.raw)
        j = self.attribute_pattern(i)
        if j is not None:
            return j
        if (
            token.norm in WHERE_LEADS
            and i + 2 < len(self.tokens)
            and self.tokens[i + 2].norm in {"tag", "label"}
        ):
            # "with Name tag web-1": leave the key to the postfix tag pattern.
            return self.emit(Kind.FILLER, i, i + 1)
        for pattern in (
            self.in_name,
            self.postfix_tag,
            self.team,
            self.where,
            self.quantified,
            self.group_by,
        ):
            j = pattern(i)
            if j is not None:
                return j
        j = self.shaped(i)
        if j is not None:
            return j
        found = self.match(i)
        if found is not None:
            return self.meaning(i, found)
        corrected = self.typo(i)
        if corrected is not None:
            return corrected
        return self.emit(Kind.UNKNOWN, i, i + 1, token.raw)

    def meaning(self, i: int, found: Match) -> int:
        """The item for a phrase of the vocabulary or registry at i, found to mean this."""
        j = i + found.length
        meanings = found.meanings
        if Kind.ACCOUNT in meanings:
            return self.emit(Kind.ACCOUNT, i, j, meanings[Kind.ACCOUNT].value)
        kinds = [kind for kind in PRIORITY if kind in meanings]
        if Kind.MUTATION in meanings and found.exact:
            verb = self.verb_position(i)
            phrase = meanings[Kind.MUTATION].value
            if phrase in ("add", "include") and self.adds_reference(j):
                return self.emit(Kind.ADD, i, j)
            if verb or not kinds:
                return self.emit(Kind.MUTATION, i, j, phrase, verb_position=verb)
        if Kind.FOLLOWUP in kinds and not self.at_start():
            text = " ".join(token.norm for token in self.tokens[i:j])
            if text in FOLLOWUP_AT_START:
                kinds.remove(Kind.FOLLOWUP)
        if not kinds:
            return self.emit(Kind.UNKNOWN, i, j, " ".join(token.raw for token in self.tokens[i:j]))
        meaning = meanings[kinds[0]]
        kind = meaning.kind
        if kind is Kind.TAG_CUE:
            return self.tag_arguments(i, j, strict=True)
        if kind is Kind.TAG_WORD:
            return self.tag_arguments(i, j, strict=False)
        if kind is Kind.NAME_CUE:
            return self.name_argument(i, j, meaning.value)
        if kind is Kind.NAME_WORD:
            following = self.tokens[j] if j < len(self.tokens) else None
            if following is not None and (
                following.kind == QUOTED or (self.value_like(j) and identifier_like(following.raw))
            ):
                return self.name_argument(i, j, "name")
            return self.emit(Kind.FILLER, i, j)
        if kind is Kind.OWNER_CUE:
            return self.owner(i, j)
        if kind is Kind.GROUP_BY:
            return self.group_by_attribute(i, j)
        if kind is Kind.SORT_BY:
            return self.sort_by_attribute(i, j)
        return self.emit(kind, i, j, meaning.value, meaning.extra)

    def adds_reference(self, j: int) -> bool:
        """ "add staging" names an account to include, "add a bucket" asks for a change."""
        j = self.skip(j, {"the", "in", "also", "account", "region"})
        if j >= len(self.tokens):
            return False
        found = self.match(j)
        if found is None:
            return bool(ACCOUNT_ID_RE.fullmatch(self.tokens[j].norm))
        return Kind.ACCOUNT in found.meanings or Kind.REGION in found.meanings

    def attribute_noun(self, j: int) -> tuple[str, int] | None:
        """An attribute's noun at j, after "the", "their", "its": (the noun, where it ends)."""
        j = self.skip(j, {"the", "their", "its", "instance's"})
        found = STATIC.match(self.tokens, j) if j < len(self.tokens) else None
        if found is None or Kind.ATTRIBUTE_NOUN not in found.meanings:
            return None
        return found.meanings[Kind.ATTRIBUTE_NOUN].value, j + found.length

    def group_by_attribute(self, i: int, j: int) -> int:
        """ "by type", "per runtime": one group per value of an attribute; "by state" and
        other words no type reports are refused, not dropped."""
        noun = self.attribute_noun(j)
        if noun is not None:
            return self.emit(Kind.GROUP_BY_ATTRIBUTE, i, noun[1], noun[0])
        start = self.skip(j, {"the", "their", "its"})
        attribute = GROUP_ATTRIBUTES.match(self.tokens, start)
        if attribute is not None:
            k = start + attribute.length
            what = " ".join(token.raw for token in self.tokens[j:k])
            return self.emit(
                Kind.PROBLEM,
                i,
                k,
                f"I can group by account, by region or by an attribute a resource type "
                f"reports (instance type, runtime, engine...), not by {what}.",
            )
        return self.emit(Kind.FILLER, i, j)

    def sort_by_attribute(self, i: int, j: int) -> int:
        """ "sorted by size", "ordered by age": a ranking with no count."""
        noun = self.attribute_noun(j)
        if noun is not None:
            return self.emit(Kind.SORT, i, noun[1], noun[0], ("", "", ""))
        return self.emit(
            Kind.PROBLEM,
            i,
            j,
            "I can sort only by an attribute a resource type reports (size, age, "
            "memory...), as in 'volumes sorted by size'.",
        )
