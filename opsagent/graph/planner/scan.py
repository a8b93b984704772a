"""Scanning: tokens become items (a resource noun, an account, a state, a tag, ...).

At each token the longest phrase of the vocabulary or of the registry's account words wins.
Cues take the words after them as their value ("named web", "tagged team=payments");
a few patterns read several words at once ("in each account", "with web in the name",
"owned by team payments"); a change verb is a change request only in verb position
("stop the dev boxes"), while the same word as a participle is a state ("stopped").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from opsagent.graph import vocabulary as V
from opsagent.graph.planner.tokens import (
    ACCOUNT_NOUNS,
    BOUNDARY,
    CONNECTORS,
    GROUP_ATTRIBUTES,
    GROUP_BY_CUES,
    GROUP_TARGETS,
    IN_NAME_TAILS,
    KV,
    PRIORITY,
    QUOTED,
    REGION_NOUNS,
    STATIC,
    TYPO_KINDS,
    WORD,
    Match,
    Node,
    PhraseIndex,
    Token,
    is_kv,
    kv_parts,
    word_token,
)
from opsagent.registry import Registry

# Kinds the scanner adds to the vocabulary's.
ACCOUNT = "account"  # value: comma-separated ids
ID = "id"  # value: the id; extra: (resource type,) when the id's shape says it
TAG = "tag"  # value: key; extra: (value,)
NAME = "name"  # value: the name part; extra: (cue,)
VALUE = "value"  # a quoted string or a name-like word no table knows
UNKNOWN = "unknown"
UNKNOWN_ACCOUNT = "unknown-account"
PROBLEM = "problem"  # value: a sentence saying what cannot be done
BOUNDARY_ITEM = "boundary"

_ID_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^i-[0-9a-f]{4,17}$"), "ec2:instance"),
    (re.compile(r"^vol-[0-9a-f]{4,17}$"), "ec2:volume"),
    (re.compile(r"^sg-[0-9a-f]{4,17}$"), "ec2:security-group"),
    (re.compile(r"^vpc-[0-9a-f]{4,17}$"), "ec2:vpc"),
    (re.compile(r"^eipalloc-[0-9a-f]{4,17}$"), "ec2:elastic-ip"),
    (re.compile(r"^\d{1,3}(\.\d{1,3}){3}$"), "ec2:elastic-ip"),
)
# (service, resource kind in the ARN) -> resource type.
_ARN_TYPES: dict[tuple[str, str], str] = {
    ("ec2", "instance"): "ec2:instance", ("ec2", "volume"): "ec2:volume",
    ("ec2", "security-group"): "ec2:security-group", ("ec2", "vpc"): "ec2:vpc",
    ("ec2", "elastic-ip"): "ec2:elastic-ip", ("s3", ""): "s3:bucket",
    ("rds", "db"): "rds:db-instance", ("lambda", "function"): "lambda:function",
    ("ecs", "cluster"): "ecs:cluster", ("ecs", "service"): "ecs:service",
    ("eks", "cluster"): "eks:cluster", ("eks", "nodegroup"): "eks:nodegroup",
    ("dynamodb", "table"): "dynamodb:table", ("cloudformation", "stack"): "cloudformation:stack",
    ("iam", "role"): "iam:role",
}
_ARN_RE = re.compile(
    r"^arn:aws[\w-]*:(?P<service>[\w-]+):(?P<region>[\w-]*):(?P<account>\d*):(?P<resource>.+)$"
)
_IDENTIFIER_RE = re.compile(r"[\d\-_.:*]")
ACCOUNT_PREPS = frozenset({"in", "from", "within", "inside", "under"})


@dataclass
class Item:
    """One thing the scanner found: a kind (vocabulary.py's or the ones above) and a value."""

    kind: str
    value: str = ""
    extra: tuple[str, ...] = ()
    start: int = 0  # token span
    end: int = 0
    text: str = ""  # the words as typed
    verb_position: bool = False


class Scanner:
    """Reads the tokens of one question left to right into items."""

    def __init__(self, tokens: list[Token], registry: Registry) -> None:
        self.t = tokens
        self.words = registry.reference_words()
        self.accounts = PhraseIndex()
        for word, ids in self.words.items():
            self.accounts.add(word, V.Meaning(ACCOUNT, ",".join(ids)))
        self.items: list[Item] = []
        self.notes: list[str] = []

    # ----- helpers -----

    def emit(self, kind: str, i: int, j: int, value: str = "", extra: tuple[str, ...] = (),
             verb_position: bool = False) -> int:
        text = " ".join(t.raw for t in self.t[i:j])
        self.items.append(Item(kind, value, extra, i, j, text, verb_position))
        return j

    def match(self, i: int) -> Match | None:
        static = STATIC.match(self.t, i)
        account = self.accounts.match(self.t, i)
        if account is None:
            return static
        if static is None or account.length > static.length or (
            account.length == static.length and (account.exact or not static.exact)
        ):
            return account
        return static

    def known(self, i: int) -> bool:
        """Whether the token at i starts something the vocabulary or registry knows."""
        return self.match(i) is not None

    def value_like(self, i: int) -> bool:
        """A word that can be a tag value, a name or a key: not a boundary, not known."""
        if i >= len(self.t):
            return False
        token = self.t[i]
        if token.kind == QUOTED:
            return True
        return token.kind == WORD and not self.known(i) and not _special_shape(token.norm)

    def at_start(self) -> bool:
        return all(item.kind == BOUNDARY_ITEM for item in self.items)

    def previous(self) -> Item | None:
        for item in reversed(self.items):
            if not (item.kind == V.FILLER and item.text.lower() in {"the", "a", "an", "our"}):
                return item
        return None

    def verb_position(self, i: int) -> bool:
        """Whether a verb at i is an imperative or a request ("please stop", "can you stop")."""
        if i > 0 and self.t[i - 1].kind == WORD and self.t[i - 1].norm in V.VERB_TRIGGERS:
            return True
        j = i - 1
        while j >= 0 and self.t[j].kind != BOUNDARY:
            if self.t[j].norm not in V.VERB_LEADS:
                return False
            j -= 1
        return True

    # ----- the scan -----

    def scan(self) -> list[Item]:
        i = 0
        while i < len(self.t):
            i = self.step(i)
        return self.items

    def step(self, i: int) -> int:
        token = self.t[i]
        if token.kind == BOUNDARY:
            return self.emit(BOUNDARY_ITEM, i, i + 1)
        if token.kind in (WORD, KV):
            j = self.operation(i)
            if j is not None:
                return j
        if token.kind == KV:
            return self.key_value(i)
        if token.kind == QUOTED:
            ids = self.words.get(" ".join(token.norm.split()))
            if ids:
                return self.emit(ACCOUNT, i, i + 1, ",".join(ids))
            return self.emit(VALUE, i, i + 1, token.raw)
        if (token.norm in V.WHERE_LEADS and i + 2 < len(self.t)
                and self.t[i + 2].norm in {"tag", "label"}):
            # "with Name tag web-1": leave the key to the postfix tag pattern.
            return self.emit(V.FILLER, i, i + 1)
        for pattern in (self.in_name, self.postfix_tag, self.team, self.where,
                        self.quantified, self.group_by):
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
        return self.emit(UNKNOWN, i, i + 1, token.raw)

    def meaning(self, i: int, found: Match) -> int:
        j = i + found.length
        meanings = found.meanings
        if ACCOUNT in meanings:
            return self.emit(ACCOUNT, i, j, meanings[ACCOUNT].value)
        if V.MUTATION in meanings and found.exact:
            verb = self.verb_position(i)
            phrase = meanings[V.MUTATION].value
            if phrase in ("add", "include") and self.adds_reference(j):
                return self.emit(V.ADD, i, j)
            others = [k for k in PRIORITY if k in meanings]
            if verb or not others:
                return self.emit(V.MUTATION, i, j, phrase, verb_position=verb)
        kinds = [k for k in PRIORITY if k in meanings]
        if V.FOLLOWUP in kinds and not self.at_start():
            text = " ".join(t.norm for t in self.t[i:j])
            if text in V.FOLLOWUP_AT_START:
                kinds.remove(V.FOLLOWUP)
        if not kinds:
            return self.emit(UNKNOWN, i, j, " ".join(t.raw for t in self.t[i:j]))
        meaning = meanings[kinds[0]]
        kind = meaning.kind
        if kind == V.TAG_CUE:
            return self.tag_arguments(i, j, strict=True)
        if kind == V.TAG_WORD:
            return self.tag_arguments(i, j, strict=False)
        if kind == V.NAME_CUE:
            return self.name_argument(i, j, meaning.value)
        if kind == V.NAME_WORD:
            if j < len(self.t) and (self.t[j].kind == QUOTED
                                    or (self.value_like(j) and identifier_like(self.t[j].raw))):
                return self.name_argument(i, j, "name")
            return self.emit(V.FILLER, i, j)
        if kind == V.OWNER_CUE:
            return self.owner(i, j)
        if kind == V.GROUP_BY:
            attribute = GROUP_ATTRIBUTES.match(self.t, self.skip(j, {"the", "their", "its"}))
            if attribute is not None:
                k = self.skip(j, {"the", "their", "its"}) + attribute.length
                what = " ".join(t.raw for t in self.t[j:k])
                return self.emit(PROBLEM, i, k, f"I can group only by account or by region, "
                                                f"not by {what}.")
            return self.emit(V.FILLER, i, j)
        if kind == V.SORT_BY:
            return self.emit(PROBLEM, i, j, "I can't sort or rank results; I can list, count "
                                            "or describe, grouped by account or region.")
        return self.emit(kind, i, j, meaning.value, meaning.extra)

    def skip(self, j: int, words: set[str] | frozenset[str]) -> int:
        while j < len(self.t) and self.t[j].kind == WORD and self.t[j].norm in words:
            j += 1
        return j

    def adds_reference(self, j: int) -> bool:
        """ "add staging" names an account to include, "add a bucket" asks for a change."""
        j = self.skip(j, {"the", "in", "also", "account", "region"})
        if j >= len(self.t):
            return False
        found = self.match(j)
        if found is None:
            return bool(re.fullmatch(r"\d{12}", self.t[j].norm))
        return ACCOUNT in found.meanings or V.REGION in found.meanings

    def operation(self, i: int) -> int | None:
        """A change spelled out as code, wherever it stands: "aws ec2 terminate-instances",
        "aws s3 rm", "terminate-instances", "TerminateInstances", "ec2:TerminateInstances"."""
        token = self.t[i]
        if token.norm == "aws" and i + 2 < len(self.t) and self.t[i + 1].kind == WORD \
                and self.t[i + 2].kind == WORD:
            verb = _change_verb(_operation_words(self.t[i + 2].raw))
            if verb is not None:
                return self.emit(V.MUTATION, i, i + 3, verb, verb_position=True)
        verb = change_operation(token.raw, kv=token.kind == KV)
        if verb is not None:
            return self.emit(V.MUTATION, i, i + 1, verb, verb_position=True)
        return None

    # ----- shapes: ids, account numbers, region codes, key=value -----

    def shaped(self, i: int) -> int | None:
        token = self.t[i]
        norm = token.norm
        if re.fullmatch(r"\d{12}", norm):
            ids = self.words.get(norm)
            if ids:
                return self.emit(ACCOUNT, i, i + 1, ",".join(ids))
            return self.emit(UNKNOWN_ACCOUNT, i, i + 1, norm)
        for pattern, rtype in _ID_PATTERNS:
            if pattern.match(norm):
                return self.emit(ID, i, i + 1, token.raw, (rtype,))
        arn = _ARN_RE.match(token.raw)
        if arn is not None:
            return self.arn(i, arn)
        if V.REGION_CODE_RE.match(norm) and norm not in V.REGIONS:
            return self.emit(PROBLEM, i, i + 1, f"I don't know the region {token.raw!r}.")
        return None

    def arn(self, i: int, arn: re.Match[str]) -> int:
        service, resource = arn.group("service"), arn.group("resource")
        kind, _, rest = resource.partition("/") if "/" in resource else resource.partition(":")
        if service == "s3":
            kind, rest = "", resource
        rtype = _ARN_TYPES.get((service, kind))
        if rtype is None:
            return self.emit(PROBLEM, i, i + 1, f"I can't read {service} resources "
                                                f"({arn.group(0)}).")
        parts = [p for p in re.split(r"[/:]", rest) if p]
        # The id the workers match on: the name, or the last part for path-like ARNs.
        if rtype == "ecs:service" or rtype == "eks:nodegroup":
            natural = parts[1] if len(parts) > 1 else parts[-1]
        elif rtype == "cloudformation:stack":
            natural = parts[0]
        else:
            natural = parts[-1] if parts else rest
        account = arn.group("account")
        if account:
            ids = self.words.get(account)
            if not ids:
                return self.emit(UNKNOWN_ACCOUNT, i, i + 1, account)
            self.emit(ACCOUNT, i, i, ",".join(ids), ("from-arn",))
        if arn.group("region") and arn.group("region") in V.REGIONS:
            self.emit(V.REGION, i, i, arn.group("region"), ("from-arn",))
        return self.emit(ID, i, i + 1, natural, (rtype,))

    def key_value(self, i: int) -> int:
        key, value = kv_parts(self.t[i].raw)
        lower = key.lower()
        if lower in {"state", "status"}:
            found = STATIC.match([word_token(value)], 0)
            if found is not None and V.STATE in found.meanings:
                meaning = found.meanings[V.STATE]
                return self.emit(V.STATE, i, i + 1, meaning.value, meaning.extra)
        if lower == "name":
            return self.emit(NAME, i, i + 1, _clean_name(value), ("name",))
        if lower == "region" and value.lower() in V.REGIONS:
            return self.emit(V.REGION, i, i + 1, value.lower())
        if lower in {"account", "acct"}:
            ids = self.words.get(value.lower())
            if ids:
                return self.emit(ACCOUNT, i, i + 1, ",".join(ids))
            return self.emit(UNKNOWN_ACCOUNT, i, i + 1, value)
        return self.emit(TAG, i, i + 1, key, (value,))

    # ----- patterns that read several words at once -----

    def in_name(self, i: int) -> int | None:
        """ "with web in the name" """
        if self.t[i].norm not in V.IN_NAME_LEADS or i + 2 >= len(self.t):
            return None
        if self.t[i + 1].kind not in (WORD, QUOTED):
            return None
        tail = IN_NAME_TAILS.match(self.t, i + 2)
        if tail is None:
            return None
        return self.emit(NAME, i, i + 2 + tail.length, _clean_name(self.t[i + 1].raw),
                         ("in the name",))

    def postfix_tag(self, i: int) -> int | None:
        """ "team tag is payments", "with an Environment tag of prod" """
        if i + 2 >= len(self.t) or self.t[i + 1].norm not in {"tag", "label"}:
            return None
        if not (self.value_like(i) or self.t[i].norm in V.COMMON_TAG_KEYS
                or self.t[i].norm in {"environment", "env", "name", "stage"}):
            return None
        j = i + 2
        connector = CONNECTORS.match(self.t, j)
        if connector is not None:
            j += connector.length
        if j >= len(self.t) or self.t[j].kind not in (WORD, QUOTED):
            return None
        if self.t[j].kind == WORD and self.t[j].norm in V.FILLERS | {"in", "on", "for"}:
            return None
        return self.emit(TAG, i, j + 1, self.t[i].raw, (self.t[j].raw,))

    def team(self, i: int) -> int | None:
        """ "owned by team payments", "the payments team's buckets" """
        token = self.t[i]
        previous = self.previous()
        after_owner = previous is not None and (
            previous.kind == V.OWNER_CUE
            or (previous.kind == V.PREP and previous.text.lower() in {"for", "of", "from", "by"})
        )
        if token.norm in V.TEAM_WORDS and after_owner and i + 1 < len(self.t):
            nxt = self.t[i + 1]
            if nxt.kind in (WORD, QUOTED) and nxt.norm not in V.FILLERS:
                return self.emit(TAG, i, i + 2, "team", (nxt.raw,))
        if (i + 1 < len(self.t) and self.t[i + 1].norm in {"team", "squad"}
                and self.value_like(i)):
            return self.emit(TAG, i, i + 2, "team", (token.raw,))
        return None

    def where(self, i: int) -> int | None:
        """ "where team is payments", "whose owner is alice", "with project set to atlas" """
        if self.t[i].norm not in V.WHERE_LEADS:
            return None
        j = self.skip(i + 1, {"the", "a", "an"})
        if j >= len(self.t) or self.t[j].kind != WORD:
            return None
        key = self.t[j]
        if key.norm in {"name", "names", "state", "status", "environment", "env", "tag"}:
            return None
        if not (self.value_like(j) or key.norm in V.COMMON_TAG_KEYS):
            return None
        k = j + 1
        if k < len(self.t) and self.t[k].norm in {"tag", "label"}:
            k += 1
        connector = CONNECTORS.match(self.t, k)
        if connector is None:
            return None
        if self.t[i].norm in {"with", "having"} and " ".join(
            t.norm for t in self.t[k:k + connector.length]
        ) in {"is", "of", "as", "being"}:
            return None  # "with x is y" is not how people say it; leave it to the words
        k += connector.length
        if k >= len(self.t) or self.t[k].kind not in (WORD, QUOTED):
            return None
        return self.emit(TAG, i, k + 1, key.raw, (self.t[k].raw,))

    def quantified(self, i: int) -> int | None:
        """ "all accounts", "in each of our AWS accounts" (each also groups), "every region" """
        word = self.t[i].norm
        if word not in V.QUANTIFIERS:
            return None
        j = i + 1
        while (j < len(self.t) and j - i <= 5 and self.t[j].kind == WORD
               and self.t[j].norm in V.QUANTIFIER_FILLERS):
            j += 1
        groups = word == "each" or (word == "every" and i > 0 and self.t[i - 1].norm == "for")
        value = "group" if groups else ""
        noun = ACCOUNT_NOUNS.match(self.t, j)
        if noun is not None:
            return self.emit(V.ALL_ACCOUNTS, i, j + noun.length, value)
        noun = REGION_NOUNS.match(self.t, j)
        if noun is not None:
            return self.emit(V.ALL_REGIONS, i, j + noun.length, value)
        if j > i + 1 and self.t[j - 1].norm in {"org", "organization"}:
            return self.emit(V.ALL_ACCOUNTS, i, j, value)
        return None

    def group_by(self, i: int) -> int | None:
        """ "per account", "broken down by region" """
        cue = GROUP_BY_CUES.match(self.t, i)
        if cue is None:
            return None
        j = self.skip(i + cue.length, {"the", "each", "every", "an", "a", "their", "its"})
        target = GROUP_TARGETS.match(self.t, j)
        if target is None:
            return None
        end = self.emit(V.GROUP, i, j + target.length, target.meanings[V.GROUP].value)
        # "by account and region": a second grouping, which the planner must refuse, not drop.
        k = self.skip(end, {"and", "or", "then", "by", "per", "the", "each"})
        if k > end:
            more = GROUP_TARGETS.match(self.t, k)
            if more is not None:
                return self.emit(V.GROUP, end, k + more.length, more.meanings[V.GROUP].value)
        return end

    # ----- cue arguments -----

    def tag_arguments(self, i: int, j: int, strict: bool) -> int:
        """The tags after "tagged": team=payments, team:payments, team payments, team is x."""
        k = self.skip(j, {"the", "a", "with"})
        tags: list[tuple[str, str]] = []
        while k < len(self.t):
            token = self.t[k]
            if token.kind == KV:
                tags.append(kv_parts(token.raw))
                k += 1
            elif token.kind == QUOTED and is_kv(token.raw):
                tags.append(kv_parts(token.raw))
                k += 1
            elif token.kind in (WORD, QUOTED) and token.norm not in V.FILLERS | {"in", "on"}:
                m = k + 1
                connector = CONNECTORS.match(self.t, m)
                if connector is not None:
                    m += connector.length
                if (m < len(self.t) and self.t[m].kind in (WORD, QUOTED)
                        and self.t[m].norm not in V.FILLERS | {"in", "on", "for", "across"}
                        and not self.is_noun(m)):
                    tags.append((token.raw, self.t[m].raw))
                    k = m + 1
                else:
                    break
            else:
                break
            # "tagged team=payments and env=prod"
            if k + 1 < len(self.t) and self.t[k].norm in {"and", ","} and self.t[k + 1].kind == KV:
                k += 1
        if not tags:
            if not strict:
                return self.emit(V.FILLER, i, j)
            what = " ".join(t.raw for t in self.t[j:k + 1]).strip()
            return self.emit(PROBLEM, i, max(k, j), "A tag filter needs a key and a value, "
                             f"like 'tagged team=payments'{f' (I read {what!r})' if what else ''}.")
        first_key, first_value = tags[0]
        end = self.emit(TAG, i, k, first_key, (first_value,))
        for key, value in tags[1:]:
            self.items.append(Item(TAG, key, (value,), k, k, f"{key}={value}"))
        return end

    def is_noun(self, k: int) -> bool:
        found = STATIC.match(self.t, k)
        return found is not None and bool(
            {V.RESOURCE, V.AMBIGUOUS, V.INTENT, V.REGION} & set(found.meanings)
        )

    def name_argument(self, i: int, j: int, cue: str) -> int:
        k = j
        if k < len(self.t) and self.t[k].kind == WORD and self.t[k].norm in {"the", "like"}:
            k += 1
        if k >= len(self.t) or self.t[k].kind not in (WORD, QUOTED, KV):
            return self.emit(PROBLEM, i, k, f"'{self.t[i].raw}' needs a name after it.")
        raw = self.t[k].raw
        # A wildcard ("api-*") asks for a part of a name, never one exact name.
        wildcard = "*" in raw or "%" in raw
        return self.emit(NAME, i, k + 1, _clean_name(raw), (f"{cue}*" if wildcard else cue,))

    def owner(self, i: int, j: int) -> int:
        k = self.skip(j, {"the", "a"})
        if self.places_in_noun(k):
            # "node groups belonging to the EKS clusters": a place, not an owner.
            return self.emit(V.ATTACHED_TO, i, j)
        if k < len(self.t) and self.t[k].norm in V.TEAM_WORDS and k + 1 < len(self.t):
            return self.emit(TAG, i, k + 2, "team", (self.t[k + 1].raw,))
        if k + 1 < len(self.t) and self.t[k + 1].norm in V.TEAM_WORDS:
            return self.emit(TAG, i, k + 2, "team", (self.t[k].raw,))
        what = self.t[k].raw if k < len(self.t) else ""
        return self.emit(PROBLEM, i, min(k + 1, len(self.t)),
                         f"I can't tell which tag holds the owner {what!r}; say it as a tag, "
                         f"like 'tagged owner={what or 'alice'}' or 'owned by team payments'.")

    def places_in_noun(self, k: int) -> bool:
        """Whether a resource noun starts at k, after determiners ("the EKS clusters")."""
        k = self.skip(k, {"the", "a", "an", "our", "my", "their", "its", "all", "every",
                          "each", "any"})
        found = STATIC.match(self.t, k) if k < len(self.t) else None
        return found is not None and bool({V.RESOURCE, V.AMBIGUOUS} & set(found.meanings))

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
        token = self.t[item.start]
        if token.kind != WORD:
            return None
        norm = token.norm
        if V.AZ_RE.match(norm):
            return (f"{token.raw!r} is an availability zone; I can narrow to a region "
                    f"({norm[:-1]}), not to a zone.")
        if (norm in V.NOT_ACCOUNT_WORDS or token.base in V.NOT_ACCOUNT_WORDS
                or V.AWS_ID_RE.match(norm) or _NUMBER_RE.match(norm)):
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
        said = " ".join(t.raw for t in self.t[i - back:i + 1])
        more = f" and {len(codes) - 6} more" if len(codes) > 6 else ""
        return f"{said!r} names no single region; say which: {', '.join(codes[:6])}{more}."

    def region_goes_on(self, i: int) -> bool:
        """Whether the word after i goes on with the region name the words up to i start
        ("asia" in "asia pacific"), so that word speaks for both."""
        found = self._region_start(i + 1) if i + 1 < len(self.t) else None
        return found is not None and found[0] > 0

    def _region_start(self, i: int) -> tuple[int, list[str]] | None:
        """How many words before i start a region name with it, and the regions it may be."""
        if self.t[i].kind != WORD:
            return None
        parts = [p for p in self.t[i].norm.split("-") if p]
        for back in range(4):
            if i - back < 0 or any(t.kind != WORD for t in self.t[i - back:i]):
                break
            node: Node | None = STATIC.root
            for word in [t.norm for t in self.t[i - back:i]] + parts:
                node = node.children.get(word) if node is not None else None
            codes = sorted(_values_below(node, V.REGION)) if node is not None else []
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
        pool = self.accounts.words
        if not accounts_only and len(word) > 3:
            pool = pool | (_region_words() if len(word) < 5 else _typo_words())
        return sorted(w for w in pool if len(w) >= 3 and w.isalpha()
                      and (_one_edit(word, w) or _one_edit(token.base, w)))[:3]

    # ----- typos -----

    def typo(self, i: int) -> int | None:
        token = self.t[i]
        if token.kind != WORD or len(token.norm) < 5 or not token.norm.isalpha():
            return None
        candidates = {
            word for word in _typo_words() | self.accounts.words
            if len(word) >= 5 and (_one_edit(token.norm, word) or _one_edit(token.base, word))
        }
        if len(candidates) != 1:
            return None
        word = candidates.pop()
        self.t[i] = Token(token.raw, word, word)
        self.notes.append(f"read {token.raw!r} as {word!r}")
        return self.step(i)


_TYPO_WORDS: set[str] = set()


def _typo_words() -> set[str]:
    if not _TYPO_WORDS:
        def walk(node: Node, word: str, depth: int) -> None:
            if depth == 1 and set(node.meanings) & TYPO_KINDS:
                _TYPO_WORDS.add(word)
            if depth == 0:
                for child_word, child in node.children.items():
                    walk(child, child_word, 1)

        walk(STATIC.root, "", 0)
    return _TYPO_WORDS


def _one_edit(a: str, b: str) -> bool:
    """Damerau distance exactly one: one letter added, dropped, changed or two swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [n for n in range(len(a)) if a[n] != b[n]]
        if len(diff) == 1:
            return True
        return (len(diff) == 2 and diff[1] == diff[0] + 1
                and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    n = 0
    while n < len(short) and short[n] == long_[n]:
        n += 1
    return short[n:] == long_[n + 1:]


def _region_words() -> set[str]:
    return {word for word, node in STATIC.root.children.items() if V.REGION in node.meanings}


def either(words: list[str]) -> str:
    """ "'prd' or 'prod'" """
    return " or ".join(repr(w) for w in words)


def _values_below(node: Node, kind: str) -> set[str]:
    """The values of every phrase of this kind that continues from a node of the index."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if kind in current.meanings:
            found.add(current.meanings[kind].value)
        stack.extend(current.children.values())
    return found


# Numbers, dates and durations: "2023", "2024-01-31", "30d", "12/31".
_NUMBER_RE = re.compile(r"^\d+([./:-]\d+)*[a-z]{0,4}$")


_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# The AWS CLI's own short commands, as verbs a sentence can say.
_COMMAND_VERBS = {"rm": "delete", "rb": "delete", "mb": "create", "mv": "move", "cp": "copy"}


def _operation_words(text: str) -> list[str]:
    """'TerminateInstances', 'terminate-instances', 'terminate_instances' -> their words."""
    if "-" in text or "_" in text:
        return [w.lower() for w in re.split(r"[-_]+", text) if w]
    return [w.lower() for w in _CAMEL_RE.findall(text)]


def _change_verb(words: list[str]) -> str | None:
    """The verb of an operation's words when the operation changes something."""
    if words[:1] == ["batch"]:
        words = words[1:]  # BatchWriteItem, BatchDeleteImage
    if not words or words[0] not in V.OPERATION_CHANGE_WORDS or words[0] == "batch":
        return None
    return _COMMAND_VERBS.get(words[0], words[0])


@functools.cache
def change_operations() -> dict[str, str]:
    """'terminateinstances' -> 'terminate': the change operations of V.OPERATION_SERVICES,
    from botocore's models (read once, on the first word shaped like an operation)."""
    from botocore.loaders import create_loader

    loader = create_loader()
    found: dict[str, str] = {}
    for service in V.OPERATION_SERVICES:
        try:
            operations = loader.load_service_model(service, "service-2").get("operations", {})
        except Exception:  # a botocore without that service: the others still count
            continue
        for name in operations:
            verb = _change_verb(_operation_words(name))
            if verb is not None:
                found[name.lower()] = verb
    return found


def change_operation(raw: str, kv: bool = False) -> str | None:
    """The verb of the AWS change operation a word spells out ('terminate-instances',
    'TerminateInstances', 'terminate_instances', 'ec2:TerminateInstances'), else None.

    Only real operations count, so a resource named 'start-instances-scheduler' or
    'backup-bucket' stays a name."""
    if raw.lower().startswith("arn:"):
        return None
    segments = re.split(r"[:./]", raw)
    if kv:  # "ec2:TerminateInstances" (an IAM action); "team:delete-me" is a tag
        if len(segments) != 2 or segments[0].lower() not in V.OPERATION_SERVICES:
            return None
        segments = segments[1:]
    for segment in segments:
        segment = segment.strip("-_")
        if not ("-" in segment or "_" in segment or any(c.isupper() for c in segment[1:])):
            continue
        words = _operation_words(segment)
        if len(words) < 2 or _change_verb(words) is None:
            continue  # most words never need the operation table
        verb = change_operations().get("".join(words))
        if verb is not None:
            return verb
    return None


def _special_shape(norm: str) -> bool:
    return bool(re.fullmatch(r"\d{12}", norm) or any(p.match(norm) for p, _ in _ID_PATTERNS)
                or norm.startswith("arn:"))


def identifier_like(raw: str) -> bool:
    return bool(_IDENTIFIER_RE.search(raw))


def _clean_name(raw: str) -> str:
    return raw.strip().strip("'\"").strip("*%").strip() or raw
