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

from opsagent.graph.planner import attribute_words
from opsagent.graph.planner.attribute_patterns import AttributeScanner, phrase_at
from opsagent.graph.planner.items import Item, Kind
from opsagent.graph.planner.patterns import PatternScanner
from opsagent.graph.planner.phrase_index import GROUP_ATTRIBUTES, PRIORITY, STATIC, Match
from opsagent.graph.planner.scan_state import identifier_like
from opsagent.graph.planner.shapes import ShapeScanner
from opsagent.graph.planner.spelling import SpellingScanner
from opsagent.graph.planner.tokens import BOUNDARY, KV, QUOTED, WORD
from opsagent.graph.planner.vocabulary import (
    ACCOUNT_ID_RE,
    FOLLOWUP_AT_START,
    PURPOSE_LEADS,
    PURPOSE_NOUNS,
    WHERE_LEADS,
)


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
        j = self.aside(i)
        if j is not None:
            return j
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
        j = self.participle(i)
        if j is not None:
            return j
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
            reported = self.reports_a_change(i)
            verb = not reported and self.verb_position(i)
            phrase = meanings[Kind.MUTATION].value
            if phrase in ("add", "include") and self.adds_reference(j):
                return self.emit(Kind.ADD, i, j)
            if reported and not kinds:
                # "the ones nobody put a tag on", "what we set up": what was done, a read.
                return self.emit(Kind.FILLER, i, j)
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
        end = self.emit(kind, i, j, meaning.value, meaning.extra)
        if kind is Kind.ATTRIBUTE:
            self.named_within(i, j)
        return end

    def named_within(self, i: int, j: int) -> None:
        """ "a deprecated lambda runtime", "an outdated k8s version": a resource type's word
        inside an attribute's phrase names that type too."""
        for k in range(i, j):
            found = STATIC.match(self.tokens[k : k + 1], 0)
            if found is None or Kind.RESOURCE not in found.meanings:
                continue
            rtype = found.meanings[Kind.RESOURCE].value
            self.items.append(
                Item(Kind.RESOURCE, rtype, ("qualifier",), k, k + 1, self.tokens[k].raw)
            )
            return

    def aside(self, i: int) -> int | None:
        """ "— trying to size a gp3 migration", "for the audit": why the question is asked,
        after what it asks. Up to the end of its clause only accounts count; the rest is
        left out, and the plan's notes say so."""
        if not any(item.kind is not Kind.BOUNDARY for item in self.items):
            return None
        tokens = self.tokens
        lead = phrase_at(tokens, i, PURPOSE_LEADS)
        if lead is None:
            if tokens[i].norm != "for":
                return None
            k = self.skip(i + 1, {"the", "a", "an", "my", "our", "this", "that", "an upcoming"})
            if k >= len(tokens) or tokens[k].norm not in PURPOSE_NOUNS:
                return None
        end = i
        while end < len(tokens) and tokens[end].kind != BOUNDARY:
            found = STATIC.match(tokens, end)
            if found is not None and (
                Kind.ACCOUNT_NOUN in found.meanings or Kind.REGION_NOUN in found.meanings
            ):
                return None  # "for the audit account": an account, not a purpose
            end += 1
        k = i
        kept = False
        while k < end:
            found = self.account_index.match(tokens, k)
            if found is not None and Kind.ACCOUNT in found.meanings and found.exact:
                k = self.emit(Kind.ACCOUNT, k, k + found.length, found.meanings[Kind.ACCOUNT].value)
                kept = True
            else:
                k += 1
        text = " ".join(token.raw for token in tokens[i:end])
        if not kept:
            self.emit(Kind.FILLER, i, end)
        self.notes.append(f"left out {text!r}: why you ask, not what")
        return end

    def participle(self, i: int) -> int | None:
        """ "memory we have allocated", "roles assigned to": a change verb's participle
        describes what is there (never a typo of the verb); only a wish for it ("I want
        more memory allocated") asks for a change."""
        found = self.change_participle(i)
        if found is None:
            return None
        verb, j = found
        clause: list[Item] = []
        for item in reversed(self.items):
            if item.kind is Kind.BOUNDARY:
                break
            clause.append(item)
        kinds = {item.kind for item in clause}
        if Kind.WANT in kinds and Kind.INTENT not in kinds:
            return self.emit(Kind.MUTATION, i, j, verb, verb_position=True)
        return self.emit(Kind.FILLER, i, j)

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
        flag = STATIC.match(self.tokens, start) if start < len(self.tokens) else None
        if flag is not None and Kind.ATTRIBUTE in flag.meanings:
            meaning = flag.meanings[Kind.ATTRIBUTE]
            if meaning.extra[:2] == ("eq", "true") and not meaning.value.startswith("@"):
                # "grouped by encryption (type)": one group per value of what the word names.
                end = self.skip(start + flag.length, attribute_words.NOUN_TAILS)
                return self.emit(Kind.GROUP_BY_ATTRIBUTE, i, end, meaning.value)
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
