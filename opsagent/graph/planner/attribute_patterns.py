"""Patterns of attribute questions, read before the vocabulary's phrases: tag keys present or
missing ("without an owner tag"), times ("launched in the last 7 days", "since October 1"),
comparisons ("over 100 GB", "below 1.30"), rankings ("top 5 largest", "the oldest 3") and
values read by their shape ("m5.large", "python 3.8", "postgres 14", "1.29").

Each emits items the reading reads (items.Kind.ATTRIBUTE, SORT, TAG_KEY...); which
attribute a concept names is settled per resource type later (attribute_filters.py).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from opsagent.graph.planner import attribute_words as words
from opsagent.graph.planner.items import Item, Kind
from opsagent.graph.planner.phrase_index import CONNECTORS, STATIC
from opsagent.graph.planner.scan_state import ScanState
from opsagent.graph.planner.tokens import KV, QUOTED, WORD
from opsagent.graph.planner.vocabulary import COMMON_TAG_KEYS

# Keys people name without saying "tag" ("instances missing owner").
_BARE_TAG_KEYS = COMMON_TAG_KEYS | {"env", "environment", "name", "stage", "owner"}
# Leads after which a key needs no "tag" word: "missing owner", "neither owner nor team",
# "tagged env but not team". The missing ones are those of MISSING_TAG_LEADS that end in
# a word that already says "tag".
_LENIENT_LEADS = frozenset(
    lead
    for lead in words.MISSING_TAG_LEADS
    if lead.split()[-1] in {"neither", "missing", "lacking", "lack", "lacks", "with"}
) | {"tagged with", "tagged"}
# Leads that go on from a tag key just read: "tagged env but not team", "env and team".
_CONTINUING_LEADS = frozenset(
    {"but not", "and not", "but no", "but without", "and no", "and without", "and", "or", "nor"}
)


# Words that deny a change: "not modified", "never touched", "nobody has changed".
_NOBODY_WORDS = ("not", "never", "nobody", "no one", "noone", "not been", "never been")
_NEGATED_FILLERS = frozenset({"been", "be", "has", "have", "had", "ever", "even", "really"})


# Languages that are Lambda runtimes only after a Lambda noun and a verb ("functions are node").
_RUNTIME_LANGUAGES = {
    "node": "nodejs",
    "go": "go",
    "python": "python",
    "java": "java",
    "ruby": "ruby",
    "dotnet": "dotnet",
}

# Words that ask for a sum when a unit follows: "total GiB", "how many TB".
_SUM_CUES = words.TOTAL_CUES | {"how many"}


def today() -> date:
    """The day the question is asked (UTC); tests replace it."""
    return datetime.now(UTC).date()


def phrase_at(tokens, i: int, phrases) -> tuple[str, int] | None:
    """The longest of these phrases starting at token i, and its length in tokens."""
    best: tuple[str, int] | None = None
    for phrase in phrases:
        parts = phrase.split()
        n = len(parts)
        if not parts or i + n > len(tokens):
            continue
        if all(
            tokens[i + k].kind == WORD and parts[k] in (tokens[i + k].norm, tokens[i + k].base)
            for k in range(n)
        ) and (best is None or n > best[1]):
            best = (phrase, n)
    return best


def number_at(tokens, i: int, words_too: bool = True) -> float | None:
    """A number at token i: "7", "1.5", "seven" (not "a", which needs a unit after it)."""
    if i >= len(tokens) or tokens[i].kind != WORD:
        return None
    norm = tokens[i].norm.replace(",", "")
    if words.NUMBER_RE.match(norm):
        return float(norm)
    if words_too and norm in words.NUMBER_WORDS:
        return float(words.NUMBER_WORDS[norm])
    return None


def _number_text(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _latest(month: int, day: int) -> date | None:
    """The latest such day on or before today ("since October 1")."""
    now = today()
    try:
        found = date(now.year, month, day)
        return found if found <= now else date(now.year - 1, month, day)
    except ValueError:
        return None


class AttributeScanner(ScanState):
    """The patterns of attribute questions, tried at each token before the vocabulary."""

    def attribute_pattern(self, i: int) -> int | None:
        for pattern in (
            self.verb_before_value,
            self.unit_total,
            self.tag_presence,
            self.no_attribute,
            self.time_filter,
            self.comparison,
            self.ranking,
            self.shaped_value,
            self.each_attribute,
        ):
            j = pattern(i)
            if j is not None:
                return j
        return None

    # ----- "running windows", "clusters running 1.29" -----

    def verb_before_value(self, i: int) -> int | None:
        """ "running" before a value is the verb "runs", not the state; "allocated" before
        what a total sums ("total allocated RDS storage") says nothing more."""
        norm = self.tokens[i].norm
        if norm in {"allocated", "provisioned", "used"}:
            for k in (i + 1, i + 2):
                if k < len(self.tokens) and self.tokens[k].norm in words.MEASURE_WORDS:
                    return self.emit(Kind.FILLER, i, i + 1)
            return None
        if norm != "running":
            return None
        j = self.skip(i + 1, words.ARTICLES | {"on", "version"})
        if not self.value_starts(j) or self.state_before_value(j):
            return None
        return self.emit(Kind.FILLER, i, i + 1)

    def state_before_value(self, j: int) -> bool:
        """ "running m5 instances", "running windows boxes in staging": with no subject before
        it and a resource noun after the value, "running" is the state of that noun, not
        the verb of "instances running windows" (the value then is what they run)."""
        for item in reversed(self.items):
            if item.kind is Kind.BOUNDARY:
                break
            if item.kind in (Kind.RESOURCE, Kind.ACCOUNT_NOUN, Kind.GENERIC, Kind.ANAPHORA):
                return False
        for k in range(j + 1, min(j + 4, len(self.tokens))):
            if self.tokens[k].kind != WORD:
                return False
            found = STATIC.match(self.tokens, k)
            if found is not None and Kind.RESOURCE in found.meanings:
                return True
        return False

    def value_starts(self, j: int) -> bool:
        """Whether a value of an attribute starts at token j ("windows", "1.29", "m5")."""
        if j >= len(self.tokens) or self.tokens[j].kind != WORD:
            return False
        norm = self.tokens[j].norm
        found = STATIC.match(self.tokens, j)
        if found is not None and (
            Kind.ATTRIBUTE in found.meanings
            or norm in words.ENGINE_WORDS
            or norm in words.RUNTIME_SPELLINGS
        ):
            return True
        return bool(
            words.VERSION_RE.match(norm)
            or words.RUNTIME_RE.match(norm)
            or words.RUNTIME_GLUED_RE.match(norm)
            or words.INSTANCE_TYPE_RE.match(norm)
            or words.DB_CLASS_RE.match(norm)
            or (words.INSTANCE_FAMILY_RE.match(norm) and found is None)
        )

    def unit_total(self, i: int) -> int | None:
        """ "total EBS GiB", "how many TB of RDS storage": a unit with no number after a
        word that asks for a sum names what to sum (the type's size)."""
        token = self.tokens[i]
        if token.kind != WORD or token.norm not in words.SIZE_UNITS:
            return None
        if i > 0 and number_at(self.tokens, i - 1) is not None:
            return None
        for item in reversed(self.items):
            if item.kind is Kind.BOUNDARY:
                return None
            if item.kind is Kind.INTENT and item.text.lower() in _SUM_CUES:
                return self.emit(Kind.ATTRIBUTE_NOUN, i, i + 1, words.SIZE)
        return None

    def no_attribute(self, i: int) -> int | None:
        """ "that have no public access block", "has no encryption": "no" before a yes/no
        attribute denies it, as "without" does."""
        if self.tokens[i].norm != "no" or i + 1 >= len(self.tokens):
            return None
        found = STATIC.match(self.tokens, i + 1)
        if found is None or Kind.ATTRIBUTE not in found.meanings:
            return None
        return self.emit(Kind.NEGATE, i, i + 1, "not")

    # ----- tag keys -----

    def tag_presence(self, i: int) -> int | None:
        """ "without an owner tag", "missing owner", "with a cost-center tag", "tagged env
        but not team" (a key=value stays a tag filter, read by the tag cues)."""
        tokens = self.tokens
        previous = self.previous()
        after_key = previous is not None and previous.kind is Kind.TAG_KEY
        for leads, presence in (
            (words.MISSING_TAG_LEADS, "missing"),
            (words.PRESENT_TAG_LEADS, "present"),
        ):
            lead = phrase_at(tokens, i, (*leads, *(("and", "or") if after_key else ())))
            if lead is None:
                continue
            phrase, length = lead
            if phrase in _CONTINUING_LEADS and not after_key:
                continue
            if phrase in ("and", "or") and previous is not None:
                presence = previous.extra[0]
            j = self.skip(i + length, words.ARTICLES | {"both"})  # "missing both the owner and"
            end = self._tag_key_end(j, lenient=phrase in _LENIENT_LEADS | _CONTINUING_LEADS)
            if end is None:
                continue
            return self.emit(Kind.TAG_KEY, i, end, tokens[j].raw, (presence,))
        return None

    def _tag_key_end(self, j: int, lenient: bool) -> int | None:
        """Where a tag key at j (and the word "tag" after it) ends, if one stands there."""
        tokens = self.tokens
        if j >= len(tokens) or tokens[j].kind not in (WORD, QUOTED):
            return None
        key = tokens[j]
        if key.norm in words.TAG_NOUNS or key.norm in {"no", "any", "all", "some"}:
            return None  # "without tags", "with no tags": untagged, a phrase of the vocabulary
        k = j + 1
        tagged = k < len(tokens) and tokens[k].kind == WORD and tokens[k].norm in words.TAG_NOUNS
        if tagged:
            k += 1
        elif not (lenient and (key.norm in _BARE_TAG_KEYS or self.value_like(j))):
            return None
        # "with an Environment tag of prod", "tagged team payments": a key and its value.
        if k < len(tokens):
            following = tokens[k]
            if following.kind in (KV, QUOTED) or CONNECTORS.match(tokens, k) is not None:
                return None
            if self.value_like(k):
                return None
        return k

    # ----- times -----

    def time_filter(self, i: int) -> int | None:
        """ "launched in the last 7 days", "older than 90 days", "created this month",
        "since October 1", "before 2026-01-01", "not modified in 90 days", "in 2025"."""
        tokens = self.tokens
        j = i
        negated = False
        nobody = phrase_at(tokens, j, _NOBODY_WORDS)
        if nobody is not None:
            # "not modified", "never touched", "that nobody has touched", "no one changed".
            negated, j = True, self.skip(j + nobody[1], _NEGATED_FILLERS)
        concept = words.AGE
        verb = phrase_at(tokens, j, words.AGE_VERBS)
        if not negated and tokens[j].norm in {"untouched", "unmodified", "unchanged"}:
            negated, concept, j = True, words.MODIFIED, j + 1  # "untouched for 90 days"
        elif verb is not None:
            concept = words.AGE_VERBS[verb[0]]
            j += verb[1]
        elif negated:
            return None
        read = self._time_expression(j, negated)
        if read is None:
            return None
        end, conditions = read
        first, *more = conditions
        emitted = self.emit(Kind.ATTRIBUTE, i, end, concept, first)
        for extra in more:
            self.items.append(Item(Kind.ATTRIBUTE, concept, extra, end, end, ""))
        return emitted

    def _time_expression(self, j: int, negated: bool) -> tuple[int, list[tuple[str, ...]]] | None:
        tokens = self.tokens
        # "in the last 7 days", "past week", "within 30 days" (only negated: "not modified
        # in 90 days"), "this past month".
        lead = phrase_at(tokens, j, [lead for lead in words.WITHIN_LEADS if lead] + ["this"])
        k = j + (lead[1] if lead else 0)
        recent = k < len(tokens) and tokens[k].norm in words.RECENT_WORDS
        if negated and lead is None and j < len(tokens) and tokens[j].norm == "for":
            lead = ("for", 1)  # "not touched for 90 days"
            k = j + 1
        if negated and lead is not None:
            # "not modified in over 90 days", "untouched for more than a month"
            k = self.skip(k, {"over", "more", "than", "at", "least"})
        if recent or (negated and lead is not None):
            m = k + 1 if recent else k
            amount = number_at(tokens, m)
            m += amount is not None
            unit = self._time_unit(m)
            if unit is not None and (amount is not None or recent):
                days = max(1, math.ceil((amount or 1) * unit))
                op = "older_than_days" if negated else "within_days"
                return m + 1, [(op, str(days), "")]
        # "older than 90 days", "more than 90 days old", "created over a year ago",
        # "newer than 30 days", "less than a week old".
        comparator = phrase_at(tokens, j, words.COMPARATORS)
        if comparator is not None and not negated:
            op = words.COMPARATORS[comparator[0]]
            m = j + comparator[1]
            amount = number_at(tokens, m)
            if amount is not None:
                unit = self._time_unit(m + 1)
                if unit is not None:
                    m += 2
                    said_age = m < len(tokens) and tokens[m].norm in {"old", "ago"}
                    if said_age or comparator[0] in {"older than", "newer than"}:
                        m += said_age
                    older = op in ("gt", "gte") or comparator[0] == "older than"
                    if comparator[0] == "newer than":
                        older = False
                    days = max(1, math.ceil(amount * unit))
                    return m, [("older_than_days" if older else "within_days", str(days), "")]
            moment = self._date_at(m)
            if moment is not None and op in ("lt", "gt", "gte"):
                end, day = moment
                if op == "lt":
                    return end, [("before", day.isoformat(), "")]
                start = day + timedelta(days=1) if op == "gt" else day
                return end, [("on_or_after", start.isoformat(), "")]
        if negated:
            # "not touched since October 1": last changed before it.
            if j < len(tokens) and tokens[j].norm == "since":
                moment = self._date_at(j + 1)
                if moment is not None:
                    return moment[0], [("before", moment[1].isoformat(), "")]
            return None
        # "this month", "this year", "so far this year", "today".
        m = self.skip(j, {"in", "during", "so", "far", "earlier"})
        if m < len(tokens) and tokens[m].norm == "today":
            return m + 1, [("on_or_after", today().isoformat(), "")]
        if m + 1 < len(tokens) and tokens[m].norm == "this":
            now = today()
            period = tokens[m + 1].base
            period_start = {
                "month": now.replace(day=1),
                "year": now.replace(month=1, day=1),
                "week": now - timedelta(days=now.weekday()),
                "quarter": now.replace(month=3 * ((now.month - 1) // 3) + 1, day=1),
            }.get(period)
            if period_start is not None:
                return m + 2, [("on_or_after", period_start.isoformat(), "")]
        # "since October 1", "from 2025-10-01", "after June 30", "before 2026-01-01".
        cue = tokens[j].norm if j < len(tokens) else ""
        if cue in {"since", "from", "after", "before"}:
            moment = self._date_at(j + 1)
            if moment is not None:
                end, day = moment
                if cue == "before":
                    return end, [("before", day.isoformat(), "")]
                if cue == "after":
                    day += timedelta(days=1)
                return end, [("on_or_after", day.isoformat(), "")]
        # "in 2025", "in October": a whole year or month.
        if cue in {"in", "during"} and j + 1 < len(tokens):
            norm = tokens[j + 1].norm
            if norm.isdigit() and len(norm) == 4 and 2000 <= int(norm) <= 2100:
                year = int(norm)
                return j + 2, [
                    ("on_or_after", date(year, 1, 1).isoformat(), ""),
                    ("before", date(year + 1, 1, 1).isoformat(), ""),
                ]
            month = words.MONTHS.get(norm)
            if month is not None and norm != "may":
                first = _latest(month, 1)
                if first is not None:
                    after = date(first.year + (month == 12), month % 12 + 1, 1)
                    return j + 2, [
                        ("on_or_after", first.isoformat(), ""),
                        ("before", after.isoformat(), ""),
                    ]
        return None

    def _time_unit(self, m: int) -> float | None:
        if m >= len(self.tokens) or self.tokens[m].kind != WORD:
            return None
        token = self.tokens[m]
        return words.TIME_UNITS.get(token.base, words.TIME_UNITS.get(token.norm.rstrip("s")))

    def _date_at(self, m: int) -> tuple[int, date] | None:
        """A date at token m: "2026-01-01", "October 1", "Oct 1st", "1 October", "January"."""
        tokens = self.tokens
        if m >= len(tokens) or tokens[m].kind != WORD:
            return None
        norm = tokens[m].norm
        if words.ISO_DATE_RE.match(norm):
            try:
                return m + 1, date.fromisoformat(norm)
            except ValueError:
                return None
        month = words.MONTHS.get(norm)
        if month is not None:
            day_match = (
                words.DAY_OF_MONTH_RE.match(tokens[m + 1].norm) if m + 1 < len(tokens) else None
            )
            day = int(day_match.group(1)) if day_match else 1
            end = m + 2 if day_match else m + 1
            if end < len(tokens) and tokens[end].norm.isdigit() and len(tokens[end].norm) == 4:
                try:
                    return end + 1, date(int(tokens[end].norm), month, day)
                except ValueError:
                    return None
            found = _latest(month, day)
            return (end, found) if found is not None else None
        day_match = words.DAY_OF_MONTH_RE.match(norm)
        if day_match and m + 1 < len(tokens):
            month = words.MONTHS.get(tokens[m + 1].norm)
            if month is not None:
                found = _latest(month, int(day_match.group(1)))
                return (m + 2, found) if found is not None else None
        return None

    # ----- numbers -----

    def comparison(self, i: int) -> int | None:
        """ "more than 100 GB", "at least 1 GB of memory", "below 1.30", "100 GB volumes",
        "1.30 or newer", "between 100 and 500 GB"."""
        tokens = self.tokens
        comparator = phrase_at(tokens, i, words.COMPARATORS)
        if comparator is not None:
            op, j = words.COMPARATORS[comparator[0]], i + comparator[1]
        elif tokens[i].norm == "between":
            return self._between(i)
        else:
            op, j = "eq", i
        read = self._measure(j)
        if read is None:
            return None
        end, value, unit, concept = read
        trailing = phrase_at(tokens, end, words.TRAILING_COMPARATORS)
        if trailing is not None:
            op = words.TRAILING_COMPARATORS[trailing[0]]
            end += trailing[1]
            end, concept = self._of_noun(end, concept)
        elif comparator is None and not unit:
            return None  # a bare number: a version or an unknown word, read elsewhere
        if comparator is not None and comparator[0] == "older than" and not unit:
            op = "lt"  # "older than 1.30": a version
        concept = self._noun_before(concept)
        return self.emit(Kind.ATTRIBUTE, i, end, concept, (op, value, unit))

    def _between(self, i: int) -> int | None:
        low = self._measure(i + 1)
        if (
            low is None
            or low[0] >= len(self.tokens)
            or self.tokens[low[0]].norm
            not in {
                "and",
                "to",
            }
        ):
            return None
        high = self._measure(low[0] + 1)
        if high is None:
            return None
        unit = high[2] or low[2]
        concept = self._noun_before(high[3] or low[3])
        end = self.emit(Kind.ATTRIBUTE, i, high[0], concept, ("gte", low[1], low[2] or unit))
        self.items.append(
            Item(Kind.ATTRIBUTE, concept, ("lte", high[1], unit), high[0], high[0], "")
        )
        return end

    def _measure(self, j: int) -> tuple[int, str, str, str] | None:
        """A number and its unit at j: (end, value, unit, concept), "" when not said."""
        tokens = self.tokens
        if j >= len(tokens) or tokens[j].kind != WORD:
            return None
        norm = tokens[j].norm
        glued = words.GLUED_SIZE_RE.match(norm)
        if glued:
            end, concept = self._of_noun(j + 1, words.SIZE)
            return end, glued.group(1), words.SIZE_UNITS[glued.group(2)], concept
        version = words.VERSION_RE.match(norm)
        amount = number_at(tokens, j, words_too=False)
        if amount is None and norm in words.NUMBER_WORDS and j + 1 < len(tokens):
            # "a terabyte", "two gigabytes": a number word only with a unit.
            if tokens[j + 1].norm in words.SIZE_UNITS:
                amount = float(words.NUMBER_WORDS[norm])
        if amount is None and version is None:
            return None
        value = _number_text(amount) if amount is not None else version.group(1)  # type: ignore[union-attr]
        if j + 1 < len(tokens) and tokens[j + 1].norm in words.SIZE_UNITS:
            end, concept = self._of_noun(j + 2, words.SIZE)
            return end, value, words.SIZE_UNITS[tokens[j + 1].norm], concept
        if self._time_unit(j + 1) is not None:
            return None  # a duration: the time patterns' (or nothing's)
        if version is not None and "." in norm:
            return j + 1, version.group(1), "", words.VERSION
        return j + 1, value, "", ""

    def _of_noun(self, end: int, concept: str) -> tuple[int, str]:
        """ "1 GB of memory", "100 GB of storage": the noun names the attribute."""
        tokens = self.tokens
        if end + 1 < len(tokens) and tokens[end].norm in {"of", "in"}:
            found = STATIC.match(tokens, end + 1)
            if found is not None and Kind.ATTRIBUTE_NOUN in found.meanings:
                return end + 1 + found.length, found.meanings[Kind.ATTRIBUTE_NOUN].value
        return end, concept

    def _noun_before(self, concept: str) -> str:
        """ "memory over 1 GB", "version below 1.30": the noun just before names it."""
        for item in reversed(self.items):
            if item.kind is Kind.FILLER or item.kind is Kind.PREP:
                continue
            if item.kind is Kind.ATTRIBUTE_NOUN:
                return item.value
            break
        return concept

    # ----- rankings -----

    def ranking(self, i: int) -> int | None:
        """ "top 5 largest", "5 biggest", "the oldest 3", "with the most memory"."""
        tokens = self.tokens
        norm = tokens[i].norm
        if norm in words.TOP_WORDS | words.BOTTOM_WORDS:
            amount = number_at(tokens, i + 1)
            if amount is None or amount != int(amount):
                return None
            end, concept, descending = i + 2, "", str(norm not in words.BOTTOM_WORDS).lower()
            superlative = self._superlative(end)
            if superlative is not None:
                end, concept, descending = superlative
            elif norm == "first":
                return None
            return self.emit(Kind.SORT, i, end, concept, (descending, _number_text(amount), ""))
        amount = number_at(tokens, i)
        if amount is not None and amount == int(amount):
            superlative = self._superlative(i + 1)
            if superlative is not None:
                end, concept, descending = superlative
                return self.emit(Kind.SORT, i, end, concept, (descending, _number_text(amount), ""))
            return None
        superlative = self._superlative(i)
        if superlative is not None:
            end, concept, descending = superlative
            amount = number_at(tokens, end, words_too=False)
            if amount is not None and amount == int(amount) and self._time_unit(end + 1) is None:
                limit = _number_text(amount)
                return self.emit(Kind.SORT, i, end + 1, concept, (descending, limit, ""))
            return self.emit(Kind.SORT, i, end, concept, (descending, "", "superlative"))
        rank = phrase_at(tokens, i, ("most", "the most", "least", "the least"))
        if rank is not None:
            found = STATIC.match(tokens, i + rank[1])
            if found is not None and Kind.ATTRIBUTE_NOUN in found.meanings:
                noun = found.meanings[Kind.ATTRIBUTE_NOUN].value
                if noun in words.MEASURE_WORDS:
                    descending = str("most" in rank[0]).lower()
                    end = i + rank[1] + found.length
                    return self.emit(Kind.SORT, i, end, noun, (descending, "", "superlative"))
        return None

    def _superlative(self, j: int) -> tuple[int, str, str] | None:
        found = STATIC.match(self.tokens, j) if j < len(self.tokens) else None
        if found is None or Kind.SORT not in found.meanings:
            return None
        meaning = found.meanings[Kind.SORT]
        if "superlative" not in meaning.extra:
            return None
        return j + found.length, meaning.value, meaning.extra[0]

    # ----- values by their shape -----

    def shaped_value(self, i: int) -> int | None:
        """ "m5.large", "m5", "db.t3.medium", "python3.8", "python 3.8", "node 16", "node
        functions", "postgres 14", "1.29", "version 1.30"."""
        tokens = self.tokens
        token = tokens[i]
        if token.kind != WORD:
            return None
        norm = token.norm
        if norm.endswith("s") and len(norm) > 2 and not words.INSTANCE_TYPE_RE.match(norm):
            single = norm[:-1]  # "m5s", "t3.micros", "db.t3.mediums": the plural of one
            if (
                words.INSTANCE_TYPE_RE.match(single)
                or words.DB_CLASS_RE.match(single)
                or (words.INSTANCE_FAMILY_RE.match(single) and not self.known(i))
            ):
                norm = single
        if words.DB_CLASS_RE.match(norm):
            return self.emit(Kind.ATTRIBUTE, i, i + 1, "class", ("eq", norm, ""))
        if words.INSTANCE_TYPE_RE.match(norm):
            return self.emit(Kind.ATTRIBUTE, i, i + 1, "instance_type", ("eq", norm, ""))
        if words.RUNTIME_RE.match(norm):
            return self.emit(Kind.ATTRIBUTE, i, i + 1, "runtime", ("eq", norm, ""))
        glued = words.RUNTIME_GLUED_RE.match(norm)
        if glued:
            runtime = words.RUNTIME_SPELLINGS[glued.group(1)].format(v=glued.group(2))
            return self.emit(Kind.ATTRIBUTE, i, i + 1, "runtime", ("eq", runtime, ""))
        runtime_word = self._runtime_after_verb(i)
        if runtime_word is not None:
            return runtime_word
        if norm in words.RUNTIME_SPELLINGS and i + 1 < len(tokens):
            version = words.VERSION_RE.match(tokens[i + 1].norm.removesuffix(".x"))
            number = tokens[i + 1].norm.removesuffix(".x")
            if version or number.isdigit():
                runtime = words.RUNTIME_SPELLINGS[norm].format(v=number.removeprefix("v"))
                return self.emit(Kind.ATTRIBUTE, i, i + 2, "runtime", ("eq", runtime, ""))
            following = STATIC.match(tokens, i + 1)
            if (
                norm == "node"
                and following is not None
                and Kind.RESOURCE in following.meanings
                and following.meanings[Kind.RESOURCE].value == "lambda:function"
            ):
                return self.emit(Kind.ATTRIBUTE, i, i + 1, "runtime", ("prefix", "nodejs", ""))
        engine = self._engine_version(i)
        if engine is not None:
            return engine
        if norm in words.VERSION_LEADS and i + 1 < len(tokens):
            version = words.VERSION_RE.match(tokens[i + 1].norm)
            if version is not None and norm != "v":
                return self.emit(
                    Kind.ATTRIBUTE, i, i + 2, words.VERSION, ("eq", version.group(1), "")
                )
        version = words.VERSION_RE.match(norm)
        if version is not None and "." in norm:
            return self.emit(Kind.ATTRIBUTE, i, i + 1, words.VERSION, ("eq", version.group(1), ""))
        if words.INSTANCE_FAMILY_RE.match(norm) and not self.known(i):
            return self.emit(Kind.ATTRIBUTE, i, i + 1, "instance_family", ("eq", norm, ""))
        return None

    def _runtime_after_verb(self, i: int) -> int | None:
        """ "which functions are node?", "lambdas on go", "functions running node": after a
        Lambda noun and "are", "on", "running" or "using", a language is its runtime (alone,
        "node" could be EKS nodes or instances and "go" a verb)."""
        norm = self.tokens[i].norm
        if norm not in _RUNTIME_LANGUAGES or i == 0:
            return None
        following = self.tokens[i + 1].norm.removesuffix(".x") if i + 1 < len(self.tokens) else ""
        if following.isdigit() or words.VERSION_RE.match(following):
            return None  # "on python 3.8", "on node 18.x": a version, read below
        if self.tokens[i - 1].norm not in {"are", "is", "on", "running", "using", "use"}:
            return None
        for item in reversed(self.items):
            if item.kind is Kind.BOUNDARY:
                return None
            if item.kind is Kind.RESOURCE:
                if item.value != "lambda:function":
                    return None
                prefix = _RUNTIME_LANGUAGES[norm]
                return self.emit(Kind.ATTRIBUTE, i, i + 1, "runtime", ("prefix", prefix, ""))
        return None

    def _engine_version(self, i: int) -> int | None:
        """ "postgres 14", "MySQL 8.0", "aurora postgres version 15": the engine is a noun of
        RDS instances (and says the engine, reading.py); the version a filter of its own."""
        engine = phrase_at(self.tokens, i, words.ENGINE_WORDS)
        if engine is None:
            return None
        j = i + engine[1]
        k = self.skip(j, {"version", "v"})
        if k >= len(self.tokens):
            return None
        version = words.ENGINE_VERSION_RE.match(self.tokens[k].norm)
        if version is None:
            return None
        self.emit(Kind.RESOURCE, i, j, "rds:db-instance", ("qualifier",))
        return self.emit(
            Kind.ATTRIBUTE, j, k + 1, "engine_version", ("prefix", version.group(1), "")
        )

    # ----- grouping -----

    def each_attribute(self, i: int) -> int | None:
        """ "of each type", "for every runtime": one group per value."""
        if self.tokens[i].norm not in {"each", "every"}:
            return None
        found = STATIC.match(self.tokens, i + 1)
        if found is None or Kind.ATTRIBUTE_NOUN not in found.meanings:
            return None
        noun = found.meanings[Kind.ATTRIBUTE_NOUN].value
        return self.emit(Kind.GROUP_BY_ATTRIBUTE, i, i + 1 + found.length, noun)
