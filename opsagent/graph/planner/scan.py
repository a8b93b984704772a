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
    CHATTER_WORDS,
    FOLLOWUP_AT_START,
    OBLIGATION_WORDS,
    PURPOSE_LEADS,
    PURPOSE_NOUNS,
    PURPOSE_TIMES,
    REASON_LEADS,
    RELATIVE_PRONOUNS,
    RELATIVE_SUBJECTS,
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
        for reader in (
            self.aside,
            self.heading,
            self.chatter,
            self.new_before_time,
            self.attribute_pattern,
        ):
            j = reader(i)
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
            if reported and set(kinds) <= {Kind.FILLER}:
                # "the ones nobody put a tag on", "what we set up": what was done, a read.
                self.note_report(i, j)
                return self.emit(Kind.FILLER, i, j)
            reason = self.reasoned_change(i, j) if verb else None
            if reason is not None:
                # "functions we must upgrade before their runtime goes out of support".
                return self.emit(Kind.FILLER, i, reason)
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
        if (
            lead is not None
            and lead[0].split()[-1] in {"whether", "if"}
            and not any(item.kind is Kind.RESOURCE for item in self.items)
        ):
            return None  # "I'm wondering if any instances are stopped": the question itself
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

    def heading(self, i: int) -> int | None:
        """ "For the audit next week I need ...", "Before the SOC2 review: ...", "cleanup
        list: ...", "3am sweep: ...", "FinOps here - ...": a purpose, or up to four words
        before a colon or a dash, ahead of the question. It is left out (the plan's notes
        say so) when it names nothing a plan reads: no resource, account, state or filter."""
        if not self.at_start() or (i > 0 and self.tokens[i - 1].kind != BOUNDARY):
            return None
        tokens = self.tokens
        end = self._purpose_heading(i)
        if end is None:
            end = i
            while end < len(tokens) and tokens[end].kind == WORD:
                end += 1
            if (
                end == i
                or end - i > 4
                or end >= len(tokens)
                or tokens[end].raw not in {":", "-", "\u2013", "\u2014"}
                or not all(self._heading_word(k) for k in range(i, end))
            ):
                return None
        text = " ".join(token.raw for token in tokens[i:end])
        self.notes.append(f"left out {text!r}: why you ask, not what")
        return self.emit(Kind.FILLER, i, end)

    def _purpose_heading(self, i: int) -> int | None:
        """Where "for/before/ahead of [the] [SOC2] review [next week]" ends, if one is at i."""
        tokens = self.tokens
        lead = phrase_at(tokens, i, ("for", "before", "ahead of", "in time for"))
        if lead is None:
            return None
        k = self.skip(i + lead[1], {"the", "a", "an", "my", "our", "this", "that", "upcoming"})
        for _ in range(3):
            if k >= len(tokens) or tokens[k].kind != WORD:
                return None
            if tokens[k].norm in PURPOSE_NOUNS:
                break
            if not self._heading_word(k):
                return None
            k += 1
        else:
            return None
        k += 1
        if k < len(tokens):
            found = STATIC.match(tokens, k)
            if found is not None and (
                Kind.ACCOUNT_NOUN in found.meanings or Kind.REGION_NOUN in found.meanings
            ):
                return None  # "for the audit account": an account, not a purpose
        timing = phrase_at(tokens, k, PURPOSE_TIMES)
        return k + timing[1] if timing is not None else k

    def _heading_word(self, k: int) -> bool:
        """A word a heading may hold: one that names no resource, account, state or filter."""
        if self.account_index.match(self.tokens, k) is not None:
            return False
        found = STATIC.match(self.tokens, k)
        return found is None or set(found.meanings) <= {
            Kind.FILLER,
            Kind.INTENT,
            Kind.MUTATION,
            Kind.FOLLOWUP,
            Kind.WANT,
        }

    def chatter(self, i: int) -> int | None:
        """ "the c5 fleet", "any unencrypted EBS vols left": after what they describe, words
        that mean "all of them" or "there now". Left out, and the notes say so."""
        found = phrase_at(self.tokens, i, CHATTER_WORDS)
        previous = self.previous()
        if (
            found is None
            or previous is None
            or previous.kind not in (Kind.RESOURCE, Kind.ATTRIBUTE)
        ):
            return None
        phrase, length = found
        text = " ".join(token.raw for token in self.tokens[i : i + length])
        self.notes.append(f"left out {text!r}: read as {CHATTER_WORDS[phrase]}")
        return self.emit(Kind.FILLER, i, i + length)

    def new_before_time(self, i: int) -> int | None:
        """ "new buckets created this month": "new" says no more than the time after it in
        its clause; without one it stays a word the planner cannot read."""
        if self.tokens[i].norm not in {"new", "newly"}:
            return None
        k = i + 1
        while k < len(self.tokens) and self.tokens[k].kind != BOUNDARY:
            mark = len(self.items)
            found = self.time_filter(k)
            del self.items[mark:]
            if found is not None:
                word = self.tokens[i].raw
                self.notes.append(f"left out {word!r}: the time filter says how new")
                return self.emit(Kind.FILLER, i, i + 1)
            k += 1
        return None

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
        self.note_report(i, j)
        return self.emit(Kind.FILLER, i, j)

    def note_report(self, i: int, j: int) -> None:
        """ "functions we updated", "the ones someone set up": who changed a resource is not
        something a type reports (only when, with a time: "updated in the last 7 days"), so
        the words are left out and the plan's notes say so."""
        k = i
        while (
            k > 0
            and self.tokens[k - 1].kind == WORD
            and self.tokens[k - 1].norm in (RELATIVE_SUBJECTS | RELATIVE_PRONOUNS)
        ):
            k -= 1
        text = " ".join(token.raw for token in self.tokens[k:j])
        self.notes.append(f"left out {text!r}: I can't tell who changed what, only when")

    def reasoned_change(self, i: int, j: int) -> int | None:
        """ "functions we must upgrade before their runtime goes out of support", "instances
        we need to stop because they are unencrypted": a change in a clause after a resource
        noun, with the reason it is due. The reason is what to find; the change is what the
        asker will do, left out (the notes say so). Without a reason ("which instances should
        I stop?") it asks for advice on a change, and stays a change request. Where the
        reason's words start, if this is one."""
        tokens = self.tokens
        k = i
        while k > 0 and tokens[k - 1].kind == WORD and tokens[k - 1].norm in OBLIGATION_WORDS:
            k -= 1
        between = {token.norm for token in tokens[k:i]}
        if not (between & {"we", "i", "you", "they"}) or not (between - RELATIVE_SUBJECTS):
            return None
        if k == 0 or tokens[k - 1].kind != WORD:
            return None
        noun = STATIC.match(tokens, k - 1)
        if noun is None or Kind.RESOURCE not in noun.meanings:
            return None
        m = self.skip(j, {"them", "it", "those", "these", "all", "soon", "asap"})
        if m + 1 >= len(tokens) or tokens[m].norm not in REASON_LEADS:
            return None
        text = " ".join(token.raw for token in tokens[k:j])
        self.notes.append(f"left out {text!r}: what you will do, not what to find")
        return m + 1

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
