"""Patterns that read several words at once ("in each account", "with web in the name",
"where team is payments"), and the arguments cues take ("tagged team=payments", "named web",
"owned by team payments")."""

from __future__ import annotations

from opsagent.graph.planner.items import Item, Kind
from opsagent.graph.planner.phrase_index import (
    ACCOUNT_NOUNS,
    CONNECTORS,
    GROUP_BY_CUES,
    GROUP_TARGETS,
    IN_NAME_TAILS,
    REGION_NOUNS,
    STATIC,
)
from opsagent.graph.planner.scan_state import ScanState, clean_name
from opsagent.graph.planner.tokens import KV, QUOTED, WORD, is_kv, kv_parts
from opsagent.graph.planner.vocabulary import (
    COMMON_TAG_KEYS,
    FILLERS,
    IN_NAME_LEADS,
    QUANTIFIER_FILLERS,
    QUANTIFIERS,
    TEAM_WORDS,
    WHERE_LEADS,
)

# Words that end a tag where its value would be ("tagged team in prod").
_NOT_A_TAG_VALUE = FILLERS | {"in", "on", "for"}
_NOT_A_TAG_KEY = FILLERS | {"in", "on"}
_NOT_A_TAG_PAIR_VALUE = FILLERS | {"in", "on", "for", "across"}
_NOUN_KINDS = frozenset({Kind.RESOURCE, Kind.AMBIGUOUS, Kind.INTENT, Kind.REGION})
_RESOURCE_KINDS = frozenset({Kind.RESOURCE, Kind.AMBIGUOUS})


class PatternScanner(ScanState):
    # ----- patterns that read several words at once -----

    def in_name(self, i: int) -> int | None:
        """ "with web in the name" """
        tokens = self.tokens
        if tokens[i].norm not in IN_NAME_LEADS or i + 2 >= len(tokens):
            return None
        if tokens[i + 1].kind not in (WORD, QUOTED):
            return None
        tail = IN_NAME_TAILS.match(tokens, i + 2)
        if tail is None:
            return None
        return self.emit(
            Kind.NAME, i, i + 2 + tail.length, clean_name(tokens[i + 1].raw), ("in the name",)
        )

    def postfix_tag(self, i: int) -> int | None:
        """ "team tag is payments", "with an Environment tag of prod" """
        tokens = self.tokens
        if i + 2 >= len(tokens) or tokens[i + 1].norm not in {"tag", "label"}:
            return None
        if not (
            self.value_like(i)
            or tokens[i].norm in COMMON_TAG_KEYS
            or tokens[i].norm in {"environment", "env", "name", "stage"}
        ):
            return None
        j = i + 2
        connector = CONNECTORS.match(tokens, j)
        if connector is not None:
            j += connector.length
        if j >= len(tokens) or tokens[j].kind not in (WORD, QUOTED):
            return None
        if tokens[j].kind == WORD and tokens[j].norm in _NOT_A_TAG_VALUE:
            return None
        return self.emit(Kind.TAG, i, j + 1, tokens[i].raw, (tokens[j].raw,))

    def team(self, i: int) -> int | None:
        """ "owned by team payments", "the payments team's buckets" """
        tokens = self.tokens
        token = tokens[i]
        previous = self.previous()
        after_owner = previous is not None and (
            previous.kind is Kind.OWNER_CUE
            or (previous.kind is Kind.PREP and previous.text.lower() in {"for", "of", "from", "by"})
        )
        if token.norm in TEAM_WORDS and after_owner and i + 1 < len(tokens):
            following = tokens[i + 1]
            if following.kind in (WORD, QUOTED) and following.norm not in FILLERS:
                return self.emit(Kind.TAG, i, i + 2, "team", (following.raw,))
        if i + 1 < len(tokens) and tokens[i + 1].norm in {"team", "squad"} and self.value_like(i):
            return self.emit(Kind.TAG, i, i + 2, "team", (token.raw,))
        return None

    def where(self, i: int) -> int | None:
        """ "where team is payments", "whose owner is alice", "with project set to atlas" """
        tokens = self.tokens
        if tokens[i].norm not in WHERE_LEADS:
            return None
        j = self.skip(i + 1, {"the", "a", "an"})
        if j >= len(tokens) or tokens[j].kind != WORD:
            return None
        key = tokens[j]
        if key.norm in {"name", "names", "state", "status", "environment", "env", "tag"}:
            return None
        if not (self.value_like(j) or key.norm in COMMON_TAG_KEYS):
            return None
        k = j + 1
        if k < len(tokens) and tokens[k].norm in {"tag", "label"}:
            k += 1
        connector = CONNECTORS.match(tokens, k)
        if connector is None:
            return None
        if tokens[i].norm in {"with", "having"} and " ".join(
            token.norm for token in tokens[k : k + connector.length]
        ) in {"is", "of", "as", "being"}:
            return None  # "with x is y" is not how people say it; leave it to the words
        k += connector.length
        if k >= len(tokens) or tokens[k].kind not in (WORD, QUOTED):
            return None
        return self.emit(Kind.TAG, i, k + 1, key.raw, (tokens[k].raw,))

    def quantified(self, i: int) -> int | None:
        """ "all accounts", "in each of our AWS accounts" (each also groups), "every region" """
        tokens = self.tokens
        word = tokens[i].norm
        if word not in QUANTIFIERS:
            return None
        j = i + 1
        while (
            j < len(tokens)
            and j - i <= 5
            and tokens[j].kind == WORD
            and tokens[j].norm in QUANTIFIER_FILLERS
        ):
            j += 1
        groups = word == "each" or (word == "every" and i > 0 and tokens[i - 1].norm == "for")
        value = "group" if groups else ""
        noun = ACCOUNT_NOUNS.match(tokens, j)
        if noun is not None:
            return self.emit(Kind.ALL_ACCOUNTS, i, j + noun.length, value)
        noun = REGION_NOUNS.match(tokens, j)
        if noun is not None:
            return self.emit(Kind.ALL_REGIONS, i, j + noun.length, value)
        if j > i + 1 and tokens[j - 1].norm in {"org", "organization"}:
            return self.emit(Kind.ALL_ACCOUNTS, i, j, value)
        return None

    def group_by(self, i: int) -> int | None:
        """ "per account", "broken down by region" """
        cue = GROUP_BY_CUES.match(self.tokens, i)
        if cue is None:
            return None
        j = self.skip(i + cue.length, {"the", "each", "every", "an", "a", "their", "its"})
        target = GROUP_TARGETS.match(self.tokens, j)
        if target is None:
            return None
        end = self.emit(Kind.GROUP, i, j + target.length, target.meanings[Kind.GROUP].value)
        # "by account and region": a second grouping, which the planner must refuse, not drop.
        k = self.skip(end, {"and", "or", "then", "by", "per", "the", "each"})
        if k > end:
            more = GROUP_TARGETS.match(self.tokens, k)
            if more is not None:
                return self.emit(Kind.GROUP, end, k + more.length, more.meanings[Kind.GROUP].value)
        return end

    # ----- cue arguments -----

    def tag_arguments(self, i: int, j: int, strict: bool) -> int:
        """The tags after "tagged": team=payments, team:payments, team payments, team is x."""
        tokens = self.tokens
        k = self.skip(j, {"the", "a", "with"})
        tags: list[tuple[str, str]] = []
        while k < len(tokens):
            token = tokens[k]
            if token.kind == KV:
                tags.append(kv_parts(token.raw))
                k += 1
            elif token.kind == QUOTED and is_kv(token.raw):
                tags.append(kv_parts(token.raw))
                k += 1
            elif token.kind in (WORD, QUOTED) and token.norm not in _NOT_A_TAG_KEY:
                m = k + 1
                connector = CONNECTORS.match(tokens, m)
                if connector is not None:
                    m += connector.length
                if (
                    m < len(tokens)
                    and tokens[m].kind in (WORD, QUOTED)
                    and tokens[m].norm not in _NOT_A_TAG_PAIR_VALUE
                    and not self.is_noun(m)
                ):
                    tags.append((token.raw, tokens[m].raw))
                    k = m + 1
                else:
                    break
            else:
                break
            # "tagged team=payments and env=prod"
            if k + 1 < len(tokens) and tokens[k].norm in {"and", ","} and tokens[k + 1].kind == KV:
                k += 1
        if not tags:
            if not strict:
                return self.emit(Kind.FILLER, i, j)
            what = " ".join(token.raw for token in tokens[j : k + 1]).strip()
            return self.emit(
                Kind.PROBLEM,
                i,
                max(k, j),
                "A tag filter needs a key and a value, "
                f"like 'tagged team=payments'{f' (I read {what!r})' if what else ''}.",
            )
        first_key, first_value = tags[0]
        end = self.emit(Kind.TAG, i, k, first_key, (first_value,))
        for key, value in tags[1:]:
            self.items.append(Item(Kind.TAG, key, (value,), k, k, f"{key}={value}"))
        return end

    def is_noun(self, k: int) -> bool:
        found = STATIC.match(self.tokens, k)
        return found is not None and bool(_NOUN_KINDS & set(found.meanings))

    def name_argument(self, i: int, j: int, cue: str) -> int:
        tokens = self.tokens
        k = j
        if k < len(tokens) and tokens[k].kind == WORD and tokens[k].norm in {"the", "like"}:
            k += 1
        if k >= len(tokens) or tokens[k].kind not in (WORD, QUOTED, KV):
            return self.emit(Kind.PROBLEM, i, k, f"'{tokens[i].raw}' needs a name after it.")
        raw = tokens[k].raw
        # A wildcard ("api-*") asks for a part of a name, never one exact name.
        wildcard = "*" in raw or "%" in raw
        return self.emit(Kind.NAME, i, k + 1, clean_name(raw), (f"{cue}*" if wildcard else cue,))

    def owner(self, i: int, j: int) -> int:
        tokens = self.tokens
        k = self.skip(j, {"the", "a"})
        if self.places_in_noun(k):
            # "node groups belonging to the EKS clusters": a place, not an owner.
            return self.emit(Kind.ATTACHED_TO, i, j)
        if k < len(tokens) and tokens[k].norm in TEAM_WORDS and k + 1 < len(tokens):
            return self.emit(Kind.TAG, i, k + 2, "team", (tokens[k + 1].raw,))
        if k + 1 < len(tokens) and tokens[k + 1].norm in TEAM_WORDS:
            return self.emit(Kind.TAG, i, k + 2, "team", (tokens[k].raw,))
        what = tokens[k].raw if k < len(tokens) else ""
        return self.emit(
            Kind.PROBLEM,
            i,
            min(k + 1, len(tokens)),
            f"I can't tell which tag holds the owner {what!r}; say it as a tag, "
            f"like 'tagged owner={what or 'alice'}' or 'owned by team payments'.",
        )

    def places_in_noun(self, k: int) -> bool:
        """Whether a resource noun starts at k, after determiners ("the EKS clusters")."""
        k = self.skip(
            k, {"the", "a", "an", "our", "my", "their", "its", "all", "every", "each", "any"}
        )
        found = STATIC.match(self.tokens, k) if k < len(self.tokens) else None
        return found is not None and bool(_RESOURCE_KINDS & set(found.meanings))
